"""The multi-area part of the ``dsid fit`` report: each area against the smoothing baseline, then
the inferred communication and its recovery (:mod:`dsid.evaluation.multiarea.summary`)."""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from dsid.data.tensor_file import DSIDData
from dsid.evaluation.multiarea.metrics import per_area_co_bps
from dsid.evaluation.multiarea.summary import communication_lines, fmt


def area_results(
    data: DSIDData, metrics: Dict[str, Any], baseline_rates: np.ndarray
) -> List[Dict[str, Any]]:
    """One row per area: its name, held-in and held-out neurons, the model's co-bps on the
    validation split (``val/co_bps_area{a}``), the smoothing baseline's on the same neurons and,
    with truth, the model's rate R2.

    Shape:
        baseline_rates: (trials, T, N_heldout) the baseline's held-out rates of the valid split
    """
    area, heldout = np.asarray(data.area), np.asarray(data.heldout, bool)
    spikes = np.asarray(data.splits["valid"].spikes)[..., heldout]
    base = per_area_co_bps(baseline_rates, spikes, np.ones(int(heldout.sum()), bool), area[heldout])
    names = data.area_names or [f"A{a}" for a in range(data.n_areas)]
    rows = []
    for a in range(data.n_areas):
        rows.append(
            {
                "area": names[a],
                "heldin": int(((area == a) & ~heldout).sum()),
                "heldout": int(((area == a) & heldout).sum()),
                "co_bps": metrics.get(f"val/co_bps_area{a}"),
                "baseline_co_bps": float(base[a]) if a < len(base) else float("nan"),
                "rate_r2": metrics.get(f"val/rate_r2_area{a}"),
            }
        )
    return rows


def area_lines(result: Dict[str, Any]) -> List[str]:
    """The printed per-area and communication part of a fit report (nothing for one area)."""
    rows = result.get("areas") or []
    if not rows:
        return []
    lines = [
        "per area (valid):",
        f"  {'area':<12}{'neurons':>10}{'co-bps':>9}{'baseline':>10}{'rate R2':>9}",
    ]
    for r in rows:
        beats = r["co_bps"] is not None and r["co_bps"] > r["baseline_co_bps"]
        lines.append(
            f"  {r['area']:<12}{r['heldin']:>5}+{r['heldout']:<4}{fmt(r['co_bps']):>9}"
            f"{fmt(r['baseline_co_bps']):>10}{fmt(r['rate_r2'], 3):>9}"
            + ("" if beats else "  NOT above the baseline")
        )
    lines += communication_lines(result.get("communication"), result.get("metrics", {}))
    return lines
