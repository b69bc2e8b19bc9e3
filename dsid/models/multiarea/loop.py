"""A multi-area model's areas stepped together bin by bin in Python
(``MultiAreaSAE.stepwise_forward``, and ``forward`` where the compiled scan of
:mod:`dsid.models.multiarea.scan` does not apply).

The areas form one group: their generators' step parameters are stacked (``stack_step_params``) and
every weight is one batched matrix product per bin for all areas (``grouped_step``); the coupling
keeps its lag window and emits every edge's message for the next bin.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import torch

from dsid.modules.coupling.base import stack_steps
from dsid.modules.recurrent.step_protocol import bins, stack_step_params


def step_areas(
    model,
    ics: List[torch.Tensor],
    ci: List[Optional[torch.Tensor]],
    ext: Optional[torch.Tensor],
    T: int,
    n_steps: int,
    sample: bool,
    probe: Optional[dict],
    intervention=None,
    co_given: Optional[torch.Tensor] = None,
) -> Dict[str, object]:
    """``model``'s areas advanced together bin by bin (stacked parameters, batched products): the
    stepwise twin of the compiled scan and what runs where it does not (see
    :mod:`dsid.models.multiarea.scan`). ``intervention``
    (:class:`~dsid.models.multiarea.intervention.Intervention`) alters messages from its bin on;
    ``co_given`` replaces the controllers' inferred inputs, bin by bin.

    Shape:
        ics[a]: (B, I); ci[a]: (B, T, D) or None; ext: (B, T_ext, E) or None;
        co_given: (T', A, B, C) or None
        returns dict: f (B, T', A * F), g (B, T', A * H), co_mean/co_logvar/co (B, T', A * C) with
        controllers, messages (B, T', M) and fed (CouplingStep of (B, T, K_e)) with edges
    """
    cpl, A, B = model.coupling, model.n_areas, ics[0].shape[0]
    gens = [ar.generator for ar in model.areas]
    init = [gen.initial_state(ic) for gen, ic in zip(gens, ics)]
    # the areas advance as one group: stacked parameters, state and inputs (leading axis: area)
    params = stack_step_params(gens)
    state = {k: torch.stack([s[k] for s in init]) for k in init[0]}
    # per-bin views made once (the backward of unbind is one stack; indexing a bin every step would
    # accumulate a full-size gradient per bin): ci_steps[t] (A, B, C), ext_steps[t] (B, E)
    ci_steps = bins(torch.stack(ci)) if ci[0] is not None else ()
    ext_steps = bins(ext, dim=1) if ext is not None else ()
    no_input = ics[0].new_zeros(
        B, model.ext_input_size + 1
    )  # the external input's columns, then a zero
    window = cpl.start(model._signals(init))
    step = cpl(window, list(state["g"]), sample)
    held: Dict[int, torch.Tensor] = {}  # an intervention's clamped messages
    if intervention is not None:
        step = intervention.apply(step, -1, held)
    rec: List[Dict[str, torch.Tensor]] = []
    fed, msgs = [], []  # the messages fed to the observed bins' steps; those recorded
    for t in range(n_steps):
        if t < T:
            fed.append(step)
        tail = no_input
        if t < len(ext_steps):
            tail = torch.cat([ext_steps[t], no_input[:, :1]], -1)
        feed = (
            torch.cat([*step.messages, tail], -1).index_select(1, model.input_gather).view(B, A, -1)
        )
        ext_t = feed.transpose(0, 1) if feed.shape[-1] else None
        ci_t = ci_steps[t] if t < min(T, len(ci_steps)) else None
        if probe is not None:
            model._probe(probe, state, ci_t, ext_t)
        if co_given is not None:
            state["co_given"] = co_given[t]
        state, out = gens[0].grouped_step(params, state, ci_t, ext_t, sample)
        rec.append(out)
        window = cpl.push(
            window, model._signals([{"f": f, "g": g} for f, g in zip(out["f"], out["g"])])
        )
        step = cpl(window, list(state["g"]), sample)
        if intervention is not None:
            step = intervention.apply(step, t, held)
        msgs.append(step.messages)
    # (A, B, T', .) per key, area blocks along the last axis
    seq = {k: torch.cat(list(torch.stack([o[k] for o in rec], 2)), -1) for k in rec[0]}
    if cpl.edges:
        seq["messages"] = torch.cat(
            [torch.stack([m[e] for m in msgs], 1) for e in range(len(cpl.edges))], -1
        )
        seq["fed"] = stack_steps(fed, len(cpl.edges))
    return seq
