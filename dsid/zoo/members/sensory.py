"""``sensory``: a sensory area driven by known, time-varying stimuli (``{split}/ext_inputs``).

Three stimulus channels per trial: two flash trains (``flash_bins``-bin unit pulses at random times,
``flashes_per_trial`` on average, one train per channel) and one smoothed Gaussian noise
(exponential smoothing over ``noise_tau`` bins, unit variance). The 5-D latent filters them
linearly, with a little intrinsic dynamics (random initial state, small process noise)::

    z <- A z + B s + noise,   A = blockdiag(r1 R(w1), r2 R(w2), leak)

two damped oscillators (6 and 11 Hz at 10 ms bins) and one leaky integrator, ``B`` a fixed random
map of the stimulus. Log-rates are a random affine read-out of the standardized latents. Most of the
latent variance is set by the stimulus, so a model given ``ext_inputs`` can explain it and one
without cannot.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dsid.data.tensor_file import DSIDData
from dsid.zoo.members.packing import loglinear_rates, pack


def _rot(w: float) -> np.ndarray:
    return np.array([[np.cos(w), -np.sin(w)], [np.sin(w), np.cos(w)]])


def stimuli(
    rng: np.random.Generator,
    n: int,
    n_time: int,
    flashes_per_trial: float = 3.0,
    flash_bins: int = 3,
    noise_tau: float = 5.0,
) -> np.ndarray:
    """Stimuli (n, T, 3): two flash trains (0/1) and one smoothed noise channel (unit variance)."""
    s = np.zeros((n, n_time, 3))
    for ch in range(2):
        counts = rng.poisson(flashes_per_trial * n_time / 100.0, n)
        for i in np.flatnonzero(counts):
            for t0 in rng.integers(0, n_time, counts[i]):
                s[i, t0 : t0 + flash_bins, ch] = 1.0
    white = rng.normal(size=(n, n_time))
    a = np.exp(-1.0 / noise_tau)
    smooth = np.empty_like(white)
    smooth[:, 0] = white[:, 0]
    for t in range(1, n_time):
        smooth[:, t] = a * smooth[:, t - 1] + np.sqrt(1 - a * a) * white[:, t]
    s[..., 2] = smooth
    return s


def sensory_system(seed: int, bin_ms: float = 10.0) -> tuple:
    """The fixed linear system ``(A (5, 5), B (5, 3))`` of the seed."""
    A = np.zeros((5, 5))
    A[:2, :2] = 0.92 * _rot(2 * np.pi * 6.0 * bin_ms / 1000)
    A[2:4, 2:4] = 0.88 * _rot(2 * np.pi * 11.0 * bin_ms / 1000)
    A[4, 4] = 0.95
    B = np.random.default_rng([seed, 0]).normal(0.0, 0.5, (5, 3))
    return A, B


def make_sensory(
    *,
    seed: int = 0,
    n_trials: Sequence[int] = (800, 200, 200),
    n_time: int = 120,
    n_neurons: int = 80,
    n_heldout: int = 18,
    bin_ms: float = 10.0,
    flashes_per_trial: float = 3.0,
    flash_bins: int = 3,
    noise_tau: float = 5.0,
    process_noise: float = 0.05,
    init_std: float = 0.5,
    min_rate: float = 1.0,
    max_rate: float = 40.0,
) -> DSIDData:
    """Build the sensory member in memory (deterministic by ``seed``); see the module docstring.

    ``flashes_per_trial`` is per 100 bins. The stimulus at bin t moves the latent at t + 1.
    """
    A, B = sensory_system(seed, bin_ms)
    rng = np.random.default_rng([seed, 1])
    total = int(sum(n_trials))
    stim = stimuli(rng, total, n_time, flashes_per_trial, flash_bins, noise_tau)
    z = np.empty((total, n_time, 5))
    z[:, 0] = init_std * rng.normal(size=(total, 5))
    eps = process_noise * rng.normal(size=(total, n_time, 5))
    for t in range(n_time - 1):
        z[:, t + 1] = z[:, t] @ A.T + stim[:, t] @ B.T + eps[:, t]
    rates = loglinear_rates(
        z, np.random.default_rng([seed, 2]), n_neurons, min_rate, max_rate, bin_ms
    )
    return pack(
        bin_ms=bin_ms,
        n_trials=n_trials,
        rates=rates,
        latents=z,
        n_heldout=n_heldout,
        spike_rng=np.random.default_rng([seed, 3]),
        name="sensory",
        ext_inputs=stim,
        extra={"truth/sensory/A": A, "truth/sensory/B": B},
    )
