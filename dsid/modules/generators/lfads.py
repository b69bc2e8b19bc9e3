"""LFADS generator: a GRU started from the initial condition, driven by a controller's inferred inputs."""
from __future__ import annotations

from typing import Dict, NamedTuple, Optional

import torch
from torch import nn

from dsid.registry import GENERATORS


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
        return super().forward(x, h).clamp(-self.clip, self.clip)


class NormalizedLinear(nn.Linear):
    """Linear map whose weight rows (one per output) have unit norm: factors cannot grow by scale."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, nn.functional.normalize(self.weight, dim=1), self.bias)


@GENERATORS.register("lfads")
class LFADSGenerator(nn.Module):
    """GRU dynamics with an optional controller emitting sampled inferred inputs.

    Per step: controller(ci_t, previous factors) -> inferred-input posterior (mean, logvar) ->
    sample u_t -> generator GRU(u_t, external input e_t) -> factors f_t (norm-constrained linear map
    of the state). ``co_size=0`` removes the controller (autonomous dynamics). The step API
    (``initial_state``/``step``) lets multi-area models inject messages as external input.
    """

    def __init__(self, *, ic_size: int, hidden_size: int = 100, factor_size: int = 40,
                 co_size: int = 4, ci_input_size: int = 0, controller_size: int = 64,
                 ext_input_size: int = 0, dropout: float = 0.1, clip: float = 5.0):
        super().__init__()
        self.hidden_size, self.factor_size, self.co_size = hidden_size, factor_size, co_size
        self.ext_input_size = ext_input_size
        self.use_controller = co_size > 0
        self.ic_to_state = nn.Linear(ic_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        if self.use_controller:
            self.ci_input_size = ci_input_size
            self.controller = ClippedGRUCell(ci_input_size + factor_size, controller_size, clip)
            self.co_head = nn.Linear(controller_size, 2 * co_size)
        self.gen_input_size = max(co_size + ext_input_size, 1)
        self.cell = ClippedGRUCell(self.gen_input_size, hidden_size, clip)
        self.to_factors = NormalizedLinear(hidden_size, factor_size, bias=False)

    def recurrent_weights(self):
        """Weights penalised by the L2 term."""
        ws = [self.cell.weight_hh]
        if self.use_controller:
            ws.append(self.controller.weight_hh)
        return ws

    def initial_state(self, ic: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Shape: ic (B, I) -> state dict of (B, H) / (B, F) / (B, controller) tensors."""
        g = self.ic_to_state(ic)
        state = {"g": g, "f": self.to_factors(self.dropout(g))}
        if self.use_controller:
            state["c"] = g.new_zeros(g.shape[0], self.controller.hidden_size)
        return state

    def step(self, state: Dict[str, torch.Tensor], ci_t: Optional[torch.Tensor] = None,
             ext_t: Optional[torch.Tensor] = None, sample: bool = True):
        """Advance one bin.

        Shape:
            ci_t: (B, ci_input_size) or None (no encoding: e.g. beyond the observed window)
            ext_t: (B, ext_input_size) or None
            returns (new state, dict with f (B, F), g (B, H) and co_mean/co_logvar/co (B, C))
        """
        g, f = state["g"], state["f"]
        inputs, out = [], {}
        if self.use_controller:
            if ci_t is None:  # no data: inferred inputs fall back to the prior mean (zero)
                co = g.new_zeros(g.shape[0], self.co_size)
                out.update(co_mean=co, co_logvar=torch.zeros_like(co), co=co)
                c = state["c"]
            else:
                c = self.controller(torch.cat([ci_t, f], dim=-1), state["c"])
                mean, logvar = self.co_head(self.dropout(c)).chunk(2, dim=-1)
                co = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
                out.update(co_mean=mean, co_logvar=logvar, co=co)
            inputs.append(co)
        if self.ext_input_size:
            inputs.append(ext_t if ext_t is not None else g.new_zeros(g.shape[0], self.ext_input_size))
        x = torch.cat(inputs, dim=-1) if inputs else g.new_zeros(g.shape[0], 1)
        g = self.cell(x, g)
        f = self.to_factors(self.dropout(g))
        new_state = {"g": g, "f": f}
        if self.use_controller:
            new_state["c"] = c
        out.update(f=f, g=g)
        return new_state, out

    def forward(self, ic: torch.Tensor, ci: Optional[torch.Tensor] = None,
                ext: Optional[torch.Tensor] = None, n_steps: Optional[int] = None,
                sample: bool = True) -> GeneratorOutput:
        """Unroll the dynamics for ``n_steps`` bins (default: the length of ``ci``).

        Bins past the end of ``ci``/``ext`` run with no inferred or external input (forward
        prediction).

        Shape:
            ic: (B, I) sampled initial condition; ci: (B, T, ci_input_size) or None;
            ext: (B, T, ext_input_size) or None
            returns factors (B, T', F), states (B, T', H), co_* (B, T', C) or None; T' = n_steps
        """
        if n_steps is None:
            if ci is None and ext is None:
                raise ValueError("lfads generator: give n_steps when there is no ci or ext input")
            n_steps = (ci if ci is not None else ext).shape[1]
        if self.use_controller and ci is None:
            raise ValueError("lfads generator: the controller needs encoder ci (encoder ci_size > 0)")
        state = self.initial_state(ic)
        outs = []
        for t in range(n_steps):
            ci_t = ci[:, t] if ci is not None and t < ci.shape[1] else None
            ext_t = ext[:, t] if ext is not None and t < ext.shape[1] else None
            state, out = self.step(state, ci_t, ext_t, sample)
            outs.append(out)
        stack = lambda k: torch.stack([o[k] for o in outs], dim=1)  # noqa: E731
        if self.use_controller:
            return GeneratorOutput(stack("f"), stack("g"), stack("co_mean"), stack("co_logvar"), stack("co"))
        return GeneratorOutput(stack("f"), stack("g"), None, None, None)
