"""The plain unroll of a step generator, bin by bin with per-bin indexing (tests only): what the
generators' fast unroll (``dsid.modules.recurrent.step_protocol.unroll``) is checked against."""

from typing import Dict, List

import torch

from dsid.modules.recurrent.step_protocol import GeneratorOutput


def per_bin_unroll(gen, ic, ci=None, ext=None, n_steps=None, sample=True) -> GeneratorOutput:
    """``gen.initial_state`` then ``gen.step`` once per bin; bins past ``ci``/``ext`` get no input.

    Shape:
        ic: (B, I); ci: (B, T, C) or None; ext: (B, T, E) or None
        -> GeneratorOutput of (B, n_steps, .)
    """
    n_steps = n_steps or (ci if ci is not None else ext).shape[1]
    state = gen.initial_state(ic)
    outs: List[Dict[str, torch.Tensor]] = []
    for t in range(n_steps):
        ci_t = ci[:, t] if ci is not None and t < ci.shape[1] else None
        ext_t = ext[:, t] if ext is not None and t < ext.shape[1] else None
        state, out = gen.step(state, ci_t, ext_t, sample)
        outs.append(out)
    stack = lambda k: torch.stack([o[k] for o in outs], dim=1)  # noqa: E731
    if gen.use_controller:
        return GeneratorOutput(
            stack("f"), stack("g"), stack("co_mean"), stack("co_logvar"), stack("co")
        )
    return GeneratorOutput(stack("f"), stack("g"), None, None, None)
