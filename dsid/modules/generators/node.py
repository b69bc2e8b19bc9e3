"""Neural ODE generator: an MLP vector field integrated with fixed-step RK4."""

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
from dsid.modules.recurrent.step_protocol import StepGenerator, sub_params
from dsid.registry import GENERATORS


class VectorField(nn.Module):
    """dz/dt = MLP([z, u]): ``n_layers`` hidden tanh layers of ``mlp_size`` units."""

    def __init__(self, state_size: int, input_size: int, mlp_size: int, n_layers: int):
        super().__init__()
        layers, width = [], state_size + input_size
        for _ in range(n_layers):
            layers += [nn.Linear(width, mlp_size), nn.Tanh()]
            width = mlp_size
        layers.append(nn.Linear(width, state_size))
        self.net = nn.Sequential(*layers)
        with torch.no_grad():  # no constant drift at the start
            self.net[-1].bias.zero_()

    def step_params(self) -> Dict[str, torch.Tensor]:
        layers = [m for m in self.net if isinstance(m, nn.Linear)]
        return {
            k: v
            for i, m in enumerate(layers)
            for k, v in ((f"{i}.w", m.weight), (f"{i}.b", m.bias))
        }

    def grouped(
        self, p: Dict[str, torch.Tensor], z: torch.Tensor, u: Optional[torch.Tensor]
    ) -> torch.Tensor:
        """The time derivative for a group of G fields (``p``: :meth:`step_params` stacked).

        Shape:
            z: (G, B, H); u: (G, B, U) or None -> (G, B, H)
        """
        h = z if u is None else torch.cat([z, u], dim=-1)
        n = len(p) // 2
        for i in range(n):
            h = affine(h, p[f"{i}.w"], p[f"{i}.b"])
            if i < n - 1:
                h = torch.tanh(h)
        return h


@GENERATORS.register("node")
class NeuralODEGenerator(StepGenerator):
    """Latent state z (``hidden_size``) evolves by dz/dt = MLP([z, u]), integrated per bin with
    ``substeps`` fixed RK4 steps of total length ``dt``; u holds the controller's inferred input
    (``co_size > 0``, as in LFADS) and the external input, constant within a bin. Factors are a
    norm-constrained linear map of z. The state is clipped to [-clip, clip]. Implements the step
    API (:class:`~dsid.modules.recurrent.step_protocol.StepGenerator`) so multi-area models can
    drive it.
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
        mlp_size: int = 64,
        n_layers: int = 2,
        dt: float = 0.1,
        substeps: int = 1,
        controller_size: int = 32,
        dropout: float = 0.1,
        clip: float = 10.0,
    ):
        super().__init__()
        if substeps < 1 or not dt > 0:
            raise ValueError(f"node generator: need dt > 0 and substeps >= 1, got {dt}, {substeps}")
        self.hidden_size, self.factor_size, self.co_size = hidden_size, factor_size, co_size
        self.ext_input_size, self.dt, self.substeps, self.clip = ext_input_size, dt, substeps, clip
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
        self.field = VectorField(hidden_size, co_size + ext_input_size, mlp_size, n_layers)
        self.dropout = nn.Dropout(dropout)
        self.to_factors = NormalizedLinear(hidden_size, factor_size, bias=False)

    def recurrent_weights(self):
        """Weights penalised by the L2 term: the vector field's and the controller's recurrence."""
        ws = [m.weight for m in self.field.net if isinstance(m, nn.Linear)]
        if self.use_controller:
            ws.append(self.controller.cell.weight_hh)
        return ws

    def ext_input_weight(self) -> torch.Tensor:
        """The vector field's first-layer columns that read the external input.
        Shape: (mlp_size, ext_input_size)."""
        return self.field.net[0].weight[:, self.hidden_size + self.co_size :]

    def step_params(self) -> Dict[str, torch.Tensor]:
        """The tensors a step uses (see
        :func:`~dsid.modules.recurrent.step_protocol.stack_step_params`)."""
        return {
            **base_step_params(self),
            **{f"field.{k}": v for k, v in self.field.step_params().items()},
        }

    def integrate(
        self, p: Dict[str, torch.Tensor], z: torch.Tensor, u: Optional[torch.Tensor]
    ) -> torch.Tensor:
        """One bin of RK4 for a group. Shape: z (G, B, H), u (G, B, U) or None -> (G, B, H)."""
        field = sub_params(p, "field")
        h = self.dt / self.substeps
        for _ in range(self.substeps):
            k1 = self.field.grouped(field, z, u)
            k2 = self.field.grouped(field, z + 0.5 * h * k1, u)
            k3 = self.field.grouped(field, z + 0.5 * h * k2, u)
            k4 = self.field.grouped(field, z + h * k3, u)
            z = z + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        return z.clamp(-self.clip, self.clip)

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
        return finish_step(self, p, self.integrate(p, state["g"], u), c, out)
