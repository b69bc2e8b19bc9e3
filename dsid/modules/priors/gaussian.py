"""Diagonal Gaussian prior with learnable mean and variance (for initial conditions or inputs)."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from dsid.registry import PRIORS


@PRIORS.register("gaussian")
class GaussianPrior(nn.Module):
    """p(z) = N(mean, var) per dimension; analytic KL against a diagonal Gaussian posterior.

    For a time series posterior (B, T, S) the prior applies independently to every time step.
    """

    def __init__(self, *, size: int, var: float = 0.1, learnable: bool = True):
        super().__init__()
        mean = torch.zeros(size)
        logvar = torch.full((size,), math.log(var))
        if learnable:
            self.mean = nn.Parameter(mean)
            self.logvar = nn.Parameter(logvar)
        else:
            self.register_buffer("mean", mean)
            self.register_buffer("logvar", logvar)

    def sample(self, shape) -> torch.Tensor:
        return self.mean + torch.exp(0.5 * self.logvar) * torch.randn(*shape, self.mean.shape[0])

    def forward(
        self, mean: torch.Tensor, logvar: torch.Tensor, sample: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """KL(q || p) summed over every non-batch dimension.

        Shape:
            mean, logvar: (B, S) or (B, T, S) posterior parameters; sample ignored
            returns: (B,)
        """
        p_logvar = self.logvar
        kl = 0.5 * (
            p_logvar
            - logvar
            + (torch.exp(logvar) + (mean - self.mean) ** 2) / torch.exp(p_logvar)
            - 1.0
        )
        return kl.reshape(kl.shape[0], -1).sum(-1)
