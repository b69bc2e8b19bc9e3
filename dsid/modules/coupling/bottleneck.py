"""Bottleneck coupling: stochastic low-rank messages with a Gaussian posterior and their own KL."""

from __future__ import annotations

from typing import List, Sequence

import torch

from dsid.modules.coupling.base import CouplingStep
from dsid.modules.coupling.lowrank_base import LowRankBase
from dsid.registry import COUPLINGS


@COUPLINGS.register("bottleneck")
class BottleneckCoupling(LowRankBase):
    """Message ``m ~ N(mu, sigma^2)`` with ``mu = U^T s_j(t - lag)`` and
    ``log sigma^2 = W^T s_j(t - lag) + c_e`` (both rank ``rank`` per edge); ``c_e`` starts at
    ``log(init_var_ratio * prior_var)``.

    Every edge's message sequence has a prior (``prior``, from ``PRIORS``: ``ar1`` by default, with
    ``prior_var`` and time constant ``prior_tau`` bins, as the inferred inputs' prior) and costs its
    KL, the loss term ``kl_msg`` (weighted by the training config's ``kl_scales.msg``, separately
    from the inferred inputs' ``kl_co``): an edge that does not pay for itself collapses to the
    prior (zero mean message), and with ``kl_scales.msg`` below ``kl_scales.co`` the model explains
    drive by recorded areas where it can. The prior fixes the messages' scale (a destination cannot
    amplify a message without amplifying its noise), so their size is comparable across edges.
    Without sampling the message is the posterior mean.
    """

    def __init__(
        self,
        *,
        n_areas: int,
        source_sizes: Sequence[int],
        target_sizes: Sequence[int],
        allowed_edges=None,
        source: str = "factors",
        rank: int = 2,
        lag: int = 1,
        prior: str = "ar1",
        prior_var: float = 0.1,
        prior_tau: float = 10.0,
        init_var_ratio: float = 0.1,
        sparsity: float = 0.0,
    ):
        super().__init__(
            sparsity=sparsity,
            rank=rank,
            stochastic=True,
            prior=prior,
            prior_var=prior_var,
            prior_tau=prior_tau,
            init_var_ratio=init_var_ratio,
            n_areas=n_areas,
            source_sizes=source_sizes,
            target_sizes=target_sizes,
            allowed_edges=allowed_edges,
            source=source,
        )
        if lag < 0:
            raise ValueError(f"bottleneck coupling: lag={lag}, expected >= 0 bins")
        self.lag, self.n_lags = int(lag), int(lag) + 1

    def forward(
        self, window: List[torch.Tensor], targets: List[torch.Tensor], sample: bool = True
    ) -> CouplingStep:
        """Sampled messages (posterior means when ``sample`` is False).

        Shape:
            window[a]: (B, lag + 1, 2 * rank * outgoing(a)) projected signals,
                lag-indexed (0: latest)
            targets[a]: (B, H_a) (unused)
            returns CouplingStep(messages, means, logvars: one (B, rank) per edge)
        """
        return self.emit(self.select(window, self.lag), sample)

    def edge_delays(self) -> torch.Tensor:
        return torch.full((len(self.edges),), float(self.lag))
