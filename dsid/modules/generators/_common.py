"""Pieces shared by the step-API generators: output type, clipped GRU cell, norm-constrained
factor map, the LFADS-style controller and the unroll loop."""
from __future__ import annotations

from typing import Dict, NamedTuple, Optional

import torch
from torch import nn


class GeneratorOutput(NamedTuple):
    factors: torch.Tensor  # (B, T, F)
    states: torch.Tensor  # (B, T, H)
    co_mean: Optional[torch.Tensor]  # (B, T, C)
    co_logvar: Optional[torch.Tensor]  # (B, T, C)
    co_sample: Optional[torch.Tensor]  # (B, T, C)


class ClippedGRUCell(nn.GRUCell):
    """GRU cell whose hidden state is clipped to [-clip, clip] (LFADS' stabiliser)."""

    def __init__(self, input_size: int, hidden_size: int, clip: float = 5.0):
        super().__init__(input_size, hidden_size)
        self.clip = clip

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Shape: x (B, input_size), h (B, H) -> (B, H)."""
        return super().forward(x, h).clamp(-self.clip, self.clip)


class NormalizedLinear(nn.Linear):
    """Linear map whose weight rows (one per output) have unit norm: factors cannot grow by scale."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: x (B, ..., in_features) -> (B, ..., out_features)."""
        return nn.functional.linear(x, nn.functional.normalize(self.weight, dim=1), self.bias)


class Controller(nn.Module):
    """GRU that reads the encoder's per-step encoding and the previous factors and emits the
    posterior (mean, log-variance) of the inferred input, and a sample of it."""

    def __init__(self, *, ci_input_size: int, factor_size: int, controller_size: int, co_size: int,
                 clip: float = 5.0, dropout: float = 0.0):
        super().__init__()
        self.co_size, self.hidden_size = co_size, controller_size
        self.cell = ClippedGRUCell(ci_input_size + factor_size, controller_size, clip)
        self.head = nn.Linear(controller_size, 2 * co_size)
        self.dropout = nn.Dropout(dropout)

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(batch, self.hidden_size)

    def step(self, c: torch.Tensor, ci_t: Optional[torch.Tensor], f: torch.Tensor, sample: bool):
        """One step. Without an encoding (``ci_t`` None, e.g. forward prediction) the inferred input
        falls back to the prior mean, zero.

        Shape:
            c: (B, controller_size); ci_t: (B, ci_input_size) or None; f: (B, F)
            returns c, co_mean, co_logvar, co: (B, controller_size), (B, C) x 3
        """
        if ci_t is None:
            co = f.new_zeros(f.shape[0], self.co_size)
            return c, co, torch.zeros_like(co), co
        c = self.cell(torch.cat([ci_t, f], dim=-1), c)
        mean, logvar = self.head(self.dropout(c)).chunk(2, dim=-1)
        co = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
        return c, mean, logvar, co


def unroll(gen: nn.Module, ic: torch.Tensor, ci: Optional[torch.Tensor], ext: Optional[torch.Tensor],
           n_steps: Optional[int], sample: bool) -> GeneratorOutput:
    """Run ``gen.initial_state``/``gen.step`` for ``n_steps`` bins; bins past the end of ``ci``/``ext``
    get no input.

    Shape:
        ic: (B, I); ci: (B, T, ci_input_size) or None; ext: (B, T, ext_input_size) or None
        returns factors (B, T', F), states (B, T', H), co_* (B, T', C) or None; T' = n_steps
    """
    name = getattr(gen, "registry_name", type(gen).__name__)
    if n_steps is None:
        if ci is None and ext is None:
            raise ValueError(f"{name} generator: give n_steps when there is no ci or ext input")
        n_steps = (ci if ci is not None else ext).shape[1]
    if gen.use_controller and ci is None:
        raise ValueError(f"{name} generator: the controller needs encoder ci (encoder ci_size > 0)")
    state = gen.initial_state(ic)
    outs = []
    for t in range(n_steps):
        ci_t = ci[:, t] if ci is not None and t < ci.shape[1] else None
        ext_t = ext[:, t] if ext is not None and t < ext.shape[1] else None
        state, out = gen.step(state, ci_t, ext_t, sample)
        outs.append(out)
    stack = lambda k: torch.stack([o[k] for o in outs], dim=1)  # noqa: E731
    if gen.use_controller:
        return GeneratorOutput(stack("f"), stack("g"), stack("co_mean"), stack("co_logvar"), stack("co"))
    return GeneratorOutput(stack("f"), stack("g"), None, None, None)


def step_inputs(gen: nn.Module, state: Dict[str, torch.Tensor], ci_t, ext_t, sample: bool):
    """The controller step plus external input shared by ``node`` and ``linear``: returns the input
    vector u_t (B, co_size + ext_input_size, or None when there is none), the new controller state
    (or None) and the output entries co_mean/co_logvar/co."""
    g, f = state["g"], state["f"]
    inputs, out, c = [], {}, None
    if gen.use_controller:
        c, mean, logvar, co = gen.controller.step(state["c"], ci_t, f, sample)
        out.update(co_mean=mean, co_logvar=logvar, co=co)
        inputs.append(co)
    if gen.ext_input_size:
        inputs.append(ext_t if ext_t is not None else g.new_zeros(g.shape[0], gen.ext_input_size))
    return (torch.cat(inputs, dim=-1) if inputs else None), c, out


def finish_step(gen: nn.Module, g: torch.Tensor, c: Optional[torch.Tensor], out: Dict[str, torch.Tensor]):
    """The end of every generator step: factors from the new state, the new state dict and the step's
    outputs. Returns ``(new state, out)`` with ``out`` holding f (B, F) and g (B, H)."""
    f = gen.to_factors(gen.dropout(g))
    new_state = {"g": g, "f": f}
    if gen.use_controller:
        new_state["c"] = c
    out.update(f=f, g=g)
    return new_state, out
