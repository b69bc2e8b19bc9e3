"""Spike jitter: move every spike independently by a few bins, keeping each neuron's count."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from dsid.modules.augmentations.coordinated_dropout import Augmented
from dsid.modules.augmentations.temporal_shift import shift_bins
from dsid.registry import AUGMENTATIONS


@AUGMENTATIONS.register("spike_jitter")
class SpikeJitter(nn.Module):
    """During training, move each spike of the held-in input by an offset drawn uniformly from
    [-max_jitter, max_jitter] bins, independently per spike (a bin's count is split over the
    offsets multinomially). Spikes moved past an edge stay in the edge bin, so every neuron's count
    per trial is kept. Needs integer counts: continuous data (calcium) is refused.

    Input: jitters spike times. Loss: unchanged (no mask). Off in validation and inference.
    """

    changes_input = True
    changes_loss = False

    def __init__(self, *, max_jitter: int = 1):
        super().__init__()
        if int(max_jitter) != max_jitter or max_jitter < 0:
            raise ValueError(
                f"spike_jitter: max_jitter must be a whole number >= 0, got {max_jitter}"
            )
        self.max_jitter = int(max_jitter)

    def forward(
        self, x: torch.Tensor, stage: str = "train", generator: Optional[torch.Generator] = None
    ) -> Augmented:
        """Jitter every spike.

        Shape:
            x: (B, T, N) non-negative integer counts
            returns Augmented(x: (B, T, N), loss_mask: None)
        """
        if stage != "train" or self.max_jitter == 0:
            return Augmented(x, None)
        counts = x.detach().to("cpu", torch.float64)
        if (counts < 0).any() or not torch.equal(counts, counts.round()):
            raise ValueError(
                "spike_jitter: the input must be non-negative integer spike counts "
                "(continuous data such as calcium traces cannot be jittered; use "
                "temporal_shift)"
            )
        offsets = range(-self.max_jitter, self.max_jitter + 1)
        remaining, out = counts, torch.zeros_like(counts)
        for i, d in enumerate(offsets):
            left = len(offsets) - i  # offsets still to fill: each equally likely
            if left == 1:
                moved = remaining
            else:
                moved = torch.binomial(
                    remaining, torch.full_like(remaining, 1.0 / left), generator=generator
                )
            remaining = remaining - moved
            out = out + shift_bins(moved, torch.full((x.shape[0], 1, 1), d, dtype=torch.long))
        return Augmented(out.to(x.device, x.dtype), None)
