"""Neural Latents Benchmark support, in one home with two layers.

The lower part, which training may use: the data sets' specs (``specs``), scoring through
nlb_tools (``scoring``) and the training callback that scores NLB data while a model trains
(``callback``). The upper part: synthetic NLB-like NWB files (``synth``), NWB -> DSID tensor files
with NLB targets (``prepare``), the smoothing baseline (``baseline``), and scoring and submitting
trained runs (``evaluate``, ``submit``, ``commands``: ``dsid nlb prepare|evaluate|submit``).
"""
