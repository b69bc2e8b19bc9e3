"""Metrics shared by every model.

- bits/spike: the Poisson log-likelihood of the rates minus that of each neuron's mean rate, in
  bits, per spike (the Neural Latents Benchmark's definition; co-bps when scored on held-out
  neurons).
- rate R2: R2 of inferred vs true rates, pooled over trials and time, averaged over neurons.
- latent R2: R2 of a linear map from inferred factors to true latents, fit on train, scored on
  valid.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

ZERO_RATE = 1e-9  # a predicted rate of exactly 0 is scored as this (as NLB does)


def poisson_nll(rates: np.ndarray, spikes: np.ndarray) -> float:
    """Summed Poisson negative log-likelihood over entries whose spike count is not NaN.
    Rates must be finite and >= 0 (exact zeros are scored as ``ZERO_RATE``)."""
    keep = ~np.isnan(spikes)
    r, n = rates[keep], spikes[keep]
    if np.isnan(r).any():
        raise ValueError("bits/spike: NaN rate predictions")
    if (r < 0).any():
        raise ValueError("bits/spike: negative rate predictions")
    r = np.where(r == 0, ZERO_RATE, r)
    return float(np.sum(r - n * np.log(r) + gammaln(n + 1.0)))


def bits_per_spike(rates: np.ndarray, spikes: np.ndarray) -> float:
    """Bits/spike of ``rates`` (trials, T, N; counts per bin) against ``spikes``: the Poisson
    log-likelihood gain over predicting each neuron's mean count, in bits, divided by the number of
    spikes (NaN spike entries are ignored; NaN when there are no spikes)."""
    rates = np.asarray(rates, dtype=np.float64)
    spikes = np.asarray(spikes, dtype=np.float64)
    if rates.shape != spikes.shape:
        raise ValueError(
            f"bits/spike: rates {rates.shape} and spikes {spikes.shape} differ in shape"
        )
    total = np.nansum(spikes)
    if spikes.size == 0 or total == 0:
        return float("nan")
    null = np.broadcast_to(
        np.nanmean(spikes, axis=tuple(range(spikes.ndim - 1)), keepdims=True), spikes.shape
    )
    return (poisson_nll(null, spikes) - poisson_nll(rates, spikes)) / total / np.log(2)


def r2_per_column(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """R2 of each last-axis column, pooled over the other axes (columns without variance left
    out)."""
    p = np.asarray(pred, np.float64).reshape(-1, pred.shape[-1])
    t = np.asarray(true, np.float64).reshape(-1, true.shape[-1])
    ss_res = ((t - p) ** 2).sum(0)
    ss_tot = ((t - t.mean(0)) ** 2).sum(0)
    ok = ss_tot > 0
    return 1.0 - ss_res[ok] / ss_tot[ok]


def rate_r2(pred: np.ndarray, true: np.ndarray) -> float:
    """R2 of predicted vs true rates, pooled over trials and time, averaged over neurons."""
    r2 = r2_per_column(pred, true)
    return float(np.mean(r2)) if r2.size else float("nan")


def fit_linear_map(x: np.ndarray, y: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """Least-squares (lightly ridged) affine map from x (S, D) to y (S, K); returns (D+1, K)."""
    xa = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
    reg = ridge * np.eye(xa.shape[1]) * max(float(np.trace(xa.T @ xa)) / xa.shape[1], 1e-12)
    reg[-1, -1] = 0.0
    return np.linalg.solve(xa.T @ xa + reg, xa.T @ y)


def apply_linear_map(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.ones((x.shape[0], 1))], axis=1) @ w


def latent_r2_per_dim(
    factors_train: np.ndarray,
    latents_train: np.ndarray,
    factors_valid: np.ndarray,
    latents_valid: np.ndarray,
) -> np.ndarray:
    """R2 of an affine map from inferred factors to true latents, fit on train, scored on valid, one
    value per latent dimension. Arrays are (trials, T, D) / (trials, T, L)."""
    f_tr = factors_train.reshape(-1, factors_train.shape[-1])
    w = fit_linear_map(f_tr, latents_train.reshape(-1, latents_train.shape[-1]))
    pred = apply_linear_map(factors_valid.reshape(-1, factors_valid.shape[-1]), w)
    return r2_per_column(pred, latents_valid.reshape(-1, latents_valid.shape[-1]))


def latent_r2(
    factors_train: np.ndarray,
    latents_train: np.ndarray,
    factors_valid: np.ndarray,
    latents_valid: np.ndarray,
) -> float:
    """:func:`latent_r2_per_dim` averaged over latent dimensions."""
    r2 = latent_r2_per_dim(factors_train, latents_train, factors_valid, latents_valid)
    return float(np.mean(r2)) if r2.size else float("nan")


def map_to_latents(factors_train, latents_train, factors):
    """Factors (..., D) mapped onto the latent space by the train-fit affine map (for plots)."""
    w = fit_linear_map(
        factors_train.reshape(-1, factors_train.shape[-1]),
        latents_train.reshape(-1, latents_train.shape[-1]),
    )
    return apply_linear_map(factors.reshape(-1, factors.shape[-1]), w).reshape(
        *factors.shape[:-1], latents_train.shape[-1]
    )


# inferred inputs may lead or lag the true input they stand for by a few bins (the controller can
# push the generator a little before or after the input's effect shows in the spikes)
INPUT_LAG_MS = 20.0


def lagged(x: np.ndarray, lags: int) -> np.ndarray:
    """Each bin with the ``lags`` bins before and after it (zeros beyond the trial's ends).

    Shape:
        x: (trials, T, D) -> (trials, T, D * (2 * lags + 1))
    """
    padded = np.pad(np.asarray(x, np.float64), ((0, 0), (lags, lags), (0, 0)))
    n = x.shape[1]
    return np.concatenate([padded[:, k : k + n] for k in range(2 * lags + 1)], axis=-1)


def input_r2_per_dim(
    inputs_train: np.ndarray,
    truth_train: np.ndarray,
    inputs_valid: np.ndarray,
    truth_valid: np.ndarray,
    bin_ms: float,
) -> np.ndarray:
    """R2 of the true unobserved inputs decoded from the inferred inputs: an affine map from each
    bin's inferred inputs and those of the bins within ``INPUT_LAG_MS`` around it, fit on train,
    scored on valid, one value per true input. Arrays are (trials, T, I) / (trials, T, U)."""
    lags = max(1, int(round(INPUT_LAG_MS / bin_ms)))
    return latent_r2_per_dim(
        lagged(inputs_train, lags), truth_train, lagged(inputs_valid, lags), truth_valid
    )
