"""The predictable information per trial that sets the KL weight of dsid fit."""

from __future__ import annotations

import numpy as np
import pytest

from dsid.autofit.information import neighbour_smoother, predictable_information


def latent_population(
    rate_hz: float,
    n_neurons: int = 30,
    trials: int = 150,
    T: int = 80,
    bin_ms: float = 10.0,
    seed: int = 0,
) -> np.ndarray:
    """Spikes of neurons driven by two slow latent signals that differ from trial to trial."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) * bin_ms / 1000
    phase = rng.uniform(0, 2 * np.pi, (trials, 2, 1))
    latents = np.sin(
        2 * np.pi * np.array([1.0, 1.7])[None, :, None] * t[None, None, :] + phase
    )  # (trials, 2, T)
    weights = rng.normal(0, 1, (2, n_neurons))
    log_rate = np.log(rate_hz * bin_ms / 1000) + np.einsum("bkt,kn->btn", latents, weights) - 0.5
    return rng.poisson(np.exp(log_rate)).astype(np.float32)


def test_neighbour_smoother_leaves_each_bin_out():
    s = neighbour_smoother(10, 2.0)
    assert np.allclose(np.diag(s), 0) and np.allclose(s.sum(1), 1)


def test_information_is_near_zero_without_structure_and_grows_with_rate():
    rng = np.random.default_rng(1)
    flat = rng.poisson(0.2, (150, 80, 30)).astype(np.float32)
    none = predictable_information(flat, 10.0)
    low, high = (predictable_information(latent_population(r), 10.0) for r in (2.0, 20.0))
    assert none < 2.0, none
    assert low > none + 2 and high > 3 * low, (none, low, high)


def test_information_rejects_a_misshapen_array():
    with pytest.raises(ValueError, match="trials, T, N"):
        predictable_information(np.zeros((5, 4)), 10.0)
    assert predictable_information(np.zeros((3, 10, 4)), 10.0) == 0.0
