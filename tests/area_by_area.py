"""The plain, area-by-area unroll of a :class:`~dsid.models.multiarea.model.MultiAreaSAE`.

``MultiAreaSAE.forward`` advances all areas as one group (stacked parameters, batched products).
This is the same computation written the obvious way: at every bin each area's generator steps on
its own (``generator.step``) with its messages assembled edge by edge. Tests check the two agree;
``benchmarks/speed_multiarea.py`` times them against each other.
"""

from __future__ import annotations

from typing import Tuple

import torch


def area_by_area_forward(model, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Unroll ``model`` (no sampling) one area at a time.

    Shape:
        x: (B, T, N_in) held-in input, as ``model.augment`` returns it
        returns factors (B, T, A * F) and messages (B, T, sum of the edges' widths), laid out as
        ``model(x)["factors"]`` and ``["messages"]``
    """
    cpl = model.coupling
    B, T = x.shape[:2]
    encs = [ar.encoder(model.area_input(x, a)) for a, ar in enumerate(model.areas)]
    states = [ar.generator.initial_state(e.ic_mean) for ar, e in zip(model.areas, encs)]
    window = cpl.start([model._signal(a, s) for a, s in enumerate(states)])
    step = cpl(window, [s["g"] for s in states], False)
    factors, messages = [], []
    for t in range(T):
        outs = []
        for a, ar in enumerate(model.areas):
            inputs = [step.messages[e] for e in cpl.incoming(a)]
            width = sum(m.shape[-1] for m in inputs)
            ext_t = torch.cat(inputs + [x.new_zeros(B, model.msg_width - width)], -1)
            states[a], out = ar.generator.step(states[a], encs[a].ci[:, t], ext_t, sample=False)
            outs.append(out)
        window = cpl.push(window, [model._signal(a, o) for a, o in enumerate(outs)])
        step = cpl(window, [s["g"] for s in states], False)
        factors.append(torch.cat([o["f"] for o in outs], -1))
        messages.append(torch.cat(step.messages, -1) if step.messages else x.new_zeros(B, 0))
    return torch.stack(factors, 1), torch.stack(messages, 1)
