"""LFADS generator: a GRU started from the initial condition, driven by a controller's inferred
inputs."""

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
from dsid.modules.recurrent import native
from dsid.modules.recurrent.gru import ClippedGRUCell, gru_update
from dsid.modules.recurrent.lfads_scan import lfads_unroll
from dsid.modules.recurrent.step_protocol import (
    GeneratorOutput,
    StepGenerator,
    resolve_steps,
    sub_params,
    unroll,
)
from dsid.registry import GENERATORS


@GENERATORS.register("lfads")
class LFADSGenerator(StepGenerator):
    """GRU dynamics with an optional controller emitting sampled inferred inputs.

    Per step: controller(ci_t, previous factors) -> inferred-input posterior (mean, logvar) ->
    sample u_t -> generator GRU(u_t, external input e_t) -> factors f_t (norm-constrained linear map
    of the state). ``co_size=0`` removes the controller (autonomous dynamics). The step API
    (:class:`~dsid.modules.recurrent.step_protocol.StepGenerator`) lets multi-area models inject
    messages.

    ``forward`` runs on the compiled scan (:mod:`dsid.modules.recurrent.lfads_scan`) on a CPU with
    float32/float64 tensors, else on the step-by-step unroll (``stepwise_forward``); both compute
    the same function; with one ``ci`` row per trial for k samples each, the scan reads each row k
    times instead of copying it.
    """

    def __init__(
        self,
        *,
        ic_size: int,
        hidden_size: int = 64,
        factor_size: int = 40,
        co_size: int = 4,
        ci_input_size: int = 0,
        controller_size: int = 32,
        ext_input_size: int = 0,
        dropout: float = 0.1,
        clip: float = 5.0,
    ):
        super().__init__()
        self.hidden_size, self.factor_size, self.co_size = hidden_size, factor_size, co_size
        self.ext_input_size = ext_input_size
        self.use_controller = co_size > 0
        self.ic_to_state = nn.Linear(ic_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        if self.use_controller:
            self.controller = Controller(
                ci_input_size=ci_input_size,
                factor_size=factor_size,
                controller_size=controller_size,
                co_size=co_size,
                clip=clip,
                dropout=dropout,
            )
        self.gen_input_size = max(co_size + ext_input_size, 1)
        self.cell = ClippedGRUCell(self.gen_input_size, hidden_size, clip)
        self.to_factors = NormalizedLinear(hidden_size, factor_size, bias=False)

    def recurrent_weights(self):
        """Weights penalised by the L2 term."""
        ws = [self.cell.weight_hh]
        if self.use_controller:
            ws.append(self.controller.cell.weight_hh)
        return ws

    def ext_input_weight(self) -> torch.Tensor:
        """The map of the external input into the GRU's gates. Shape: (3 * H, ext_input_size)."""
        return self.cell.weight_ih[:, self.co_size : self.co_size + self.ext_input_size]

    def step_params(self) -> Dict[str, torch.Tensor]:
        """The tensors a step uses (see
        :func:`~dsid.modules.recurrent.step_protocol.stack_step_params`)."""
        return {
            **base_step_params(self),
            **{f"cell.{k}": v for k, v in self.cell.step_params().items()},
        }

    def grouped_step(
        self,
        p: Dict[str, torch.Tensor],
        state: Dict[str, torch.Tensor],
        ci_t: Optional[torch.Tensor] = None,
        ext_t: Optional[torch.Tensor] = None,
        sample: bool = True,
    ):
        """One bin for a group of copies (shapes: :meth:`StepGenerator.grouped_step`)."""
        g = state["g"]
        x, c, out = step_inputs(self, p, state, ci_t, ext_t, sample)
        if x is None:  # autonomous: the GRU still needs an input
            x = g.new_zeros(*g.shape[:-1], 1)
        g = gru_update(x, g, sub_params(p, "cell"), self.cell.clip)
        return finish_step(self, p, g, c, out)

    def forward(
        self,
        ic: torch.Tensor,
        ci: Optional[torch.Tensor] = None,
        ext: Optional[torch.Tensor] = None,
        n_steps: Optional[int] = None,
        sample: bool = True,
    ) -> GeneratorOutput:
        """Unroll for ``n_steps`` bins (shapes: :meth:`StepGenerator.forward`)."""
        if native.usable(ic, ci, ext, self.cell.weight_hh):
            return lfads_unroll(self, ic, ci, ext, resolve_steps(self, ci, ext, n_steps), sample)
        return unroll(self, ic, ci, ext, n_steps, sample)

    def stepwise_forward(
        self,
        ic: torch.Tensor,
        ci: Optional[torch.Tensor] = None,
        ext: Optional[torch.Tensor] = None,
        n_steps: Optional[int] = None,
        sample: bool = True,
    ) -> GeneratorOutput:
        """The step-by-step unroll, bin by bin with autograd (shapes:
        :meth:`StepGenerator.forward`)."""
        return unroll(self, ic, ci, ext, n_steps, sample)
