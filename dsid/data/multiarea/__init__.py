"""Synthetic multi-area data with known communication: the simulator (``synth``: areas, directed
delayed low-rank edges, unobserved input events), the report of what its couplings carry
(``report``) and ``dsid synth multiarea`` (``commands``)."""
