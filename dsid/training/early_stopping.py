"""Early stopping with its patience in optimizer steps."""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

import pytorch_lightning as pl


class StepEarlyStopping(pl.Callback):
    """Stop training once ``monitor`` (lower is better) has not improved for ``patience_steps``
    optimizer steps, never before step ``min_steps`` (the end of the loss-weight ramps, so the last
    weights are always tried). The state travels in checkpoints, so a resumed run stops where the
    uninterrupted one would."""

    def __init__(
        self, monitor: str, patience_steps: int, min_steps: int = 0, min_delta: float = 0.0
    ):
        if patience_steps < 1:
            raise ValueError(
                f"early_stopping.patience_steps={patience_steps}: expected >= 1 (0 disables it)"
            )
        self.monitor, self.patience, self.min_steps = monitor, int(patience_steps), int(min_steps)
        self.min_delta = float(min_delta)
        self.best: Optional[float] = None
        self.best_step = 0
        self.stopped_step: Optional[int] = None

    def state_dict(self) -> Dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "stopped_step": self.stopped_step}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.best = state_dict.get("best")
        self.best_step = int(state_dict.get("best_step", 0))
        self.stopped_step = state_dict.get("stopped_step")

    def on_validation_end(self, trainer, module) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        step = trainer.global_step
        if math.isfinite(value) and (self.best is None or value < self.best - self.min_delta):
            self.best, self.best_step = value, step
        elif step >= self.min_steps and step - self.best_step >= self.patience:
            self.stopped_step = step
            trainer.should_stop = True
