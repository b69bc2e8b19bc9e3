"""Low-rank coupling: a rank-k linear map of the source's signal a fixed number of bins ago."""

from __future__ import annotations

from typing import List, Sequence

import torch

from dsid.modules.coupling.base import CouplingStep
from dsid.modules.coupling.lowrank_base import LowRankBase
from dsid.registry import COUPLINGS


@COUPLINGS.register("lowrank")
class LowRankCoupling(LowRankBase):
    """``m_{j->i}(t) = U_ji^T s_j(t - lag)``: ``U_ji`` (S_j, rank) learned per edge, ``lag`` fixed.

    Args: ``rank`` message size per edge; ``lag`` delay in bins (the same for every edge);
    ``source`` and the sizes as :class:`~dsid.modules.coupling.base.Coupling`.
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
        sparsity: float = 0.0,
    ):
        super().__init__(
            sparsity=sparsity,
            rank=rank,
            n_areas=n_areas,
            source_sizes=source_sizes,
            target_sizes=target_sizes,
            allowed_edges=allowed_edges,
            source=source,
        )
        if lag < 0:
            raise ValueError(f"lowrank coupling: lag={lag}, expected >= 0 bins")
        self.lag, self.n_lags = int(lag), int(lag) + 1

    def forward(
        self, window: List[torch.Tensor], targets: List[torch.Tensor], sample: bool = True
    ) -> CouplingStep:
        """Messages for the next bin.

        Shape:
            window[a]: (B, lag + 1, rank * outgoing(a)) projected signals, lag-indexed (0: latest)
            targets[a]: (B, H_a) (unused)
            returns CouplingStep(messages: one (B, rank) per edge)
        """
        return self.emit(self.select(window, self.lag))

    def lag_weights(self) -> torch.Tensor:
        """All weight on the fixed lag. Shape: (E, lag + 1)."""
        w = torch.zeros(len(self.edges), self.n_lags)
        w[:, self.lag] = 1.0
        return w.to(self.proj[self._senders[0]].weight) if self._senders else w

    def edge_delays(self) -> torch.Tensor:
        return torch.full((len(self.edges),), float(self.lag))
