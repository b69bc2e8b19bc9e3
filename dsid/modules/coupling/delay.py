"""Delay coupling: learns each edge's delay as a softmax mixture over lags 0..max_delay."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from dsid.modules.coupling.base import CouplingStep
from dsid.modules.coupling.lowrank_base import LowRankBase
from dsid.registry import COUPLINGS


@COUPLINGS.register("delay")
class DelayCoupling(LowRankBase):
    """``m_{j->i}(t) = U_ji^T sum_l w_ji(l) s_j(t - l)``,
    ``w_ji = softmax(logits_ji / temperature)`` over lags ``l = 0..max_delay``.

    The weights are a learned delay distribution per edge; ``edge_delays()`` reads the delay off as
    the weights' mean lag (``delay_readout="mean"``) or their most likely lag (``"mode"``).
    ``lag_scale`` multiplies the logits' learning signal (the logits are stored divided by it), so
    the delays can move faster than the other weights. ``stochastic=True`` makes the messages
    bottleneck messages (a Gaussian posterior, mixed over lags, with a ``prior`` per edge and the KL
    term ``kl_msg``; see :class:`~dsid.modules.coupling.bottleneck.BottleneckCoupling`).
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
        max_delay: int = 8,
        temperature: float = 1.0,
        lag_scale: float = 1.0,
        delay_readout: str = "mean",
        stochastic: bool = False,
        prior: str = "ar1",
        prior_var: float = 0.1,
        prior_tau: float = 10.0,
        init_var_ratio: float = 0.1,
        sparsity: float = 0.0,
        lag_entropy: float = 0.0,
    ):
        super().__init__(
            sparsity=sparsity,
            rank=rank,
            stochastic=stochastic,
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
        if (
            max_delay < 0
            or temperature <= 0
            or lag_scale <= 0
            or delay_readout not in ("mean", "mode")
            or lag_entropy < 0
        ):
            raise ValueError(
                f"delay coupling: max_delay={max_delay}, temperature={temperature}, "
                f"lag_scale={lag_scale}, delay_readout={delay_readout!r}, lag_entropy="
                f"{lag_entropy}; expected max_delay >= 0, temperature > 0, lag_scale > 0, "
                "delay_readout mean|mode, lag_entropy >= 0"
            )
        self.lag_entropy = float(lag_entropy)
        self.max_delay, self.n_lags = int(max_delay), int(max_delay) + 1
        self.temperature, self.lag_scale, self.delay_readout = temperature, lag_scale, delay_readout
        self.delay_logits = nn.Parameter(torch.zeros(len(self.edges), self.n_lags))
        self.register_buffer(
            "lags", torch.arange(self.n_lags, dtype=torch.float32), persistent=False
        )

    def lag_weights(self) -> torch.Tensor:
        """Per-edge delay distribution. Shape: (E, max_delay + 1)."""
        return torch.softmax(self.delay_logits * self.lag_scale / self.temperature, dim=-1)

    def forward(
        self, window: List[torch.Tensor], targets: List[torch.Tensor], sample: bool = True
    ) -> CouplingStep:
        """Messages for the next bin.

        Shape:
            window[a]: (B, max_delay + 1, P_a) projected signals of area a, lag-indexed (0: latest)
            targets[a]: (B, H_a) (unused)
            returns CouplingStep(messages; means, logvars if stochastic: one (B, rank) per edge)
        """
        return self.emit(self.mix(window, self.lag_weights()), sample)

    def loss_terms(self, kl: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """``kl_msg`` for stochastic messages; with ``lag_entropy > 0`` also ``reg_lag_entropy``:
        that weight times the summed entropy (nats) of the edges' delay distributions, which pushes
        each edge towards one delay."""
        terms = super().loss_terms(kl)
        if self.lag_entropy > 0 and self.edges:
            w = self.lag_weights()
            terms["reg_lag_entropy"] = -self.lag_entropy * (w * torch.log(w.clamp_min(1e-12))).sum()
        return terms

    def edge_delays(self) -> torch.Tensor:
        if not self.edges:
            return torch.zeros(0)
        w = self.lag_weights().detach()
        if self.delay_readout == "mode":
            return w.argmax(-1).float()
        return (w * self.lags).sum(-1)
