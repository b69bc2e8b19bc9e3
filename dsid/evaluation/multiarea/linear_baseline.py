"""A linear baseline for communication between areas: lagged reduced-rank regression on the
recordings, with no model to train, scored by the same recovery metrics as DSID's multi-area
models.

Each area's held-in counts are projected on the leading principal components of its smoothed
training activity (Gaussian kernel, ``KERNEL_MS``; the projections use the counts themselves, so
no bin borrows later spikes). For every ordered pair of areas (source s, destination d) a ridge
regression predicts d's components one bin ahead, ``y_d(t + 1)``, from d's own present and past
(``max_delay`` bins of it, so s is not credited with d's own history) plus s at one lag l in
0..max_delay, ``y_s(t - l)`` (the convention of the data's delays: a message leaves s at
``t - delay`` and moves d from t to t + 1). The lag whose source term explains the most variance
of the validation trials beyond d's own history is the edge's delay, that variance (a Granger-style
gain) its effectome entry, and the rank of the source term that predicts the validation trials
best (reduced-rank regression) its rank.

It sees only what a linear, lagged read of the recordings can: a yardstick for what the nonlinear
model's effectome, delays and ranks add (the ``dsid fit`` report and
``benchmarks/multiarea_benchmark.py`` print both). Ranks read through nonlinear neurons can exceed
the true rank of an edge.
"""

from __future__ import annotations

import warnings
from typing import Dict, NamedTuple, Tuple

import numpy as np

from dsid.evaluation.multiarea import metrics as mam
from dsid.evaluation.multiarea.edges import edge_scores
from dsid.evaluation.smoothing_baseline import smooth_spikes

KERNEL_MS = 20.0  # smoothing of the spikes
MAX_COMPONENTS = 8  # principal components per area
RIDGE = 1e-3  # relative to the predictors' mean variance


class LinearCommunication(NamedTuple):
    """(A, A) arrays, row source, column destination: ``effectome`` (validation variance explained
    beyond the destination's own history, 0 on the diagonal), ``delay_bins`` (the best lag, -1 on
    the diagonal) and ``rank`` (0 on the diagonal)."""

    effectome: np.ndarray
    delay_bins: np.ndarray
    rank: np.ndarray


