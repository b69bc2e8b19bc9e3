"""The LFADS generator's unroll on the compiled scan (``csrc/lfads_scan.cpp``).

Same function as the reference unroll (:func:`~dsid.modules.generators._common.unroll`, kept for
tests and for what the scan does not cover: GPUs, other dtypes, multi-area stepping), computed
differently:

- every projection that does not depend on the recurrent state (the encoder's output into the
  controller, the external input into the generator, both input biases) is one matrix product over
  all bins before the loop;
- the loop runs in C++ without an autograd graph, with one fused element-wise pass per GRU update,
  and the backward walks the bins once in reverse; each weight gradient is then one product over
  all bins;
- under ``torch.no_grad`` (inference) nothing is kept for a backward pass;
- the random numbers are drawn once for all bins before the loop: the controller's posterior
  noise (T, B, C) and the dropout masks of the controller state (before its output layer) and of
  the generator state (before the factors). They have the distributions of the reference's per-bin
  draws (independent per bin, trial and unit), so only the order in which the random stream is
  consumed differs: the same seed gives a different, equally likely sample.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn

from dsid.modules.generators._common import GeneratorOutput, ci_repeat
from dsid.modules.recurrent.native import dropout_mask, native_scans


class ScanInputs(NamedTuple):
    """The compiled LFADS scan's arguments (``csrc/lfads_scan.cpp`` documents the maths; time-major).

    G groups (copies side by side, e.g. the areas of a multi-area model; 1 for one LFADS generator):
    every weight has a leading group axis, every feature axis holds the groups' blocks one after
    another. Empty tensors stand for what is absent: ``ci_proj`` and the controller's weights without a
    controller, ``msg_*``/``wg_msg`` without message feedback, ``eps`` without sampling, the masks
    without dropout.
    """

    ci_proj: torch.Tensor  # (Tc, B or B / k, G * 3 Hc): controller input projection, bias included
    ext_proj: torch.Tensor  # (T, B, G * 3 H): generator input projection of the external input, bias included
    g0: torch.Tensor  # (B, G * H)
    f0: torch.Tensor  # (B, G * F)
    wc_f: torch.Tensor  # (G, 3 Hc, F): the controller's weights on the previous factors
    wc_hh: torch.Tensor  # (G, 3 Hc, Hc)
    bc_hh: torch.Tensor  # (G * 3 Hc,)
    w_head: torch.Tensor  # (G, 2 C, Hc): inferred-input mean | log-variance
    b_head: torch.Tensor  # (G * 2 C,)
    wg_co: torch.Tensor  # (G, 3 H, C): the generator's weights on the inferred input
    wg_hh: torch.Tensor  # (G, 3 H, H)
    bg_hh: torch.Tensor  # (G * 3 H,)
    w_fac: torch.Tensor  # (G, F, H)
    msg_enc: torch.Tensor  # (P, G * S): projections of the fed-back signal (S = F, or H from the state)
    msg_lag: torch.Tensor  # (L, P): each projection's weight at lags 0 .. L - 1
    wg_msg: torch.Tensor  # (G * 3 H, P): the generators' weights on the messages
    eps: torch.Tensor  # (Tc, B, G * C): the inferred input's noise
    mask_c: torch.Tensor  # (Tc, B, G * Hc): dropout of the controller state before its head
    mask_g: torch.Tensor  # (T, B, G * H): dropout of the generator state before the factors
    msg_from_state: bool  # feed back the generator state instead of the factors
    clip_c: float
    clip_g: float


class LFADSScan(torch.autograd.Function):
    """Autograd wrapper of the compiled forward and backward (argument order of :class:`ScanInputs`)."""

    @staticmethod
    def forward(ctx, *args):
        inp = ScanInputs(*args)
        Fs, Gs, head, co, Ms, Cs, gates_c, gates_g, Ph = native_scans().lfads_scan_forward(*inp, True)
        ctx.save_for_backward(inp.g0, inp.f0, inp.wc_f, inp.wc_hh, inp.w_head, inp.wg_co, inp.wg_hh, inp.w_fac,
                              inp.msg_enc, inp.msg_lag, inp.wg_msg, inp.eps, inp.mask_c, inp.mask_g,
                              Fs, Gs, head, co, Ms, Cs, gates_c, gates_g, Ph)
        ctx.flags = (inp.msg_from_state, inp.clip_c, inp.clip_g)
        ctx.has_controller = inp.ci_proj.numel() > 0
        ctx.has_messages = inp.msg_enc.numel() > 0
        ctx.ci_rows = inp.ci_proj.shape[1] if ctx.has_controller else 0
        return Fs, Gs, head, co, Ms

    @staticmethod
    def backward(ctx, dF, dG, dhead, dco, dMs):
        grads = native_scans().lfads_scan_backward(dF, dG, dhead, dco, dMs, *ctx.saved_tensors, *ctx.flags)
        if not ctx.has_controller:  # no controller: no gradient for its (empty) tensors
            for i in (0, 4, 5, 6, 7, 8, 9):
                grads[i] = None
        elif ctx.ci_rows != grads[0].shape[1]:  # one ci_proj row shared by consecutive samples
            Tc, B, D = grads[0].shape
            grads[0] = grads[0].view(Tc, ctx.ci_rows, B // ctx.ci_rows, D).sum(2)
        if not ctx.has_messages:
            grads[13:16] = [None] * 3
        return (*grads, None, None, None, None, None, None)


def run_scan(inp: ScanInputs):
    """The scan with autograd where any input needs a gradient, else the forward alone keeping no
    gates (inference). Returns time-major Fs (T, B, F), Gs (T, B, H), head (Tc, B, 2 C),
    co (Tc, B, C) and the messages Ms (T + 1, B, P)."""
    if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in inp):
        return LFADSScan.apply(*inp)
    return tuple(native_scans().lfads_scan_forward(*inp, False)[:5])


def pad_inferred_inputs(head: torch.Tensor, co: torch.Tensor, n_steps: int, groups: int = 1):
    """The inferred inputs' mean, log-variance and sample batch-major, zero past the encoded bins.

    Shape:
        head: (Tc, B, G * 2 C), [mean | log-variance] per group; co: (Tc, B, G * C) -> three (B, n_steps, G * C)
    """
    n_ci, B, GC = co.shape
    pad = lambda x: torch.cat([x, x.new_zeros(n_steps - n_ci, B, GC)]) if n_ci < n_steps else x  # noqa: E731
    if groups == 1:
        mean, logvar = head[..., :GC], head[..., GC:]
    else:
        mean, logvar = (p.reshape(n_ci, B, GC) for p in head.view(n_ci, B, groups, 2, -1).unbind(3))
    return tuple(pad(x).transpose(0, 1) for x in (mean, logvar, co))


def lfads_unroll(gen: nn.Module, ic: torch.Tensor, ci: Optional[torch.Tensor], ext: Optional[torch.Tensor],
                 n_steps: int, sample: bool) -> GeneratorOutput:
    """:class:`~dsid.modules.generators.lfads.LFADSGenerator`'s unroll on the compiled scan (arguments
    checked by the caller; see the module docstring).

    Shape:
        ic: (B, I); ci: (B / k, T_ci, ci_input_size) or None (k >= 1: row i serves batch entries
        i k ... i k + k - 1, e.g. the posterior samples of one trial); ext: (B, T_ext, E) or None
        returns factors (B, T', F), states (B, T', H), co_* (B, T', C) or None; T' = n_steps
    """
    B, H, C, E = ic.shape[0], gen.hidden_size, gen.co_size, gen.ext_input_size
    ci_repeat(gen, ci, B)  # the rows of ci divide the batch (the scan reads each row B / rows times)
    g0 = gen.ic_to_state(ic)
    f0 = gen.to_factors(gen.dropout(g0))
    empty = ic.new_empty(0)
    w_ih, b_ih = gen.cell.weight_ih, gen.cell.bias_ih
    ext_proj = b_ih.expand(n_steps, B, 3 * H)
    if E and ext is not None and ext.shape[1]:
        n_ext = min(ext.shape[1], n_steps)
        proj = torch.addmm(b_ih, ext[:, :n_ext].transpose(0, 1).reshape(n_ext * B, E),
                           w_ih[:, C:C + E].t()).view(n_ext, B, 3 * H)
        ext_proj = torch.cat([proj, ext_proj[n_ext:]]) if n_ext < n_steps else proj
    ctrl_args = [empty] * 7
    eps, mask_c, clip_c = empty, empty, 0.0
    if gen.use_controller:
        con = gen.controller
        n_ci, D, B_ci = min(ci.shape[1], n_steps), ci.shape[2], ci.shape[0]
        wc_ih = con.cell.weight_ih
        ci_proj = torch.addmm(con.cell.bias_ih, ci[:, :n_ci].transpose(0, 1).reshape(n_ci * B_ci, D),
                              wc_ih[:, :D].t()).view(n_ci, B_ci, -1)
        ctrl_args = [ci_proj, wc_ih[:, D:].unsqueeze(0), con.cell.weight_hh.unsqueeze(0), con.cell.bias_hh,
                     con.head.weight.unsqueeze(0), con.head.bias, w_ih[:, :C].unsqueeze(0)]
        eps = torch.randn(n_ci, B, C, dtype=ic.dtype, device=ic.device) if sample else empty
        mask_c = dropout_mask(con.dropout, (n_ci, B, con.hidden_size), ic)
        clip_c = float(con.cell.clip)
    mask_g = dropout_mask(gen.dropout, (n_steps, B, H), ic)
    ci_proj, wc_f, wc_hh, bc_hh, w_head, b_head, wg_co = ctrl_args
    Fs, Gs, head, co, _ = run_scan(ScanInputs(
        ci_proj, ext_proj, g0, f0, wc_f, wc_hh, bc_hh, w_head, b_head, wg_co, gen.cell.weight_hh.unsqueeze(0),
        gen.cell.bias_hh, gen.to_factors.normalized_weight().unsqueeze(0), empty, empty, empty, eps, mask_c, mask_g,
        False, clip_c, float(gen.cell.clip)))
    factors, states = Fs.transpose(0, 1), Gs.transpose(0, 1)
    if not gen.use_controller:
        return GeneratorOutput(factors, states, None, None, None)
    return GeneratorOutput(factors, states, *pad_inferred_inputs(head, co, n_steps))
