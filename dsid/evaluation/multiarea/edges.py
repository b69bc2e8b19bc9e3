"""Per-edge read-outs of a trained multi-area model beyond strength and delay: how many dimensions
each edge uses (its rank) and the range of lags it spreads its message over, and how well they match
a file's truth.

- **Rank.** An edge's drive on its destination is the destination generator's input weights times
  the edge's message, ``W_dst m_t``. Its rank is the number of principal dimensions of that drive
  (over the validation trials and bins) needed for :data:`RANK_VARIANCE` of its variance; an edge
  whose drive is below :data:`NEGLIGIBLE` of the strongest edge's has rank 0 (the model does not use
  it). At most the coupling's message size.
- **Lag range.** The central :data:`LAG_MASS` of an edge's learned lag weights (``delay`` coupling),
  lags ``[lo, hi]``: a narrow range is a delay the model commits to, a wide one a delay it spreads;
  the fixed lag of couplings without lag weights. It is the model's own kernel, not a confidence
  interval over data sets.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

RANK_VARIANCE = 0.9
NEGLIGIBLE = 0.01
LAG_MASS = 0.9


def edge_ranks(model, messages: np.ndarray) -> np.ndarray:
    """(A, A) rank of every edge's drive on its destination (see the module docstring); -1 where
    the model has no edge. Shape: messages (trials, T, M), the model's ``messages`` output."""
    A, index = model.n_areas, model.message_index()
    ranks, spectra = -np.ones((A, A), int), {}
    for e, (s, d) in enumerate(model.edges):
        w = model.areas[d].generator.ext_input_weight()[:, model.edge_columns[e]]
        m = messages[..., index[f"{s}_{d}"]].reshape(-1, w.shape[1])
        drive = (m - m.mean(0)) @ w.detach().cpu().numpy().T.astype(np.float64)
        spectra[s, d] = np.linalg.svd(drive, compute_uv=False) ** 2 / max(len(drive), 1)
    top = max((float(v.sum()) for v in spectra.values()), default=0.0)
    for (s, d), var in spectra.items():
        total = float(var.sum())
        if total <= NEGLIGIBLE**2 * top or total == 0.0:
            ranks[s, d] = 0
        else:
            ranks[s, d] = int(np.searchsorted(np.cumsum(var) / total, RANK_VARIANCE - 1e-9) + 1)
    return ranks


def lag_ranges(model) -> np.ndarray:
    """(A, A, 2) each edge's lag range ``[lo, hi]`` in bins (see the module docstring); -1 where the
    model has no edge."""
    out = -np.ones((model.n_areas, model.n_areas, 2), int)
    weights = getattr(model.coupling, "lag_weights", lambda: None)()
    delays = model.delays()
    for e, (s, d) in enumerate(model.edges):
        if weights is None:
            out[s, d] = int(round(float(delays[s, d])))
            continue
        cdf = np.cumsum(weights[e].detach().cpu().numpy().astype(np.float64))
        cdf /= cdf[-1]
        tail = (1.0 - LAG_MASS) / 2
        out[s, d] = [int(np.searchsorted(cdf, tail)), int(np.searchsorted(cdf, 1.0 - tail))]
    return out


def true_ranks(data) -> np.ndarray:
    """(A, A) the file's true edge ranks (its true messages' dimensions), -1 off-edge."""
    A = data.n_areas
    ranks = -np.ones((A, A), int)
    va = data.splits.get("valid")
    for key, m in (getattr(va, "truth_messages", None) or {}).items():
        s, d = (int(v) for v in key.split("_"))
        ranks[s, d] = 1 if np.ndim(m) == 2 else int(np.shape(m)[-1])
    return ranks


def edge_scores(ranks, lags, data) -> Dict[str, float]:
    """Against the file's truth, over its true edges: ``edge_rank_accuracy`` (the share whose
    rank is recovered; needs true messages), ``delay_coverage`` (the share whose true delay lies
    in the lag range) and ``lag_range_width`` (mean ``hi - lo``, bins). Empty without truth."""
    out: Dict[str, float] = {}
    truth = true_ranks(data)
    on = truth > 0
    if on.any() and ranks is not None:
        out["edge_rank_accuracy"] = float((np.asarray(ranks)[on] == truth[on]).mean())
    if data.delay_bins is not None and lags is not None:
        true_delay = np.asarray(data.delay_bins)
        on = true_delay >= 0
        np.fill_diagonal(on, False)
        if on.any():
            lo, hi = lags[..., 0][on], lags[..., 1][on]
            out["delay_coverage"] = float(((lo <= true_delay[on]) & (true_delay[on] <= hi)).mean())
            out["lag_range_width"] = float(np.where(lo >= 0, hi - lo, np.nan).mean())
    return out
