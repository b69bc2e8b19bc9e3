"""Shared self-attention stack over time bins (used by the transformer encoder and the NDT
model)."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn


def sinusoidal_positions(n_time: int, d_model: int, device=None) -> torch.Tensor:
    """Fixed sinusoidal position codes (Vaswani et al., 2017): (T, d_model)."""
    pos = torch.arange(n_time, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(
        torch.arange(0, d_model, 2, device=device, dtype=torch.float32)
        * (-math.log(10000.0) / d_model)
    )
    pe = torch.zeros(n_time, d_model, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : d_model // 2]
    return pe


def context_mask(n_time: int, context_forward: int, context_backward: int, device=None):
    """Boolean attention mask (True = blocked) limiting each bin to a window of bins; None when both
    limits are negative (full context)."""
    if context_forward < 0 and context_backward < 0:
        return None
    i = torch.arange(n_time, device=device)[:, None]
    j = torch.arange(n_time, device=device)[None, :]
    blocked = torch.zeros(n_time, n_time, dtype=torch.bool, device=device)
    if context_forward >= 0:
        blocked |= j > i + context_forward
    if context_backward >= 0:
        blocked |= j < i - context_backward
    return blocked


class AttentionStack(nn.Module):
    """Pre-norm transformer encoder layers with sinusoidal positions and a final layer norm."""

    def __init__(self, *, d_model: int, n_heads: int, n_layers: int, ff_size: int, dropout: float):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(
                f"transformer: d_model={d_model} must be divisible by n_heads={n_heads}"
            )
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, ff_size, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.d_model = d_model

    def forward(self, h: torch.Tensor, n_prefix: int = 0, mask: Optional[torch.Tensor] = None):
        """Add positions to the time tokens (after ``n_prefix`` prefix tokens such as CLS) and
        attend.

        Shape:
            h: (B, n_prefix + T, d_model); mask: (n_prefix + T, n_prefix + T) bool or None
            returns: (B, n_prefix + T, d_model)
        """
        pe = sinusoidal_positions(h.shape[1] - n_prefix, self.d_model, h.device)
        pe = torch.cat([pe.new_zeros(n_prefix, self.d_model), pe], dim=0)
        return self.norm(self.layers(self.dropout(h + pe), mask=mask))
