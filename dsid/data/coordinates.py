"""The user's own coordinates of a tensor file's trials, neurons and bins.

A tensor file orders trials by split and neurons held-in first, which is rarely the order of the
recording they came from. Three optional records map them back:

- ``{split}/trial_id`` (trials,) int: each trial's id in the user's data (its index in the array
  given to :func:`~dsid.data.from_numpy.from_numpy`, its id in an NWB trials table);
- ``neurons/unit_id`` (N,) int: each neuron's id (its column in that array, its NWB unit id);
- the attribute ``time_start_ms``: where the first bin starts, in ms from the event the trials are
  aligned on (``-200`` for a window from 200 ms before movement onset; 0 when not recorded).

Files without them read as before: ids are then the file's own positions (trials counted across
the splits in the order train, valid, test).
"""

from __future__ import annotations

from typing import Dict, Optional

import h5py
import numpy as np

from dsid.data.validation import DataFileError

TRIAL_ID, UNIT_ID, TIME_START = "trial_id", "unit_id", "time_start_ms"


def read_trial_id(g: h5py.Group, path, split: str, trials: int) -> Optional[np.ndarray]:
    """``{split}/trial_id``, checked: (trials,) integers."""
    if TRIAL_ID not in g:
        return None
    ids = np.asarray(g[TRIAL_ID][()])
    if ids.shape != (trials,) or not np.issubdtype(ids.dtype, np.integer):
        raise DataFileError(
            path, f"{split}/{TRIAL_ID}", f"a ({trials},) integer array", f"{ids.dtype} {ids.shape}"
        )
    return ids.astype(np.int64)


def check_trial_ids(path, ids: Dict[str, Optional[np.ndarray]]) -> None:
    """Trial ids are either given for every split or none, and never repeat across splits."""
    given = {s: v for s, v in ids.items() if v is not None}
    if not given:
        return
    missing = sorted(set(ids) - set(given))
    if missing:
        raise DataFileError(
            path, f"{missing[0]}/{TRIAL_ID}", "trial ids in every split, or in none", "none"
        )
    every = np.concatenate(list(given.values()))
    if np.unique(every).size != every.size:
        raise DataFileError(
            path, f"{{split}}/{TRIAL_ID}", "distinct trial ids across the splits", "repeated ids"
        )


def read_unit_id(f: h5py.File, path, n: int) -> Optional[np.ndarray]:
    """``neurons/unit_id``, checked: (N,) distinct integers."""
    if "neurons" not in f or UNIT_ID not in f["neurons"]:
        return None
    ids = np.asarray(f["neurons"][UNIT_ID][()])
    if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
        raise DataFileError(
            path, f"neurons/{UNIT_ID}", f"a ({n},) integer array", f"{ids.dtype} {ids.shape}"
        )
    if np.unique(ids).size != n:
        raise DataFileError(path, f"neurons/{UNIT_ID}", "distinct unit ids", "repeated ids")
    return ids.astype(np.int64)


def read_time_start(f: h5py.File, path) -> float:
    """The attribute ``time_start_ms`` (0 when absent), checked: a finite number."""
    value = f.attrs.get(TIME_START, 0.0)
    try:
        start = float(value)
    except (TypeError, ValueError):
        start = float("nan")
    if not np.isfinite(start):
        raise DataFileError(path, f"attrs/{TIME_START}", "a finite number of ms", repr(value))
    return start


def trial_ids(data, split: str) -> np.ndarray:
    """The ids of ``split``'s trials: recorded ones, else positions counted across the splits."""
    sd = data.splits[split]
    if sd.trial_id is not None:
        return sd.trial_id
    before = 0
    for name, other in data.splits.items():
        if name == split:
            break
        before += other.n_trials
    return np.arange(before, before + sd.n_trials, dtype=np.int64)


def unit_ids(data) -> np.ndarray:
    """The neurons' ids: recorded ones, else their positions in the file."""
    return data.unit_id if data.unit_id is not None else np.arange(data.n_neurons, dtype=np.int64)


def bin_starts_ms(n_bins: int, bin_ms: float, start_ms: float = 0.0) -> np.ndarray:
    """Start of each of ``n_bins`` bins, ms from the alignment event: ``start_ms + bin_ms * i``."""
    return start_ms + bin_ms * np.arange(n_bins, dtype=np.float64)


def bin_times_ms(data, n_bins: Optional[int] = None) -> np.ndarray:
    """:func:`bin_starts_ms` of ``data``'s bins (``n_bins`` of them; default the file's)."""
    return bin_starts_ms(data.n_time if n_bins is None else n_bins, data.bin_ms, data.time_start_ms)


def outputs_frame(outputs: Dict[str, np.ndarray], key: str = "rates"):
    """One output of :meth:`dsid.runs.load.Run.outputs` (or ``transform``) as a pandas DataFrame:
    a row per trial and bin (index ``trial_id``, ``time_ms``: the bin's start; ``rates_forward``:
    the bins after the trial), a column per neuron (``unit_id``) for ``rates``, per dimension
    (0, 1, ...) for ``factors`` and ``inferred_inputs``. ``df.xs(trial_id)`` is one trial,
    ``df.groupby("time_ms").mean()`` the trial average.

    Shape:
        outputs[key]: (trials, T, C) -> frame: (trials * T, C)
    """
    import pandas as pd

    if key not in outputs:
        have = ", ".join(sorted(k for k, v in outputs.items() if np.ndim(v) == 3))
        raise KeyError(f"outputs_frame: no {key!r} in these outputs (they hold {have})")
    values = np.asarray(outputs[key])
    n_trials, n_bins, n_cols = values.shape
    trial = np.asarray(outputs["trial_id"]) if "trial_id" in outputs else np.arange(n_trials)
    time = np.asarray(outputs.get("time_ms", []), float)
    if key == "rates_forward" and len(time) >= 2:  # the bins after the trial's
        time = time[-1] + (time[1] - time[0]) * np.arange(1, n_bins + 1)
    level = "time_ms" if len(time) == n_bins else "bin"  # (files without times: bin numbers)
    time = time if level == "time_ms" else np.arange(n_bins)
    index = pd.MultiIndex.from_product([trial, time], names=["trial_id", level])
    columns = (
        pd.Index(np.asarray(outputs["unit_id"]), name="unit_id")
        if key.startswith("rates") and "unit_id" in outputs
        else pd.RangeIndex(n_cols, name=key)
    )
    return pd.DataFrame(values.reshape(n_trials * n_bins, n_cols), index=index, columns=columns)
