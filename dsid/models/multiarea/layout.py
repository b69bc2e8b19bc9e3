"""Where a multi-area model's areas sit among the data's neurons: area labels checked with clear
errors, and index sets as slices where they are contiguous (no copy when an area's columns are
read)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch


def contiguous_or_index(idx: np.ndarray):
    """``idx`` (sorted positions) as a slice when it is one contiguous range, else as a tensor."""
    if idx.size and (np.diff(idx) == 1).all():
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return torch.as_tensor(idx)


def check_areas(data_info: Mapping[str, Any]):
    """Area labels and held-out flags from ``data_info``, with clear errors.
    Returns (area, heldout, A)."""
    area = np.asarray(data_info["area"])
    n = area.shape[0] if area.ndim == 1 else -1
    if (
        area.ndim != 1
        or n == 0
        or not (
            np.issubdtype(area.dtype, np.integer) or (area.size and np.all(np.mod(area, 1) == 0))
        )
    ):
        raise ValueError(
            f"data_info['area'] (neurons/area): expected an (N,) array of integer area "
            f"indices, got {area.dtype} {area.shape}"
        )
    area = area.astype(np.int64)
    heldout = np.asarray(data_info["heldout"], bool)
    if heldout.shape != area.shape:
        raise ValueError(
            f"data_info['heldout'] (neurons/heldout): expected ({n},) like the area "
            f"labels, got {heldout.shape}"
        )
    n_areas = int(data_info.get("n_areas") or (area.max() + 1 if area.min() >= 0 else 0))
    if area.min() < 0 or area.max() >= n_areas:
        raise ValueError(
            f"data_info['area'] (neurons/area): expected area indices in 0..{n_areas - 1} "
            f"(n_areas={n_areas}), found labels from {area.min()} to {area.max()}"
        )
    for a in range(n_areas):
        if not (area == a).any():
            raise ValueError(
                f"data_info['area'] (neurons/area): expected every area 0..{n_areas - 1} to "
                f"have neurons, area {a} has none"
            )
        if heldout[area == a].all():
            raise ValueError(
                f"data_info['heldout'] (neurons/heldout): expected at least one held-in "
                f"neuron in every area, area {a} has only held-out neurons"
            )
    return area, heldout, n_areas
