"""How much a multi-area model's communication changes from one fit to another of the same data
(other seeds): every edge's strength, delay and rank over the runs, and in how many runs it is
used at all. Which edges and delays the data pin down is what stays put across fits; what a single
fit's lag weights or trial bootstrap say is that fit's own spread."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np


def _nan_stats(x: np.ndarray) -> Dict[str, List]:
    """Median, min and max over the first axis, ignoring nan (nan where every run is nan)."""
    out = {}
    for key, fn in (("median", np.median), ("low", np.min), ("high", np.max)):
        vals = np.full(x.shape[1:], np.nan)
        for idx in np.ndindex(*x.shape[1:]):
            col = x[(slice(None),) + idx]
            col = col[np.isfinite(col)]
            if col.size:
                vals[idx] = fn(col)
        out[key] = [[None if not np.isfinite(v) else round(float(v), 5) for v in r] for r in vals]
    return out


def seed_spread(readouts: Sequence[Dict[str, np.ndarray]]) -> Dict[str, Any]:
    """Every edge over the runs'
    :func:`~dsid.evaluation.multiarea.summary.edge_readouts`: ``used`` (in how many runs its rank is
    above 0), ``strength`` (median, low, high over all runs), ``delay`` (over the runs that use
    it), ``ranks`` (each run's), ``runs`` (how many)."""
    if not readouts:
        raise ValueError("seed_spread: no runs")
    rank = np.stack([r["rank"] for r in readouts])
    delay = np.stack([r["delay_bins"] for r in readouts]).astype(float)
    delay[rank <= 0] = np.nan
    return {
        "runs": len(readouts),
        "used": (rank > 0).sum(0).tolist(),
        "strength": _nan_stats(np.stack([r["effectome"] for r in readouts])),
        "delay": _nan_stats(delay),
        "ranks": np.moveaxis(rank, 0, -1).tolist(),
    }


def spread_lines(spread: Dict[str, Any], names: Sequence[str]) -> List[str]:
    """Printed lines: one per edge that some run uses."""
    n = spread["runs"]
    lines = [
        f"across {n} fits of these data (this run and --with): strength median [min, max], "
        "delay median [min, max] over the fits that use the edge, each fit's rank:"
    ]
    s_, d_ = spread["strength"], spread["delay"]
    for s, row in enumerate(spread["used"]):
        for d, used in enumerate(row):
            if s == d or not used:
                continue
            delay = (
                f"delay {d_['median'][s][d]:.1f} [{d_['low'][s][d]:.1f}, {d_['high'][s][d]:.1f}]"
            )
            lines.append(
                f"  {names[s]} -> {names[d]}: used in {used} of {n}; strength "
                f"{s_['median'][s][d]:.4f} [{s_['low'][s][d]:.4f}, {s_['high'][s][d]:.4f}], "
                f"{delay}, ranks {' '.join(str(k) for k in spread['ranks'][s][d])}"
            )
    if len(lines) == 1:
        lines.append("  no fit uses any edge")
    return lines
