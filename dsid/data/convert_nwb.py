"""Any NWB file with a units table and a trials table into a DSID tensor file
(``dsid convert nwb``)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Optional, Tuple

import numpy as np

from dsid.data.from_numpy import from_numpy
from dsid.data.tensor_file import DataFileError, DSIDData


def _labels(values) -> Tuple[np.ndarray, list]:
    """Integer codes of ``values`` and the sorted distinct values they index."""
    names = sorted({str(v) for v in values})
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[str(v)] for v in values], np.int64), names


def bin_spikes(spike_times, starts_s: np.ndarray, n_bins: int, bin_s: float) -> np.ndarray:
    """Counts (trials, n_bins, units) of each unit's spike times (seconds) in the bins that start at
    ``starts_s`` (one window start per trial)."""
    edges = starts_s[:, None] + bin_s * np.arange(n_bins + 1)[None, :]
    out = np.empty((starts_s.size, n_bins, len(spike_times)), np.int32)
    for u, times in enumerate(spike_times):
        idx = np.searchsorted(np.sort(np.asarray(times, np.float64)), edges, side="left")
        out[:, :, u] = np.diff(idx, axis=1)
    return out


def _unreadable(path, err: Exception) -> DataFileError:
    return DataFileError(
        path, "/", "an NWB file that pynwb can read", f"{type(err).__name__}: {err}"
    )


@contextlib.contextmanager
def read_nwb(path) -> Iterator[Any]:
    """The ``NWBFile`` of ``path``, open while in the block; a file pynwb cannot read (an HDF5
    file with NWB's version attribute but not its layout, a damaged one) is a
    :class:`DataFileError`."""
    from pynwb import NWBHDF5IO

    try:
        io = NWBHDF5IO(str(path), "r", load_namespaces=True)
    except Exception as err:  # noqa: BLE001  (pynwb and hdmf raise many kinds on such files)
        raise _unreadable(path, err) from err
    with io:
        try:
            nwb = io.read()
        except Exception as err:  # noqa: BLE001
            raise _unreadable(path, err) from err
        yield nwb


def convert_nwb(
    path,
    *,
    bin_ms: float = 10.0,
    align: str = "start_time",
    window_ms: Optional[Tuple[float, float]] = None,
    heldout=None,
    area_column: Optional[str] = None,
    condition_column: Optional[str] = None,
    valid_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    out=None,
) -> DSIDData:
    """Bin the units' spikes of every trial of the NWB file ``path`` into a DSID tensor file.

    Trials are aligned on the trials-table column ``align`` (seconds) and cut to ``window_ms``
    (start, end) around it (default: 0 to the shortest trial, ``stop_time - start_time``), in
    ``bin_ms`` bins; trials whose alignment time is missing (NaN) are dropped. The trials-table
    and units-table ids and the window's start are kept (:mod:`dsid.data.coordinates`).
    ``area_column`` (a units-table column) gives each neuron's area, ``condition_column`` (a
    trials-table column) each trial's condition; ``heldout`` and the split options are
    :func:`~dsid.data.from_numpy`'s.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such NWB file")
    with read_nwb(path) as nwb:
        if nwb.units is None or len(nwb.units) == 0:
            raise DataFileError(path, "units", "a units table with spike_times", "no units")
        if nwb.trials is None or len(nwb.trials) == 0:
            raise DataFileError(path, "intervals/trials", "a trials table", "no trials")
        trials = nwb.trials.to_dataframe()
        if align not in trials:
            raise DataFileError(
                path,
                f"intervals/trials/{align}",
                "a column of alignment times (s)",
                f"columns {sorted(trials.columns)}",
            )
        spike_times = [np.asarray(nwb.units["spike_times"][i]) for i in range(len(nwb.units))]
        unit_ids = np.asarray(nwb.units.id[:], dtype=np.int64)
        area = names = None
        if area_column is not None:
            if area_column not in nwb.units.colnames:
                raise DataFileError(
                    path,
                    f"units/{area_column}",
                    "a units-table column naming each unit's area",
                    f"columns {list(nwb.units.colnames)}",
                )
            area, names = _labels(nwb.units[area_column][:])
    t0 = trials[align].to_numpy(np.float64)
    keep = np.isfinite(t0)
    trials, t0 = trials[keep], t0[keep]
    if window_ms is None:
        window_ms = (0.0, 1000.0 * float((trials["stop_time"] - trials["start_time"]).min()))
    start, end = float(window_ms[0]), float(window_ms[1])
    n_bins = int(np.floor((end - start) / bin_ms + 1e-9))
    if n_bins < 1:
        raise ValueError(f"window {window_ms} ms holds no {bin_ms} ms bin")
    counts = bin_spikes(spike_times, t0 + start / 1000.0, n_bins, bin_ms / 1000.0)
    condition = None
    if condition_column is not None:
        if condition_column not in trials:
            raise DataFileError(
                path,
                f"intervals/trials/{condition_column}",
                "a trials-table column",
                f"columns {sorted(trials.columns)}",
            )
        condition = _labels(trials[condition_column].to_numpy())[0]
    return from_numpy(
        counts,
        bin_ms=bin_ms,
        heldout=heldout,
        area=area,
        area_names=names,
        condition=condition,
        valid_fraction=valid_fraction,
        test_fraction=test_fraction,
        seed=seed,
        out=out,
        time_start_ms=start,
        trial_ids=trials.index.to_numpy().astype(np.int64),
        unit_ids=unit_ids,
    )
