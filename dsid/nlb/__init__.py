"""Neural Latents Benchmark support: dataset specs, synthetic NLB-like NWB files, NWB -> DSID tensor
files with NLB targets (``prepare``), submissions and scores through nlb_tools (``scoring``), the
smoothing baseline, scoring and submitting trained runs (``evaluate``: ``dsid nlb evaluate|submit``) and
NLB scores during training (``callback``)."""
from dsid.nlb.specs import DATASETS, SPECS, NLBSpec, get_spec

__all__ = ["DATASETS", "SPECS", "NLBSpec", "get_spec"]
