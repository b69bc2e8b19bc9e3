"""Poisson observation model with a log-rate parameter per neuron and bin."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dsid.modules.observations.support import first_violation
from dsid.modules.recurrent.native import log_factorial
from dsid.registry import OBSERVATIONS

LOG_RATE_CLAMP = 20.0


@OBSERVATIONS.register("poisson")
class PoissonObservation(nn.Module):
    """Counts ~ Poisson(exp(log_rate)); ``mean`` gives rates in counts per bin."""

    n_params = 1
    integer_counts = True
    support = "non-negative integer counts"

    def __init__(self):
        super().__init__()

    @staticmethod
    def check_support(data: np.ndarray):
        """Return a description of the first value outside the support, or None."""
        return first_violation(data, minimum=0.0, integer=True)

    @staticmethod
    def init_params(mean_counts: np.ndarray) -> np.ndarray:
        """Starting readout bias for per-neuron mean counts (N,) -> (N, 1)."""
        return np.log(np.maximum(mean_counts, 1e-3))[:, None]

    def _log_rate(self, params: torch.Tensor) -> torch.Tensor:
        return params[..., 0].clamp(-LOG_RATE_CLAMP, LOG_RATE_CLAMP)

    def distribution(self, params: torch.Tensor) -> torch.distributions.Distribution:
        return torch.distributions.Poisson(
            rate=torch.exp(self._log_rate(params)), validate_args=False
        )

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.exp(self._log_rate(params))

    def forward(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Elementwise negative log-likelihood.

        Shape:
            params: (B, T, N, 1) log-rates; target: (B, T, N) counts
            returns: (B, T, N)
        """
        if target.requires_grad:  # (a gradient for the counts: the plain expression)
            log_rate = self._log_rate(params)
            return torch.exp(log_rate) - target * log_rate + log_factorial(target)
        return _PoissonNLL.apply(params[..., 0], target) + log_factorial(target)


class _PoissonNLL(torch.autograd.Function):
    """``exp(l) - y l`` with ``l`` the log-rate clamped to +-LOG_RATE_CLAMP, keeping only its inputs
    for the backward (``exp(l)`` is recomputed there): the plain expression keeps a third tensor of
    the observations' full size alive until the backward. Same values and gradient (zero where the
    clamp is active); no gradient for the counts, and no double backward.

    Shape:
        raw: any (log-rates before the clamp); target: same -> same
    """

    @staticmethod
    def forward(ctx, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(raw, target)
        log_rate = raw.clamp(-LOG_RATE_CLAMP, LOG_RATE_CLAMP)
        return torch.exp(log_rate) - target * log_rate

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        raw, target = ctx.saved_tensors
        inside = (raw >= -LOG_RATE_CLAMP) & (raw <= LOG_RATE_CLAMP)
        d = torch.exp(raw.clamp(-LOG_RATE_CLAMP, LOG_RATE_CLAMP)).sub_(target).mul_(grad)
        return d.masked_fill_(~inside, 0.0), None
