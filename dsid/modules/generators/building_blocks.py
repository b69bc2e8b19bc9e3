"""Building blocks of the registered generators: the norm-constrained factor map, the LFADS-style
controller (inferred inputs), and the beginning and end every generator step shares."""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from dsid.modules.recurrent.gru import ClippedGRUCell, affine, gru_update
from dsid.modules.recurrent.step_protocol import State, sub_params


class NormalizedLinear(nn.Linear):
    """Linear map whose weight rows (one per output) have unit norm: factors cannot grow by
    scale."""

    def normalized_weight(self) -> torch.Tensor:
        return nn.functional.normalize(self.weight, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: x (B, ..., in_features) -> (B, ..., out_features)."""
        return nn.functional.linear(x, self.normalized_weight(), self.bias)


class Controller(nn.Module):
    """GRU that reads the encoder's per-step encoding and the previous factors and emits the
    posterior (mean, log-variance) of the inferred input, and a sample of it."""

    def __init__(
        self,
        *,
        ci_input_size: int,
        factor_size: int,
        controller_size: int,
        co_size: int,
        clip: float = 5.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.co_size, self.hidden_size = co_size, controller_size
        self.cell = ClippedGRUCell(ci_input_size + factor_size, controller_size, clip)
        self.head = nn.Linear(controller_size, 2 * co_size)
        self.dropout = nn.Dropout(dropout)

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(batch, self.hidden_size)

    def step_params(self) -> Dict[str, torch.Tensor]:
        return {
            **{f"cell.{k}": v for k, v in self.cell.step_params().items()},
            "head.w": self.head.weight,
            "head.b": self.head.bias,
        }

    def grouped_step(
        self,
        p: Dict[str, torch.Tensor],
        c: torch.Tensor,
        ci_t: Optional[torch.Tensor],
        f: torch.Tensor,
        sample: bool,
    ):
        """One step for a group (``p`` from :meth:`step_params`, stacked). Without an encoding
        (``ci_t`` None, e.g. forward prediction) the inferred input falls back to the prior mean,
        zero.

        Shape:
            c: (G, B, controller_size); ci_t: (G, B, ci_input_size) or None; f: (G, B, F)
            returns c, co_mean, co_logvar, co: (G, B, controller_size), (G, B, C) x 3
        """
        if ci_t is None:
            co = f.new_zeros(*f.shape[:-1], self.co_size)
            return c, co, torch.zeros_like(co), co
        c = gru_update(torch.cat([ci_t, f], dim=-1), c, sub_params(p, "cell"), self.cell.clip)
        mean, logvar = affine(self.dropout(c), p["head.w"], p["head.b"]).chunk(2, dim=-1)
        co = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
        return c, mean, logvar, co


def step_inputs(
    gen: nn.Module, p: Dict[str, torch.Tensor], state: State, ci_t, ext_t, sample: bool
):
    """The controller step plus external input shared by every generator: returns the input vector
    u_t (G, B, co_size + ext_input_size, or None when there is none), the new controller state (or
    None) and the output entries co_mean/co_logvar/co. A ``state["co_given"]`` (G, B, co_size) is
    this bin's inferred input, taken instead of the controller's (whose state is kept): an
    intervention replays a rollout's inferred inputs this way."""
    g, f = state["g"], state["f"]
    inputs, out, c = [], {}, None
    if gen.use_controller:
        given = state.get("co_given")
        if given is None:
            c, mean, logvar, co = gen.controller.grouped_step(
                sub_params(p, "controller"), state["c"], ci_t, f, sample
            )
        else:
            c, mean, logvar, co = state["c"], given, torch.zeros_like(given), given
        out.update(co_mean=mean, co_logvar=logvar, co=co)
        inputs.append(co)
    if gen.ext_input_size:
        inputs.append(
            ext_t if ext_t is not None else g.new_zeros(*g.shape[:-1], gen.ext_input_size)
        )
    return (torch.cat(inputs, dim=-1) if inputs else None), c, out


def finish_step(
    gen: nn.Module,
    p: Dict[str, torch.Tensor],
    g: torch.Tensor,
    c: Optional[torch.Tensor],
    out: Dict[str, torch.Tensor],
):
    """The end of every generator step: factors from the new state (``p["factors"]``, the
    normalized factor map), the new state dict and the step's outputs. Returns ``(new state, out)``
    with ``out`` holding f (G, B, F) and g (G, B, H)."""
    f = affine(gen.dropout(g), p["factors"])
    new_state = {"g": g, "f": f}
    if gen.use_controller:
        new_state["c"] = c
    out.update(f=f, g=g)
    return new_state, out


def base_step_params(gen: nn.Module) -> Dict[str, torch.Tensor]:
    """The step parameters every generator shares: the normalized factor map and the
    controller's."""
    p = {"factors": gen.to_factors.normalized_weight()}
    if gen.use_controller:
        p.update({f"controller.{k}": v for k, v in gen.controller.step_params().items()})
    return p
