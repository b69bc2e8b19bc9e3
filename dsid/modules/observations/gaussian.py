"""Gaussian observation model: a mean and a standard deviation per neuron and bin."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dsid.modules.observations.support import first_violation
from dsid.registry import OBSERVATIONS

LOG_STD_CLAMP = 10.0
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _inverse_softplus(x: np.ndarray) -> np.ndarray:
    x = np.maximum(x, 1e-4)
    return x + np.log(-np.expm1(-x))


@OBSERVATIONS.register("gaussian")
class GaussianObservation(nn.Module):
    """Values ~ Normal(mean, std) with both parameters read out per neuron and bin.

    ``link`` maps the first parameter to the mean: ``softplus`` (default) keeps means, and so the
    rates that the bits/spike metrics score, non-negative (spike counts, calcium traces);
    ``identity`` allows any real mean (z-scored signals). The standard deviation is
    ``min_std + exp(second parameter)``, so it cannot collapse onto exactly predicted values.
    """

    n_params = 2
    integer_counts = False
    support = "finite real values"

    def __init__(self, *, link: str = "softplus", min_std: float = 0.01):
        super().__init__()
        if link not in ("softplus", "identity"):
            raise ValueError(
                f"gaussian observation: link must be 'softplus' or 'identity', got {link!r}"
            )
        if not min_std >= 0:
            raise ValueError(f"gaussian observation: min_std must be >= 0, got {min_std}")
        self.link, self.min_std = link, float(min_std)

    @staticmethod
    def check_support(data: np.ndarray):
        """Return a description of the first value outside the support, or None."""
        return first_violation(data)

    def init_params(self, mean_counts: np.ndarray) -> np.ndarray:
        """Starting readout bias for per-neuron means (N,) -> (N, 2): the mean, and a standard
        deviation guessed as sqrt(|mean|) (Poisson-like), at least 0.1."""
        mean_counts = np.asarray(mean_counts, np.float64)
        first = _inverse_softplus(mean_counts) if self.link == "softplus" else mean_counts
        std = np.maximum(np.sqrt(np.abs(mean_counts)), 0.1)
        return np.stack([first, np.log(np.maximum(std - self.min_std, 1e-3))], axis=-1)

    def _mean_std(self, params: torch.Tensor):
        first = params[..., 0]
        mean = F.softplus(first) if self.link == "softplus" else first
        std = self.min_std + torch.exp(params[..., 1].clamp(-LOG_STD_CLAMP, LOG_STD_CLAMP))
        return mean, std

    def distribution(self, params: torch.Tensor) -> torch.distributions.Distribution:
        mean, std = self._mean_std(params)
        return torch.distributions.Normal(mean, std, validate_args=False)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return self._mean_std(params)[0]

    def forward(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Elementwise negative log-likelihood.

        Shape:
            params: (B, T, N, 2) mean (before the link) and log standard deviation;
            target: (B, T, N)
            returns: (B, T, N)
        """
        mean, std = self._mean_std(params)
        return HALF_LOG_2PI + torch.log(std) + 0.5 * ((target - mean) / std) ** 2
