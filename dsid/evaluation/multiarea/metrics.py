"""Ground-truth recovery metrics for multi-area models (definitions in README.md, "Metrics").

Area-by-area matrices are (A, A) with row = source, column = destination; the diagonal is ignored.
``rate_r2`` and ``bits_per_spike`` come from :mod:`dsid.evaluation.metrics` (shared definitions).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import roc_auc_score

from dsid.evaluation.metrics import apply_linear_map, bits_per_spike, fit_linear_map, rate_r2

__all__ = [
    "effectome_cosine",
    "edge_auroc",
    "message_r2",
    "delay_error",
    "directed_cycles",
    "cycle_delay_error",
    "per_area_rate_r2",
    "per_area_co_bps",
    "rate_r2",
    "off_diagonal",
]


def _square(name: str, m) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(
            f"{name}: expected an (A, A) matrix (row src, column dst), got shape {m.shape}"
        )
    return m


def off_diagonal(m) -> np.ndarray:
    """The off-diagonal entries of an (A, A) matrix, row-major, as a vector of A*(A-1)."""
    m = _square("matrix", m)
    return m[~np.eye(m.shape[0], dtype=bool)]


def _pair(inferred, true, names=("inferred", "true")):
    a, b = _square(names[0], inferred), _square(names[1], true)
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} {a.shape} and {names[1]} {b.shape}: expected the same (A, A) shape"
        )
    return a, b


def effectome_cosine(inferred, true) -> float:
    """Cosine similarity of the off-diagonal entries of the inferred and true effectomes.

    Returns nan (with a warning) when either off-diagonal part is all zero.
    """
    a, b = (off_diagonal(m) for m in _pair(inferred, true))
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        warnings.warn(
            "effectome_cosine: an effectome has no off-diagonal weight; returning nan",
            RuntimeWarning,
        )
        return float("nan")
    return float(a @ b / (na * nb))


def edge_auroc(inferred_strength, true_effectome) -> float:
    """AUROC of off-diagonal inferred strengths as a detector of true edges (``true != 0``).

    Returns nan with a warning when the true effectome has only edges or only non-edges off the
    diagonal.
    """
    s, t = (
        off_diagonal(m)
        for m in _pair(inferred_strength, true_effectome, ("inferred_strength", "true_effectome"))
    )
    labels = t != 0
    if labels.all() or not labels.any():
        warnings.warn(
            "edge_auroc: the true effectome has only one class (all edges or no edges) off the "
            "diagonal; AUROC undefined, returning nan",
            RuntimeWarning,
        )
        return float("nan")
    if not np.isfinite(s).all():
        raise ValueError("edge_auroc: inferred_strength has non-finite off-diagonal entries")
    return float(roc_auc_score(labels, s))


def _flat(name: str, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise ValueError(f"{name}: expected (trials, T, k), got shape {x.shape}")
    return x.reshape(-1, x.shape[-1])


def message_r2(
    inferred_train, true_train, inferred_valid, true_valid, weighting: str = "uniform"
) -> float:
    """R2 of an affine decode of the true message from the inferred one, fit on train, scored on
    valid.

    Arrays are (trials, T, k_inferred) / (trials, T, k_true) (or (trials, T) for k = 1), pooled over
    trials and time. The R2 of each true-message dimension (against its valid mean) is averaged:
    ``weighting="uniform"`` (default) a plain mean over dimensions (constant ones skipped, as
    :func:`rate_r2`); ``"variance"`` weights them by their valid variance
    (= 1 - total SSE / total SS).
    """
    xi, yt = _flat("inferred_train", inferred_train), _flat("true_train", true_train)
    xv, yv = _flat("inferred_valid", inferred_valid), _flat("true_valid", true_valid)
    if xi.shape[0] != yt.shape[0] or xv.shape[0] != yv.shape[0]:
        raise ValueError(
            f"message_r2: inferred and true must share (trials, T): train {xi.shape[0]} vs "
            f"{yt.shape[0]} samples, valid {xv.shape[0]} vs {yv.shape[0]}"
        )
    if xi.shape[1] != xv.shape[1] or yt.shape[1] != yv.shape[1]:
        raise ValueError("message_r2: train and valid must have the same message dimensions")
    pred = apply_linear_map(xv, fit_linear_map(xi, yt))
    if weighting == "uniform":
        return rate_r2(pred, yv)
    if weighting == "variance":
        ss_tot = ((yv - yv.mean(0)) ** 2).sum()
        return float(1 - ((yv - pred) ** 2).sum() / ss_tot) if ss_tot > 0 else float("nan")
    raise ValueError(f"message_r2: weighting must be 'uniform' or 'variance', got {weighting!r}")


def delay_error(inferred_delays, true_delays) -> float:
    """Mean absolute error (bins) of the inferred delays over the true edges (``true_delays >= 0``).

    Inferred delays are taken as given (a value of -1 at a true edge counts as such); nan if no true
    edge.
    """
    inf, tru = _pair(inferred_delays, true_delays, ("inferred_delays", "true_delays"))
    mask = tru >= 0
    np.fill_diagonal(mask, False)
    if not mask.any():
        warnings.warn(
            "delay_error: no true edges (true_delays >= 0); returning nan", RuntimeWarning
        )
        return float("nan")
    return float(np.abs(inf[mask] - tru[mask]).mean())


def directed_cycles(edges) -> list:
    """Every simple directed cycle of the graph whose edges are the True off-diagonal entries of the
    (A, A) bool matrix ``edges`` (row source, column destination); each cycle is its list of areas,
    starting at its smallest one."""
    edges = _square("edges", edges).astype(bool)
    n, cycles = edges.shape[0], []

    def walk(start, node, path):
        for nxt in np.flatnonzero(edges[node]):
            if nxt == start and len(path) > 1:
                cycles.append(list(path))
            elif nxt > start and nxt not in path:
                walk(start, nxt, path + [int(nxt)])

    for start in range(n):
        walk(start, start, [start])
    return cycles


def cycle_delay_error(inferred_delays, true_delays) -> float:
    """Mean absolute error (bins) of the total delay around each directed cycle of the true graph.

    Where activity is predictable, a model may represent an area's latents shifted in time (a linear
    read-out absorbs the shift), which adds the shift to the area's outgoing delays and subtracts it
    from its incoming ones; such shifts cancel around a cycle, so cycle totals stay identifiable
    when single delays are not. nan (with a warning) when the true graph has no cycle.
    """
    inf, tru = _pair(inferred_delays, true_delays, ("inferred_delays", "true_delays"))
    mask = tru >= 0
    np.fill_diagonal(mask, False)
    cycles = directed_cycles(mask)
    if not cycles:
        warnings.warn(
            "cycle_delay_error: the true graph has no directed cycle; returning nan", RuntimeWarning
        )
        return float("nan")
    total = lambda m, c: sum(m[a, b] for a, b in zip(c, c[1:] + c[:1]))  # noqa: E731
    return float(np.mean([abs(total(inf, c) - total(tru, c)) for c in cycles]))


def _areas(area, n: int) -> np.ndarray:
    area = np.asarray(area)
    if area.shape != (n,) or not np.issubdtype(area.dtype, np.integer):
        raise ValueError(
            f"area: expected ({n},) integer area index per neuron, got {area.dtype} {area.shape}"
        )
    return area


def per_area_rate_r2(inferred_rates, true_rates, area) -> np.ndarray:
    """:func:`rate_r2` over each area's neurons; ``area`` (N,) ints; returns (A,) (nan for an empty
    area)."""
    inferred_rates, true_rates = np.asarray(inferred_rates), np.asarray(true_rates)
    if inferred_rates.shape != true_rates.shape:
        raise ValueError(
            f"per_area_rate_r2: shapes differ: {inferred_rates.shape} vs {true_rates.shape}"
        )
    area = _areas(area, true_rates.shape[-1])
    return np.array(
        [
            rate_r2(inferred_rates[..., area == a], true_rates[..., area == a])
            if (area == a).any()
            else np.nan
            for a in range(int(area.max()) + 1)
        ]
    )


def per_area_co_bps(rates, spikes, heldout, area) -> np.ndarray:
    """co-bps (nlb_tools bits/spike on held-out neurons) of each area; returns (A,).

    ``rates`` (trials, T, N) predicted counts per bin and ``spikes`` (trials, T, N) for all neurons
    (or the same arrays restricted to held-out neurons, with ``heldout`` all True); ``heldout`` (N,)
    bool, ``area`` (N,) ints. nan for an area without held-out neurons or without held-out spikes.
    """
    rates, spikes = np.asarray(rates), np.asarray(spikes)
    if rates.shape != spikes.shape or rates.ndim != 3:
        raise ValueError(
            f"per_area_co_bps: rates {rates.shape} and spikes {spikes.shape}: expected the same "
            "(trials, T, N) shape"
        )
    n = spikes.shape[-1]
    heldout = np.asarray(heldout)
    if heldout.shape != (n,) or heldout.dtype != bool:
        raise ValueError(
            f"heldout: expected a ({n},) bool array, got {heldout.dtype} {heldout.shape}"
        )
    area = _areas(area, n)
    out = []
    for a in range(int(area.max()) + 1):
        m = heldout & (area == a)
        out.append(bits_per_spike(rates[..., m], spikes[..., m]) if m.any() else np.nan)
    return np.array(out, dtype=np.float64)
