"""A trained multi-area model's communication in one dictionary of plain lists (for reports and
JSON): every edge's strength, delay, lag range, rank and the bits it carries, the file's truth when
it has it, and the linear baseline's estimates beside them; and its printed lines."""

from __future__ import annotations

import math
import warnings
from typing import Any, Dict, List, Optional

import numpy as np

from dsid.data.tensor_file import DSIDData
from dsid.evaluation.inference import infer_split
from dsid.evaluation.multiarea.edge_evidence import edge_evidence
from dsid.evaluation.multiarea.edges import edge_ranks, lag_ranges, true_ranks
from dsid.evaluation.multiarea.linear_baseline import linear_communication, linear_scores
from dsid.evaluation.multiarea.metrics import edge_auroc

RECOVERY_KEYS = (
    ("val/effectome_cosine", "effectome cosine (vs truth)"),
    ("val/edge_auroc", "edge AUROC (vs truth)"),
    ("val/message_r2", "message R2 (vs truth)"),
    ("val/delay_error", "delay error, bins (vs truth)"),
    ("val/delay_coverage", "true delays in the lag range"),
    ("val/edge_rank_accuracy", "edge ranks recovered"),
    ("val/evidence_auroc", "edge AUROC of the bits carried"),
)


def communication(model, data: DSIDData) -> Optional[Dict[str, Any]]:
    """A model of interacting areas' communication as nested lists (None for a model without
    areas): the effectome (measured on the validation spikes; row source, column destination),
    delays in bins (-1: no edge), every edge's ``lag_range`` and ``rank``
    (:mod:`dsid.evaluation.multiarea.edges`) and the bits it carries with their interval
    (``evidence_bits``/``_low``/``_high``, :mod:`dsid.evaluation.multiarea.edge_evidence`); the
    file's truth when it has it, with ``scores["evidence_auroc"]`` (how well the bits carried rank
    the true edges above the rest); the linear baseline's estimates (``linear``: effectome,
    delays, ranks and, with truth, its recovery scores;
    :mod:`dsid.evaluation.multiarea.linear_baseline`, lags up to the coupling's ``max_delay``)."""
    if not hasattr(model, "effectome") or not hasattr(model, "delays"):
        return None
    spikes, ext = _validation_inputs(data)
    read = edge_readouts(model, data)
    evidence = edge_evidence(model, spikes, data.heldout, data.area, ext) if model.edges else None
    out = {
        "area_names": list(data.area_names or model.area_names),
        "effectome": np.round(read["effectome"], 5).tolist(),
        "delay_bins": np.round(read["delay_bins"], 2).tolist(),
        "lag_range": lag_ranges(model).tolist(),
        "rank": read["rank"].tolist() if model.edges else None,
        "scores": {},
    }
    if evidence is not None:
        for key in ("bits", "low", "high"):
            out[f"evidence_{key}"] = [[_plain(v) for v in row] for row in evidence[key]]
    if data.effectome is not None and data.delay_bins is not None:
        out["true_effectome"] = np.round(np.asarray(data.effectome, float), 5).tolist()
        out["true_delay_bins"] = np.asarray(data.delay_bins, int).tolist()
        if (true_ranks(data) > 0).any():
            out["true_rank"] = true_ranks(data).tolist()
        if evidence is not None and np.isfinite(evidence["bits"]).any():
            with warnings.catch_warnings():  # undefined without a non-edge: left out
                warnings.simplefilter("ignore", RuntimeWarning)
                auroc = edge_auroc(np.nan_to_num(evidence["bits"], nan=0.0), data.effectome)
            if np.isfinite(auroc):
                out["scores"]["evidence_auroc"] = float(auroc)
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


def _validation_inputs(data: DSIDData):
    """The validation spikes (trials, T, N) and known external inputs (trials, T, E) or None."""
    va = data.splits["valid"]
    spikes = np.asarray(va.spikes)
    ext = va.ext_inputs[:, : spikes.shape[1]] if va.ext_inputs is not None else None
    return spikes, ext


