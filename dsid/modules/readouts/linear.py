"""Linear readout from factors to the observation model's parameters of every neuron."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from dsid.registry import READOUTS


@READOUTS.register("linear")
class LinearReadout(nn.Module):
    """Affine map from factors to ``n_params`` observation parameters per neuron."""

    def __init__(self, *, factor_size: int, n_neurons: int, n_params: int = 1, init_bias=None):
        super().__init__()
        self.n_neurons, self.n_params = n_neurons, n_params
        self.linear = nn.Linear(factor_size, n_neurons * n_params)
        if init_bias is not None:  # (N, P) starting parameters, e.g. log mean rates
            with torch.no_grad():
                self.linear.bias.copy_(torch.as_tensor(init_bias, dtype=torch.float32).reshape(-1))

    def forward(self, factors: torch.Tensor) -> torch.Tensor:
        """Map factors to observation parameters.

        Shape:
            factors: (B, T, F)
            returns: (B, T, N, P)
        """
        out = self.linear(factors)
        return rearrange(out, "b t (n p) -> b t n p", p=self.n_params)
