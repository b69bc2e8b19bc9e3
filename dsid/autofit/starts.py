"""Several starts inside one budget: how ``dsid fit`` leaves plateaus and poor optima.

Which optimum a sequential autoencoder reaches varies from seed to seed: on the same data one start
can sit on a plateau while another reaches the ceiling. ``dsid fit`` therefore trains start after
start (seeds ``seed``, ``seed + 1``, ...) while the budget lasts, each until early stopping ends it
or the budget does, keeps the start with the best selection objective (``val/select``: held-in
entries hidden from the encoder, never a held-out neuron), and stops early only once that has been
*checked*:

- two starts agree: their best ``val/select`` differ by at most :data:`AGREE` of what the better one
  learnt beyond the neurons' mean rates (two seeds reaching the same optimum is the evidence that a
  longer budget will not find a better one), and
- the kept start is above the smoothing baseline on the held-out neurons. The held-out neurons
  decide only whether the budget is spent on another start, never which start is kept.

Otherwise another start begins, as long as the budget left is at least half of what the quickest
start needed to reach its best (a start given less could not get as far).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

AGREE = 0.03


@dataclass
class StartResult:
    """One start: its seed, where it ran, its best selection objective and when it got there."""

    seed: int
    select: float  # best val/select (lower is better; NaN when it never validated)
    best_at: float  # budget used by the start until that best (seconds or steps, as the budget)
    seconds: float  # wall-clock seconds the start took (training, inference, report)
    steps: int = 0
    co_bps: Optional[float] = None  # held-out co-bps of its best checkpoint (valid split)
    run_dir: str = ""
    offset_seconds: float = 0.0  # when it began, counted from the first start
    extra: Dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """What the starts so far say: ``stop`` or start another, and why (for the report)."""

    stop: bool
    converged: bool
    reason: str


def best_start(starts: Sequence[StartResult]) -> StartResult:
    """The start with the lowest finite ``select`` (the first start when none validated)."""
    finite = [s for s in starts if math.isfinite(s.select)]
    return min(finite, key=lambda s: s.select) if finite else starts[0]


def agreeing_pair(
    starts: Sequence[StartResult], mean_rates_select: float, agree: float = AGREE
) -> Optional[tuple]:
    """The best start and another whose ``select`` is within ``agree`` x the best one's gain over
    the mean rates (``mean_rates_select - best.select``), or None."""
    best = best_start(starts)
    if not math.isfinite(best.select):
        return None
    tolerance = agree * max(mean_rates_select - best.select, 0.0)
    for s in starts:
        if s is not best and math.isfinite(s.select) and s.select - best.select <= tolerance:
            return best, s
    return None


def verdict(
    starts: Sequence[StartResult],
    remaining: float,
    mean_rates_select: float,
    beats_baseline: Callable[[StartResult], bool],
    agree: float = AGREE,
) -> Verdict:
    """Whether to begin another start after ``starts``, with ``remaining`` budget left (in the
    unit of the starts' ``best_at``)."""
    best = best_start(starts)
    pair = agreeing_pair(starts, mean_rates_select, agree)
    if pair is not None and beats_baseline(best):
        seeds = " and ".join(str(s.seed) for s in sorted(pair, key=lambda s: s.seed))
        return Verdict(
            True,
            True,
            f"converged: starts from seeds {seeds} reached the same optimum (validation objective "
            f"within {agree:.0%} of what the model learnt beyond mean rates), above the smoothing "
            "baseline; a longer budget is unlikely to improve this model",
        )
    need = max(0.5 * min(s.best_at for s in starts), 1e-9)
    if remaining < need:
        return Verdict(
            True, False, "the budget ran out" + _unchecked(starts, pair, beats_baseline(best))
        )
    return Verdict(False, False, "")


def _unchecked(starts, pair, beats: bool) -> str:
    if len(starts) == 1:
        return "; one start: its convergence is not checked"
    if pair is None:
        return (
            f"; the {len(starts)} starts reached different optima (the best kept): a longer "
            "budget would allow more starts"
        )
    if not beats:
        return f"; {len(starts)} starts, none above the smoothing baseline"
    return ""


def run_starts(
    train_start: Callable[[int, float, float], StartResult],
    seed: int,
    budget: float,
    mean_rates_select: float,
    beats_baseline: Callable[[StartResult], bool],
    clock: Callable[[], float],
    say: Callable[[str], None] = lambda _: None,
    done: Sequence[StartResult] = (),
) -> tuple:
    """Train starts until :func:`verdict` says stop; return ``(starts, kept, verdict)``.

    ``train_start(seed, remaining)`` trains one start with ``remaining`` budget (seconds or steps,
    whatever ``clock`` counts: the budget used so far) and returns its
    :class:`StartResult`; ``done`` are starts an earlier process finished (a resumed fit)."""
    starts: List[StartResult] = list(done)
    while True:
        if starts:
            v = verdict(starts, budget - clock(), mean_rates_select, beats_baseline)
            if v.stop:
                return starts, best_start(starts), v
            say(
                f"start {len(starts)} (seed {starts[-1].seed}) stopped improving with budget "
                f"left: another start (seed {seed + len(starts)}) to check it or find a better "
                "optimum"
            )
        starts.append(train_start(seed + len(starts), budget - clock()))
