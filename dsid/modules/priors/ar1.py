"""Autoregressive (AR(1)) prior for inferred inputs, with learnable time constant and variance."""

from __future__ import annotations

import math

import torch
from torch import nn

from dsid.registry import PRIORS

LOG_2PI = math.log(2 * math.pi)


@PRIORS.register("ar1")
class AR1Prior(nn.Module):
    """z_0 ~ N(0, v); z_t = a z_{t-1} + N(0, v (1 - a^2)), a = exp(-1 / tau) per dimension.

    The KL to a diagonal Gaussian posterior over the sequence is estimated from the posterior
    sample: log q(z) - log p(z) (one-sample Monte Carlo, unbiased).
    """

    def __init__(self, *, size: int, tau: float = 10.0, var: float = 0.1, learnable: bool = True):
        super().__init__()
        log_tau = torch.full((size,), math.log(tau))
        logvar = torch.full((size,), math.log(var))
        if learnable:
            self.log_tau, self.logvar = nn.Parameter(log_tau), nn.Parameter(logvar)
        else:
            self.register_buffer("log_tau", log_tau)
            self.register_buffer("logvar", logvar)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Log density of sequences.

        Shape:
            z: (B, T, S)
            returns: (B,)
        """
        alpha = torch.exp(-1.0 / torch.exp(self.log_tau))
        logvar0 = self.logvar.expand_as(z[:, 0])
        lp0 = -0.5 * (LOG_2PI + logvar0 + z[:, 0] ** 2 / torch.exp(logvar0))
        proc_logvar = self.logvar + torch.log1p(-(alpha**2))
        resid = z[:, 1:] - alpha * z[:, :-1]
        lp = -0.5 * (LOG_2PI + proc_logvar + resid**2 / torch.exp(proc_logvar))
        return lp0.sum(-1) + lp.sum((1, 2))

    def forward(
        self, mean: torch.Tensor, logvar: torch.Tensor, sample: torch.Tensor
    ) -> torch.Tensor:
        """Single-sample KL(q || p) estimate.

        Shape:
            mean, logvar, sample: (B, T, S)
            returns: (B,)
        """
        log_q = -0.5 * (LOG_2PI + logvar + (sample - mean) ** 2 / torch.exp(logvar))
        return log_q.sum((1, 2)) - self.log_prob(sample)
