"""No coupling: independent areas (the ablation baseline)."""

from __future__ import annotations

from typing import List, Sequence

import torch

from dsid.modules.coupling.base import Coupling, CouplingStep
from dsid.registry import COUPLINGS


@COUPLINGS.register("none")
class NoCoupling(Coupling):
    """No messages: every area is its own single-area model (exactly, see tests/test_multiarea.py),
    driven only by its initial condition and inferred inputs."""

    def __init__(
        self,
        *,
        n_areas: int,
        source_sizes: Sequence[int],
        target_sizes: Sequence[int],
        allowed_edges=None,
        source: str = "factors",
    ):
        super().__init__(
            n_areas=n_areas,
            source_sizes=source_sizes,
            target_sizes=target_sizes,
            allowed_edges=allowed_edges,
            source=source,
        )
        self.edges = []
        self.set_edge_sizes([])

    def encode(self, signals: List[torch.Tensor]) -> List[torch.Tensor]:
        """Nothing is kept. Shape: signals[a]: (B, S_a) -> list of (B, 0)."""
        return [s[:, :0] for s in signals]

    def forward(
        self, window: List[torch.Tensor], targets: List[torch.Tensor], sample: bool = True
    ) -> CouplingStep:
        """No messages.

        Shape:
            window[a]: (B, 1, 0); targets[a]: (B, H_a)
            returns CouplingStep(messages=[])
        """
        return CouplingStep([])

    def edge_delays(self) -> torch.Tensor:
        return torch.zeros(0)
