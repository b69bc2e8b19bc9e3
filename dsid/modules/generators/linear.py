"""Linear dynamical system generator: the baseline with linear latent dynamics."""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from dsid.modules.generators.building_blocks import (
    Controller,
    NormalizedLinear,
    base_step_params,
    finish_step,
    step_inputs,
)
from dsid.modules.recurrent.gru import affine
from dsid.modules.recurrent.step_protocol import StepGenerator
from dsid.registry import GENERATORS


@GENERATORS.register("linear")
class LinearGenerator(StepGenerator):
    """z_{t+1} = A z_t + B u_t + b, factors = norm-constrained linear map of z. u holds the
    controller's inferred input (``co_size > 0``, as in LFADS) and the external input. A starts as
    ``decay`` times a random rotation (stable); the state is clipped to [-clip, clip]. Implements
    the step API of :class:`~dsid.modules.recurrent.step_protocol.StepGenerator`.
    """

    def __init__(
        self,
        *,
        ic_size: int,
        hidden_size: int = 16,
        factor_size: int = 20,
        co_size: int = 4,
        ci_input_size: int = 0,
        ext_input_size: int = 0,
        decay: float = 0.98,
        controller_size: int = 32,
        dropout: float = 0.1,
        clip: float = 10.0,
    ):
        super().__init__()
        self.hidden_size, self.factor_size, self.co_size = hidden_size, factor_size, co_size
        self.ext_input_size, self.clip = ext_input_size, clip
        self.use_controller = co_size > 0
        self.ic_to_state = nn.Linear(ic_size, hidden_size)
        if self.use_controller:
            self.controller = Controller(
                ci_input_size=ci_input_size,
                factor_size=factor_size,
                controller_size=controller_size,
                co_size=co_size,
                clip=5.0,
                dropout=dropout,
            )
        self.dynamics = nn.Linear(hidden_size, hidden_size)  # A, b
        with torch.no_grad():
            q, _ = torch.linalg.qr(torch.randn(hidden_size, hidden_size))
            self.dynamics.weight.copy_(decay * q)
            self.dynamics.bias.zero_()
        n_in = co_size + ext_input_size
        self.input_map = nn.Linear(n_in, hidden_size, bias=False) if n_in else None  # B
        self.dropout = nn.Dropout(dropout)
        self.to_factors = NormalizedLinear(hidden_size, factor_size, bias=False)

    def recurrent_weights(self):
        """Weights penalised by the L2 term: the input map and the controller's recurrence (A is
        not shrunk towards zero, which would only make the dynamics decay)."""
        ws = [] if self.input_map is None else [self.input_map.weight]
        if self.use_controller:
            ws.append(self.controller.cell.weight_hh)
        return ws

    def ext_input_weight(self) -> torch.Tensor:
        """The columns of B that map the external input. Shape: (H, ext_input_size)."""
        if self.input_map is None:
            return self.dynamics.weight[:, :0]
        return self.input_map.weight[:, self.co_size :]

    def step_params(self) -> Dict[str, torch.Tensor]:
        """The tensors a step uses (see
        :func:`~dsid.modules.recurrent.step_protocol.stack_step_params`)."""
        p = {**base_step_params(self), "A": self.dynamics.weight, "b": self.dynamics.bias}
        if self.input_map is not None:
            p["B"] = self.input_map.weight
        return p

    def grouped_step(
        self,
        p: Dict[str, torch.Tensor],
        state: Dict[str, torch.Tensor],
        ci_t: Optional[torch.Tensor] = None,
        ext_t: Optional[torch.Tensor] = None,
        sample: bool = True,
    ):
        """One bin for a group of copies (shapes: :meth:`StepGenerator.grouped_step`)."""
        u, c, out = step_inputs(self, p, state, ci_t, ext_t, sample)
        g = affine(state["g"], p["A"], p["b"])
        if u is not None:
            g = g + affine(u, p["B"])
        return finish_step(self, p, g.clamp(-self.clip, self.clip), c, out)
