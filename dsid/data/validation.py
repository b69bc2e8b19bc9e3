"""Checks of a DSID tensor file's fields as it is loaded (:func:`dsid.data.tensor_file.
load_tensor_file`), and of an NWB file before it is converted: each failure is a
:class:`DataFileError` naming the file, the field and what was expected."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Mapping, Optional

import h5py
import numpy as np

# a sequence model needs at least this many bins per trial
MIN_BINS = 2


class DataFileError(ValueError):
    """A DSID tensor file that is missing a field or holds a field of the wrong shape or type."""

    def __init__(self, path, field: str, expected: str, found: str = ""):
        self.path, self.field = str(path), field
        msg = f"{path}: field '{field}': expected {expected}"
        if found:
            msg += f", found {found}"
        super().__init__(msg)


def check_whole(key: str, value: Any, least: int) -> int:
    """A setting that must be an integer >= ``least`` (``data.batch_size``, a model size)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{key}={value}: expected an integer >= {least}")
    return int(value)


def check_bin_ms(path, value: Any) -> float:
    """``attrs/bin_ms`` as a positive, finite float."""
    field, want = "attrs/bin_ms", "a positive bin width in ms (a number)"
    if value is None:
        raise DataFileError(path, field, want, "nothing")
    try:
        bin_ms = float(value)
    except (TypeError, ValueError):
        raise DataFileError(path, field, want, repr(_plain(value))) from None
    if not (np.isfinite(bin_ms) and bin_ms > 0):
        raise DataFileError(path, field, want, str(bin_ms))
    return bin_ms


def _plain(value: Any) -> Any:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _numeric(arr: np.ndarray) -> bool:
    return np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)


def check_finite(path, name: str, arr: np.ndarray, what: str = "finite values") -> None:
    """Numeric values without NaN or inf."""
    if not _numeric(arr):
        raise DataFileError(path, name, f"numeric {what}", f"dtype {arr.dtype}")
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise DataFileError(path, name, what, f"{bad} NaN or inf values")


def check_counts(path, name: str, arr: np.ndarray, n_neurons: int) -> None:
    """Spike counts: shape (trials, T, N), integers >= 0 (integral floats pass; NaN and inf do
    not)."""
    check_shape(path, name, arr, n_neurons)
    if not _numeric(arr):
        raise DataFileError(path, name, "integer spike counts", f"dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        check_finite(path, name, arr, "spike counts with no NaN or inf values")
        if not np.allclose(arr, np.round(arr)):
            raise DataFileError(path, name, "integer spike counts", "non-integer values")
    if arr.size and arr.min() < 0:
        raise DataFileError(path, name, "non-negative spike counts", f"minimum {arr.min()}")


def check_shape(path, name: str, arr: np.ndarray, n_neurons: int) -> None:
    """Observations of shape (trials, T, N)."""
    if arr.ndim != 3 or arr.shape[-1] != n_neurons:
        raise DataFileError(path, name, f"shape (trials, T, {n_neurons})", f"shape {arr.shape}")


def check_observations(path, name: str, arr: np.ndarray, n_neurons: int, counts: bool) -> None:
    """Spike counts (``counts``) or other observations (finite values) of shape (trials, T, N)."""
    if counts:
        check_counts(path, name, arr, n_neurons)
    else:
        check_shape(path, name, arr, n_neurons)
        check_finite(path, name, arr, "finite values (no NaN or inf)")


def check_bins(path, name: str, arr: np.ndarray, n_time: Optional[int]) -> int:
    """At least one trial of at least :data:`MIN_BINS` bins, and the other splits' T; returns T."""
    if arr.shape[0] == 0:
        raise DataFileError(path, name, "at least one trial", "0 trials")
    if arr.shape[1] < MIN_BINS:
        raise DataFileError(
            path,
            name,
            f"at least {MIN_BINS} time bins per trial (a sequence model needs {MIN_BINS})",
            f"T={arr.shape[1]}",
        )
    if n_time is not None and arr.shape[1] != n_time:
        raise DataFileError(
            path, name, f"T={n_time} bins like the other splits", f"T={arr.shape[1]}"
        )
    return int(arr.shape[1])


def checked_ext(path, split: str, ext: np.ndarray, trials: int, n_time: int, n_fwd: int):
    """``{split}/ext_inputs`` as float32 after checking shape (trials, T or T + T_fwd, E) and
    values; inputs not given past the window are taken as zero there."""
    name = f"{split}/ext_inputs"
    lengths = sorted({n_time, n_time + n_fwd})
    if ext.ndim != 3 or ext.shape[0] != trials or ext.shape[1] not in lengths:
        want = " or ".join(f"({trials}, {t}, E)" for t in lengths)
        raise DataFileError(path, name, f"shape {want}", f"shape {ext.shape}")
    check_finite(path, name, ext)
    if n_fwd and ext.shape[1] == n_time:
        ext = np.concatenate([ext, np.zeros((trials, n_fwd, ext.shape[2]), ext.dtype)], axis=1)
    return np.asarray(ext, np.float32)


def check_ext_consistent(path, splits: Mapping[str, Any]) -> None:
    """External inputs are given for every split or none, with one number of channels."""
    have = {k: sd.ext_inputs.shape[2] for k, sd in splits.items() if sd.ext_inputs is not None}
    if not have:
        return
    first = next(iter(have))
    for split in splits:
        if split not in have:
            raise DataFileError(
                path,
                f"{split}/ext_inputs",
                f"external inputs in every split (as in {first})",
                "nothing",
            )
        if have[split] != have[first]:
            raise DataFileError(
                path,
                f"{split}/ext_inputs",
                f"the same number of channels in every split ({have[first]} in {first})",
                f"{have[split]}",
            )


def check_truth(path, name: str, arr: np.ndarray, trials: int, n_time: int, dim: str) -> None:
    """A true time series of the split (latents, inputs, messages): shape (trials, T, dim),
    finite."""
    if arr.ndim != 3 or arr.shape[:2] != (trials, n_time):
        raise DataFileError(path, name, f"shape ({trials}, {n_time}, {dim})", f"{arr.shape}")
    check_finite(path, name, arr)


def check_truth_rates(path, name: str, rates: np.ndarray, shape) -> None:
    """True rates: the spikes' shape, finite and >= 0."""
    if rates.shape != tuple(shape):
        raise DataFileError(path, name, f"shape {tuple(shape)}", f"{rates.shape}")
    check_finite(path, name, rates, "finite non-negative rates")
    if rates.size and rates.min() < 0:
        raise DataFileError(path, name, "finite non-negative rates", f"minimum {rates.min()}")


def check_area_matrix(path, name: str, arr: np.ndarray, n_areas: int) -> None:
    """``truth/effectome`` or ``truth/delay_bins``: (A, A), finite."""
    if arr.shape != (n_areas, n_areas):
        raise DataFileError(path, name, f"shape ({n_areas}, {n_areas})", f"{arr.shape}")
    check_finite(path, name, arr)


def check_nwb_file(path) -> None:
    """Refuse, before pynwb reads it, a file that is not an NWB file: missing, not HDF5, or an HDF5
    file without NWB's root attribute ``nwb_version`` (a DSID tensor file among them)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such NWB file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataFileError(path, "/", "an NWB (HDF5) file", f"not HDF5 ({err})") from err
    with f:
        if "nwb_version" in f.attrs:
            return
        dsid = "bin_ms" in f.attrs and "neurons" in f
    found = "a DSID tensor file (converted already)" if dsid else "an HDF5 file without it"
    raise DataFileError(path, "attrs/nwb_version", "an NWB file (its nwb_version attribute)", found)
