"""Bidirectional GRU encoder: initial-condition posterior and per-step controller encodings."""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn

from dsid.registry import ENCODERS


class EncoderOutput(NamedTuple):
    ic_mean: torch.Tensor  # (B, I)
    ic_logvar: torch.Tensor  # (B, I)
    ci: Optional[torch.Tensor]  # (B, T, ci_output_size) or None


@ENCODERS.register("bigru")
class BiGRUEncoder(nn.Module):
    """Two bidirectional GRUs over the held-in input.

    The initial-condition GRU's last states (both directions) map to the posterior mean and
    log-variance of the generator's initial condition. When ``ci_size > 0`` a second bidirectional
    GRU gives per-time-step encodings for the controller (``ci_output_size = 2 * ci_size``).
    """

    def __init__(self, *, input_size: int, ic_size: int, hidden_size: int = 64, ci_size: int = 64,
                 dropout: float = 0.1, ic_logvar_floor: float = 1e-4):
        super().__init__()
        self.ic_size = ic_size
        self.ci_output_size = 2 * ci_size
        self.ic_logvar_floor = ic_logvar_floor
        self.dropout = nn.Dropout(dropout)
        self.ic_rnn = nn.GRU(input_size, hidden_size, batch_first=True, bidirectional=True)
        self.ic_head = nn.Linear(2 * hidden_size, 2 * ic_size)
        self.ci_rnn = nn.GRU(input_size, ci_size, batch_first=True, bidirectional=True) if ci_size else None

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        """Encode held-in input.

        Shape:
            x: (B, T, N) held-in observations
            returns ic_mean, ic_logvar: (B, I); ci: (B, T, 2 * ci_size) or None
        """
        x = self.dropout(x)
        _, h_last = self.ic_rnn(x)  # (2, B, H)
        h = self.dropout(torch.cat([h_last[0], h_last[1]], dim=-1))
        mean, logvar = self.ic_head(h).chunk(2, dim=-1)
        logvar = torch.log(torch.exp(logvar) + self.ic_logvar_floor)
        ci = None
        if self.ci_rnn is not None:
            ci, _ = self.ci_rnn(x)
            ci = self.dropout(ci)
        return EncoderOutput(mean, logvar, ci)
