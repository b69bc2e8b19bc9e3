"""Training progress for people and for log files.

On a terminal, Lightning's tqdm bar redraws one line. Written into a file (a cluster job's log, a
notebook's saved output, ``dsid fit > fit.log``), every redraw becomes text: a 60-second fit wrote
800 KB. :func:`progress_callback` therefore chooses the bar only when the output is a terminal and
:class:`ProgressLines` otherwise: one plain line every ``every_s`` seconds with the step, the
training time against the budget (the trainer's ``max_time`` or ``max_steps``) and the best
validation so far.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Optional, TextIO

import pytorch_lightning as pl

#: seconds between two progress lines in a log file
EVERY_S = 30.0


def writes_to_terminal(stream: Optional[TextIO] = None) -> bool:
    """Whether ``stream`` (default: standard output, where Lightning's bar and the progress lines
    go: ``dsid fit > fit.log`` is a file even when standard error is a terminal) is a terminal."""
    stream = sys.stdout if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or file-less stream
        return False


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


class ProgressLines(pl.Callback):
    """One progress line every ``every_s`` seconds of training (and one when it ends), written to
    ``stream`` (default: standard output), e.g.
    ``training: step 1200 (epoch 120), 2.5 min of 15.0 min, best val/select 0.32951 at step 1170``.
    """

    def __init__(self, every_s: float = EVERY_S, stream: Optional[TextIO] = None):
        self.every_s = float(every_s)
        self.stream = stream
        self._start = time.perf_counter()
        self._last = -math.inf
        self._best: Optional[tuple] = None  # (value, step)

    def _write(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    def on_train_start(self, trainer, module) -> None:
        self._start = time.perf_counter()
        self._last = self._start

    def on_validation_end(self, trainer, module) -> None:
        value = trainer.callback_metrics.get("val/select")
        if trainer.sanity_checking or value is None:
            return
        value = float(value)
        if math.isfinite(value) and (self._best is None or value < self._best[0]):
            self._best = (value, int(trainer.global_step))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if now - self._last >= self.every_s:
            self._last = now
            self._write(self.line(trainer, now - self._start))

    def on_train_end(self, trainer, module) -> None:
        self._write(self.line(trainer, time.perf_counter() - self._start, "training ended"))

    def line(self, trainer, seconds: float, head: str = "training") -> str:
        """The progress line at ``seconds`` of training."""
        text = f"{head}: step {trainer.global_step} (epoch {trainer.current_epoch})"
        total = budget_seconds(trainer)
        text += f", {_minutes(seconds)}" + (f" of {_minutes(total)}" if total else "")
        if trainer.max_steps and trainer.max_steps > 0:
            text += f", {trainer.max_steps} steps at most"
        if self._best is not None:
            text += f", best val/select {self._best[0]:.5f} at step {self._best[1]}"
        return text


def budget_seconds(trainer) -> Optional[float]:
    """The trainer's wall-clock limit (``max_time``) in seconds, or None without one."""
    for cb in trainer.callbacks:
        if isinstance(cb, pl.callbacks.Timer):
            remaining = cb.time_remaining("train")
            if remaining is not None:
                return float(cb.time_elapsed("train") + remaining)
    return None


def progress_callback(stream: Optional[TextIO] = None) -> pl.Callback:
    """Lightning's tqdm bar on a terminal, :class:`ProgressLines` in a file or pipe."""
    if writes_to_terminal(stream):
        return pl.callbacks.TQDMProgressBar()  # tqdm, like inference's bars (not Rich's)
    return ProgressLines()
