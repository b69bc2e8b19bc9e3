"""The LFADS generator's unroll on the compiled scan (``csrc/lfads_scan.cpp``).

Same function as the step-by-step unroll (:func:`~dsid.modules.recurrent.step_protocol.unroll`, kept
for tests and for what the scan does not cover: GPUs, other dtypes, multi-area stepping), computed
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
  the generator state (before the factors). They have the distributions of the step-by-step unroll's
  per-bin draws (independent per bin, trial and unit), so only the order in which the random stream
  is consumed differs: the same seed gives a different, equally likely sample.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple

import torch
from torch import nn

from dsid.modules.recurrent.native import dropout_mask, native_scans
from dsid.modules.recurrent.step_protocol import GeneratorOutput, ci_repeat


class ScanInputs(NamedTuple):
    """The compiled LFADS scan's arguments (``csrc/lfads_scan.cpp`` documents the maths;
    time-major).

    G groups (copies side by side, e.g. the areas of a multi-area model; 1 for one LFADS generator):
    every weight has a leading group axis, every feature axis holds the groups' blocks one after
    another. Empty tensors stand for what is absent: ``ci_proj`` and the controller's weights
    without a controller, ``msg_*``/``wg_msg`` without message feedback, ``eps`` without sampling,
    the masks without dropout.
    """

    ci_proj: torch.Tensor  # (Tc, B or B / k, G * 3 Hc): controller input projection, bias included
    ext_proj: (
        torch.Tensor
    )  # (T, B, G * 3 H): generator input projection of the external input, bias included
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
    msg_enc: (
        torch.Tensor
    )  # (P, G * S): projections of the fed-back signal (S = F, or H from the state)
    msg_lag: torch.Tensor  # (L, P): each projection's weight at lags 0 .. L - 1
    wg_msg: torch.Tensor  # (G * 3 H, P): the generators' weights on the messages
    eps: torch.Tensor  # (Tc, B, G * C): the inferred input's noise
    mask_c: torch.Tensor  # (Tc, B, G * Hc): dropout of the controller state before its head
    mask_g: torch.Tensor  # (T, B, G * H): dropout of the generator state before the factors
    msg_from_state: bool  # feed back the generator state instead of the factors
    clip_c: float
    clip_g: float


class LFADSScan(torch.autograd.Function):
    """Autograd wrapper of the compiled forward and backward (argument order of
    :class:`ScanInputs`)."""

    @staticmethod
    def forward(ctx, *args):
        inp = ScanInputs(*args)
        Fs, Gs, head, co, Ms, Cs, gates_c, gates_g, Ph = native_scans().lfads_scan_forward(
            *inp, True
        )
        ctx.save_for_backward(
            inp.g0,
            inp.f0,
            inp.wc_f,
            inp.wc_hh,
            inp.w_head,
            inp.wg_co,
            inp.wg_hh,
            inp.w_fac,
            inp.msg_enc,
            inp.msg_lag,
            inp.wg_msg,
            inp.eps,
            inp.mask_c,
            inp.mask_g,
            Fs,
            Gs,
            head,
            co,
            Ms,
            Cs,
            gates_c,
            gates_g,
            Ph,
        )
        ctx.flags = (inp.msg_from_state, inp.clip_c, inp.clip_g)
        ctx.has_controller = inp.ci_proj.numel() > 0
        ctx.has_messages = inp.msg_enc.numel() > 0
        ctx.ci_rows = inp.ci_proj.shape[1] if ctx.has_controller else 0
        return Fs, Gs, head, co, Ms

    @staticmethod
    def backward(ctx, dF, dG, dhead, dco, dMs):
        grads = native_scans().lfads_scan_backward(
            dF, dG, dhead, dco, dMs, *ctx.saved_tensors, *ctx.flags
        )
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
    if torch.is_grad_enabled() and any(
        isinstance(a, torch.Tensor) and a.requires_grad for a in inp
    ):
        return LFADSScan.apply(*inp)
    return tuple(native_scans().lfads_scan_forward(*inp, False)[:5])


def pad_inferred_inputs(head: torch.Tensor, co: torch.Tensor, n_steps: int, groups: int = 1):
    """The inferred inputs' mean, log-variance and sample batch-major, zero past the encoded bins.

    Shape:
        head: (Tc, B, G * 2 C), [mean | log-variance] per group;
        co: (Tc, B, G * C) -> three (B, n_steps, G * C)
    """
    n_ci, B, GC = co.shape
    pad = lambda x: torch.cat([x, x.new_zeros(n_steps - n_ci, B, GC)]) if n_ci < n_steps else x  # noqa: E731
    mean, logvar = (p.reshape(n_ci, B, GC) for p in head.view(n_ci, B, groups, 2, -1).unbind(3))
    return tuple(pad(x).transpose(0, 1) for x in (mean, logvar, co))


def scan_inputs(
    gens: Sequence[nn.Module],
    ics: Sequence[torch.Tensor],
    ci_rows: Sequence[Optional[torch.Tensor]],
    ext: Optional[torch.Tensor],
    ext_column: int,
    ext_size: int,
    n_steps: int,
    sample: bool,
    feedback: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None,
    msg_from_state: bool = False,
) -> ScanInputs:
    """The scan's arguments for LFADS generators with identical settings, one group each
    (one generator: the single-area unroll; a multi-area model's areas:
    :mod:`dsid.models.multiarea.scan`). Every projection that does not depend on the state is one
    product over all bins here; the random numbers (inferred-input noise, dropout masks) are drawn
    for all bins at once.

    Shape:
        ics[g]: (B, I); ci_rows[g]: (B / k, T_ci, D) or None (see :func:`ci_repeat`);
        ext: (B, T_ext, ext_size) or None, read by every generator's input columns
        ext_column .. ext_column + ext_size;
        feedback: (msg_enc, msg_lag, wg_msg) as in :class:`ScanInputs`, or None
    """
    gen0, G = gens[0], len(gens)
    H, C = gen0.hidden_size, gen0.co_size
    stack = lambda ws: torch.stack(list(ws))  # noqa: E731  (G, rows, columns)
    g0s = [gen.ic_to_state(ic) for gen, ic in zip(gens, ics)]
    g0 = torch.cat(g0s, -1)
    f0 = torch.cat([gen.to_factors(gen.dropout(g)) for gen, g in zip(gens, g0s)], -1)
    B, empty = g0.shape[0], g0.new_empty(0)
    b_ih = torch.cat([gen.cell.bias_ih for gen in gens])
    ext_proj = b_ih.expand(n_steps, B, G * 3 * H)
    if ext_size and ext is not None and ext.shape[1]:
        n_ext = min(ext.shape[1], n_steps)
        w_ext = torch.cat(
            [gen.cell.weight_ih[:, ext_column : ext_column + ext_size] for gen in gens]
        )
        proj = torch.addmm(
            b_ih, ext[:, :n_ext].transpose(0, 1).reshape(n_ext * B, ext_size), w_ext.t()
        )
        proj = proj.view(n_ext, B, -1)
        ext_proj = torch.cat([proj, ext_proj[n_ext:]]) if n_ext < n_steps else proj
    ctrl = [empty] * 7
    eps, mask_c, clip_c = empty, empty, 0.0
    if gen0.use_controller:
        cons = [gen.controller for gen in gens]
        D, Hc = ci_rows[0].shape[2], cons[0].hidden_size
        n_ci, B_ci = min(ci_rows[0].shape[1], n_steps), ci_rows[0].shape[0]
        ci = stack(c[:, :n_ci].transpose(0, 1) for c in ci_rows).reshape(G, n_ci * B_ci, D)
        w_ci = stack(c.cell.weight_ih[:, :D] for c in cons).transpose(1, 2)
        b_ci = stack(c.cell.bias_ih for c in cons).unsqueeze(1)
        ci_proj = torch.baddbmm(b_ci, ci, w_ci).view(G, n_ci, B_ci, 3 * Hc).permute(1, 2, 0, 3)
        ctrl = [
            ci_proj.reshape(n_ci, B_ci, G * 3 * Hc),
            stack(c.cell.weight_ih[:, D:] for c in cons),
            stack(c.cell.weight_hh for c in cons),
            torch.cat([c.cell.bias_hh for c in cons]),
            stack(c.head.weight for c in cons),
            torch.cat([c.head.bias for c in cons]),
            stack(gen.cell.weight_ih[:, :C] for gen in gens),
        ]
        eps = torch.randn(n_ci, B, G * C, dtype=g0.dtype, device=g0.device) if sample else empty
        mask_c = dropout_mask(cons[0].dropout, (n_ci, B, G * Hc), g0)
        clip_c = float(cons[0].cell.clip)
    msg_enc, msg_lag, wg_msg = feedback if feedback is not None else (empty, empty, empty)
    return ScanInputs(
        ctrl[0],
        ext_proj,
        g0,
        f0,
        *ctrl[1:],
        stack(gen.cell.weight_hh for gen in gens),
        torch.cat([gen.cell.bias_hh for gen in gens]),
        stack(gen.to_factors.normalized_weight() for gen in gens),
        msg_enc,
        msg_lag,
        wg_msg,
        eps,
        mask_c,
        dropout_mask(gen0.dropout, (n_steps, B, G * H), g0),
        msg_from_state,
        clip_c,
        float(gen0.cell.clip),
    )


def lfads_unroll(
    gen: nn.Module,
    ic: torch.Tensor,
    ci: Optional[torch.Tensor],
    ext: Optional[torch.Tensor],
    n_steps: int,
    sample: bool,
) -> GeneratorOutput:
    """:class:`~dsid.modules.generators.lfads.LFADSGenerator`'s unroll on the compiled scan
    (arguments checked by the caller; see the module docstring).

    Shape:
        ic: (B, I); ci: (B / k, T_ci, ci_input_size) or None (k >= 1: row i serves batch entries
        i k ... i k + k - 1, e.g. the posterior samples of one trial); ext: (B, T_ext, E) or None
        returns factors (B, T', F), states (B, T', H), co_* (B, T', C) or None; T' = n_steps
    """
    ci_repeat(
        gen, ci, ic.shape[0]
    )  # the rows of ci divide the batch (the scan reads each row B / rows times)
    Fs, Gs, head, co, _ = run_scan(
        scan_inputs([gen], [ic], [ci], ext, gen.co_size, gen.ext_input_size, n_steps, sample)
    )
    factors, states = Fs.transpose(0, 1), Gs.transpose(0, 1)
    if not gen.use_controller:
        return GeneratorOutput(factors, states, None, None, None)
    return GeneratorOutput(factors, states, *pad_inferred_inputs(head, co, n_steps))
