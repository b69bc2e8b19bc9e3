"""Bayes ceilings of the zoo members whose true rates carry noise: a particle smoother for
state-space models with delayed interactions (``particle_smoother``), its noise models
(``state_noise``) and the members' exact generative models (``exact_models``). Used by
``benchmarks/bayes_ceiling.py``."""
