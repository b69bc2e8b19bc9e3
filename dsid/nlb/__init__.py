"""Neural Latents Benchmark support: synthetic NLB-like NWB files (``synth``), NWB -> DSID tensor
files with NLB targets (``prepare``), the smoothing baseline, and scoring and submitting trained runs
(``evaluate``: ``dsid nlb evaluate|submit``). Dataset specs and scoring through nlb_tools live in
``dsid.evaluation.nlb_specs`` and ``dsid.evaluation.nlb_scoring``; NLB scores during training in
``dsid.training.nlb_callback``."""
