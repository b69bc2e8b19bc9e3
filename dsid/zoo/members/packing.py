"""Shared pieces of the zoo members: log-linear Poisson read-outs and packing into a DSIDData."""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import numpy as np

from dsid.data.tensor_file import SPLITS, DSIDData, SplitData


def standardize(x: np.ndarray) -> np.ndarray:
    """Each last-axis channel of ``x`` (..., C) to zero mean and unit variance over all other
    axes."""
    return _standardizer(x)(x)


def _standardizer(x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The map that standardizes ``x`` (..., C), for any array of C channels."""
    flat = x.reshape(-1, x.shape[-1])
    mean, sd = flat.mean(0), flat.std(0) + 1e-12
    return lambda y: (y - mean) / sd


def loglinear_readout(
    latents: np.ndarray,
    rng: np.random.Generator,
    n_neurons: int,
    min_hz: float,
    max_hz: float,
    squash: bool = False,
) -> Callable[[np.ndarray], np.ndarray]:
    """The read-out of :func:`loglinear_rates`, fixed on ``latents`` (K, T, L): a function of
    latents (..., L) -> log spikes per second (..., N), so latents of a perturbed run go through
    the unperturbed run's read-out."""
    to_z = _standardizer(latents)
    w = rng.normal(size=(latents.shape[-1], n_neurons))
    w /= np.linalg.norm(w, axis=0, keepdims=True)
    to_proj = _standardizer(to_z(latents) @ w)
    lo, hi = np.log(min_hz), np.log(max_hz)
    gain = rng.uniform(0.35, 0.5, n_neurons) * (hi - lo) / 2.0
    center = rng.uniform(lo + 2 * gain, hi - 2 * gain)

    def log_hz(x: np.ndarray) -> np.ndarray:
        proj = to_proj(to_z(x) @ w)
        return center + gain * (2.0 * np.tanh(proj / 2.0) if squash else proj)

    return log_hz


def loglinear_rates(
    latents: np.ndarray,
    rng: np.random.Generator,
    n_neurons: int,
    min_hz: float,
    max_hz: float,
    bin_ms: float,
    squash: bool = False,
) -> np.ndarray:
    """Rates in spikes per bin (K, T, N) from latents (K, T, L).

    Each neuron's log-rate is an affine map of the standardized latents (a random unit direction),
    its projection standardized, with gain and offset drawn so that about 95% of its values lie
    inside ``[log min_hz, log max_hz]``. ``squash`` bounds the projection softly to +-2
    (``2 tanh(p / 2)``), so heavy-tailed latents (for example the Rossler ``z`` excursions) keep
    every rate inside that range.
    """
    read = loglinear_readout(latents, rng, n_neurons, min_hz, max_hz, squash)
    return np.exp(read(latents)) * bin_ms / 1000.0


def pack(
    *,
    bin_ms: float,
    n_trials: Sequence[int],
    rates: np.ndarray,
    latents: np.ndarray,
    n_heldout: int,
    spike_rng: np.random.Generator,
    name: str,
    condition: Optional[np.ndarray] = None,
    ext_inputs: Optional[np.ndarray] = None,
    truth_inputs: Optional[np.ndarray] = None,
    extra: Optional[Dict[str, np.ndarray]] = None,
) -> DSIDData:
    """Draw Poisson spikes from ``rates`` and cut all per-trial arrays into train/valid/test.

    The neurons are exchangeable random read-outs, so the last ``n_heldout`` are the held-out ones
    (held-in neurons first, as in NLB files)."""
    n_neurons = rates.shape[-1]
    if not 0 < n_heldout < n_neurons:
        raise ValueError(f"n_heldout: expected 1..{n_neurons - 1}, got {n_heldout}")
    if len(n_trials) != 3 or min(n_trials) < 1 or sum(n_trials) != rates.shape[0]:
        raise ValueError(
            f"n_trials: expected 3 positive counts summing to {rates.shape[0]}, got {n_trials}"
        )
    spikes = spike_rng.poisson(rates).astype(np.int32)
    heldout = np.arange(n_neurons) >= n_neurons - n_heldout
    cut = lambda a, sl: None if a is None else a[sl]  # noqa: E731
    splits, start = {}, 0
    for split, k in zip(SPLITS, n_trials):
        sl = slice(start, start + int(k))
        splits[split] = SplitData(
            spikes=spikes[sl],
            truth_rates=rates[sl].astype(np.float32),
            truth_latents=latents[sl].astype(np.float32),
            condition=cut(condition, sl),
            ext_inputs=None if ext_inputs is None else ext_inputs[sl].astype(np.float32),
            truth_inputs=None if truth_inputs is None else truth_inputs[sl].astype(np.float32),
        )
        start += int(k)
    return DSIDData(
        bin_ms=float(bin_ms),
        area=np.zeros(n_neurons, np.int64),
        heldout=heldout,
        splits=splits,
        area_names=[name],
        extra=dict(extra or {}),
    )
