"""The report that ends ``dsid fit``: the model against the smoothing baseline (and the oracle), and
diagnostics in plain words."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

import pytorch_lightning as pl


class SelectTrace(pl.Callback):
    """Records ``(step, val/select)`` at every validation, for the report's diagnostics, and the
    optimizer steps taken."""

    def __init__(self):
        self.trace: List[tuple] = []
        self.steps = 0

    def on_train_end(self, trainer, module) -> None:
        self.steps = int(trainer.global_step)

    def on_validation_end(self, trainer, module) -> None:
        value = trainer.callback_metrics.get("val/select")
        if not trainer.sanity_checking and value is not None:
            self.trace.append((int(trainer.global_step), float(value)))


def beats_baseline(co_bps: Optional[float], baseline_co_bps: float) -> bool:
    """Whether a model's co-bps is above the smoothing baseline's (a missing or non-finite value
    is not): the one test behind the report's warning, its table row and its diagnostics."""
    return co_bps is not None and math.isfinite(co_bps) and co_bps > baseline_co_bps


def diagnostics(
    metrics: Dict[str, float],
    baseline_co_bps: float,
    trace: Sequence[tuple],
    train_seconds: Optional[float] = None,
    budget_seconds: Optional[float] = None,
) -> List[str]:
    """Plain-word findings: below the baseline, still improving at the end, overfitting; and, for a
    wall-clock budget (``budget_seconds``), whether early stopping ended training well inside it.
    Nothing here claims more than was checked: one fit is one start, so an early stop is not called
    convergence."""
    notes = []
    best_step = min(trace, key=lambda r: r[1])[0] if trace else None
    improving = bool(trace) and best_step >= 0.9 * trace[-1][0]
    stopped_early = bool(
        trace
        and not improving
        and budget_seconds
        and train_seconds is not None
        and train_seconds < 0.5 * budget_seconds
    )
    co = metrics.get("val/co_bps", float("nan"))
    if not beats_baseline(co, baseline_co_bps):
        if improving:
            advice = "give it more time (--budget)"
        elif stopped_early:
            advice = (
                "early stopping ended it with budget left, so more time alone will not help: try "
                "another start (--seed 1, 2, ...), since which optimum a fit reaches varies from "
                "seed to seed"
            )
        else:
            advice = "give it more time (--budget), try another start (--seed), or check the data"
        rel = "<" if co < baseline_co_bps else "vs"
        notes.append(
            f"below the smoothing baseline (co-bps {co:.4f} {rel} {baseline_co_bps:.4f}): the "
            f"model has not learnt more than smoothed spikes; {advice}"
        )
    if improving:
        notes.append(
            f"still improving at the end of the budget (best at step {best_step} of "
            f"{trace[-1][0]}): "
            "give more time (--budget) or a GPU"
        )
    train_co = metrics.get("train/co_bps", float("nan"))
    if (
        math.isfinite(train_co)
        and math.isfinite(co)
        and train_co > 0
        and train_co - co > max(0.05, 0.25 * train_co)
    ):
        notes.append(
            f"overfitting (co-bps train {train_co:.4f} vs validation {co:.4f}): more trials, or "
            "stronger regularisation (model.*.dropout, train.l2_scale)"
        )
    if not notes:
        notes.append("no problem found")
    if stopped_early:
        notes.append(
            f"early stopping ended the fit inside the budget: validation stopped improving at step "
            f"{best_step} and the fit ended after {train_seconds:.0f} s of {budget_seconds:.0f} s. "
            "This is one start, not a check of convergence: a fit from another seed (--seed) may "
            "reach a better optimum, and more trials would help"
        )
    return notes


def report_lines(result: Dict[str, Any]) -> List[str]:
    """The printed report of a fit result (see :func:`dsid.autofit.fit.fit`)."""
    m, b = result["metrics"], result["baseline"]
    lines = ["", f"dsid fit report: {result['data']}", "-" * 64]
    co, base = m.get("val/co_bps"), b["co_bps"]
    beats = beats_baseline(co, base)
    if not beats:
        lines.append(
            "  WARNING: this model is NOT better than smoothed spikes on the held-out neurons "
            "(co-bps below the smoothing baseline); see the diagnostics below for what to try"
        )

    def row(name: str, value: Optional[float], note: str = "") -> None:
        text = "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"
        lines.append(f"  {name:<28}{text:>10}  {note}")

    oracle = m.get("val/oracle_co_bps")
    row(
        "co-bps (valid)",
        co,
        "above the smoothing baseline" if beats else "NOT above the smoothing baseline",
    )
    row(
        "smoothing baseline co-bps",
        b["co_bps"],
        f"(kernel {b['kern_sd_ms']:g} ms, GLM L2 {b['alpha']:g})",
    )
    if oracle is not None:
        row(
            "oracle co-bps (true rates)",
            oracle,
            f"model = {co / oracle:.3f} x oracle" if oracle else "",
        )
    for key, name in (
        ("val/rate_r2", "rate R2 (valid)"),
        ("val/latent_r2", "latent R2 (valid)"),
        ("val/latent_r2_min", "  its worst latent dimension"),
        ("val/bps", "held-in bits/spike (valid)"),
    ):
        if key in m:
            row(name, m[key])
    if "forward_weight" in m:
        row(
            "forward prediction weight",
            m["forward_weight"],
            "x the model's + the rest x the mean rates (chosen on the valid trials)",
        )
    lines.append(
        f"  {'optimizer steps':<28}{result['steps']:>10}  "
        f"in {result['train_seconds']:.0f} s of training"
    )
    lines.append("diagnostics:")
    lines += [f"  - {n}" for n in result["diagnostics"]]
    lines.append(f"run directory: {result['run_dir']}")
    return lines
