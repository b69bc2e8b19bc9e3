"""``integrator``: evidence accumulation driven by unobserved click inputs (a cognitive decision
task).

Two click streams, right and left (``truth_inputs``, (trials, T, 2), 0/1 per bin), arrive during a
stimulus window at ``click_rate`` per bin in total; a trial's signed coherence ``c`` (the condition)
makes a click a right one with probability ``(1 + c) / 2``. The 2-D latent is a bounded, slightly
leaky evidence accumulator ``a`` and a slow urgency signal ``u``::

    a <- clip((1 - leak) a + kick (R - L) + noise, -bound, bound)
    u <- u + (1 - u) / tau_u,   u(0) ~ U(0, 0.5)

Log-rates are a random affine read-out of the standardized ``(a, u)``. Click timing is random and
unobserved, so a model must infer the inputs from the spikes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dsid.data.tensor_file import DSIDData
from dsid.zoo.members.packing import loglinear_rates, pack

COHERENCES = (-0.6, -0.3, -0.1, 0.1, 0.3, 0.6)


def make_integrator(
    *,
    seed: int = 0,
    n_trials: Sequence[int] = (800, 200, 200),
    n_time: int = 120,
    n_neurons: int = 80,
    n_heldout: int = 18,
    bin_ms: float = 10.0,
    coherences: Sequence[float] = COHERENCES,
    click_rate: float = 0.12,
    kick: float = 0.3,
    bound: float = 2.5,
    leak: float = 0.005,
    noise: float = 0.02,
    tau_u: float = 60.0,
    min_rate: float = 1.0,
    max_rate: float = 40.0,
) -> DSIDData:
    """Build the integrator member in memory (deterministic by ``seed``); see the module docstring.

    The stimulus window is bins ``[T // 12, T - T // 6)``; ``{split}/condition`` is the index into
    ``coherences`` (stored as ``truth/coherences``).
    """
    rng = np.random.default_rng([seed, 1])
    total = int(sum(n_trials))
    coh = np.asarray(coherences, np.float64)
    condition = rng.integers(0, len(coh), total)
    on, off = n_time // 12, n_time - n_time // 6
    click = np.zeros((total, n_time), bool)
    click[:, on:off] = rng.random((total, off - on)) < click_rate
    right = click & (rng.random((total, n_time)) < (1 + coh[condition, None]) / 2)
    inputs = np.stack([right, click & ~right], -1).astype(np.float64)  # (K, T, 2): right, left
    a = np.zeros((total, n_time))
    u = np.zeros((total, n_time))
    u[:, 0] = rng.uniform(0.0, 0.5, total)
    eps = noise * rng.normal(size=(total, n_time))
    for t in range(n_time - 1):  # the input at bin t moves the state at t + 1
        drive = (1 - leak) * a[:, t] + kick * (inputs[:, t, 0] - inputs[:, t, 1]) + eps[:, t]
        a[:, t + 1] = np.clip(drive, -bound, bound)
        u[:, t + 1] = u[:, t] + (1 - u[:, t]) / tau_u
    latents = np.stack([a, u], -1)
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
        name="integrator",
        condition=condition.astype(np.int64),
        truth_inputs=inputs,
        extra={"truth/coherences": coh, "truth/stimulus_window": np.array([on, off], np.int64)},
    )
