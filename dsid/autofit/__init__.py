"""Automatic fitting: ``dsid fit DATA`` chooses a model and its training from rules of the data
(:mod:`dsid.autofit.rules`), trains within a budget and reports against the smoothing baseline (and
the oracle when the file has the true rates)."""
