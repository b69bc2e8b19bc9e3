"""Your own recordings into a DSID tensor file: ``from_numpy(spikes, ...)``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from dsid.data.tensor_file import DSIDData, SplitData, write_tensor_file


def _per_neuron(name: str, value, n: int, dtype) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.shape != (n,):
        raise ValueError(
            f"from_numpy: {name} must have one entry per neuron ({n},), got shape {arr.shape}"
        )
    return arr


def from_numpy(
    spikes: np.ndarray,
    *,
    bin_ms: float,
    heldout=None,
    area=None,
    area_names: Optional[Sequence[str]] = None,
    ext_inputs: Optional[np.ndarray] = None,
    condition: Optional[np.ndarray] = None,
    valid_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    out=None,
    time_start_ms: float = 0.0,
    trial_ids=None,
    unit_ids=None,
) -> DSIDData:
    """A DSID tensor file's contents from binned counts ``spikes`` (trials, T, N).

    ``heldout``: (N,) bools, or an int: that many neurons held out, chosen at random with ``seed``
    (default: a fifth, at least one; 0 for none). ``area``: (N,) area index of each neuron (default
    one area). Trials are split at random (``seed``) into train / valid (``valid_fraction``) / test
    (``test_fraction``); ``ext_inputs`` (trials, T, E) and ``condition`` (trials,) follow their
    trials. Held-in neurons come first in the result. ``out``: also write the file there.

    The user's coordinates are kept (:mod:`dsid.data.coordinates`): each trial's id (``trial_ids``,
    default its index in ``spikes``), each neuron's id (``unit_ids``, default its column) and
    ``time_start_ms``, where the first bin starts relative to the event the trials are aligned on.
    """
    x = np.asarray(spikes)
    if x.ndim != 3:
        raise ValueError(f"from_numpy: spikes must be (trials, T, N), got shape {x.shape}")
    if not np.isfinite(x).all() or (x < 0).any() or not np.allclose(x, np.round(x)):
        raise ValueError("from_numpy: spikes must be finite non-negative integer counts")
    if not bin_ms > 0:
        raise ValueError(f"from_numpy: bin_ms must be positive, got {bin_ms}")
    n_trials, _, n = x.shape
    rng = np.random.default_rng(seed)
    if heldout is None or isinstance(heldout, (int, np.integer)) and not isinstance(heldout, bool):
        k = max(1, n // 5) if heldout is None else int(heldout)
        if not 0 <= k < n:
            raise ValueError(f"from_numpy: heldout={heldout}: expected 0..{n - 1} held-out neurons")
        mask = np.zeros(n, bool)
        mask[rng.choice(n, k, replace=False)] = True
    else:
        mask = _per_neuron("heldout", heldout, n, bool)
    areas = np.zeros(n, np.int64) if area is None else _per_neuron("area", area, n, np.int64)
    n_valid, n_test = int(round(valid_fraction * n_trials)), int(round(test_fraction * n_trials))
    if n_valid < 1 or n_trials - n_valid - n_test < 1:
        raise ValueError(
            f"from_numpy: {n_trials} trials cannot make train and valid splits with "
            f"valid_fraction={valid_fraction}, test_fraction={test_fraction}"
        )
    for name, arr in (("ext_inputs", ext_inputs), ("condition", condition)):
        if arr is not None and np.asarray(arr).shape[0] != n_trials:
            raise ValueError(
                f"from_numpy: {name} must have {n_trials} trials, got shape {np.asarray(arr).shape}"
            )
    trial_ids = _ids("trial_ids", trial_ids, n_trials)
    unit_ids = _ids("unit_ids", unit_ids, n)
    if not np.isfinite(time_start_ms):
        raise ValueError(f"from_numpy: time_start_ms must be finite, got {time_start_ms}")
    order = rng.permutation(n_trials)
    parts = {
        "valid": order[:n_valid],
        "test": order[n_valid : n_valid + n_test],
        "train": order[n_valid + n_test :],
    }
    neurons = np.concatenate([np.flatnonzero(~mask), np.flatnonzero(mask)])
    splits = {}
    for name in ("train", "valid", "test"):
        idx = np.sort(parts[name])
        if idx.size == 0:
            continue
        splits[name] = SplitData(
            spikes=np.round(x[idx][..., neurons]).astype(np.int32),
            ext_inputs=None if ext_inputs is None else np.asarray(ext_inputs, np.float32)[idx],
            condition=None if condition is None else np.asarray(condition)[idx],
            trial_id=trial_ids[idx],
        )
    data = DSIDData(
        bin_ms=float(bin_ms),
        area=areas[neurons],
        heldout=mask[neurons],
        splits=splits,
        area_names=list(area_names) if area_names is not None else None,
        unit_id=unit_ids[neurons],
        time_start_ms=float(time_start_ms),
    )
    if out is not None:
        write_tensor_file(Path(out), data)
    return data


def _ids(name: str, ids, n: int) -> np.ndarray:
    """``ids`` as (n,) distinct integers (default 0..n-1)."""
    if ids is None:
        return np.arange(n, dtype=np.int64)
    arr = np.asarray(ids)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"from_numpy: {name} must be ({n},) integers, got {arr.dtype} {arr.shape}")
    if np.unique(arr).size != n:
        raise ValueError(f"from_numpy: {name} must be distinct")
    return arr.astype(np.int64)
