"""Coordinated dropout: hide random input bins and score the reconstruction only on them."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn

from dsid.registry import AUGMENTATIONS


class Augmented(NamedTuple):
    x: torch.Tensor  # (B, T, N) model input
    loss_mask: Optional[torch.Tensor]  # (B, T, N) 1 where the held-in reconstruction is scored


@AUGMENTATIONS.register("coordinated_dropout")
class CoordinatedDropout(nn.Module):
    """Zero each held-in (bin, neuron) entry with probability ``rate`` (scaling the rest by
    1 / (1 - rate)); the reconstruction loss of held-in neurons counts only the zeroed entries, so
    the model cannot learn the identity map (Keshtkaran & Pandarinath, 2019).

    Input: masks entries. Loss: restricts held-in scoring to masked entries. Also applied in
    validation with a fixed seed, so validation reconstruction is an honest held-in prediction;
    ``val_rate`` (default: ``rate``) sets the validation rate on its own, so that models trained at
    different rates (a PBT population) are selected on one prediction task.
    """

    changes_input = True
    changes_loss = True

    def __init__(
        self, *, rate: float = 0.3, in_validation: bool = True, val_rate: Optional[float] = None
    ):
        super().__init__()
        for key, value in (("rate", rate), ("val_rate", val_rate)):
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"coordinated_dropout: {key} must be in [0, 1), got {value}")
        self.rate, self.in_validation, self.val_rate = rate, in_validation, val_rate

    def forward(
        self, x: torch.Tensor, stage: str = "train", generator: Optional[torch.Generator] = None
    ) -> Augmented:
        """Mask the input.

        Shape:
            x: (B, T, N)
            returns Augmented(x: (B, T, N), loss_mask: (B, T, N) or None)
        """
        active = stage == "train" or (stage == "val" and self.in_validation)
        rate = self.val_rate if stage == "val" and self.val_rate is not None else self.rate
        if not active or rate == 0.0:
            return Augmented(x, None)
        keep = torch.rand(x.shape, generator=generator, device="cpu").to(x.device) >= rate
        keep = keep.to(x.dtype)
        return Augmented(x * keep / (1.0 - rate), 1.0 - keep)
