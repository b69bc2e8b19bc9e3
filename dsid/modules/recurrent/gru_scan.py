"""GRUs over a shared input sequence, with a hand-written backward pass (compiled,
``csrc/gru_scan.cpp``).

``G`` independent GRUs (e.g. both directions of a bidirectional encoder, or of several encoders with
the same hidden size) read the same input; any of them may read it backwards in time. The input half
of every GRU (``x W_ih^T + b_ih``) does not depend on the state, so it is one matrix product for all
groups and bins before the loop; the recurrent half runs bin by bin in C++: one batched product and
one fused element-wise pass per bin, no autograd graph. The backward walks the bins once in reverse,
keeping the pre-activations' gradients for a chunk of bins at a time (about ``BACKWARD_CHUNK_ROWS``
rows of trials x bins): each chunk adds its share of every weight gradient in one product per GRU,
large enough to run at full matrix-product speed, and the backward needs no buffers that grow with
T. Under ``torch.no_grad`` (inference) the gates are not kept.

The maths is ``nn.GRUCell``'s (gates r, z, n; ``h' = n + z (h - n)``), optionally clipped to
[-clip, clip] (LFADS' stabiliser); no gradient flows through an entry at the clip value. A reversed
group's state at bin t is the one after reading bins T-1, ..., t (as in ``nn.GRU``'s reverse
direction), and its last state is the one at bin 0.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch

from dsid.modules.recurrent.native import native_scans

BACKWARD_CHUNK_ROWS = 4096  # trials x bins per chunk of the backward's weight-gradient products


class GRUScan(torch.autograd.Function):
    """Scan of G GRUs over a shared input (see the module docstring)."""

    @staticmethod
    def forward(ctx, x, w_ih, b_ih, h0, w_hh, b_hh, reverse, clip):
        hs, last, gates = native_scans().gru_scan_forward(
            x, w_ih, b_ih, h0, w_hh, b_hh, reverse, clip, True
        )
        ctx.save_for_backward(x, w_ih, h0, w_hh, hs, gates)
        ctx.reverse, ctx.clip = reverse, clip
        ctx.set_materialize_grads(False)
        return hs, last

    @staticmethod
    def backward(ctx, d_hs, d_last):
        x, w_ih, h0, w_hh, hs, gates = ctx.saved_tensors
        empty = hs.new_empty(0)
        d_x, d_w_ih, d_b_ih, d_h0, d_w_hh, d_b_hh = native_scans().gru_scan_backward(
            empty if d_hs is None else d_hs,
            empty if d_last is None else d_last,
            x,
            w_ih,
            h0,
            w_hh,
            hs,
            gates,
            ctx.reverse,
            ctx.clip,
            ctx.needs_input_grad[0],
            max(1, BACKWARD_CHUNK_ROWS // max(1, hs.shape[1])),
        )
        return (
            d_x if ctx.needs_input_grad[0] else None,
            d_w_ih,
            d_b_ih,
            d_h0,
            d_w_hh,
            d_b_hh,
            None,
            None,
        )


def gru_scan(
    x: torch.Tensor,
    w_ih: torch.Tensor,
    b_ih: torch.Tensor,
    w_hh: torch.Tensor,
    b_hh: torch.Tensor,
    reverse: Sequence[bool],
    h0: Optional[torch.Tensor] = None,
    clip: Optional[float] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """States of G GRUs reading the same input, ``reverse[g]`` ones backwards in time (needs the
    compiled module: check :func:`~dsid.modules.recurrent.native.usable` first).

    Shape:
        x: (T, B, N) time-major input; w_ih: (G, 3H, N); b_ih: (G, 3H); w_hh: (G, 3H, H);
        b_hh: (G, 3H);
        h0: (G, B, H) or None (zeros)
        returns: states (T, B, G, H), each group's state at every bin; last states (G, B, H)
    """
    G, H = w_hh.shape[0], w_hh.shape[2]
    if len(reverse) != G:
        raise ValueError(f"gru_scan: {len(reverse)} reverse flags for {G} groups")
    h0 = x.new_zeros(G, x.shape[1], H) if h0 is None else h0.contiguous()
    args = (
        x.contiguous(),
        w_ih.contiguous(),
        b_ih.contiguous(),
        h0,
        w_hh.contiguous(),
        b_hh.contiguous(),
        [bool(r) for r in reverse],
        float(clip or 0.0),
    )
    if torch.is_grad_enabled() and any(a.requires_grad for a in args[:6]):
        return GRUScan.apply(*args)
    hs, last, _ = native_scans().gru_scan_forward(*args, False)
    return hs, last
