"""Spike-smoothing + Poisson-GLM co-smoothing baseline for any DSID tensor file.

As nlb_tools' smoothing baseline: held-in spikes (of every area) are Gaussian-smoothed along time
and standardised; one Poisson GLM per held-out neuron maps them plus an intercept to that neuron's
counts on the train trials; held-out rates predicted for the evaluation split are scored with
co-bps.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy.linalg.blas import ssyrk

from dsid.data.tensor_file import DataFileError, DSIDData
from dsid.evaluation.metrics import bits_per_spike

KERN_SD_MS = (20.0, 40.0, 60.0, 100.0, 150.0)
ALPHAS = (1e-3, 1e-2, 1e-1)
RATE_FLOOR = 1e-9
REFRESH = 1e-3  # the Newton decrement below which a Hessian is reused for the next step
TRUNCATE = 4.0  # the kernel covers offsets |j| <= ceil(TRUNCATE * sd) bins


def smoothing_matrix(n_time: int, kern_sd_bins: float) -> np.ndarray:
    """(T, T) M, smoothed = M @ counts: Gaussian rows normalised to their mass inside the window."""
    if kern_sd_bins <= 0:
        return np.eye(n_time)
    d = np.arange(n_time)[:, None] - np.arange(n_time)[None, :]
    m = np.exp(-0.5 * (d / kern_sd_bins) ** 2) * (np.abs(d) <= np.ceil(TRUNCATE * kern_sd_bins))
    return m / m.sum(1, keepdims=True)


def smooth_spikes(spikes: np.ndarray, kern_sd_bins: float) -> np.ndarray:
    """Smooth (trials, T, N) counts along T with a symmetric Gaussian of sd ``kern_sd_bins``
    bins."""
    x = np.asarray(spikes, np.float64)
    trials, n_time, n = x.shape
    flat = x.transpose(1, 0, 2).reshape(n_time, -1)  # one matrix product for every trial
    return (
        (smoothing_matrix(n_time, kern_sd_bins) @ flat)
        .reshape(n_time, trials, n)
        .transpose(1, 0, 2)
    )


def _loss(eta, y, w, alpha):
    """Per-neuron mean Poisson NLL (up to a constant) + alpha/2 |w|^2 (the intercept, last row,
    free)."""
    return (np.exp(eta) - y * eta).mean(0) + 0.5 * alpha * (w[:-1] ** 2).sum(0)


def _newton(xa, x32, y, alpha, w, hdata=None, tol=1e-8, max_iter=50):
    """Damped Newton from ``w`` for all neurons at once; ``hdata`` (a data Hessian from a nearby
    point, e.g. the previous alpha's fit) serves the first step, and near the optimum (squared
    decrement below ``REFRESH``) the last Hessian is reused. Returns (w, last data Hessian)."""
    s, d = xa.shape
    reg = alpha * np.diag(np.r_[np.ones(d - 1), 0.0])
    eta = np.minimum(xa @ w, 30.0)
    loss, dec = _loss(eta, y, w, alpha), np.inf
    for it in range(max_iter):
        mu = np.exp(eta)
        grad = xa.T @ (mu - y) / s + reg @ w
        if hdata is None or (
            it > 0 and dec > REFRESH
        ):  # x' diag(mu_k) x / S per neuron by float32 syrk
            sq, hdata = np.sqrt(mu).astype(np.float32), np.empty((y.shape[1], d, d))
            for k in range(y.shape[1]):
                h = ssyrk(1.0 / s, (x32 * sq[:, k : k + 1]).T, trans=0)
                hdata[k] = np.triu(h) + np.triu(h, 1).T
        step = np.linalg.solve(hdata + reg + 1e-10 * np.eye(d), grad.T[..., None])[
            ..., 0
        ].T  # (D, K)
        dec = np.max((grad * step).sum(0))  # squared Newton decrement: ~2x the excess loss
        if dec < tol:
            break
        xstep, t = xa @ step, np.ones(y.shape[1])
        for _ in range(30):  # halve each neuron's step until its loss does not increase
            new_eta = np.minimum(eta - t * xstep, 30.0)
            new_loss = _loss(new_eta, y, w - t * step, alpha)
            bad = new_loss > loss + 1e-12
            if not bad.any():
                break
            t = np.where(bad, t / 2, t)
        w, eta, loss = w - t * step, new_eta, new_loss
    return w, hdata


def _design(x, y):
    """x with an intercept column, its float32 copy, and W with only the intercepts (log mean y)
    set."""
    xa = np.concatenate([x, np.ones((len(x), 1))], 1)
    w0 = np.zeros((xa.shape[1], y.shape[1]))
    w0[-1] = np.log(np.maximum(y.mean(0), RATE_FLOOR))
    return xa, xa.astype(np.float32), w0


def fit_poisson_glm(x: np.ndarray, y: np.ndarray, alpha: float, tol: float = 1e-8) -> np.ndarray:
    """Log-link Poisson GLMs for every column of ``y`` (S, K) from ``x`` (S, D) plus an intercept,
    with sklearn ``PoissonRegressor``'s objective (mean deviance / 2 + alpha/2 |w|^2, intercept
    free). Returns W (D + 1, K), intercept last."""
    y = np.asarray(y, np.float64)
    xa, x32, w0 = _design(x, y)
    return _newton(xa, x32, y, alpha, w0, tol=tol)[0]


def _predict(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.maximum(np.exp(np.minimum(x @ w[:-1] + w[-1], 30.0)), RATE_FLOOR)


def _features(data: DSIDData, spikes: np.ndarray, kern_sd_ms: float, mean=None, std=None):
    """Flattened (trials * T, n_heldin) smoothed held-in counts, standardised with (mean, std)."""
    sm = smooth_spikes(spikes[..., data.heldin], kern_sd_ms / data.bin_ms).reshape(
        -1, int(data.heldin.sum())
    )
    if mean is None:
        mean, std = sm.mean(0), sm.std(0)
        std = np.where(std > 0, std, 1.0)
    return (sm - mean) / std, mean, std


def _cv_choose(
    data: DSIDData,
    kerns: Sequence[float],
    alphas: Sequence[float],
    n_folds: int,
    cv_max_samples: int,
    seed: int,
):
    """(kern_sd_ms, alpha, table): the pair with the best out-of-fold co-bps over the train
    trials."""
    sp = data.splits["train"].spikes
    n_tr, n_time = sp.shape[:2]
    if n_tr < 2:
        raise DataFileError(
            data.path or "<DSIDData>", "train/spikes", ">= 2 trials to cross-validate", str(n_tr)
        )
    rng = np.random.default_rng(seed)
    folds = np.array_split(rng.permutation(n_tr), min(n_folds, n_tr))
    y = sp[..., data.heldout].astype(np.float64)
    table, warm = [], [None] * len(folds)
    for kern in kerns:
        x = _features(data, sp, kern)[0].reshape(n_tr, n_time, -1)
        preds = {a: np.empty(y.shape) for a in alphas}
        for i, fold in enumerate(folds):
            fit_trials = np.setdiff1d(np.arange(n_tr), fold)
            xf, yf = x[fit_trials].reshape(-1, x.shape[-1]), y[fit_trials].reshape(-1, y.shape[-1])
            if len(xf) > cv_max_samples:  # subsample training bins to keep the search fast
                rows = rng.choice(len(xf), cv_max_samples, replace=False)
                xf, yf = xf[rows], yf[rows]
            xa, x32, w = _design(xf, yf)
            w, hdata = (w if warm[i] is None else warm[i]), None
            for j, a in enumerate(
                sorted(alphas, reverse=True)
            ):  # warm starts: previous alpha / kernel
                w, hdata = _newton(xa, x32, yf, a, w, hdata, tol=1e-6)
                warm[i] = w if j == 0 else warm[i]
                preds[a][fold] = _predict(x[fold].reshape(-1, x.shape[-1]), w).reshape(
                    len(fold), n_time, -1
                )
        table += [(float(kern), float(a), bits_per_spike(preds[a], y)) for a in alphas]
    best = max(table, key=lambda r: -np.inf if np.isnan(r[2]) else r[2])
    return best[0], best[1], table


def smoothing_baseline(
    data: DSIDData,
    split: str = "valid",
    kern_sd_ms: Optional[float] = None,
    alpha: Optional[float] = None,
    n_folds: int = 3,
    cv_max_samples: int = 30_000,
    seed: int = 0,
) -> dict:
    """Co-smoothing baseline: fit on ``train``, predict held-out rates (spikes per bin) for
    ``split``.

    ``kern_sd_ms``/``alpha`` left as None are chosen from ``KERN_SD_MS``/``ALPHAS`` by
    ``n_folds``-fold cross-validation over the train trials only (pooled out-of-fold co-bps; each
    fold's GLMs are fit on at most ``cv_max_samples`` randomly subsampled train bins). The final
    GLMs use every train bin. Returns ``{"co_bps", "kern_sd_ms", "alpha", "rates", "cv"}``
    (``cv``: (kern_sd_ms, alpha, co-bps)).
    """
    where = data.path or "<DSIDData>"
    if not np.asarray(data.heldout).any():
        raise DataFileError(where, "neurons/heldout", "at least one held-out neuron", "none")
    for name in ("train", split):
        if name not in data.splits:
            raise DataFileError(
                where, f"{name}/spikes", f"a '{name}' split", f"splits {sorted(data.splits)}"
            )
    table = []
    if kern_sd_ms is None or alpha is None:
        kerns = KERN_SD_MS if kern_sd_ms is None else (kern_sd_ms,)
        kern_sd_ms, alpha, table = _cv_choose(
            data, kerns, ALPHAS if alpha is None else (alpha,), n_folds, cv_max_samples, seed
        )
    train, ev = data.splits["train"], data.splits[split]
    x_tr, mean, std = _features(data, train.spikes, kern_sd_ms)
    w = fit_poisson_glm(x_tr, train.spikes[..., data.heldout].reshape(len(x_tr), -1), alpha)
    rates = _predict(_features(data, ev.spikes, kern_sd_ms, mean, std)[0], w).reshape(
        ev.spikes.shape[:2] + (-1,)
    )
    return {
        "co_bps": bits_per_spike(rates, ev.spikes[..., data.heldout]),
        "kern_sd_ms": float(kern_sd_ms),
        "alpha": float(alpha),
        "rates": rates,
        "cv": table,
    }