def area_components(
    train: np.ndarray, valid: np.ndarray, bin_ms: float, n_max: int = MAX_COMPONENTS
) -> Tuple[np.ndarray, np.ndarray]:
    """One area's counts projected on the leading principal components of its smoothed training
    activity (z-scored by the training scores): the directions come from the smoothed spikes, the
    projections from the counts themselves, so no bin borrows spikes from later bins.

    Shape:
        train: (trials, T, N), valid: (trials', T, N) -> (trials, T, K), (trials', T, K)
    """
    flat = smooth_spikes(train, KERNEL_MS / bin_ms).reshape(-1, train.shape[-1])
    mean = flat.mean(0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    k = int(min(n_max, np.sum(s > 1e-9 * max(s[0], 1e-30))))
    basis = vt[:k].T
    tr = (np.asarray(train, np.float64) - mean) @ basis
    va = (np.asarray(valid, np.float64) - mean) @ basis
    scale = tr.reshape(-1, k).std(0) + 1e-12
    return tr / scale, va / scale


def _ridge(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ridge regression weights (with an intercept row last). Shape: (S, D), (S, K) -> (D+1, K)."""
    xa = np.concatenate([x, np.ones((x.shape[0], 1))], 1)
    reg = RIDGE * np.eye(xa.shape[1]) * max(np.trace(xa.T @ xa) / xa.shape[1], 1e-12)
    reg[-1, -1] = 0.0
    return np.linalg.solve(xa.T @ xa + reg, xa.T @ y)


def _explained(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Share of ``y``'s total variance that ``x @ w`` explains (may be negative)."""
    pred = np.concatenate([x, np.ones((x.shape[0], 1))], 1) @ w
    total = ((y - y.mean(0)) ** 2).sum()
    return float(1.0 - ((y - pred) ** 2).sum() / total) if total > 0 else 0.0


def _design(x: np.ndarray, lags: int, start: int) -> np.ndarray:
    """``x`` at the bins t - 0 .. t - ``lags`` side by side, for every t from ``start`` to the
    second-to-last bin, flattened over trials. Shape: (trials, T, K) -> (S, K * (lags + 1))."""
    t = np.arange(start, x.shape[1] - 1)
    return np.concatenate([x[:, t - k].reshape(-1, x.shape[-1]) for k in range(lags + 1)], 1)


def _ahead(x: np.ndarray, start: int) -> np.ndarray:
    """``x`` one bin ahead of :func:`_design`'s bins. Shape: (trials, T, K) -> (S, K)."""
    return x[:, start + 1 :].reshape(-1, x.shape[-1])


def _lagged(x: np.ndarray, lag: int, start: int) -> np.ndarray:
    """``x`` ``lag`` bins before each of :func:`_design`'s bins. Shape: (trials, T, K) -> (S, K)."""
    t = np.arange(start, x.shape[1] - 1)
    return x[:, t - lag].reshape(-1, x.shape[-1])


class _Destination(NamedTuple):
    """What a destination's regressions share, whatever the source: its own present and past
    (``own``: train, valid), its components one bin ahead (``ahead``: train, valid) and the
    validation variance its own history explains (``base``)."""

    own: Tuple[np.ndarray, np.ndarray]
    ahead: Tuple[np.ndarray, np.ndarray]
    base: float


def _destination(comps: Tuple[np.ndarray, np.ndarray], max_delay: int) -> _Destination:
    """The regressions' destination side of one area (``comps``: its train, valid components)."""
    own = tuple(_design(c, max_delay, max_delay) for c in comps)
    ahead = tuple(_ahead(c, max_delay) for c in comps)
    base = _explained(own[1], ahead[1], _ridge(own[0], ahead[0]))
    return _Destination(own, ahead, base)


def _edge(dest: _Destination, src, max_delay: int) -> Tuple[float, int, int]:
    """(gain, delay, rank) of one ordered pair; ``src``: the source's (train, valid) components.

    The destination one bin ahead is regressed on its own present and ``max_delay`` past bins
    (so the source is not credited with the destination's own history), with and without the
    source at one lag; the lag whose source term explains the most validation variance is the
    delay, that variance the gain, and the number of directions of its fitted contribution that
    predicts the validation trials best (reduced-rank regression, its rank chosen by
    cross-validation) the rank."""
    L = max_delay
    (d_tr, d_va), (y_tr, y_va) = dest.own, dest.ahead
    fits = []
    for lag in range(L + 1):
        x_tr = np.hstack([d_tr, _lagged(src[0], lag, L)])
        x_va = np.hstack([d_va, _lagged(src[1], lag, L)])
        w = _ridge(x_tr, y_tr)
        fits.append((_explained(x_va, y_va, w) - dest.base, lag, x_tr, x_va, w))
    gain, delay, x_tr, x_va, w = max(fits, key=lambda f: f[0])
    if gain <= 0:
        return 0.0, delay, 0
    k_d = d_tr.shape[1]
    w_src = w[k_d:-1]  # the source's contribution, reduced to its leading directions
    _, _, vt = np.linalg.svd(x_tr[:, k_d:] @ w_src, full_matrices=False)
    scores = []
    for r in range(1, w_src.shape[1] + 1):
        w_r = w.copy()
        w_r[k_d:-1] = w_src @ vt[:r].T @ vt[:r]
        scores.append(_explained(x_va, y_va, w_r))
    return gain, delay, int(np.argmax(scores)) + 1  # (the first of equal scores: the fewest)


def linear_communication(data, max_delay: int) -> LinearCommunication:
    """The lagged reduced-rank regression baseline on ``data`` (a multi-area
    :class:`~dsid.data.tensor_file.DSIDData`): held-in spikes of the train split fit, of the valid
    split score; lags 0..``max_delay`` bins."""
    area, heldin = np.asarray(data.area), ~np.asarray(data.heldout, bool)
    tr, va = data.splits["train"].spikes, data.splits["valid"].spikes
    if tr.shape[1] < max_delay + 3:
        raise ValueError(
            f"linear baseline: trials of {tr.shape[1]} bins are too short for lags up to "
            f"{max_delay} bins (at least max_delay + 3 bins)"
        )
    empty = [a for a in range(data.n_areas) if not ((area == a) & heldin).any()]
    if empty:
        raise ValueError(f"linear baseline: area(s) {empty} have no held-in neurons")
    comps: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
    for a in range(data.n_areas):
        cols = np.flatnonzero((area == a) & heldin)
        comps[a] = area_components(tr[..., cols], va[..., cols], data.bin_ms)
    n = data.n_areas
    dests = [_destination(comps[d], max_delay) for d in range(n)]
    eff, delay, rank = np.zeros((n, n)), -np.ones((n, n), np.int64), np.zeros((n, n), np.int64)
    for s in range(n):
        for d in range(n):
            if s != d:
                eff[s, d], delay[s, d], rank[s, d] = _edge(dests[d], comps[s], max_delay)
    return LinearCommunication(eff, delay, rank)


def linear_scores(found: LinearCommunication, data) -> Dict[str, float]:
    """The baseline's recovery against ``data``'s truth, under the names of the model's metrics
    (``effectome_cosine``, ``edge_auroc``, ``delay_error``, ``edge_rank_accuracy``); empty without
    truth."""
    out: Dict[str, float] = {}
    with warnings.catch_warnings():  # (undefined scores, e.g. AUROC with no non-edge: left out)
        warnings.simplefilter("ignore", RuntimeWarning)
        if data.effectome is not None:
            out["effectome_cosine"] = mam.effectome_cosine(found.effectome, data.effectome)
            out["edge_auroc"] = mam.edge_auroc(found.effectome, data.effectome)
        if data.delay_bins is not None:
            out["delay_error"] = mam.delay_error(found.delay_bins, data.delay_bins)
        ranks = edge_scores(found.rank, None, data)
        if "edge_rank_accuracy" in ranks:
            out["edge_rank_accuracy"] = ranks["edge_rank_accuracy"]
    return {k: float(v) for k, v in out.items() if np.isfinite(v)}
