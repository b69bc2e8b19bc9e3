"""Training budgets: wall-clock (``90s``, ``15m``, ``1.5h``) or optimizer steps (``3000steps``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Budget:
    """Exactly one of ``seconds`` (wall clock of training) and ``steps`` (optimizer steps) is
    set."""

    seconds: Optional[float] = None
    steps: Optional[int] = None

    def __str__(self) -> str:
        if self.steps is not None:
            return f"{self.steps} optimizer steps"
        if self.seconds < 60:
            return f"{self.seconds:g} s"
        minutes = self.seconds / 60
        return f"{minutes:g} minute" + ("" if minutes == 1 else "s")

    def trainer_limit(self) -> str:
        """Lightning's ``max_time`` string (``DD:HH:MM:SS``) of a wall-clock budget."""
        total = int(round(self.seconds))
        return (
            f"{total // 86400:02d}:{total // 3600 % 24:02d}:{total // 60 % 60:02d}:{total % 60:02d}"
        )


def parse_budget(text) -> Budget:
    """``"15m"`` -> 900 s; ``"90s"``, ``"1.5h"``, ``"2000steps"``; a bare number is minutes."""
    s = str(text).strip().lower().replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|sec|m|min|h|steps?)?", s)
    if not m:
        raise ValueError(
            f"--budget {text!r}: expected a duration such as 90s, 15m or 1.5h, or a number "
            "of optimizer steps such as 2000steps"
        )
    value, unit = float(m.group(1)), m.group(2) or "m"
    if value <= 0:
        raise ValueError(f"--budget {text!r}: expected a positive budget")
    if unit.startswith("step"):
        if value != int(value):
            raise ValueError(f"--budget {text!r}: a whole number of steps")
        return Budget(steps=int(value))
    return Budget(seconds=value * _UNITS[unit])
