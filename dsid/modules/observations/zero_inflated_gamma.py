"""Zero-inflated gamma observation model for deconvolved calcium (Zhu et al., 2022)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.distributions import Distribution, constraints
from torch.nn import functional as F

from dsid.modules.observations.gamma import LOG_CLAMP, gamma_nll
from dsid.modules.observations.support import first_violation
from dsid.registry import OBSERVATIONS


class ZeroInflatedGamma(Distribution):
    """y = 0 with probability 1 - q; otherwise y = loc + Gamma(k, k / m).

    Same ``log_prob``/``mean``/``sample`` contract as ``torch.distributions``.
    """

    arg_constraints = {}
    support = constraints.nonnegative
    has_rsample = False

    def __init__(
        self,
        logit_q: torch.Tensor,
        log_mean: torch.Tensor,
        log_conc: torch.Tensor,
        loc: float = 0.0,
        validate_args=False,
    ):
        self.logit_q, self.log_mean, self.log_conc, self.loc = (
            logit_q,
            log_mean,
            log_conc,
            float(loc),
        )
        super().__init__(batch_shape=logit_q.shape, validate_args=validate_args)

    @property
    def mean(self) -> torch.Tensor:
        return torch.sigmoid(self.logit_q) * (self.loc + torch.exp(self.log_mean))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        nonzero = value > 0
        log_q = -F.softplus(-self.logit_q)
        log_1mq = -F.softplus(self.logit_q)
        event = value - self.loc
        lp_event = log_q - gamma_nll(
            torch.where(nonzero, event, torch.ones_like(event)), self.log_mean, self.log_conc
        )
        return torch.where(nonzero, lp_event, log_1mq)

    @torch.no_grad()
    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        shape = torch.Size(sample_shape) + self.batch_shape
        k = torch.exp(self.log_conc).expand(shape)
        gamma = torch.distributions.Gamma(k, k / torch.exp(self.log_mean).expand(shape)).sample()
        fire = torch.bernoulli(torch.sigmoid(self.logit_q).expand(shape))
        return fire * (self.loc + gamma.clamp_min(1e-6))


@OBSERVATIONS.register("zero_inflated_gamma")
class ZeroInflatedGammaObservation(nn.Module):
    """Zero-inflated gamma: parameters per neuron and bin are the logit of the probability of a
    non-zero value, and the log-mean and log-concentration of the gamma part (shifted by ``loc``,
    which should not exceed the smallest non-zero value of the data). The mean, used as the rate,
    is q (loc + m)."""

    n_params = 3
    integer_counts = False
    support = "non-negative values (exact zeros allowed)"

    def __init__(self, *, loc: float = 0.0):
        super().__init__()
        if not loc >= 0:
            raise ValueError(f"zero_inflated_gamma observation: loc must be >= 0, got {loc}")
        self.loc = float(loc)

    @staticmethod
    def check_support(data: np.ndarray):
        """Return a description of the first value outside the support, or None."""
        return first_violation(data, minimum=0.0)

    def init_params(self, mean_counts: np.ndarray) -> np.ndarray:
        """Starting readout bias for per-neuron means (N,) -> (N, 3): q = 1/2, matching mean."""
        mean_counts = np.asarray(mean_counts, np.float64)
        m = np.maximum(2.0 * mean_counts - self.loc, 1e-3)
        return np.stack([np.zeros_like(m), np.log(m), np.zeros_like(m)], axis=-1)

    def distribution(self, params: torch.Tensor) -> ZeroInflatedGamma:
        return ZeroInflatedGamma(
            params[..., 0].clamp(-LOG_CLAMP, LOG_CLAMP),
            params[..., 1].clamp(-LOG_CLAMP, LOG_CLAMP),
            params[..., 2].clamp(-LOG_CLAMP / 2, LOG_CLAMP / 2),
            self.loc,
        )

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return self.distribution(params).mean

    def forward(self, params: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Elementwise negative log-likelihood (a mixed density: zeros have probability mass).

        Shape:
            params: (B, T, N, 3) logit q, log-mean, log-concentration; target: (B, T, N) values >= 0
            returns: (B, T, N)
        """
        return -self.distribution(params).log_prob(target)
