"""Schedules of training, all counted in optimizer steps: the loss weights' ramps, the learning-rate
plateau and early stopping. A data set of 75 trials and one of 2,000 trials get the same
optimisation history per step, whatever their number of steps per epoch."""

from __future__ import annotations

import numbers
from typing import Any, Dict, Mapping

import numpy as np
from torch.optim.lr_scheduler import ReduceLROnPlateau

# settings counted in epochs before schedules counted optimizer steps, by config section: their
# replacements
RENAMED = {
    "train": {
        "kl_start_epoch": "kl_start_step",
        "kl_ramp_epochs": "kl_ramp_steps",
        "l2_start_epoch": "l2_start_step",
        "l2_ramp_epochs": "l2_ramp_steps",
        "lr_patience": "lr_patience_steps",
        "metrics_every_n_epochs": "metrics_every_n_steps",
    },
    "early_stopping": {"patience": "patience_steps"},
    "plots": {"every_n_epochs": "every_n_steps"},
    "nlb": {"eval_every_n_epochs": "eval_every_n_steps"},
}

# the settings counted in optimizer steps, by config section (each a whole number >= 0)
STEP_SETTINGS = {
    "train": (
        "kl_start_step",
        "kl_ramp_steps",
        "l2_start_step",
        "l2_ramp_steps",
        "lr_patience_steps",
        "metrics_every_n_steps",
        "average_steps",
    ),
    "early_stopping": ("patience_steps",),
    "plots": ("every_n_steps",),
    "nlb": ("eval_every_n_steps",),
}


def check_renamed(section: str, block: Mapping[str, Any]) -> None:
    """A clear error for a setting of ``section`` that counted epochs (naming its replacement) or
    a step count that is not a whole number >= 0 (``null`` passes: the default)."""
    for old in sorted(set(block or {}) & set(RENAMED.get(section, {}))):
        raise KeyError(
            f"{section}.{old}: schedules count optimizer steps, not epochs; use "
            f"{section}.{RENAMED[section][old]} (the number of optimizer steps)"
        )
    for key in STEP_SETTINGS.get(section, ()):
        value = (block or {}).get(key)
        if value is not None and not is_step_count(value):
            raise ValueError(
                f"{section}.{key}={value}: expected a whole number of optimizer steps >= 0"
            )


def is_step_count(value: Any) -> bool:
    """A whole number >= 0 (an int, or a float such as 250.0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return value >= 0 and float(value).is_integer()


def ramp(step: float, start: float, length: float, minimum: float = 0.0) -> float:
    """Linear ramp from ``minimum`` at ``start`` to 1 at ``start + length`` (optimizer steps)."""
    if length <= 0:
        return 1.0 if step >= start else minimum
    return float(np.clip(minimum + (1 - minimum) * (step - start) / length, minimum, 1.0))


def loss_weights(train_cfg: Mapping[str, Any], step: float) -> Dict[str, float]:
    """The KL and L2 weights after ``step`` optimizer steps."""
    c = train_cfg
    return {
        "kl": ramp(step, c["kl_start_step"], c["kl_ramp_steps"], c["kl_min"]),
        "l2": ramp(step, c["l2_start_step"], c["l2_ramp_steps"]),
    }


def ramps_end(train_cfg: Mapping[str, Any]) -> int:
    """The optimizer step at which every loss weight has reached its full value."""
    c = train_cfg
    return int(
        max(c["kl_start_step"] + c["kl_ramp_steps"], c["l2_start_step"] + c["l2_ramp_steps"])
    )


def total_loss(
    terms: Mapping[str, Any], weights: Mapping[str, float], train_cfg: Mapping[str, Any], l2
):
    """The training objective from a model's loss terms: ``recon + w_kl * sum_k scale_k * kl_k +
    w_l2 * (l2_scale * l2 + sum reg_*)`` (``kl_<k>`` scaled by ``train.kl_scales[k]``, default 1).
    Returns (loss, summed scaled KL)."""
    kl_total = sum(
        train_cfg["kl_scales"].get(k[3:], 1.0) * v for k, v in terms.items() if k.startswith("kl_")
    )
    reg = sum(v for k, v in terms.items() if k.startswith("reg_"))
    loss = (
        terms["recon"]
        + weights["kl"] * kl_total
        + weights["l2"] * (train_cfg["l2_scale"] * l2 + reg)
    )
    return loss, kl_total


class StepPlateau(ReduceLROnPlateau):
    """``ReduceLROnPlateau`` whose patience counts optimizer steps: the learning rate is multiplied
    by ``factor`` once ``patience_steps`` steps have passed since the monitored value last improved
    (or since the last reduction). The owner sets ``at_step`` before each :meth:`step`."""

    def __init__(self, optimizer, *, patience_steps: int, factor: float, min_lr: float):
        super().__init__(optimizer, mode="min", factor=factor, patience=0, min_lr=min_lr)
        self.patience_steps = int(patience_steps)
        self.at_step, self.best_step, self.reduced_step = 0, 0, 0

    def step(self, metrics, epoch=None):  # noqa: D102  (signature of ReduceLROnPlateau.step)
        current = float(metrics)
        self.last_epoch += 1
        first = not np.isfinite(self.best)
        if first or current < self.best - self.threshold * abs(self.best):  # a relative improvement
            self.best, self.best_step = current, self.at_step
        elif self.at_step - max(self.best_step, self.reduced_step) >= self.patience_steps:
            self._reduce_lr(self.last_epoch)
            self.reduced_step = self.at_step
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


class Smoothed:
    """Exponential moving average over evaluations: ``value = s * value + (1 - s) * new``, starting
    at the first value. ``state`` is a plain dict for checkpoints."""

    def __init__(self, smoothing: float):
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"train.select_smoothing={smoothing}: expected a value in [0, 1)")
        self.smoothing, self.value = float(smoothing), None

    def update(self, new: float) -> float:
        new = float(new)
        self.value = (
            new if self.value is None else self.smoothing * self.value + (1 - self.smoothing) * new
        )
        return self.value
