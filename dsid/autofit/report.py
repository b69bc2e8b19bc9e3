"""The report that ends ``dsid fit``: the model against the smoothing baseline (and the oracle), and
diagnostics in plain words."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytorch_lightning as pl

from dsid.autofit.all_neurons import all_neurons_lines
from dsid.autofit.area_report import area_lines


class SelectTrace(pl.Callback):
    """Records ``(step, val/select, seconds)`` at every validation (seconds of training so far),
    for the report's diagnostics and the choice between starts, and the optimizer steps taken. The
    trace travels in checkpoints, so a resumed start keeps what it recorded before."""

    def __init__(self):
        self.trace: List[tuple] = []
        self.steps = 0
        self._start = time.perf_counter()
        self.resumed_seconds = 0.0  # training seconds recorded before a resume

    def state_dict(self) -> Dict[str, Any]:
        return {"trace": [list(r) for r in self.trace]}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.trace = [tuple(r) for r in state_dict.get("trace", [])]
        self.resumed_seconds = self.seconds()

    def on_train_start(self, trainer, module) -> None:
        self._start = time.perf_counter()

    def on_train_end(self, trainer, module) -> None:
        self.steps = int(trainer.global_step)

    def on_validation_end(self, trainer, module) -> None:
        value = trainer.callback_metrics.get("val/select")
        if not trainer.sanity_checking and value is not None:
            seconds = self.resumed_seconds + time.perf_counter() - self._start
            self.trace.append((int(trainer.global_step), float(value), seconds))

    def best(self) -> tuple:
        """``(step, val/select, seconds)`` of the best finite validation (NaN select if none)."""
        finite = [r for r in self.trace if math.isfinite(r[1])]
        return min(finite, key=lambda r: r[1]) if finite else (0, float("nan"), 0.0)

    def seconds(self) -> float:
        """Training seconds recorded so far (the last validation's)."""
        return float(self.trace[-1][2]) if self.trace else 0.0


def beats_baseline(co_bps: Optional[float], baseline_co_bps: float) -> bool:
    """Whether a model's co-bps is above the smoothing baseline's and above 0, the mean rates' (a
    missing or non-finite value is not): the one test behind the report's warning, its table row
    and its diagnostics. On data without structure the baseline itself falls below 0; a model a
    little above it is still no better than each neuron's average rate."""
    return co_bps is not None and math.isfinite(co_bps) and co_bps > max(baseline_co_bps, 0.0)


def shortfall(co_bps: Optional[float], baseline_co_bps: float) -> str:
    """What a model that does not :func:`beats_baseline` falls short of, in words."""
    co = float("nan") if co_bps is None else co_bps
    if math.isfinite(co) and baseline_co_bps < co <= 0:
        return (
            f"no better than the mean rates (co-bps {co:.4f} <= 0, the smoothing baseline "
            f"{baseline_co_bps:.4f}): the model has not learnt more than each neuron's average rate"
        )
    rel = "<" if co < baseline_co_bps else "vs"
    return (
        f"below the smoothing baseline (co-bps {co:.4f} {rel} {baseline_co_bps:.4f}): the model "
        "has not learnt more than smoothed spikes"
    )


#: "still improving": the last quarter of a start's steps gained at least this fraction of all it
#: learnt beyond the mean rates (a best validation in the last bins that gains less is a flat curve)
IMPROVING_GAIN = 0.02


def still_improving(trace: Sequence[tuple], mean_rates_select: Optional[float] = None) -> bool:
    """Whether a start's validation trace ``(step, val/select, ...)`` was still improving when it
    ended: its best validation lies in the last 10% of its steps and, when ``mean_rates_select``
    (the mean rates' score) is given, its last quarter of steps gained at least
    :data:`IMPROVING_GAIN` of what it learnt beyond the mean rates."""
    finite = [r for r in trace if math.isfinite(r[1])]
    if not finite:
        return False
    best = min(finite, key=lambda r: r[1])
    last = finite[-1][0]
    if best[0] < 0.9 * last:
        return False
    if mean_rates_select is None or not math.isfinite(mean_rates_select):
        return True
    before = [r[1] for r in finite if r[0] <= 0.75 * last]
    learnt = mean_rates_select - best[1]
    if not before or learnt <= 0:
        return True
    return min(before) - best[1] >= IMPROVING_GAIN * learnt


def diagnostics(
    metrics: Dict[str, float],
    baseline_co_bps: float,
    trace: Sequence[tuple],
    verdict=None,
    mean_rates_select: Optional[float] = None,
    steps: Optional[tuple] = None,
) -> List[str]:
    """Plain-word findings about the kept start: below the baseline, still improving at the end
    (:func:`still_improving`), overfitting; then how the fit ended (``verdict``, a
    :class:`~dsid.autofit.starts.Verdict`): convergence is claimed only when starts from different
    seeds agreed and the kept one was no longer improving. ``steps`` ``(taken, planned)``: a
    wall-clock budget that bought less than half the steps planned from the timed steps is said
    (the machine was busier or slower than when it was timed)."""
    notes = []
    best_step = min(trace, key=lambda r: r[1])[0] if trace else None
    improving = still_improving(trace, mean_rates_select)
    co = metrics.get("val/co_bps", float("nan"))
    if not beats_baseline(co, baseline_co_bps):
        if improving:
            advice = "give it more time (--budget)"
        elif verdict is not None and not verdict.converged:
            advice = (
                "the budget ended before a start got further: give it more time (--budget), so "
                "that more starts can be tried, or check the data"
            )
        else:
            advice = "give it more time (--budget), or check the data"
        notes.append(f"{shortfall(co, baseline_co_bps)}; {advice}")
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
    if steps is not None and steps[1] and steps[0] < 0.5 * steps[1]:
        notes.append(
            f"only {steps[0]} optimizer steps of the ~{steps[1]} planned: the machine was busier "
            "or slower than when a step was timed; give it more time (--budget) or fewer other jobs"
        )
    if not notes:
        notes.append("no problem found")
    if verdict is not None and verdict.converged and improving:
        notes.append(
            "starts from different seeds reached about the same optimum, but the kept one was "
            "still improving: a longer budget may improve this model"
        )
    elif verdict is not None:
        notes.append(verdict.reason)
    return notes


def shown_path(path) -> str:
    """``path`` as printed: relative to the working directory when inside it (a log or a saved
    notebook then holds no path of the machine it ran on), absolute otherwise."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)


def report_lines(result: Dict[str, Any]) -> List[str]:
    """The printed report of a fit result (see :func:`dsid.autofit.fit.fit`)."""
    m, b = result["metrics"], result["baseline"]
    lines = ["", f"dsid fit report: {shown_path(result['data'])}", "-" * 64]
    co, base = m.get("val/co_bps"), b["co_bps"]
    beats = beats_baseline(co, base)
    if not beats:
        lines.append(
            "  WARNING: this model is NOT better than smoothed spikes or the mean rates on the "
            "held-out neurons; see the diagnostics below for what to try"
        )

    def row(name: str, value: Optional[float], note: str = "") -> None:
        text = "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"
        lines.append(f"  {name:<28}{text:>10}  {note}")

    oracle = m.get("val/oracle_co_bps")
    row(
        "co-bps (valid)",
        co,
        "above the smoothing baseline and the mean rates"
        if beats
        else "NOT above the smoothing baseline and the mean rates",
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
        ("val/input_r2", "inferred-input R2 (valid)"),
        ("val/input_r2_min", "  its worst true input"),
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
    starts = result.get("starts") or []
    if starts:
        lines.append(
            f"starts (kept: the best validation objective on held-in neurons; "
            f"mean rates score {result.get('mean_rate_select', float('nan')):.5f}):"
        )
    for s in starts:
        co = s.get("co_bps")
        co_text = f"{co:.4f}" if co is not None and math.isfinite(co) else "n/a"
        lines.append(
            f"  seed {s['seed']:<4} val/select {s['select']:.5f}  co-bps {co_text:>7}  "
            f"{s['steps']:>6} steps in {s['seconds']:.0f} s"
            + ("  <- kept" if s.get("kept") else "")
        )
    lines += area_lines(result)
    lines.append("diagnostics:")
    lines += [f"  - {n}" for n in result["diagnostics"]]
    lines.append(f"run directory: {shown_path(result['run_dir'])}")
    lines += all_neurons_lines(result.get("all_neurons"))
    return lines
