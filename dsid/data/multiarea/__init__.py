"""Synthetic multi-area data with known communication: the generative system (``system``: areas,
directed delayed low-rank edges, unobserved input events, the simulation of trials), the DSID file
written from it (``synth``) and the report of what its couplings carry (``report``). ``dsid synth
multiarea`` is in ``dsid.data.commands``."""
