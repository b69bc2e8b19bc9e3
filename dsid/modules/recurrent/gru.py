"""The GRU update the recurrent models share: ``nn.GRUCell``'s gates on grouped weights (one
batched matrix product per weight for G independent copies) and the clipped GRU cell that holds
those weights (LFADS' stabiliser: the state clipped to [-clip, clip])."""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn


def affine(x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``x w^T + b`` for every member of a group at once (one batched matrix product).

    Shape:
        x: (G, B, I); w: (G, O, I); b: (G, O) or None -> (G, B, O)
    """
    wt = w.transpose(-1, -2)
    return torch.bmm(x, wt) if b is None else torch.baddbmm(b.unsqueeze(-2), x, wt)


def gru_update(
    x: torch.Tensor, h: torch.Tensor, p: Dict[str, torch.Tensor], clip: float
) -> torch.Tensor:
    """``nn.GRUCell``'s update (gates r, z, n) with grouped weights ``p`` (``w_ih``, ``w_hh``,
    ``b_ih``, ``b_hh``), the new state clipped to [-clip, clip].

    Shape:
        x: (G, B, I); h: (G, B, H); p["w_ih"]: (G, 3H, I), p["w_hh"]: (G, 3H, H) -> (G, B, H)
    """
    i_r, i_z, i_n = affine(x, p["w_ih"], p["b_ih"]).chunk(3, dim=-1)
    h_r, h_z, h_n = affine(h, p["w_hh"], p["b_hh"]).chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (n + z * (h - n)).clamp(-clip, clip)


class ClippedGRUCell(nn.GRUCell):
    """The weights of a GRU cell whose hidden state is clipped to [-clip, clip] (LFADS' stabiliser);
    the update itself is :func:`gru_update` on :meth:`step_params`."""

    def __init__(self, input_size: int, hidden_size: int, clip: float = 5.0):
        super().__init__(input_size, hidden_size)
        self.clip = clip

    def step_params(self) -> Dict[str, torch.Tensor]:
        return {
            "w_ih": self.weight_ih,
            "w_hh": self.weight_hh,
            "b_ih": self.bias_ih,
            "b_hh": self.bias_hh,
        }
