"""``context_integration``: a cognitive-task population, context-dependent integration of noisy
evidence (as in monkeys switching between motion and colour discrimination).

Each trial starts with a brief unobserved context cue (A or B) that sets a persistent context state
``c`` (+1 or -1). Two noisy evidence streams ``e1``, ``e2`` (each with its own signed coherence per
trial) then arrive during a stimulus window; the context gates which stream a bounded accumulator
``a`` integrates, and the bound is absorbing (a commitment: once reached, ``a`` stays there, so the
dynamics switch from integrating to holding). A slow urgency signal ``u`` rises through the trial::

    c <- clip(c + kick_c (cue_A - cue_B), -1, 1)
    a <- clip((1 - leak) a + kick ((1 + c) / 2 e1 + (1 - c) / 2 e2) + noise, -bound, bound)
         (unchanged once |a| = bound)
    u <- u + (1 - u) / tau_u

Log-rates of many neurons are random affine read-outs of the standardized ``(c, a, u)`` (mixed
selectivity), and the data set has few trials for its size: the regime where a fit must infer the
cue and the evidence (``truth_inputs``: cue A, cue B, e1, e2) from the spikes alone, with little
data per parameter. ``{split}/condition`` indexes (context, coherence 1, coherence 2).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dsid.data.tensor_file import DSIDData
from dsid.zoo.members.packing import loglinear_rates, pack

COHERENCES = (-0.5, -0.2, 0.2, 0.5)


def make_context_integration(
    *,
    seed: int = 0,
    n_trials: Sequence[int] = (200, 50, 50),
    n_time: int = 100,
    n_neurons: int = 200,
    n_heldout: int = 50,
    bin_ms: float = 10.0,
    coherences: Sequence[float] = COHERENCES,
    evidence_noise: float = 1.0,
    kick: float = 0.08,
    kick_c: float = 0.5,
    bound: float = 1.5,
    leak: float = 0.01,
    noise: float = 0.02,
    tau_u: float = 50.0,
    min_rate: float = 1.0,
    max_rate: float = 30.0,
) -> DSIDData:
    """Build the member in memory (deterministic by ``seed``); see the module docstring.

    The cue is on for bins ``[T // 20, T // 10)`` and the evidence for ``[T // 5, 4 T // 5)``.
    """
    rng = np.random.default_rng([seed, 1])
    total = int(sum(n_trials))
    coh = np.asarray(coherences, np.float64)
    context = rng.integers(0, 2, total)  # 0: context A (integrate e1), 1: context B (integrate e2)
    c1, c2 = rng.integers(0, len(coh), total), rng.integers(0, len(coh), total)
    cue_on, cue_off = n_time // 20, max(n_time // 10, n_time // 20 + 1)
    ev_on, ev_off = n_time // 5, 4 * n_time // 5
    inputs = np.zeros((total, n_time, 4))  # cue A, cue B, e1, e2
    inputs[np.arange(total), cue_on:cue_off, context] = 1.0
    window = np.zeros(n_time, bool)
    window[ev_on:ev_off] = True
    for k, ci in ((2, c1), (3, c2)):
        stream = coh[ci, None] + evidence_noise * rng.normal(size=(total, n_time))
        inputs[:, :, k] = stream * window
    c = np.zeros((total, n_time))
    a = np.zeros((total, n_time))
    u = np.zeros((total, n_time))
    u[:, 0] = rng.uniform(0.0, 0.3, total)
    eps = noise * rng.normal(size=(total, n_time))
    for t in range(n_time - 1):  # the input at bin t moves the state at t + 1
        c[:, t + 1] = np.clip(c[:, t] + kick_c * (inputs[:, t, 0] - inputs[:, t, 1]), -1, 1)
        gate = (1 + c[:, t]) / 2
        drive = gate * inputs[:, t, 2] + (1 - gate) * inputs[:, t, 3]
        step = np.clip((1 - leak) * a[:, t] + kick * drive + eps[:, t], -bound, bound)
        a[:, t + 1] = np.where(np.abs(a[:, t]) >= bound, a[:, t], step)
        u[:, t + 1] = u[:, t] + (1 - u[:, t]) / tau_u
    latents = np.stack([c, a, u], -1)
    rates = loglinear_rates(
        latents, np.random.default_rng([seed, 2]), n_neurons, min_rate, max_rate, bin_ms
    )
    condition = (context * len(coh) + c1) * len(coh) + c2
    return pack(
        bin_ms=bin_ms,
        n_trials=n_trials,
        rates=rates,
        latents=latents,
        n_heldout=n_heldout,
        spike_rng=np.random.default_rng([seed, 3]),
        name="context_integration",
        condition=condition.astype(np.int64),
        truth_inputs=inputs,
        extra={
            "truth/coherences": coh,
            "truth/cue_window": np.array([cue_on, cue_off], np.int64),
            "truth/stimulus_window": np.array([ev_on, ev_off], np.int64),
        },
    )
