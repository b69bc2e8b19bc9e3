"""Bayes ceilings of the zoo members whose true rates carry noise: a particle smoother for
state-space models with delayed interactions (``particle_smoother``), its noise models
(``state_noise``) and the members' exact generative models (``exact_models``); for a state too large
for particles (``multiregion_rnn``), a Gaussian smoother (``gaussian_smoother``) with the member's
model (``multiregion_model``), whose score bounds the ceiling from below. Used by
``benchmarks/bayes_ceiling.py``."""
