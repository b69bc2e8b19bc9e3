"""Interventions on the simulated multi-area systems (the ``multiregion_rnn`` and
``multiregion_task`` zoo members and :func:`dsid.data.multiarea.synth.synth_multiarea`): the same
trials re-run with an area silenced or edges cut, scaled or held, from a chosen bin, to score a
model's predicted effects against."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class Perturbation:
    """An intervention on a simulated system from stored bin ``from_bin`` on (None: from the start
    of the simulation, burn-in included): silence one area (its activity held at 0 and its messages
    0), cut edges (messages 0), scale edges' messages by ``edge_scale[(src, dst)]``, or hold edges'
    messages at their value of bin ``from_bin - 1`` (``clamp_edges``). Messages altered at bin
    ``t`` act on bin ``t + 1``, so the intervention first shows in bin ``from_bin + 1``."""

    silence_area: Optional[int] = None
    cut_edges: Sequence[Tuple[int, int]] = ()
    edge_scale: Mapping[Tuple[int, int], float] = field(default_factory=dict)
    clamp_edges: Sequence[Tuple[int, int]] = ()
    from_bin: Optional[int] = None

    def __post_init__(self):
        if self.clamp_edges and self.from_bin is None:
            raise ValueError("Perturbation: clamp_edges needs from_bin (the bin the hold starts)")
        if self.from_bin is not None and self.from_bin < 0:
            raise ValueError(f"Perturbation: from_bin must be >= 0, got {self.from_bin}")

    def scale(self, src: int, dst: int) -> float:
        cut = (src, dst) in {tuple(e) for e in self.cut_edges} or src == self.silence_area
        return 0.0 if cut else float(self.edge_scale.get((src, dst), 1.0))

    def clamps(self, src: int, dst: int) -> bool:
        return (src, dst) in {tuple(e) for e in self.clamp_edges}

    def start(self, burn: int) -> int:
        """The first simulation step (burn-in included) the intervention acts on."""
        return 0 if self.from_bin is None else burn + self.from_bin


def message_gains(
    perturb: Optional[Perturbation], edges, n_steps: int, burn: int
) -> Tuple[Dict[Tuple[int, int], float], set, int]:
    """``(gain per edge, the clamped edges, first step)`` of ``perturb`` on ``edges`` (tuples that
    start with ``(src, dst)``); no intervention: gains 1, nothing clamped, first step ``n_steps``
    (never)."""
    gains = {(e[0], e[1]): 1.0 for e in edges}
    if perturb is None:
        return gains, set(), n_steps
    return (
        {k: perturb.scale(*k) for k in gains},
        {k for k in gains if perturb.clamps(*k)},
        perturb.start(burn),
    )


def intervened_message(msgs, t: int, key, value, gains, held, start) -> np.ndarray:
    """The message of edge ``key`` at step ``t``: ``value`` (the unaltered message) before
    ``start``, then scaled, or held at step ``start - 1`` (``msgs[key]`` is its history)."""
    if t < start:
        return value
    if key in held:
        return msgs[key][start - 1]
    return gains[key] * value
