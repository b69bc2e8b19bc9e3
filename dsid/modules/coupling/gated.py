"""Gated coupling: a low-rank message whose gain depends on the destination area's state."""

from __future__ import annotations

from typing import List, Sequence

import numpy as np
import torch
from torch import nn

from dsid.modules.coupling.base import CouplingStep
from dsid.modules.coupling.lowrank_base import LowRankBase
from dsid.registry import COUPLINGS


@COUPLINGS.register("gated")
class GatedCoupling(LowRankBase):
    """``m_{j->i}(t) = sigmoid(G_ji g_i(t) + b_ji) * U_ji^T s_j(t - lag)``: the destination's
    current generator state ``g_i`` opens or closes each message dimension (state-dependent
    routing).

    Args: ``rank``, ``lag`` as the low-rank coupling; ``gate_bias`` the initial gate pre-activation
    (0: half open).
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
        gate_bias: float = 0.0,
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
            raise ValueError(f"gated coupling: lag={lag}, expected >= 0 bins")
        self.lag, self.n_lags = int(lag), int(lag) + 1
        # per destination: one map from its state to the gates of all its incoming edges
        self.gates = nn.ModuleList(
            nn.Linear(self.target_sizes[d], self.rank * len(self.incoming(d)))
            if self.incoming(d)
            else nn.Identity()
            for d in range(self.n_areas)
        )
        for g in self.gates:
            if isinstance(g, nn.Linear):
                nn.init.constant_(g.bias, gate_bias)
        # gates come out grouped by destination; this order puts them back in edge order
        by_dst = [e for d in range(self.n_areas) for e in self.incoming(d)]
        self.register_buffer(
            "_gate_order", torch.as_tensor(np.argsort(by_dst), dtype=torch.long), persistent=False
        )

    def forward(
        self, window: List[torch.Tensor], targets: List[torch.Tensor], sample: bool = True
    ) -> CouplingStep:
        """Messages for the next bin.

        Shape:
            window[a]: (B, lag + 1, rank * outgoing(a)) projected signals, lag-indexed (0: latest)
            targets[a]: (B, H_a) current generator state of area a
            returns CouplingStep(messages: one (B, rank) per edge)
        """
        z = self.select(window, self.lag)
        if not self.edges:
            return CouplingStep([])
        pre = torch.cat([g(h) for g, h in zip(self.gates, targets) if isinstance(g, nn.Linear)], -1)
        gates = torch.sigmoid(pre.view(z.shape[0], -1, self.rank)).index_select(1, self._gate_order)
        return self.emit(gates * z)

    def edge_delays(self) -> torch.Tensor:
        return torch.full((len(self.edges),), float(self.lag))
