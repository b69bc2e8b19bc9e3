"""The starts of one ``dsid fit``, trained (or resumed) one after another in
``RUN_DIR/starts/seed<k>/`` with the fit's state written after each (:mod:`dsid.autofit.fit_state`),
so a fit whose process died continues where it stopped."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import torch

from dsid.autofit.budget import Budget
from dsid.autofit.fit_state import save_state, start_to_json
from dsid.autofit.report import SelectTrace
from dsid.autofit.start_dirs import start_dir
from dsid.autofit.starts import StartResult
from dsid.runs.load import LAST_CKPT
from dsid.runs.status import read_status
from dsid.runs.train import resume_run, train


class StartTrainer:
    """``train_start`` and ``clock`` of :func:`~dsid.autofit.starts.run_starts` for one fit.

    ``config(seed, limit)`` composes a start's config with the trainer limits ``limit``; ``plan``
    is the whole fit's budget; ``state`` the fit's state (its ``used`` budget and finished
    ``starts`` are kept up to date and saved)."""

    def __init__(
        self,
        run_dir: Path,
        plan: Budget,
        config: Callable[[int, List[str]], Dict[str, Any]],
        limits: Callable[[Budget], List[str]],
        state: Dict[str, Any],
    ):
        self.run_dir, self.plan, self.config, self.limits = Path(run_dir), plan, config, limits
        self.state = state
        self._began = time.perf_counter()
        self._used_before = float(state.get("used", 0.0))
        # wall seconds a start takes beyond its training (setup, final inference, figures): kept
        # out of the next starts' training limit, so the fit ends within its budget
        self.overhead = 0.0

    def clock(self) -> float:
        """The budget used so far: optimizer steps, or seconds across every process of the fit."""
        if self.plan.steps is not None:
            return float(sum(s["steps"] for s in self.state["starts"]))
        return self.seconds_so_far()

    def seconds_so_far(self) -> float:
        """Seconds of the fit so far, the processes before a resume included."""
        return self._used_before + time.perf_counter() - self._began

    def train_start(self, seed: int, remaining: float) -> StartResult:
        """Train the start with ``seed`` (continue it when an earlier process left it unfinished)
        within ``remaining`` budget; record it in the fit's state."""
        folder = start_dir(self.run_dir, seed)
        offset = self.seconds_so_far()
        begun, trace = time.perf_counter(), SelectTrace()
        status = (read_status(folder) or {}).get("status")
        if status == "finished":  # it ended, but the process died before recording it
            metrics = json.loads((folder / "metrics.json").read_text())
            trace.trace = _trace_from(folder / LAST_CKPT)
            trace.steps = trace.trace[-1][0] if trace.trace else 0
            self._used_before += trace.seconds()  # the time it trained before the kill
        elif status is not None and (folder / LAST_CKPT).exists():
            metrics = resume_run(folder, callbacks=[trace])
            self._used_before += trace.resumed_seconds  # the time it trained before the kill
        else:
            left = (
                Budget(steps=max(1, int(remaining)))
                if self.plan.steps is not None
                else Budget(seconds=max(1.0, remaining - self.overhead))
            )
            cfg = self.config(seed, self.limits(left))
            # a start killed before its first checkpoint (or before its status was written): this
            # fit's own folder, begun again
            cfg["overwrite"] = status is not None or (folder.is_dir() and any(folder.iterdir()))
            metrics = train(cfg, run_dir=str(folder), callbacks=[trace])
            wall = time.perf_counter() - begun
            self.overhead = max(self.overhead, wall - trace.seconds())
        best_step, best_select, best_seconds = trace.best()
        result = StartResult(
            seed=seed,
            select=best_select,
            best_at=best_step if self.plan.steps is not None else best_seconds,
            seconds=round(time.perf_counter() - begun, 1),
            steps=trace.steps,
            co_bps=metrics.get("val/co_bps"),
            run_dir=str(folder),
            offset_seconds=round(offset, 1),
            extra={"metrics": metrics, "trace": trace.trace},
        )
        self.state["starts"].append(start_to_json(result))
        self.state["used"] = self.seconds_so_far()
        save_state(self.run_dir, self.state)
        return result


def _trace_from(checkpoint: Path) -> List[tuple]:
    """The :class:`SelectTrace` saved in a start's last checkpoint (empty when there is none)."""
    if not checkpoint.exists():
        return []
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    for key, value in (ckpt.get("callbacks") or {}).items():
        if str(key).startswith("SelectTrace"):
            return [tuple(r) for r in value.get("trace", [])]
    return []
