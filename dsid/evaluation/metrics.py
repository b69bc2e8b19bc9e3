"""Metrics shared by every model (definitions in DESIGN.md)."""
from __future__ import annotations

import numpy as np
from nlb_tools.evaluation import bits_per_spike as _nlb_bits_per_spike


def bits_per_spike(rates: np.ndarray, spikes: np.ndarray) -> float:
    """nlb_tools' bits/spike of ``rates`` (trials, T, N, counts per bin) against ``spikes``."""
    rates = np.asarray(rates, dtype=np.float64).copy()
    spikes = np.asarray(spikes, dtype=np.float64)
    if spikes.size == 0 or np.nansum(spikes) == 0:
        return float("nan")
    return float(_nlb_bits_per_spike(rates, spikes))


def rate_r2(pred: np.ndarray, true: np.ndarray) -> float:
    """R2 of predicted vs true rates, pooled over trials and time, averaged over neurons."""
    p = np.asarray(pred, np.float64).reshape(-1, pred.shape[-1])
    t = np.asarray(true, np.float64).reshape(-1, true.shape[-1])
    ss_res = ((t - p) ** 2).sum(0)
    ss_tot = ((t - t.mean(0)) ** 2).sum(0)
    ok = ss_tot > 0
    return float(np.mean(1.0 - ss_res[ok] / ss_tot[ok])) if ok.any() else float("nan")


def fit_linear_map(x: np.ndarray, y: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """Least-squares (lightly ridged) affine map from x (S, D) to y (S, K); returns (D+1, K)."""
    xa = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
    reg = ridge * np.eye(xa.shape[1]) * max(float(np.trace(xa.T @ xa)) / xa.shape[1], 1e-12)
    reg[-1, -1] = 0.0
    return np.linalg.solve(xa.T @ xa + reg, xa.T @ y)


def apply_linear_map(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.ones((x.shape[0], 1))], axis=1) @ w


def latent_r2(factors_train: np.ndarray, latents_train: np.ndarray,
              factors_valid: np.ndarray, latents_valid: np.ndarray) -> float:
    """R2 of an affine map from inferred factors to true latents, fit on train, scored on valid.

    Arrays are (trials, T, D) / (trials, T, L); R2 is averaged over latent dimensions.
    """
    f_tr = factors_train.reshape(-1, factors_train.shape[-1])
    w = fit_linear_map(f_tr, latents_train.reshape(-1, latents_train.shape[-1]))
    pred = apply_linear_map(factors_valid.reshape(-1, factors_valid.shape[-1]), w)
    return rate_r2(pred, latents_valid.reshape(-1, latents_valid.shape[-1]))


def map_to_latents(factors_train, latents_train, factors):
    """Factors (..., D) mapped onto the latent space by the train-fit affine map (for plots)."""
    w = fit_linear_map(factors_train.reshape(-1, factors_train.shape[-1]),
                       latents_train.reshape(-1, latents_train.shape[-1]))
    return apply_linear_map(factors.reshape(-1, factors.shape[-1]), w).reshape(
        *factors.shape[:-1], latents_train.shape[-1])
