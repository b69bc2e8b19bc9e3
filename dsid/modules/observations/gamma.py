"""Gamma observation model for strictly positive values (e.g. calcium event amplitudes)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dsid.modules.observations.support import first_violation
from dsid.registry import OBSERVATIONS

LOG_CLAMP = 20.0
MIN_TARGET = 1e-8


def gamma_nll(y: torch.Tensor, log_mean: torch.Tensor, log_conc: torch.Tensor) -> torch.Tensor:
    """-log Gamma(y; concentration k, rate k / mean), elementwise (y > 0)."""
    k = torch.exp(log_conc)
    log_rate = log_conc - log_mean
    log_y = torch.log(y.clamp_min(MIN_TARGET))
    return -(k * log_rate + (k - 1.0) * log_y - torch.exp(log_rate) * y - torch.lgamma(k))


@OBSERVATIONS.register("gamma")
class GammaObservation(nn.Module):
    """Values ~ Gamma(concentration k, rate k / mean): parameters are the log-mean and the
    log-concentration per neuron and bin. Zeros are outside the support: use
    ``zero_inflated_gamma`` for data with exact zeros (deconvolved calcium)."""

    n_params = 2
    integer_counts = False
    support = "strictly positive values"

    def __init__(self):
        super().__init__()

    @staticmethod
    def check_support(data: np.ndarray):
        """Return a description of the first value outside the support, or None."""
        return first_violation(
            data, minimum=0.0, strict=True, zero_hint=" (use zero_inflated_gamma)"
        )

    @staticmethod
    def init_params(mean_counts: np.ndarray) -> np.ndarray:
        """Starting readout bias for per-neuron means (N,) -> (N, 2): log-mean,
        log-concentration 0."""
        mean_counts = np.asarray(mean_counts, np.float64)
        return np.stack(
            [np.log(np.maximum(mean_counts, 1e-3)), np.zeros_like(mean_counts)], axis=-1
        )

    @staticmethod
    def _split(params: torch.Tensor):
        return (
            params[..., 0].clamp(-LOG_CLAMP, LOG_CLAMP),
            params[..., 1].clamp(-LOG_CLAMP / 2, LOG_CLAMP / 2),
        )

    def distribution(self, params: torch.Tensor) -> torch.distributions.Distribution:
        log_mean, log_conc = self._split(params)
        return torch.distributions.Gamma(
            torch.exp(log_conc), torch.exp(log_conc - log_mean), validate_args=False
        )

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.exp(self._split(params)[0])

    def forward(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Elementwise negative log-likelihood.

        Shape:
            params: (B, T, N, 2) log-mean and log-concentration; target: (B, T, N) positive values
            returns: (B, T, N)
        """
        log_mean, log_conc = self._split(params)
        return gamma_nll(target, log_mean, log_conc)
