"""Latent R2: the average over latent dimensions and the worst dimension, which the average
hides."""

import numpy as np

from dsid.evaluation.metrics import latent_r2, latent_r2_per_dim


def test_a_latent_the_factors_miss_shows_in_the_worst_dimension():
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((2, 40, 30, 4))  # train, valid: (trials, T, L)
    # the factors: a mixture of the first three latents; the fourth is missed entirely
    mix = rng.standard_normal((3, 5))
    factors = latents[..., :3] @ mix + 0.01 * rng.standard_normal((2, 40, 30, 5))
    per_dim = latent_r2_per_dim(factors[0], latents[0], factors[1], latents[1])
    assert per_dim.shape == (4,)
    assert (per_dim[:3] > 0.99).all() and per_dim[3] < 0.05
    assert np.isclose(latent_r2(factors[0], latents[0], factors[1], latents[1]), per_dim.mean())
    # a constant latent dimension has no R2 and is left out
    latents[..., 3] = 1.0
    assert latent_r2_per_dim(factors[0], latents[0], factors[1], latents[1]).shape == (3,)
