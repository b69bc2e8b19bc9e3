"""The data-support check shared by the observation models."""

from __future__ import annotations

from typing import Optional

import numpy as np


def first_violation(
    data,
    *,
    minimum: Optional[float] = None,
    strict: bool = False,
    integer: bool = False,
    zero_hint: str = "",
) -> Optional[str]:
    """A description of the first kind of value in ``data`` outside a support, or None.

    Always refused: NaN and infinite values. ``minimum``: values below it (at or below it when
    ``strict``; exact zeros below a strict 0 are counted, with ``zero_hint`` appended); ``integer``:
    non-integer values.
    """
    data = np.asarray(data, np.float64)
    bad = ~np.isfinite(data)
    if bad.any():
        return f"{int(bad.sum())} NaN or infinite values"
    if minimum is not None and data.size:
        low = data.min()
        if low < minimum:
            return f"negative value {low}" if minimum == 0 else f"value {low} below {minimum}"
        if strict and low == minimum:
            n = int((data == minimum).sum())
            return f"{n} zeros{zero_hint}" if minimum == 0 else f"{n} values equal to {minimum}"
    if integer and not np.allclose(data, np.round(data)):
        return "non-integer values"
    return None
