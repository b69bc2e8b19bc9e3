"""The multi-area part of the ``dsid fit`` report: each area against the smoothing baseline, the
inferred communication (every edge's strength and delay), and its recovery when the file has the
truth."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

import numpy as np

from dsid.data.tensor_file import DSIDData
from dsid.evaluation.multiarea.linear_baseline import linear_communication, linear_scores
from dsid.evaluation.multiarea.metrics import per_area_co_bps

RECOVERY_KEYS = (
    ("val/effectome_cosine", "effectome cosine (vs truth)"),
    ("val/edge_auroc", "edge AUROC (vs truth)"),
    ("val/message_r2", "message R2 (vs truth)"),
    ("val/delay_error", "delay error, bins (vs truth)"),
)


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


def communication(model, data: DSIDData) -> Optional[Dict[str, Any]]:
    """The inferred effectome (measured on the validation spikes; row source, column destination)
    and delays in bins (-1: no edge) of a model of interacting areas, as nested lists, with the
    file's true ones when it has them and the linear baseline's (``linear``: effectome, delays,
    ranks and, with truth, its recovery scores; :mod:`dsid.evaluation.multiarea.linear_baseline`,
    lags up to the coupling's ``max_delay``); None for a model without areas."""
    if not hasattr(model, "effectome") or not hasattr(model, "delays"):
        return None
    spikes = np.asarray(data.splits["valid"].spikes)
    out = {
        "area_names": list(data.area_names or model.area_names),
        "effectome": np.round(np.asarray(model.effectome(spikes), float), 5).tolist(),
        "delay_bins": np.round(np.asarray(model.delays(), float), 2).tolist(),
    }
    if data.effectome is not None and data.delay_bins is not None:
        out["true_effectome"] = np.round(np.asarray(data.effectome, float), 5).tolist()
        out["true_delay_bins"] = np.asarray(data.delay_bins, int).tolist()
    try:
        linear = linear_communication(data, int(getattr(model.coupling, "max_delay", 0)))
    except ValueError as err:  # data it cannot read (too short, an area without held-in neurons)
        out["linear"] = {"error": str(err)}
        return out
    out["linear"] = {
        "effectome": np.round(linear.effectome, 6).tolist(),
        "delay_bins": linear.delay_bins.tolist(),
        "rank": linear.rank.tolist(),
        "scores": linear_scores(linear, data),
    }
    return out


def _num(x, nd: int = 4) -> str:
    return f"{x:.{nd}f}" if x is not None and math.isfinite(x) else "n/a"


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
            f"  {r['area']:<12}{r['heldin']:>5}+{r['heldout']:<4}{_num(r['co_bps']):>9}"
            f"{_num(r['baseline_co_bps']):>10}{_num(r['rate_r2'], 3):>9}"
            + ("" if beats else "  NOT above the baseline")
        )
    comm = result.get("communication")
    if comm:
        names = comm["area_names"]
        true_delay = comm.get("true_delay_bins")
        linear_delays = (comm.get("linear") or {}).get("delay_bins")
        linear_ranks = (comm.get("linear") or {}).get("rank")
        lines.append(
            "communication (edge source -> destination: strength, delay in bins"
            + ("; the file's true delay, - where it has no such edge):" if true_delay else "):")
        )
        for s, row in enumerate(comm["effectome"]):
            for d, strength in enumerate(row):
                delay = comm["delay_bins"][s][d]
                if s != d and delay >= 0:
                    truth = ""
                    if true_delay:
                        t = true_delay[s][d]
                        truth = f" (true {t})" if t >= 0 else " (true -)"
                    lin = ""
                    if linear_delays:
                        lin = f"; linear baseline: delay {linear_delays[s][d]}, rank "
                        lin += f"{linear_ranks[s][d]}"
                    lines.append(
                        f"  {names[s]} -> {names[d]}: {strength:.4f}, delay {delay:.1f}{truth}{lin}"
                    )
    m = result.get("metrics", {})
    linear = (comm or {}).get("linear") or {}
    if "error" in linear:
        lines.append(f"  linear baseline not computed: {linear['error']}")
    scores = linear.get("scores") or {}
    if any(key in m for key, _ in RECOVERY_KEYS):
        lines.append(f"  {'recovery':<30}{'model':>8}{'linear baseline':>17}")
    for key, name in RECOVERY_KEYS:
        if key in m:
            base = scores.get(key.split("/", 1)[1])
            lines.append(
                f"  {name:<30}{_num(m[key], 3):>8}"
                + (f"{_num(base, 3):>17}" if base is not None else "")
            )
    return lines
