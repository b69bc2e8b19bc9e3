"""The ground-truth zoo in one place: its members (``members``: synthetic systems written as DSID
tensor files), the catalogue of every member including the NLB-layout ones (``catalog``), the
``dsid synth <member>`` commands (``commands``) and the members' Bayes ceilings (``ceilings``)."""
