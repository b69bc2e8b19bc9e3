"""Shared base of the couplings whose messages are low-rank projections of the source signal
(``lowrank``, ``bottleneck``, ``delay``, ``gated``)."""

from __future__ import annotations

import math
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

from dsid.modules.coupling.base import Coupling, CouplingStep
from dsid.registry import PRIORS


class LowRankBase(Coupling):
    """Couplings whose message is built from a rank-``rank`` linear projection ``U_e^T s`` of the
    source signal: every source keeps the concatenated projections of its outgoing edges.

    With ``stochastic=True`` each edge projects to a Gaussian posterior instead: mean ``U_e^T s``
    and log-variance ``W_e^T s + c_e``; ``c_e`` starts at ``log(init_var_ratio * prior_var)`` and
    the means start at the prior's scale. The message is a sample (the mean when not sampling). Each
    edge's message sequence has its own prior from ``PRIORS`` (``prior``: ``ar1`` by default, like
    the inferred inputs', so smooth messages are not charged as if they were white noise;
    ``prior_var`` and ``prior_tau`` go to it where it takes them); the KL is the loss term
    ``kl_msg``. Subclasses pick every edge's lagged (:meth:`select`) or lag-mixed (:meth:`mix`)
    projection and call :meth:`emit`; each is one operation per source or for all edges together,
    per bin.
    """

    def __init__(
        self,
        *,
        rank: int = 2,
        stochastic: bool = False,
        prior: str = "ar1",
        prior_var: float = 0.1,
        prior_tau: float = 10.0,
        init_var_ratio: float = 0.1,
        sparsity: float = 0.0,
        **base,
    ):
        super().__init__(**base)
        if rank < 1 or prior_var <= 0 or init_var_ratio <= 0 or sparsity < 0:
            raise ValueError(
                f"coupling rank={rank}, prior_var={prior_var}, init_var_ratio="
                f"{init_var_ratio}, sparsity={sparsity}: expected rank >= 1, prior_var > 0, "
                "init_var_ratio > 0, sparsity >= 0"
            )
        self.rank, self.stochastic, self.sparsity = int(rank), bool(stochastic), float(sparsity)
        self.set_edge_sizes([self.rank] * len(self.edges))
        per_edge = (2 if self.stochastic else 1) * self.rank
        # per source: one linear map onto the projections of all its outgoing edges
        self.proj = nn.ModuleList(
            nn.Linear(self.source_sizes[a], per_edge * len(self.outgoing(a)), bias=False)
            if self.outgoing(a)
            else nn.Identity()
            for a in range(self.n_areas)
        )
        self.per_edge = per_edge
        # edges are sorted by source: each source's outgoing edges are one contiguous range
        self._senders = [a for a in range(self.n_areas) if self.outgoing(a)]
        self._ranges = {a: (self.outgoing(a)[0], self.outgoing(a)[-1] + 1) for a in self._senders}
        for p in self.proj:
            if isinstance(p, nn.Linear):  # keep the initial messages O(1) for O(1) signals
                nn.init.normal_(p.weight, std=1.0 / np.sqrt(p.in_features))
                if self.stochastic:  # means at the prior's scale, log-variances near their bias
                    with torch.no_grad():
                        w = p.weight.view(-1, 2, self.rank, p.in_features)
                        w[:, 0].mul_(math.sqrt(prior_var))
                        w[:, 1].mul_(0.1)
        if self.stochastic:
            self.logvar_bias = nn.Parameter(
                torch.full((len(self.edges), self.rank), math.log(init_var_ratio * prior_var))
            )
            self.priors = nn.ModuleList(
                PRIORS.build({"name": prior}, size=self.rank, var=prior_var, tau=prior_tau)
                for _ in self.edges
            )

    def encode(self, signals: List[torch.Tensor]) -> List[torch.Tensor]:
        """Shape: signals[a]: (B, S_a) -> list of (B, P_a), the projections of a's outgoing
        edges."""
        return [p(s) if isinstance(p, nn.Linear) else s[:, :0] for p, s in zip(self.proj, signals)]

    def select(self, window: List[torch.Tensor], lag: int) -> torch.Tensor:
        """Every edge's projection of its source's signal ``lag`` bins ago.

        Shape:
            window[a]: (B, n_lags, P_a) -> (B, E, per_edge)
        """
        B = window[0].shape[0]
        if not self.edges:
            return window[0].new_zeros(B, 0, self.per_edge)
        return torch.cat([window[a][:, lag] for a in self._senders], -1).view(B, -1, self.per_edge)

    def mix(self, window: List[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
        """Every edge's projection mixed over lags with its weights.

        Shape:
            window[a]: (B, n_lags, P_a); weights: (E, n_lags) -> (B, E, per_edge)
        """
        B = window[0].shape[0]
        if not self.edges:
            return window[0].new_zeros(B, 0, self.per_edge)
        parts = []
        for a in self._senders:
            lo, hi = self._ranges[a]
            w = window[a].view(B, window[a].shape[1], hi - lo, self.per_edge)
            parts.append(torch.einsum("blop,ol->bop", w, weights[lo:hi]))
        return torch.cat(parts, 1)

    def emit(self, z: torch.Tensor, sample: bool = True) -> CouplingStep:
        """Messages from every edge's selected projection (sampled when stochastic).

        Shape:
            z: (B, E, rank) deterministic, (B, E, 2 * rank) stochastic
            returns CouplingStep(messages; means, logvars when stochastic: one (B, rank) per edge)
        """
        if not self.stochastic:
            return CouplingStep(list(z.unbind(1)))
        mean, logvar = z.chunk(2, dim=-1)
        logvar = logvar + self.logvar_bias
        msg = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
        return CouplingStep(list(msg.unbind(1)), list(mean.unbind(1)), list(logvar.unbind(1)))

    def lag_weights(self) -> Optional[torch.Tensor]:
        """Each edge's fixed weight per lag, (E, n_lags), when the message is a lag mixture of the
        projections alone (None here: subclasses that are one override it)."""
        return None

    def lag_linear(self):
        """See :meth:`~dsid.modules.coupling.base.Coupling.lag_linear`: deterministic messages with
        :meth:`lag_weights`."""
        lags = self.lag_weights()
        if self.stochastic or lags is None:
            return None
        return [self.proj[a].weight for a in self._senders], lags

    def kl(self, seq: CouplingStep) -> Optional[torch.Tensor]:
        """Shape: seq of (B, T, rank) sequences -> (B,) KL summed over edges, or None."""
        if not self.stochastic or not self.edges:
            return None
        return sum(
            prior(m, lv, x)
            for prior, m, lv, x in zip(self.priors, seq.means, seq.logvars, seq.messages)
        )

    def loss_terms(self, kl: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``kl_msg`` (stochastic messages): the batch mean of the per-trial message KL."""
        return {"kl_msg": kl.mean()} if self.stochastic and kl is not None else {}

    def penalized_weights(self) -> List[torch.Tensor]:
        return [p.weight for p in self.proj if isinstance(p, nn.Linear)]

    def edge_maps(self) -> List[torch.Tensor]:
        """Each edge's ``U_e^T`` (the mean's projection when stochastic).
        Shape: one (rank, S_src) per edge."""
        maps = []
        for a in self._senders:
            lo, hi = self._ranges[a]
            w = self.proj[a].weight.view(hi - lo, self.per_edge, -1)
            maps += list(w[:, : self.rank].unbind(0))
        return maps
