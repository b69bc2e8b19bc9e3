"""LFADS generator: a GRU started from the initial condition, driven by a controller's inferred inputs."""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from dsid.modules.generators._common import (ClippedGRUCell, Controller, GeneratorOutput,  # noqa: F401
                                              NormalizedLinear, finish_step, step_inputs, unroll)
from dsid.registry import GENERATORS


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
            self.controller = Controller(ci_input_size=ci_input_size, factor_size=factor_size,
                                         controller_size=controller_size, co_size=co_size, clip=clip,
                                         dropout=dropout)
        self.gen_input_size = max(co_size + ext_input_size, 1)
        self.cell = ClippedGRUCell(self.gen_input_size, hidden_size, clip)
        self.to_factors = NormalizedLinear(hidden_size, factor_size, bias=False)

    def recurrent_weights(self):
        """Weights penalised by the L2 term."""
        ws = [self.cell.weight_hh]
        if self.use_controller:
            ws.append(self.controller.cell.weight_hh)
        return ws

    def initial_state(self, ic: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Shape: ic (B, I) -> state dict of (B, H) / (B, F) / (B, controller) tensors."""
        g = self.ic_to_state(ic)
        state = {"g": g, "f": self.to_factors(self.dropout(g))}
        if self.use_controller:
            state["c"] = self.controller.initial_state(g.shape[0], g)
        return state

    def step(self, state: Dict[str, torch.Tensor], ci_t: Optional[torch.Tensor] = None,
             ext_t: Optional[torch.Tensor] = None, sample: bool = True):
        """Advance one bin.

        Shape:
            ci_t: (B, ci_input_size) or None (no encoding: e.g. beyond the observed window)
            ext_t: (B, ext_input_size) or None
            returns (new state, dict with f (B, F), g (B, H) and co_mean/co_logvar/co (B, C))
        """
        g = state["g"]
        x, c, out = step_inputs(self, state, ci_t, ext_t, sample)
        if x is None:  # autonomous: the GRU still needs an input
            x = g.new_zeros(g.shape[0], 1)
        g = self.cell(x, g)
        return finish_step(self, g, c, out)

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
        return unroll(self, ic, ci, ext, n_steps, sample)