def edge_readouts(model, data: DSIDData) -> Dict[str, np.ndarray]:
    """A multi-area model's effectome, delays (bins) and edge ranks on the validation trials
    (messages of the posterior means, no sampling), each (A, A); rank 0: an edge the model does
    not use (all 0 for a model without edges)."""
    spikes, ext = _validation_inputs(data)
    ranks = np.zeros((model.n_areas,) * 2, int)
    if model.edges:
        ranks = edge_ranks(model, infer_split(model, spikes, n_samples=0, ext=ext)["messages"])
    return {
        "effectome": np.asarray(model.effectome(spikes), float),
        "delay_bins": np.asarray(model.delays(), float),
        "rank": np.asarray(ranks, int),
    }


def _plain(v: float) -> Optional[float]:
    """A float for JSON: rounded, None for nan."""
    return round(float(v), 6) if np.isfinite(v) else None


def fmt(x, nd: int = 4) -> str:
    """``x`` with ``nd`` decimals, ``n/a`` for None and non-finite values."""
    return f"{x:.{nd}f}" if x is not None and math.isfinite(x) else "n/a"


def communication_lines(comm: Optional[Dict[str, Any]], metrics: Dict[str, Any]) -> List[str]:
    """Printed lines for :func:`communication`'s dictionary: one per edge (strength, delay, lag
    range, rank; the truth and the linear baseline's beside them) and the recovery scores of
    ``metrics`` (``val/...``) next to the baseline's."""
    lines: List[str] = []
    if comm:
        names = comm["area_names"]
        true_delay = comm.get("true_delay_bins")
        linear_delays = (comm.get("linear") or {}).get("delay_bins")
        linear_ranks = (comm.get("linear") or {}).get("rank")
        true_rank, lags, ranks = comm.get("true_rank"), comm.get("lag_range"), comm.get("rank")
        bits = comm.get("evidence_bits")
        lines.append(
            "communication (edge source -> destination: strength, delay in bins with the lags "
            "holding 90% of its lag weights, rank, the destination's held-out bits/spike lost "
            "when the edge is cut with a 95% trial-bootstrap interval"
            + ("; the file's truth, - where it has no such edge):" if true_delay else "):")
        )
        for s, row in enumerate(comm["effectome"]):
            for d, strength in enumerate(row):
                delay = comm["delay_bins"][s][d]
                if s != d and delay >= 0:
                    what = f"{strength:.4f}, delay {delay:.1f}"
                    if lags:
                        what += f" (lags {lags[s][d][0]}-{lags[s][d][1]})"
                    if ranks:
                        what += f", rank {ranks[s][d]}"
                    if bits and bits[s][d] is not None:
                        what += (
                            f", carries {bits[s][d]:.4f} bits/spike "
                            f"[{comm['evidence_low'][s][d]:.4f}, {comm['evidence_high'][s][d]:.4f}]"
                        )
                    if true_delay:
                        t = true_delay[s][d]
                        truth = f"delay {t}" if t >= 0 else "-"
                        if t >= 0 and true_rank and true_rank[s][d] > 0:
                            truth += f", rank {true_rank[s][d]}"
                        what += f" (true {truth})"
                    if linear_delays:
                        what += f"; linear baseline: delay {linear_delays[s][d]}, rank "
                        what += f"{linear_ranks[s][d]}"
                    lines.append(f"  {names[s]} -> {names[d]}: {what}")
    linear = (comm or {}).get("linear") or {}
    if "error" in linear:
        lines.append(f"  linear baseline not computed: {linear['error']}")
    scores = linear.get("scores") or {}
    metrics = {**metrics, **{f"val/{k}": v for k, v in ((comm or {}).get("scores") or {}).items()}}
    if any(key in metrics for key, _ in RECOVERY_KEYS):
        lines.append(f"  {'recovery':<30}{'model':>8}{'linear baseline':>17}")
    for key, name in RECOVERY_KEYS:
        if key in metrics:
            base = scores.get(key.split("/", 1)[1])
            lines.append(
                f"  {name:<30}{fmt(metrics[key], 3):>8}"
                + (f"{fmt(base, 3):>17}" if base is not None else "")
            )
    return lines
