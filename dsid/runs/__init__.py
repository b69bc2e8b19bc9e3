"""Runs: the one assembly path from a config to data and model (``build_run``), training
(``train``), reloading a finished run (``load_run``) and inference from it (``infer_run``)."""
