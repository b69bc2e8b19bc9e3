"""Temporal shift: move each trial's input by a random whole number of bins, keeping its counts."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from dsid.modules.augmentations.coordinated_dropout import Augmented
from dsid.registry import AUGMENTATIONS


def shift_bins(x: torch.Tensor, shifts: torch.Tensor, wrap: bool = False) -> torch.Tensor:
    """Move the content of every bin by ``shifts`` bins (broadcast to x). Without ``wrap``, what
    would leave the window piles up in the first/last bin, so sums over time are kept exactly.

    Shape:
        x: (B, T, N); shifts: (B, 1, 1) or (B, T, N) integers -> (B, T, N)
    """
    T = x.shape[1]
    t = torch.arange(T, device=x.device).view(1, T, 1)
    dest = t + shifts.to(x.device)
    dest = dest % T if wrap else dest.clamp(0, T - 1)
    return torch.zeros_like(x).scatter_add_(1, dest.expand_as(x), x)


@AUGMENTATIONS.register("temporal_shift")
class TemporalShift(nn.Module):
    """During training, shift every trial's held-in input (all neurons together) by a random integer
    number of bins drawn uniformly from [-max_shift, max_shift]; spikes shifted past an edge pile up
    in the edge bin (or, with ``wrap``, re-enter at the other end), so every neuron's count per
    trial is kept. The model must reconstruct the unshifted data, which makes it robust to trial
    alignment jitter.

    Input: shifts it in time. Loss: unchanged (no mask). Off in validation and inference.
    """

    changes_input = True
    changes_loss = False

    def __init__(self, *, max_shift: int = 2, wrap: bool = False):
        super().__init__()
        if int(max_shift) != max_shift or max_shift < 0:
            raise ValueError(
                f"temporal_shift: max_shift must be a whole number >= 0, got {max_shift}"
            )
        self.max_shift, self.wrap = int(max_shift), bool(wrap)

    def forward(
        self, x: torch.Tensor, stage: str = "train", generator: Optional[torch.Generator] = None
    ) -> Augmented:
        """Shift each trial's input.

        Shape:
            x: (B, T, N)
            returns Augmented(x: (B, T, N), loss_mask: None)
        """
        if stage != "train" or self.max_shift == 0:
            return Augmented(x, None)
        shifts = torch.randint(
            -self.max_shift, self.max_shift + 1, (x.shape[0], 1, 1), generator=generator
        )
        return Augmented(shift_bins(x, shifts, self.wrap), None)
