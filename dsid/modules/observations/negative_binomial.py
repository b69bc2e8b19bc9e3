"""Negative binomial observation model: over-dispersed spike counts."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dsid.modules.observations.support import first_violation
from dsid.modules.recurrent.native import log_factorial
from dsid.registry import OBSERVATIONS

LOG_CLAMP = 20.0
LOG_R_CLAMP = 12.0


@OBSERVATIONS.register("negative_binomial")
class NegativeBinomialObservation(nn.Module):
    """Counts ~ NegativeBinomial(mean m, total_count r): variance m + m^2 / r. Parameters per neuron
    and bin are log m and log r (r -> infinity recovers the Poisson)."""

    n_params = 2
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
        """Starting readout bias for per-neuron mean counts (N,) -> (N, 2): log-mean,
        log r = log 10."""
        mean_counts = np.asarray(mean_counts, np.float64)
        return np.stack(
            [np.log(np.maximum(mean_counts, 1e-3)), np.full_like(mean_counts, np.log(10.0))],
            axis=-1,
        )

    @staticmethod
    def _split(params: torch.Tensor):
        return (
            params[..., 0].clamp(-LOG_CLAMP, LOG_CLAMP),
            params[..., 1].clamp(-LOG_R_CLAMP, LOG_R_CLAMP),
        )

    def distribution(self, params: torch.Tensor) -> torch.distributions.Distribution:
        log_mean, log_r = self._split(params)
        return torch.distributions.NegativeBinomial(
            total_count=torch.exp(log_r), logits=log_mean - log_r, validate_args=False
        )

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.exp(self._split(params)[0])

    def forward(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Elementwise negative log-likelihood.

        Shape:
            params: (B, T, N, 2) log-mean and log total count; target: (B, T, N) counts
            returns: (B, T, N)
        """
        log_mean, log_r = self._split(params)
        r = torch.exp(log_r)
        log_p_zero = -F.softplus(log_mean - log_r)  # log r / (r + m)
        log_p_one = -F.softplus(log_r - log_mean)  # log m / (r + m)
        log_lik = (
            torch.lgamma(target + r)
            - torch.lgamma(r)
            - log_factorial(target)
            + r * log_p_zero
            + target * log_p_one
        )
        return -log_lik
