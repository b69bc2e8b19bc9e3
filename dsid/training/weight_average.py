"""An exponential moving average of a model's parameters over optimizer steps (Polyak averaging).

Small-batch training on few trials moves the weights around a good solution rather than onto it; the
average over the last ``steps`` optimizer steps sits closer to it. Validation, model selection, the
checkpoints' weights and everything loaded from a checkpoint use the average; training steps the raw
weights, which checkpoints also keep so that a resumed run continues exactly."""

from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import nn

RAW_KEY = "dsid_raw_weights"  # the checkpoint entry holding the raw (trained) parameters


class WeightAverage:
    """The average of ``module``'s parameters over about the last ``steps`` optimizer steps:
    ``avg = d avg + (1 - d) w`` after each step, ``d = min(1 - 1 / steps, (1 + t) / (10 + t))`` at
    step ``t`` (short memory at the start, when the weights move fast). :meth:`use_average` /
    :meth:`use_raw` swap the average and the raw weights in place (no copy of the model)."""

    def __init__(self, module: nn.Module, steps: int):
        if steps < 1:
            raise ValueError(f"train.average_steps={steps}: expected >= 1 (0 disables averaging)")
        self.steps = int(steps)
        self.names: List[str] = [n for n, _ in module.named_parameters()]
        self.params: List[nn.Parameter] = [p for _, p in module.named_parameters()]
        self.other: Optional[List[torch.Tensor]] = (
            None  # the average, or the raw weights while averaged
        )
        self.averaged = False  # True while the parameters hold the average

    def decay(self, step: int) -> float:
        return min(1.0 - 1.0 / self.steps, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold the raw weights after optimizer step ``step`` into the average."""
        if self.averaged:
            raise RuntimeError(
                "WeightAverage.update: the parameters hold the average, not the trained weights"
            )
        if self.other is None:
            self.other = [p.detach().clone() for p in self.params]
            return
        d = self.decay(step)
        for avg, p in zip(self.other, self.params):
            avg.mul_(d).add_(p.detach(), alpha=1.0 - d)

    @torch.no_grad()
    def _swap(self) -> None:
        for other, p in zip(self.other, self.params):
            tmp = p.detach().clone()
            p.copy_(other)
            other.copy_(tmp)
        self.averaged = not self.averaged

    def use_average(self) -> None:
        """Put the average into the parameters (nothing to do before the first step)."""
        if self.other is not None and not self.averaged:
            self._swap()

    def use_raw(self) -> None:
        """Put the trained weights back into the parameters."""
        if self.averaged:
            self._swap()

    def to_checkpoint(self, checkpoint: Dict) -> None:
        """Store the average as the checkpoint's parameters (what loading it gives) and the raw
        weights under ``RAW_KEY`` (what resuming trains on)."""
        if self.other is None:
            return
        state = checkpoint["state_dict"]
        avg = [p.detach() for p in self.params] if self.averaged else self.other
        raw = self.other if self.averaged else [p.detach() for p in self.params]
        checkpoint[RAW_KEY] = {n: r.clone().cpu() for n, r in zip(self.names, raw)}
        for n, a in zip(self.names, avg):
            state[n] = a.clone().to(state[n].device)

    @torch.no_grad()
    def resume(self, raw: Dict[str, torch.Tensor]) -> None:
        """After loading a checkpoint's (averaged) parameters: keep them as the average and train on
        the raw weights ``raw`` (a checkpoint's ``RAW_KEY`` entry)."""
        missing = [n for n in self.names if n not in raw]
        if missing:
            raise KeyError(f"checkpoint {RAW_KEY}: no raw weights for parameter {missing[0]}")
        self.other = [p.detach().clone() for p in self.params]
        for n, p in zip(self.names, self.params):
            p.copy_(raw[n].to(p.device))
        self.averaged = False
