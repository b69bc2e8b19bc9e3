"""``low_rate``: a sparsely firing population (most neurons 1-5 spikes/s) on a noisy van der Pol
cycle.

``dx/dt = w y,  dy/dt = w (mu (1 - x^2) y - x)`` with ``mu = 1.5`` (a relaxation-like,
non-sinusoidal limit cycle), about ``freq_hz`` cycles per second, plus a small diffusion. Each trial
starts at a random phase with a random amplitude (the cycle point scaled by ``U(0.3, 1.6)``), so
early bins show the relaxation onto the cycle. Tests how a model copes with few spikes per bin on a
simple 2-D system.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dsid.data.integrate import rk4
from dsid.data.tensor_file import DSIDData
from dsid.zoo.members.packing import loglinear_rates, pack

#: Period of the van der Pol cycle at mu = 1.5 and w = 1 (time units), to set the real frequency.
_PERIOD_MU_1P5 = 7.10


def van_der_pol(mu: float = 1.5):
    """The vector field ``f(z)`` of the van der Pol oscillator (unit angular scale), z (..., 2)."""

    def f(z):
        x, y = z[..., 0], z[..., 1]
        return np.stack([y, mu * (1 - x * x) * y - x], -1)

    return f


def limit_cycle(f, dt: float) -> np.ndarray:
    """Points on the limit cycle of ``f`` (after a transient), one per bin of ``dt``.
    Shape: (200, 2)."""
    return rk4(f, np.array([[2.0, 0.0]]), 400, dt)[0, 200:]


def initial_states(
    rng: np.random.Generator, n: int, cycle: np.ndarray, amp_range: Sequence[float]
) -> np.ndarray:
    """``n`` trial starts: a random cycle point scaled by ``U(amp_range)``. Shape: (n, 2)."""
    return cycle[rng.integers(0, len(cycle), n)] * rng.uniform(*amp_range, (n, 1))


def bin_dt(bin_ms: float, freq_hz: float) -> float:
    """Model time per bin for a cycle of about ``freq_hz`` cycles per second."""
    return _PERIOD_MU_1P5 * freq_hz * bin_ms / 1000.0


def make_low_rate(
    *,
    seed: int = 0,
    n_trials: Sequence[int] = (800, 200, 200),
    n_time: int = 120,
    n_neurons: int = 100,
    n_heldout: int = 22,
    bin_ms: float = 10.0,
    mu: float = 1.5,
    freq_hz: float = 2.0,
    amp_range: Sequence[float] = (0.3, 1.6),
    noise: float = 0.15,
    min_rate: float = 0.7,
    max_rate: float = 6.0,
) -> DSIDData:
    """Build the low-rate member in memory (deterministic by ``seed``); see the module docstring."""
    f = van_der_pol(mu)
    rng = np.random.default_rng([seed, 1])
    total = int(sum(n_trials))
    dt = bin_dt(bin_ms, freq_hz)
    z0 = initial_states(rng, total, limit_cycle(f, dt), amp_range)
    latents = rk4(f, z0, n_time, dt, noise=noise, rng=rng)
    rates = loglinear_rates(
        latents, np.random.default_rng([seed, 2]), n_neurons, min_rate, max_rate, bin_ms
    )
    return pack(
        bin_ms=bin_ms,
        n_trials=n_trials,
        rates=rates,
        latents=latents,
        n_heldout=n_heldout,
        spike_rng=np.random.default_rng([seed, 3]),
        name="vanderpol",
    )
