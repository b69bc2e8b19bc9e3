"""Heavy-tailed Student-t prior (for sparse, occasionally large inferred inputs)."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from dsid.registry import PRIORS

LOG_2PI = math.log(2 * math.pi)


@PRIORS.register("student_t")
class StudentTPrior(nn.Module):
    """p(z) = StudentT(df, 0, scale) independently per dimension (and per time step for a time
    series). The KL to a diagonal Gaussian posterior has no closed form; it is estimated from the
    posterior sample, log q(z) - log p(z) (single-sample Monte Carlo, unbiased, like ``ar1``).

    ``learnable`` learns the scale; ``learn_df`` also learns the degrees of freedom.
    """

    def __init__(
        self,
        *,
        size: int,
        df: float = 5.0,
        scale: float = 0.3,
        learnable: bool = True,
        learn_df: bool = False,
    ):
        super().__init__()
        if not df > 0 or not scale > 0:
            raise ValueError(
                f"student_t prior: df and scale must be > 0, got df={df}, scale={scale}"
            )
        log_scale = torch.full((size,), math.log(scale))
        log_df = torch.full((size,), math.log(df))
        if learnable:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)
        if learnable and learn_df:
            self.log_df = nn.Parameter(log_df)
        else:
            self.register_buffer("log_df", log_df)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Elementwise log density.

        Shape:
            z: (B, S) or (B, T, S)
            returns: same shape as z
        """
        df = torch.exp(self.log_df)
        return (
            torch.lgamma(0.5 * (df + 1.0))
            - torch.lgamma(0.5 * df)
            - 0.5 * torch.log(df * math.pi)
            - self.log_scale
            - 0.5 * (df + 1.0) * torch.log1p((z / torch.exp(self.log_scale)) ** 2 / df)
        )

    def forward(
        self, mean: torch.Tensor, logvar: torch.Tensor, sample: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Single-sample KL(q || p) estimate, summed over every non-batch dimension.

        Shape:
            mean, logvar, sample: (B, S) or (B, T, S)
            returns: (B,)
        """
        if sample is None:
            raise ValueError("student_t prior: the KL estimate needs the posterior sample")
        log_q = -0.5 * (LOG_2PI + logvar + (sample - mean) ** 2 / torch.exp(logvar))
        kl = log_q - self.log_prob(sample)
        return kl.reshape(kl.shape[0], -1).sum(-1)
