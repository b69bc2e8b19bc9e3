"""``high_rate``: a densely firing population (about 20-100 spikes/s) on the chaotic Rossler
attractor.

``dx/dt = -y - z,  dy/dt = x + a y,  dz/dt = b + z (x - c)`` with ``a = b = 0.2, c = 5.7``;
``dt_per_bin`` model-time units per bin give about 3 rotations per second at 10 ms bins. Trials
start at random points on the attractor. The latents are the raw state; since ``z`` has rare large
excursions, each neuron's standardized projection is bounded softly (``2 tanh(p / 2)``) so rates
stay inside 20-100 spikes/s. Tests many spikes per bin (near-Gaussian counts) on a 3-D chaotic
system other than Lorenz.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dsid.data.integrate import rk4
from dsid.data.tensor_file import DSIDData
from dsid.zoo.members.packing import loglinear_rates, pack


def rossler(a: float = 0.2, b: float = 0.2, c: float = 5.7):
    """The Rossler vector field ``f(z)``, z (..., 3)."""

    def f(z):
        x, y, w = z[..., 0], z[..., 1], z[..., 2]
        return np.stack([-y - w, x + a * y, b + w * (x - c)], -1)

    return f


def make_high_rate(
    *,
    seed: int = 0,
    n_trials: Sequence[int] = (800, 200, 200),
    n_time: int = 100,
    n_neurons: int = 50,
    n_heldout: int = 12,
    bin_ms: float = 10.0,
    dt_per_bin: float = 0.2,
    min_rate: float = 20.0,
    max_rate: float = 100.0,
) -> DSIDData:
    """Build the high-rate member in memory (deterministic by ``seed``); see the module
    docstring."""
    f = rossler()
    rng = np.random.default_rng([seed, 1])
    total = int(sum(n_trials))
    burn = rk4(f, rng.normal(0, 1, (1, 3)) + np.array([[1.0, 1.0, 0.0]]), 2000, dt_per_bin)[0, 500:]
    z0 = burn[rng.integers(0, len(burn), total)]
    latents = rk4(f, z0, n_time, dt_per_bin)
    rates = loglinear_rates(
        latents,
        np.random.default_rng([seed, 2]),
        n_neurons,
        min_rate,
        max_rate,
        bin_ms,
        squash=True,
    )
    return pack(
        bin_ms=bin_ms,
        n_trials=n_trials,
        rates=rates,
        latents=latents,
        n_heldout=n_heldout,
        spike_rng=np.random.default_rng([seed, 3]),
        name="rossler",
    )
