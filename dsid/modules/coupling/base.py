"""Shared base of the inter-area coupling modules (registered in ``COUPLINGS``, one per file).

A coupling turns the past signals of source areas into per-edge messages that the destination
areas' generators receive as external input, one bin at a time:

- ``encode(signals)`` maps each area's current signal (its rates, factors or generator state, per
  ``source``) to what the coupling keeps in its history (e.g. the low-rank projections of every
  outgoing edge: delaying commutes with a linear map, so the history stays small);
- ``start``/``push`` keep a per-area window of the last ``n_lags`` encoded signals (before the first
  bin the window holds the initial signal);
- ``forward(window, targets)`` gives the messages of every edge for the next bin.

Conventions shared by every coupling (see :class:`dsid.models.multiarea.model.MultiAreaSAE`):

- edges are the allowed off-diagonal pairs ``(src, dst)`` in row-major order (``self.edges``);
- the message of edge ``src->dst`` recorded at bin ``t`` is computed from the source's signal at
  ``t - delay`` and enters the destination's generator step that produces bin ``t + 1`` (the same
  timing as the synthetic ground truth, so a delay in bins reads off directly);
- message sizes depend on the coupling's own arguments and the edges only, never on the signal
  sizes (the model sizes its generators' external input before it knows the signal sizes);
- ``edge_strength()`` is the root total variance of each edge's message (a running average over
  training batches) and ``edge_delays()`` each edge's delay in bins; ``strength()`` and
  ``delays()`` lay them out as (A, A) matrices, row source, column destination.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import torch
from torch import nn

SOURCES = ("rates", "factors", "state")


class CouplingStep(NamedTuple):
    """Per-edge messages, in ``edges`` order: (B, K_e) per bin, or (B, T, K_e) sequences."""

    messages: List[torch.Tensor]  # what the destinations receive (samples when stochastic)
    means: Optional[List[torch.Tensor]] = None  # posterior means of stochastic messages, else None
    logvars: Optional[List[torch.Tensor]] = None  # posterior log-variances, else None


def edge_mask(n_areas: int, allowed_edges=None, field: str = "allowed_edges") -> np.ndarray:
    """(A, A) bool mask of the edges that may exist: ``allowed_edges`` (A x A of 0/1, row source,
    column destination; None: every pair) without the diagonal. Raises ValueError naming
    ``field``."""
    if allowed_edges is None:
        mask = np.ones((n_areas, n_areas), bool)
    else:
        try:
            arr = np.asarray(allowed_edges, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(
                f"{field}: expected an {n_areas} x {n_areas} list of 0/1 (row source, "
                f"column destination), got {allowed_edges!r}"
            ) from None
        if arr.shape != (n_areas, n_areas):
            raise ValueError(
                f"{field}: expected an {n_areas} x {n_areas} list of 0/1 (row source, "
                f"column destination; one row and column per area), got shape {arr.shape}"
            )
        if not np.isin(arr, (0.0, 1.0)).all():
            raise ValueError(
                f"{field}: expected only 0 and 1 entries, got {sorted(set(arr.ravel()))}"
            )
        mask = arr.astype(bool)
    np.fill_diagonal(mask, False)
    return mask


def stack_steps(steps: List[CouplingStep], n_edges: int) -> CouplingStep:
    """Per-bin coupling steps -> per-edge sequences (B, T, K_e), stacked along time."""

    def stack(key):
        if not steps or getattr(steps[0], key) is None:
            return None
        return [torch.stack([getattr(st, key)[e] for st in steps], 1) for e in range(n_edges)]

    return CouplingStep(stack("messages") or [], stack("means"), stack("logvars"))


class Coupling(nn.Module):
    """Base class: edges, message sizes, the lag window, running message statistics, read-outs.

    Subclasses set their parameters up in ``__init__`` after ``super().__init__`` and implement
    ``forward`` (and ``encode`` when they keep something other than the raw signal).

    Args (all keyword-only; the sizes are injected by the model, the rest come from YAML):
        n_areas: number of areas A.
        source_sizes: size of each area's source signal.
        target_sizes: size of each area's generator state (for couplings that read the target).
        allowed_edges: (A, A) 0/1 anatomical prior; None allows every off-diagonal edge.
        source: which signal of the source area is sent: ``rates`` (the observation parameters of
            its neurons, log-rates for Poisson), ``factors`` or ``state`` (generator state).
    """

    n_lags: int = 1  # window length: the longest delay + 1
    sparsity: float = 0.0  # group-lasso weight on the edges' gains (see MultiAreaSAE.edge_gains)

    def __init__(
        self,
        *,
        n_areas: int,
        source_sizes: Sequence[int],
        target_sizes: Sequence[int],
        allowed_edges=None,
        source: str = "factors",
        stats_momentum: float = 0.05,
    ):
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"coupling source={source!r}: expected one of {', '.join(SOURCES)}")
        if len(source_sizes) != n_areas or len(target_sizes) != n_areas:
            raise ValueError(
                f"coupling: expected {n_areas} source and target sizes, got "
                f"{len(source_sizes)} and {len(target_sizes)}"
            )
        self.n_areas, self.source = int(n_areas), source
        self.source_sizes = [int(s) for s in source_sizes]
        self.target_sizes = [int(s) for s in target_sizes]
        mask = edge_mask(self.n_areas, allowed_edges)
        self.edges = [
            (s, d) for s in range(self.n_areas) for d in range(self.n_areas) if mask[s, d]
        ]
        self.stats_momentum = float(stats_momentum)
        self.edge_sizes: List[int] = []

    # ----- sizes and layout --------------------------------------------------------------------
    def set_edge_sizes(self, sizes: Sequence[int]) -> None:
        """Record the message size of each edge (subclasses call this in ``__init__``)."""
        self.edge_sizes = [int(k) for k in sizes]
        assert len(self.edge_sizes) == len(self.edges)
        self.register_buffer("msg_var", torch.zeros(len(self.edges)))
        self.register_buffer("stats_seen", torch.zeros((), dtype=torch.bool))

    def incoming(self, dst: int) -> List[int]:
        """Indices (into ``edges``) of the edges into ``dst``, in order."""
        return [e for e, (_, d) in enumerate(self.edges) if d == dst]

    def outgoing(self, src: int) -> List[int]:
        return [e for e, (s, _) in enumerate(self.edges) if s == src]

    def in_size(self, dst: int) -> int:
        """Total size of the messages into ``dst`` (its generator's external input)."""
        return sum(self.edge_sizes[e] for e in self.incoming(dst))

    def message_index(self) -> Dict[str, slice]:
        """``"src_dst"`` -> slice of the concatenated message vector (edges in ``edges`` order)."""
        out, start = {}, 0
        for (s, d), k in zip(self.edges, self.edge_sizes):
            out[f"{s}_{d}"] = slice(start, start + k)
            start += k
        return out

    @property
    def message_size(self) -> int:
        return sum(self.edge_sizes)

    # ----- the lag window ----------------------------------------------------------------------
    def encode(self, signals: List[torch.Tensor]) -> List[torch.Tensor]:
        """What the history keeps of each area's current signal (default: the signal itself).

        Shape:
            signals[a]: (B, S_a) -> list of (B, P_a)
        """
        return list(signals)

    def start(self, signals: List[torch.Tensor]) -> List[torch.Tensor]:
        """A window filled with the (encoded) initial signals.

        Shape:
            signals[a]: (B, S_a) -> window[a]: (B, n_lags, P_a)
        """
        return [z.unsqueeze(1).expand(-1, self.n_lags, -1) for z in self.encode(signals)]

    def push(self, window: List[torch.Tensor], signals: List[torch.Tensor]) -> List[torch.Tensor]:
        """Shift the window by one bin; ``window[a][:, l]`` is the encoded signal ``l`` bins ago.

        Shape:
            window[a]: (B, n_lags, P_a); signals[a]: (B, S_a) -> window[a]: (B, n_lags, P_a)
        """
        enc = self.encode(signals)
        return [torch.cat([z.unsqueeze(1), w[:, :-1]], dim=1) for z, w in zip(enc, window)]

    def forward(
        self, window: List[torch.Tensor], targets: List[torch.Tensor], sample: bool = True
    ) -> CouplingStep:
        """Messages of every edge for the next bin.

        Shape:
            window[a]: (B, n_lags, P_a) encoded signals of area a, lag-indexed (0: latest)
            targets[a]: (B, H_a) current generator state of area a
            returns CouplingStep(messages: one (B, K_e) per edge; means, logvars: the same or None)
        """
        raise NotImplementedError

    def run(
        self,
        signals: List[torch.Tensor],
        targets: Optional[List[torch.Tensor]] = None,
        sample: bool = True,
    ) -> CouplingStep:
        """Messages for whole given signal sequences (teacher forcing; tests and analysis).

        ``messages[e][:, t]`` is computed from the signals up to bin ``t``; ``targets`` default to
        zeros.

        Shape:
            signals[a]: (B, T, S_a); targets[a]: (B, T, H_a) or None
            returns CouplingStep of one (B, T, K_e) sequence per edge (means, logvars or None)
        """
        B, T = signals[0].shape[:2]
        if targets is None:
            targets = [signals[0].new_zeros(B, T, h) for h in self.target_sizes]
        window = self.start([s[:, 0] for s in signals])
        steps = []
        for t in range(T):
            if t:
                window = self.push(window, [s[:, t] for s in signals])
            steps.append(self(window, [g[:, t] for g in targets], sample))
        return stack_steps(steps, len(self.edges))

    def kl(self, seq: CouplingStep) -> Optional[torch.Tensor]:
        """Per-trial KL of stochastic message sequences to their prior, summed over edges (None for
        deterministic messages).

        Shape:
            seq: CouplingStep of (B, T, K_e) sequences -> (B,) or None
        """
        return None

    def lag_linear(self):
        """The messages as a fixed linear map of the lagged source signals, or None when they are
        not one (stochastic, gated by the target, ...): ``(proj, lags)``, where ``proj`` holds one
        (P_a, S_a) projection per area with outgoing edges (area order; its rows are its outgoing
        edges' messages, edge order) and ``lags`` (E, n_lags) each edge's weight per lag, so that
        the message of edge e from a is ``sum_l lags[e, l] * (proj_a s_a(t - l))[rows of e]``. Lets
        the compiled multi-area scan (:mod:`dsid.models.multiarea.scan`) run the coupling inside its
        loop."""
        return None

    def edge_maps(self) -> List[torch.Tensor]:
        """Each edge's linear map from its source's signal to its (mean) message, one (K_e, S_src)
        matrix per edge in ``edges`` order (before any lag mixing or gating, which only weight
        it)."""
        return []

    # ----- losses, penalties -------------------------------------------------------------------
    def loss_terms(self, kl: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Loss terms: ``kl_*`` from the summed per-trial KL of stochastic messages, ``reg_*``
        regularisers already scaled by the coupling's own settings (none by default)."""
        return {}

    def penalized_weights(self) -> List[torch.Tensor]:
        """Weights that join the generators' recurrent weights in the L2 penalty."""
        return []

    # ----- read-outs ---------------------------------------------------------------------------
    @torch.no_grad()
    def update_stats(self, messages: List[torch.Tensor]) -> None:
        """Running (exponential) average of each edge's message total variance over trials and time.

        Shape:
            messages[e]: (B, T, K_e)
        """
        if not self.edges:
            return
        var = torch.stack(
            [m.reshape(-1, m.shape[-1]).var(0, unbiased=False).sum() for m in messages]
        )
        if not bool(self.stats_seen):
            self.msg_var.copy_(var)
            self.stats_seen.fill_(True)
        else:
            self.msg_var.mul_(1 - self.stats_momentum).add_(self.stats_momentum * var)

    def edge_strength(self) -> torch.Tensor:
        """Per-edge strength: root total variance of the message (running average). Shape: (E,)."""
        return self.msg_var.clamp_min(0).sqrt() if self.edges else torch.zeros(0)

    def edge_delays(self) -> torch.Tensor:
        """Per-edge delay in bins. Shape: (E,)."""
        raise NotImplementedError

    def _matrix(self, values: torch.Tensor, fill: float) -> np.ndarray:
        m = np.full((self.n_areas, self.n_areas), fill, dtype=np.float64)
        for (s, d), v in zip(self.edges, values.detach().cpu().numpy()):
            m[s, d] = float(v)
        return m

    def strength(self) -> np.ndarray:
        """(A, A) per-edge strength (row source, column destination), 0 where there is no edge."""
        return self._matrix(self.edge_strength(), 0.0)

    def delays(self) -> np.ndarray:
        """(A, A) per-edge delay in bins, -1 where there is no edge."""
        return self._matrix(self.edge_delays() if self.edges else torch.zeros(0), -1.0)
