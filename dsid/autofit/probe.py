"""How many optimizer steps a wall-clock budget holds: a few timed training steps of the chosen
model."""

from __future__ import annotations

import time

import torch

from dsid.runs.assemble import build_run
from dsid.runs.config import to_plain

# time of one step relative to the training step alone: validation every epoch, periodic metrics
OVERHEAD = 1.3


def seconds_per_step(cfg, n_steps: int = 4) -> float:
    """The fastest of ``n_steps`` timed training steps (forward, loss, backward, AdamW) on one batch
    of the configured data and model, after one untimed warm-up step (the fastest: other work on the
    machine only ever slows a step down)."""
    dm, module = build_run(to_plain(cfg))
    batch = next(iter(dm.train_dataloader()))
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
    times = []
    for i in range(n_steps + 1):
        start = time.perf_counter()
        loss, _ = module.compute_loss(batch, "train")
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - start)
    return min(times)


def steps_in(seconds: float, step_seconds: float) -> int:
    """Optimizer steps that fit in ``seconds`` of training."""
    return max(1, int(seconds / (step_seconds * OVERHEAD)))
