"""Figures of a run, in one style (``style``): the diagnostic set written for every run
(``diagnostics``: rates over a raster, latents, and whatever else the data allow) and the
single-area plots it draws on (``single_area``: PSTHs, inferred inputs, trajectories, training
curves). Multi-area figures live with their metrics in ``dsid.evaluation.multiarea.plots``."""
