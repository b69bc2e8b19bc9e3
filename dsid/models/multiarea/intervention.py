"""Interventions on a trained multi-area model's communication: silence an area, hold its messages
or scale them, from a chosen bin on, and the rollout that predicts what that does.

An intervention acts on messages, the one thing every coupling emits: from bin ``from_bin`` on, the
messages it alters are those recorded at bins ``>= from_bin``, which enter the steps that produce
bins ``>= from_bin + 1`` (see :mod:`dsid.models.multiarea.model` for the timing). Modes:

- ``silence``: the messages are 0 (of every edge leaving ``area``, or of ``edge`` alone: a cut);
- ``clamp``: the messages are held at their value at bin ``from_bin - 1`` (the area keeps sending
  what it sent then);
- ``scale``: the messages are multiplied by ``factor``.

The prediction (:func:`perturbed_rollout`) rolls every trial out twice from the same posterior
means (initial conditions and, bin by bin, inferred inputs), once as inferred and once with the
intervention, so the two differ by the intervention alone: the inferred inputs stand for drive from
outside the recorded areas, which an intervention on the areas' messages leaves as it was. A model
of an area's spikes cannot tell what silencing does to that area's own neurons: their predicted
rates change only through the feedback they receive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

from dsid.models.multiarea.loop import step_areas
from dsid.modules.coupling.base import CouplingStep

MODES = ("silence", "clamp", "scale")
AreaRef = Union[int, str]


@dataclass(frozen=True)
class Intervention:
    """Which edges' messages change from ``from_bin`` on: ``gains`` (edge index -> factor; 0
    silences) and ``clamped`` (edges held at their message of bin ``from_bin - 1``); ``target``
    names what is altered (an area, or an edge ``SRC->DST``)."""

    from_bin: int
    gains: Dict[int, float]
    clamped: Tuple[int, ...] = ()
    description: str = ""
    target: str = ""

    def apply(self, step: CouplingStep, t: int, held: Dict[int, torch.Tensor]) -> CouplingStep:
        """The messages recorded at bin ``t`` under the intervention. ``held`` keeps the clamped
        edges' messages of bin ``from_bin - 1`` (filled by the earlier calls; bin -1 is the message
        of the initial state).

        Shape: step.messages[e] (B, K_e)."""
        if t == self.from_bin - 1:
            held.update({e: step.messages[e] for e in self.clamped})
        if t < self.from_bin:
            return step
        msgs = list(step.messages)
        for e, gain in self.gains.items():
            msgs[e] = msgs[e] * gain
        for e in self.clamped:
            msgs[e] = held[e]
        return step._replace(messages=msgs)


def area_index(model, ref: AreaRef, field: str = "area") -> int:
    """An area given by name or index (a clear error naming ``field`` otherwise)."""
    names = list(model.area_names)
    if isinstance(ref, str) and ref in names:
        return names.index(ref)
    try:
        idx = int(ref)
    except (TypeError, ValueError):
        idx = -1
    if not 0 <= idx < model.n_areas:
        raise ValueError(
            f"{field}: {ref!r} is not an area of this model (areas: "
            + ", ".join(f"{a} = {n}" for a, n in enumerate(names))
            + ")"
        )
    return idx


def parse_edge(model, edge: Union[str, Sequence[AreaRef]]) -> Tuple[int, int]:
    """``"SRC->DST"`` (names or indices) or a pair -> (src, dst) area indices."""
    parts = edge.split("->") if isinstance(edge, str) else list(edge)
    if len(parts) != 2:
        raise ValueError(f"edge: expected 'SRC->DST' (area names or indices), got {edge!r}")
    src, dst = (p.strip() if isinstance(p, str) else p for p in parts)
    return area_index(model, src, "edge"), area_index(model, dst, "edge")


def build_intervention(
    model,
    mode: str,
    *,
    area: Optional[AreaRef] = None,
    edge: Optional[Union[str, Sequence[AreaRef]]] = None,
    factor: Optional[float] = None,
    from_bin: int = 0,
) -> Intervention:
    """The intervention ``mode`` on every edge leaving ``area``, or on ``edge`` alone (see the
    module docstring); a clear error for anything the model cannot do."""
    if mode not in MODES:
        raise ValueError(f"mode: {mode!r}: expected one of {', '.join(MODES)}")
    if (factor is not None) != (mode == "scale"):
        raise ValueError(
            "factor: required with mode 'scale' (the messages' multiplier), "
            f"meaningless with mode {mode!r}"
        )
    if factor is not None and not math.isfinite(float(factor)):
        raise ValueError(f"factor: expected a finite number, got {factor!r}")
    if int(from_bin) != from_bin or from_bin < 0:
        raise ValueError(f"from_bin: expected a bin index >= 0, got {from_bin!r}")
    edges: List[Tuple[int, int]] = list(model.edges)
    names = model.area_names
    listing = ", ".join(f"{names[s]}->{names[d]}" for s, d in edges) or "none"
    if edge is not None:
        src, dst = parse_edge(model, edge)
        if area is not None and area_index(model, area) != src:
            raise ValueError(
                f"area {area!r} and edge {edge!r}: the edge must leave the area "
                "(or give one of them)"
            )
        if (src, dst) not in edges:
            raise ValueError(
                f"edge: {names[src]}->{names[dst]} is not an edge of this model (edges: {listing})"
            )
        chosen, target = [edges.index((src, dst))], f"{names[src]}->{names[dst]}"
    elif area is not None:
        a = area_index(model, area)
        chosen = [e for e, (s, _) in enumerate(edges) if s == a]
        if not chosen:
            raise ValueError(
                f"area: {names[a]} sends no messages in this model (edges: {listing}), "
                "so an intervention on it changes nothing"
            )
        target = names[a]
    else:
        raise ValueError("give the area (every edge leaving it) or the edge to intervene on")
    what = {"silence": "silenced", "clamp": "held at bin %d" % (from_bin - 1)}.get(
        mode, f"scaled by {factor:g}" if factor is not None else ""
    )
    kind = "edge" if edge is not None else "area"
    description = f"{kind} {target}: messages {what} from bin {from_bin}"
    if mode == "clamp":
        return Intervention(int(from_bin), {}, tuple(chosen), description, target)
    gain = 0.0 if mode == "silence" else float(factor)
    return Intervention(int(from_bin), {e: gain for e in chosen}, (), description, target)


@torch.no_grad()
def perturbed_rollout(
    model, spikes: torch.Tensor, intervention: Intervention, ext: Optional[torch.Tensor] = None
) -> Dict[str, torch.Tensor]:
    """Every trial rolled out as inferred and under ``intervention`` from the same posterior means
    (see the module docstring); ``model`` in eval mode.

    Shape:
        spikes: (B, T, N) counts of all neurons (file order); ext: (B, T, E) or None
        returns rates_base, rates_perturbed (B, T, N) (file order), factors_base,
        factors_perturbed (B, T, A*F)
    """
    x, _ = model.augment(spikes, "predict")
    B, T = x.shape[:2]
    encs = [ar.encoder(model.area_input(x, a)) for a, ar in enumerate(model.areas)]
    ics, ci = [e.ic_mean for e in encs], [e.ci for e in encs]
    ext = ext if model.ext_input_size else None
    base = step_areas(model, ics, ci, ext, T, T, False, None)
    given = None
    if "co" in base:  # (B, T, A*C) -> (T, A, B, C): each bin's inferred inputs, area by area
        given = base["co"].view(B, T, model.n_areas, -1).permute(1, 2, 0, 3)
    pert = step_areas(model, ics, ci, ext, T, T, False, None, intervention, given)
    return {
        "rates_base": model._rates(base["f"]),
        "rates_perturbed": model._rates(pert["f"]),
        "factors_base": base["f"],
        "factors_perturbed": pert["f"],
    }
