"""A multi-area model's unroll on the compiled LFADS scan: one group per area, the coupling as a
feedback.

A :class:`~dsid.models.multiarea.model.MultiAreaSAE` whose areas have LFADS generators, and whose
coupling sends deterministic messages that are a fixed linear mixture of the source areas' lagged
factors or states (``lowrank``, ``delay``; or no coupling at all), runs as one compiled LFADS scan
with a group per area (``csrc/lfads_scan.cpp``): each area's weights stacked on a group axis, every
product block-diagonal (one per area, so the cost grows linearly with the number of areas), and the
messages a feedback of the areas' own factors (or states) through the coupling's projections, lag
weights and the destination areas' input weights. No per-bin Python, one pass back through time; the
stacked weights are built from the areas' parameters with differentiable operations at every call,
so the gradients reach each area's own weights.

What it does not cover runs on the model's step-by-step loop (same function, one bin at a time):
other generators, stochastic or target-gated messages, ``rates`` as the source signal, GPUs, the
one-step effect probes of :meth:`~dsid.models.multiarea.readouts.MultiAreaReadouts.measure_effects`.
Random numbers (inferred-input noise, dropout masks) are drawn once for all bins, as in the
single-area scan (:mod:`dsid.modules.recurrent.lfads_scan`): the same distributions, a different
order.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import torch

from dsid.modules.coupling.base import CouplingStep
from dsid.modules.generators.lfads import LFADSGenerator
from dsid.modules.recurrent import native
from dsid.modules.recurrent.lfads_scan import pad_inferred_inputs, run_scan, scan_inputs


def scan_covers(model, x: torch.Tensor, ext: Optional[torch.Tensor], probe) -> bool:
    """Whether :func:`scan_areas` computes ``model``'s unroll for these inputs."""
    cpl = model.coupling
    if probe is not None or not all(isinstance(ar.generator, LFADSGenerator) for ar in model.areas):
        return False
    if cpl.edges and (cpl.source not in ("factors", "state") or cpl.lag_linear() is None):
        return False
    return native.usable(x, ext, model.areas[0].generator.cell.weight_hh)


def message_feedback(model, empty: torch.Tensor):
    """The coupling as the scan's feedback: ``msg_enc`` (P, A * S), every sender's projections of
    its signal; ``msg_lag`` (L, P), each message column's weight per lag; ``wg_msg`` (A * 3H, P),
    the destination generators' input weights on each message column. Empty without edges."""
    cpl = model.coupling
    if not cpl.edges:
        return empty, empty, empty
    proj, lag = cpl.lag_linear()
    senders = dict(zip([a for a in range(model.n_areas) if cpl.outgoing(a)], proj))
    sizes = [
        model.factor_sizes[a] if cpl.source == "factors" else ar.generator.hidden_size
        for a, ar in enumerate(model.areas)
    ]
    enc = torch.block_diag(*[senders.get(a, empty.new_zeros(0, s)) for a, s in enumerate(sizes)])
    msg_lag = lag.t().repeat_interleave(torch.as_tensor(cpl.edge_sizes, device=lag.device), dim=1)
    C, mw = model.areas[0].generator.co_size, model.msg_width
    w_msg = torch.stack(
        [ar.generator.cell.weight_ih[:, C : C + mw] for ar in model.areas]
    )  # (A, 3H, mw)
    wg_msg = torch.bmm(w_msg, model.message_columns.to(w_msg.dtype)).flatten(0, 1)
    return enc, msg_lag.contiguous(), wg_msg


def scan_areas(
    model,
    ics: List[torch.Tensor],
    ci_rows: List[Optional[torch.Tensor]],
    ext: Optional[torch.Tensor],
    n_observed: int,
    n_steps: int,
    sample: bool,
) -> Dict[str, object]:
    """Unroll every area of ``model`` together on the compiled scan (see the module docstring).

    Shape:
        ics[a]: (B, I) sampled initial conditions; ci_rows[a]: (B / k, T, D) area a's encodings (k
        posterior samples per trial, trial-major) or None; ext: (B, T_ext, E) or None
        returns dict: f (B, T', A * F), g (B, T', A * H), co_mean/co_logvar/co (B, T', A * C) with
        controllers, messages (B, T', M) and fed (CouplingStep, (B, T, K_e) per edge) with edges
    """
    gens = [ar.generator for ar in model.areas]
    inp = scan_inputs(
        gens,
        ics,
        ci_rows,
        ext,
        gens[0].co_size + model.msg_width,
        model.ext_input_size,
        n_steps,
        sample,
        message_feedback(model, ics[0].new_empty(0)),
        model.coupling.source == "state",
    )
    Fs, Gs, head, co, Ms = run_scan(inp)
    out: Dict[str, object] = {"f": Fs.transpose(0, 1), "g": Gs.transpose(0, 1)}
    if gens[0].use_controller:
        out.update(
            zip(("co_mean", "co_logvar", "co"), pad_inferred_inputs(head, co, n_steps, len(gens)))
        )
    if model.coupling.edges:
        out["messages"] = Ms[1:].transpose(0, 1)
        fed = Ms[:n_observed].transpose(0, 1)
        out["fed"] = CouplingStep(list(fed.split(model.coupling.edge_sizes, -1)))
    return out
