"""Population-based training decisions, free of Ray so that they can be unit-tested.

*Exploit*: members in the bottom quantile of the objective copy (weights, optimizer state and
hyperparameters) a member of the top quantile. *Explore*: the copied hyperparameters are perturbed
(multiplied by a factor on a log scale, shifted by a fraction of the range on a linear scale) or,
with ``resample_probability``, drawn afresh from their range; results are clipped into the range.

A member whose score is not finite (a crashed member: NaN loss, an exception) is always in the
bottom set, so it is replaced by a copy of a healthy member instead of ending the search.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

SCALES = ("log", "linear")
INIT_STRATEGIES = ("base", "sample", "perturb")


@dataclass(frozen=True)
class HyperParam:
    """One tuned hyperparameter: its range and the scale on which it is perturbed and sampled."""

    name: str
    low: float
    high: float
    scale: str = "log"
    path: Optional[str] = None  # config path ("train.weight_decay") for names that are not built in

    def __post_init__(self):
        if self.scale not in SCALES:
            raise ValueError(
                f"hyperparameter {self.name}: scale must be one of {SCALES}, got {self.scale!r}"
            )
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError(
                f"hyperparameter {self.name}: need finite low < high, got [{self.low}, {self.high}]"
            )
        if self.scale == "log" and self.low <= 0:
            raise ValueError(
                f"hyperparameter {self.name}: a log-scale range needs low > 0, got {self.low}"
            )

    def clip(self, value: float) -> float:
        return float(min(max(value, self.low), self.high))

    def sample(self, rng: random.Random) -> float:
        if self.scale == "log":
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def perturb(self, value: float, factor: float) -> float:
        """``value * factor`` (log scale) or ``value + (factor - 1) * (high - low)`` (linear scale),
        clipped into the range."""
        if self.scale == "log":
            return self.clip(value * factor)
        return self.clip(value + (factor - 1.0) * (self.high - self.low))


def parse_space(spec: Mapping[str, Mapping]) -> Dict[str, HyperParam]:
    """``{name: {low, high, scale}}`` -> ``{name: HyperParam}`` (in the given order)."""
    space = {}
    for name, s in (spec or {}).items():
        s = dict(s or {})
        unknown = set(s) - {"low", "high", "scale", "path"}
        if unknown:
            raise ValueError(
                f"hyperparameter {name}: unknown keys {sorted(unknown)} "
                "(expected low, high, scale and optionally path)"
            )
        if "low" not in s or "high" not in s:
            raise ValueError(f"hyperparameter {name}: needs low and high")
        space[name] = HyperParam(
            name, float(s["low"]), float(s["high"]), str(s.get("scale", "log")), s.get("path")
        )
    if not space:
        raise ValueError("PBT needs at least one hyperparameter to tune")
    return space


def _better(mode: str):
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return (lambda s: s) if mode == "min" else (lambda s: -s)


def rank(scores: Mapping[str, float], mode: str = "min") -> List[str]:
    """Member ids, best first; members with a non-finite score last (in their given order)."""
    key = _better(mode)
    healthy = [k for k, v in scores.items() if v is not None and math.isfinite(v)]
    failed = [k for k in scores if k not in healthy]
    return sorted(healthy, key=lambda k: key(scores[k])) + failed


def quantiles(
    scores: Mapping[str, float], fraction: float = 0.25, mode: str = "min"
) -> Tuple[List[str], List[str]]:
    """``(bottom, top)``: the members that copy another, and the members that may be copied.

    Each holds ``ceil(n * fraction)`` members (at most ``n // 2``) of the ``n`` scored members;
    every member with a non-finite score is in ``bottom`` whatever its size. Both are empty when no
    member is healthy or there are fewer than two members.
    """
    if not 0.0 < fraction <= 0.5:
        raise ValueError(f"quantile must be in (0, 0.5], got {fraction}")
    n = len(scores)
    ranked = rank(scores, mode)
    healthy = [k for k in ranked if scores[k] is not None and math.isfinite(scores[k])]
    failed = [k for k in ranked if k not in healthy]
    if n < 2 or not healthy:
        return [], []
    k = min(int(math.ceil(n * fraction)), n // 2)
    top = healthy[:k]
    worst_healthy = [m for m in reversed(healthy) if m not in top][: max(k - len(failed), 0)]
    bottom = failed + worst_healthy[::-1]
    return bottom, top


def choose_donor(top: Sequence[str], rng: random.Random) -> str:
    """The top member a bottom member copies: uniform over the top quantile."""
    if not top:
        raise ValueError("no top-quantile member to copy")
    return top[rng.randrange(len(top))]


def plan_exploits(
    scores: Mapping[str, float],
    fraction: float = 0.25,
    mode: str = "min",
    rng: Optional[random.Random] = None,
) -> Dict[str, str]:
    """``{member: donor}`` for every member that should copy another now."""
    rng = rng or random.Random(0)
    bottom, top = quantiles(scores, fraction, mode)
    return {m: choose_donor(top, rng) for m in bottom}


def explore(
    hp: Mapping[str, float],
    space: Mapping[str, HyperParam],
    rng: random.Random,
    resample_probability: float = 0.25,
    factors: Sequence[float] = (0.8, 1.25),
) -> Tuple[Dict[str, float], Dict[str, str]]:
    """Perturb every hyperparameter of ``space`` in ``hp``. Returns the new values (other entries of
    ``hp`` are kept) and a description of each operation ("resample", "*1.25", "+0.1")."""
    if not 0.0 <= resample_probability <= 1.0:
        raise ValueError(f"resample_probability must be in [0, 1], got {resample_probability}")
    if not factors or any(f <= 0 for f in factors):
        raise ValueError(f"perturbation factors must be positive, got {list(factors)}")
    new, ops = dict(hp), {}
    for name, spec in space.items():
        if name not in hp or hp[name] is None or rng.random() < resample_probability:
            new[name], ops[name] = spec.sample(rng), "resample"
            continue
        factor = float(factors[rng.randrange(len(factors))])
        new[name] = spec.perturb(float(hp[name]), factor)
        ops[name] = (
            f"*{factor:g}" if spec.scale == "log" else f"{(factor - 1) * (spec.high - spec.low):+g}"
        )
    return new, ops


def initial_population(
    base: Mapping[str, float],
    space: Mapping[str, HyperParam],
    n: int,
    strategy: str = "sample",
    rng: Optional[random.Random] = None,
    members: Sequence[Mapping[str, float]] = (),
    factors: Sequence[float] = (0.8, 1.25),
) -> List[Dict[str, float]]:
    """Starting hyperparameters of ``n`` members.

    Member 0 starts from ``base`` (the composed config, even outside the ranges). The others:
    ``base`` again (strategy "base"), every hyperparameter drawn from its range ("sample"), or
    ``base`` perturbed once ("perturb"). ``members[i]`` then overrides entries of member ``i``.
    """
    if strategy not in INIT_STRATEGIES:
        raise ValueError(f"init must be one of {INIT_STRATEGIES}, got {strategy!r}")
    if n < 1:
        raise ValueError(f"population must be at least 1, got {n}")
    if len(members) > n:
        raise ValueError(f"{len(members)} explicit members for a population of {n}")
    rng = rng or random.Random(0)
    pop = []
    for i in range(n):
        if i == 0 or strategy == "base":
            hp = dict(base)
        elif strategy == "sample":
            hp = {**base, **{k: s.sample(rng) for k, s in space.items()}}
        else:
            hp = explore(base, space, rng, 0.0, factors)[0]
        if i < len(members):
            unknown = set(members[i] or {}) - set(space)
            if unknown:
                raise ValueError(
                    f"member {i}: {sorted(unknown)} are not tuned hyperparameters "
                    f"({', '.join(space)})"
                )
            hp.update({k: float(v) for k, v in (members[i] or {}).items()})
        pop.append(hp)
    return pop
