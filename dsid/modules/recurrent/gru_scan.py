"""A group of GRU recurrences over time with a hand-written backward pass (compiled, ``csrc/gru_scan.cpp``).

The input half of a GRU (``x W_ih^T + b_ih``) does not depend on the state, so callers compute it for
every bin at once (one large matrix product) and pass it in; the scan does the recurrent half bin by
bin in C++: one matrix product and one fused element-wise pass per bin, no autograd graph. The
backward walks the bins once in reverse and computes the recurrent weight gradient as a single
product over all bins. ``G`` independent recurrences (e.g. both directions of several encoders with
the same hidden size) run as one batch of products.

The maths is ``nn.GRUCell``'s (gates r, z, n; ``h' = n + z (h - n)``), optionally clipped to
[-clip, clip] (LFADS' stabiliser); no gradient flows through an entry at the clip value.
"""
from __future__ import annotations

from typing import Optional

import torch

from dsid.modules.recurrent.native import native_scans


class GRUScan(torch.autograd.Function):
    """Scan of G GRUs over T bins (see the module docstring)."""

    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh, clip):
        hs, gates = native_scans().gru_scan_forward(gi, h0, w_hh, b_hh, clip)
        ctx.save_for_backward(h0, w_hh, hs, gates)
        ctx.clip = clip
        return hs

    @staticmethod
    def backward(ctx, d_hs):
        h0, w_hh, hs, gates = ctx.saved_tensors
        dgi, dh0, d_w, d_b = native_scans().gru_scan_backward(d_hs, h0, w_hh, hs, gates, ctx.clip)
        return dgi, dh0, d_w, d_b, None


def gru_scan(gi: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor,
             clip: Optional[float] = None) -> torch.Tensor:
    """States of G GRUs over T bins given their input pre-activations (needs the compiled module:
    check :func:`~dsid.modules.recurrent.native.usable` first).

    Shape:
        gi: (G, T, B, 3H) = x W_ih^T + b_ih per bin; h0: (G, B, H); w_hh: (G, 3H, H); b_hh: (G, 3H)
        returns: (G, T, B, H), the state after every bin
    """
    return GRUScan.apply(gi.contiguous(), h0.contiguous(), w_hh.contiguous(), b_hh.contiguous(),
                         float(clip or 0.0))

