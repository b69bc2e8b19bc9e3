"""The Lorenz benchmark: Poisson neurons driven by a 3-D Lorenz system, with known rates and
latents."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from dsid.data.integrate import rk4
from dsid.data.tensor_file import DSIDData, SplitData, write_tensor_file


def lorenz_derivative(z: np.ndarray, sigma=10.0, rho=28.0, beta=8.0 / 3.0) -> np.ndarray:
    x, y, w = z[..., 0], z[..., 1], z[..., 2]
    return np.stack([sigma * (y - x), x * (rho - w) - y, x * y - beta * w], axis=-1)


def integrate_lorenz(z0: np.ndarray, n_steps: int, dt: float, substeps: int = 4) -> np.ndarray:
    """RK4-integrate from ``z0`` (K, 3); returns (K, n_steps, 3), the first step being z0."""
    return rk4(lorenz_derivative, z0, n_steps, dt, substeps)


def lorenz_latents(
    n_trials: int, n_time: int, rng: np.random.Generator, dt: float = 0.015
) -> np.ndarray:
    """Trials of Lorenz latents, each starting from a random point on the attractor: (K, T, 3)."""
    burn = integrate_lorenz(rng.normal(0, 1, (1, 3)) + np.array([[1.0, 1.0, 25.0]]), 3000, 0.01)[
        0, 500:
    ]
    starts = burn[rng.integers(0, burn.shape[0], n_trials)]
    return integrate_lorenz(starts, n_time, dt)


def calcium_traces(
    spikes: np.ndarray,
    rates: np.ndarray,
    rng: np.random.Generator,
    bin_ms: float,
    tau_ms: float = 50.0,
    noise: float = 0.05,
    threshold: Optional[float] = None,
) -> np.ndarray:
    """Calcium-like traces from spike counts (trials, T, N): each spike adds an exponentially
    decaying transient of unit area (time constant ``tau_ms``), so a trace is in spikes per bin and
    its expectation is a causally smoothed rate; Gaussian noise (sd ``noise``) is added and values
    below ``threshold`` (default: ``noise``) are set to exactly 0, as after deconvolution and event
    detection. The transient state before the first bin starts at the expected value (``rates``).
    """
    a = float(np.exp(-bin_ms / tau_ms))
    trace = np.empty(spikes.shape, np.float64)
    c = np.asarray(rates[:, 0], np.float64)
    for t in range(spikes.shape[1]):
        c = a * c + (1.0 - a) * spikes[:, t]
        trace[:, t] = c
    trace += noise * rng.standard_normal(trace.shape)
    trace[trace < (noise if threshold is None else threshold)] = 0.0
    return trace.astype(np.float32)


def make_lorenz_benchmark(
    *,
    seed: int = 0,
    n_trials: Tuple[int, int, int] = (800, 200, 200),
    n_time: int = 100,
    bin_ms: float = 10.0,
    n_neurons: int = 50,
    n_heldout: int = 10,
    min_rate: float = 1.0,
    max_rate: float = 40.0,
    dt: float = 0.015,
    observation: str = "spikes",
    calcium_tau_ms: float = 50.0,
    calcium_noise: float = 0.05,
) -> DSIDData:
    """Build the Lorenz benchmark in memory (deterministic by ``seed``).

    Log-rates are an affine map of the standardized latents, scaled so that the population's rates
    span roughly ``min_rate``..``max_rate`` spikes/s; counts are Poisson per bin.

    ``observation="calcium"`` stores calcium-like float traces made from those same spikes (see
    :func:`calcium_traces`) in ``{split}/spikes`` (load them with ``counts=False``); the true rates
    and latents are unchanged and the spikes move to ``{split}/truth/spikes``.
    """
    if observation not in ("spikes", "calcium"):
        raise ValueError(f"observation must be 'spikes' or 'calcium', got {observation!r}")
    rng = np.random.default_rng(seed)
    total = int(sum(n_trials))
    latents = lorenz_latents(total, n_time, rng, dt)
    flat = latents.reshape(-1, 3)
    z = (latents - flat.mean(0)) / flat.std(0)
    weights = rng.normal(0, 1, (3, n_neurons))
    weights /= np.linalg.norm(weights, axis=0, keepdims=True)
    lo, hi = np.log(min_rate), np.log(max_rate)
    # each neuron's log-rate spans +-2 standard deviations inside [lo, hi]
    gain = rng.uniform(0.35, 0.5, n_neurons) * (hi - lo) / 2.0
    center = rng.uniform(lo + 2 * gain, hi - 2 * gain)
    log_rates = center + (z @ weights) * gain
    rates_hz = np.exp(log_rates)
    rates = rates_hz * bin_ms / 1000.0
    spikes = rng.poisson(rates).astype(np.int32)
    heldout = np.zeros(n_neurons, bool)
    heldout[rng.choice(n_neurons, n_heldout, replace=False)] = True
    # held-in neurons first, held-out last (NLB order), so files read naturally
    order = np.concatenate([np.flatnonzero(~heldout), np.flatnonzero(heldout)])
    spikes, rates, heldout = spikes[..., order], rates[..., order], heldout[order]
    observed, extra = spikes, {}
    if observation == "calcium":  # its own random stream: the spikes stay those of the default
        observed = calcium_traces(
            spikes, rates, np.random.default_rng([seed, 1]), bin_ms, calcium_tau_ms, calcium_noise
        )
        extra = {
            "calcium/tau_ms": np.float64(calcium_tau_ms),
            "calcium/noise": np.float64(calcium_noise),
        }
    splits, start = {}, 0
    for name, k in zip(("train", "valid", "test"), n_trials):
        sl = slice(start, start + k)
        splits[name] = SplitData(
            spikes=observed[sl],
            truth_rates=rates[sl].astype(np.float32),
            truth_latents=latents[sl].astype(np.float32),
        )
        if observation == "calcium":
            extra[f"{name}/truth/spikes"] = spikes[sl]
        start += k
    return DSIDData(
        bin_ms=bin_ms,
        area=np.zeros(n_neurons, np.int64),
        heldout=heldout,
        splits=splits,
        area_names=["lorenz"],
        extra=extra,
    )


def write_lorenz_benchmark(out, **kwargs) -> Path:
    """Write the Lorenz benchmark to ``out`` (see :func:`make_lorenz_benchmark` for options)."""
    return write_tensor_file(out, make_lorenz_benchmark(**kwargs))
