"""``chaotic_rnn``: the classic LFADS benchmark, Poisson neurons reading out a chaotic vanilla RNN.

``x <- x + alpha (-x + J tanh(x))`` per bin (``alpha = dt / tau``), ``J ~ N(0, g^2 / n_units)``.
Each trial starts from one of ``n_conditions`` initial states (on the attractor) plus small noise;
the condition index is stored in ``{split}/condition``. True latents are ``tanh(x)`` (all units),
log-rates a random linear read-out of them spanning about 1-40 spikes/s.

At 50 units, ``g = 1.5`` (the LFADS paper's value) almost never gives chaos: finite-size networks
settle on limit cycles or tori (largest Lyapunov exponent ~0). So the default is ``g = 2.5`` and
``J`` is the draw, among ``n_candidates`` drawn from the seed, with the largest Lyapunov exponent
(about 0.03-0.1 per ``tau``): nearby states separate over a trial instead of converging.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from dsid.data.tensor_file import DSIDData
from dsid.zoo.members.packing import loglinear_rates, pack


def simulate_rnn(
    J: np.ndarray, x0: np.ndarray, n_steps: int, alpha: float = 0.25, substeps: int = 2
) -> np.ndarray:
    """States x (K, n_steps, n_units) from ``x0`` (K, n_units), the first being x0; Euler
    sub-steps."""
    h = alpha / substeps
    out = np.empty((x0.shape[0], n_steps, x0.shape[1]))
    x = np.asarray(x0, np.float64)
    for t in range(n_steps):
        out[:, t] = x
        for _ in range(substeps):
            x = x + h * (-x + np.tanh(x) @ J.T)
    return out


def largest_lyapunov(
    Js: np.ndarray,
    alpha: float = 0.25,
    n_steps: int = 800,
    burn: int = 200,
    substeps: int = 2,
    seed: int = 0,
) -> np.ndarray:
    """Largest Lyapunov exponent, per ``tau``, of each network in ``Js`` (C, n, n): two trajectories
    ``1e-8`` apart, renormalised every sub-step, after ``burn`` bins from ``N(0, 1)``."""
    rng = np.random.default_rng(seed)
    h, eps = alpha / substeps, 1e-8
    step = lambda x: x + h * (-x + np.einsum("cij,cj->ci", Js, np.tanh(x)))  # noqa: E731
    x = rng.normal(size=Js.shape[:2])
    for _ in range(burn * substeps):
        x = step(x)
    d = rng.normal(size=x.shape)
    y, total = x + eps * d / np.linalg.norm(d, axis=1, keepdims=True), 0.0
    for _ in range(n_steps * substeps):
        x, y = step(x), step(y)
        sep = np.linalg.norm(y - x, axis=1)
        total = total + np.log(sep / eps)
        y = x + (y - x) * (eps / sep)[:, None]
    return total / (n_steps * alpha)


@lru_cache(maxsize=8)
def rnn_matrix(
    seed: int, n_units: int = 50, gain: float = 2.5, n_candidates: int = 24, alpha: float = 0.25
) -> np.ndarray:
    """The recurrent matrix ``J`` (read-only): of ``n_candidates`` Gaussian draws (standard
    deviation ``gain / sqrt(n_units)``), the one with the largest Lyapunov exponent."""
    Js = np.random.default_rng([seed, 0]).normal(
        0.0, gain / np.sqrt(n_units), (n_candidates, n_units, n_units)
    )
    J = Js[int(np.argmax(largest_lyapunov(Js, alpha)))] if n_candidates > 1 else Js[0]
    J.setflags(write=False)
    return J


def make_chaotic_rnn(
    *,
    seed: int = 0,
    n_trials: Sequence[int] = (800, 200, 200),
    n_time: int = 100,
    n_units: int = 50,
    gain: float = 2.5,
    alpha: float = 0.25,
    n_candidates: int = 24,
    n_conditions: int = 40,
    ic_noise: float = 0.05,
    n_neurons: int = 60,
    n_heldout: int = 14,
    bin_ms: float = 10.0,
    min_rate: float = 1.0,
    max_rate: float = 40.0,
) -> DSIDData:
    """Build the chaotic-RNN member in memory (deterministic by ``seed``); see the module docstring.

    Condition initial states are the ends of 100-bin runs from ``N(0, 1)``; every trial adds
    ``N(0, ic_noise^2)`` to its condition's state. Conditions are drawn uniformly per trial.
    """
    J = rnn_matrix(seed, n_units, gain, n_candidates, alpha)
    rng = np.random.default_rng([seed, 1])
    starts = simulate_rnn(J, rng.normal(size=(n_conditions, n_units)), 101, alpha)[:, -1]
    total = int(sum(n_trials))
    condition = rng.integers(0, n_conditions, total)
    x0 = starts[condition] + ic_noise * rng.normal(size=(total, n_units))
    latents = np.tanh(simulate_rnn(J, x0, n_time, alpha))
    rates = loglinear_rates(
        latents, np.random.default_rng([seed, 2]), n_neurons, min_rate, max_rate, bin_ms
    )
    extra = {
        "truth/rnn/J": np.array(J),
        "truth/rnn/alpha": np.float64(alpha),
        "truth/rnn/condition_states": starts,
    }
    return pack(
        bin_ms=bin_ms,
        n_trials=n_trials,
        rates=rates,
        latents=latents,
        n_heldout=n_heldout,
        spike_rng=np.random.default_rng([seed, 3]),
        name="rnn",
        condition=condition.astype(np.int64),
        extra=extra,
    )
