"""Reading NLB's NWB files for :mod:`dsid.nlb.prepare`: finding a data set's files, checking them
before the slow load, loading them through nlb_tools (with the synthetic files' true rates attached
when present) and taking spike counts out of NLB's tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import h5py
import numpy as np

from dsid.data.tensor_file import DataFileError
from dsid.nlb.specs import NLBSpec
from dsid.nlb.synth import read_truth

TRUTH = "dsid_truth"  # signal name of the true rates/latents added to the NWBDataset


# continuous fields of the DANDI files that NLB's tensors do not use (skipped on load, as NLB's
# scripts do)
UNUSED_FIELDS = (
    "hand_pos",
    "cursor_pos",
    "eye_pos",
    "finger_pos",
    "target_pos",
    "muscle_vel",
    "muscle_len",
    "joint_vel",
    "joint_ang",
    "force",
    "hand_vel",
    "finger_vel",
)


def find_nwb_files(spec: NLBSpec, nwb_dir, need_test: bool) -> Tuple[Path, Optional[Path]]:
    """Locate the dataset's train (and test) NWB file in ``nwb_dir`` or below it."""
    root = Path(nwb_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: no such directory (expected the {spec.name} NWB files, "
            f"DANDI {spec.dandiset}/sub-{spec.subject}/)"
        )
    found = {}
    for part, name in (("train", spec.train_file()), ("test", spec.test_file())):
        if part == "test" and not need_test:
            continue
        hits = sorted(root.rglob(f"{spec.file_prefix()}{part}*.nwb"))
        if not hits:
            present = sorted(p.name for p in root.rglob("*.nwb"))[:10]
            raise FileNotFoundError(
                f"{root}: no {spec.name} {part} file: expected '{name}' (DANDI "
                f"{spec.dandiset}); .nwb files found: {present or 'none'}"
            )
        if len(hits) > 1:
            raise FileNotFoundError(
                f"{root}: several {spec.name} {part} files: {[str(h) for h in hits]}"
            )
        found[part] = hits[0]
    return found["train"], found.get("test")


def precheck_nwb_file(path: Path, spec: NLBSpec, test_file: bool) -> bool:
    """Check what NWBDataset needs before loading; return whether the units table has
    ``heldout``."""
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataFileError(path, "/", "an NWB (HDF5) file", str(err)) from err
    with f:
        units = f.get("units")
        for col in ("spike_times", "obs_intervals"):
            if units is None or col not in units:
                raise DataFileError(
                    path, f"units/{col}", f"a '{col}' column in the units table", "none"
                )
        has_heldout = "heldout" in units
        if has_heldout and units["heldout"].dtype != bool:
            raise DataFileError(
                path, "units/heldout", "a boolean column", f"dtype {units['heldout'].dtype}"
            )
        if not has_heldout and not test_file:
            raise DataFileError(
                path, "units/heldout", "a boolean column marking NLB's held-out units", "none"
            )
        trials = f.get("intervals/trials")
        if trials is None:
            raise DataFileError(path, "intervals/trials", "a trials table", "none")
        missing = [c for c in spec.required_trial_fields(test_file) if c not in trials]
        if missing:
            raise DataFileError(
                path,
                f"intervals/trials/{missing[0]}",
                f"trial columns {list(spec.required_trial_fields(test_file))} for {spec.name}",
                f"missing {missing}",
            )
    return has_heldout


def load_nwb(path: Path, spec: NLBSpec, test_file: bool, split_needed: Tuple[str, ...]):
    from nlb_tools.nwb_interface import NWBDataset

    has_heldout = precheck_nwb_file(path, spec, test_file)
    try:
        skip = [f for f in UNUSED_FIELDS if f not in spec.behavior_field]
        ds = NWBDataset(str(path), split_heldout=has_heldout, skip_fields=skip)
    except Exception as err:  # nlb_tools raises assorted errors on malformed files
        raise DataFileError(
            path, "/", "an NWB file nlb_tools' NWBDataset can load", f"{type(err).__name__}: {err}"
        ) from err
    signals = set(ds.data.columns.get_level_values(0))
    if not test_file:
        if "heldout_spikes" not in signals:
            raise DataFileError(path, "units/heldout", "at least one held-out unit", "none marked")
        if spec.time_series_behavior and spec.behavior_field[0] not in signals:
            raise DataFileError(
                path,
                f"processing/behavior/{spec.behavior_field[0]}",
                f"the behavior TimeSeries '{spec.behavior_field[0]}' on the 1 ms grid",
                f"none (time series found: {sorted(signals - {'spikes', 'heldout_spikes'})})",
            )
    splits = set(ds.trial_info["split"].astype(str))
    for s in split_needed:
        if s not in splits:
            raise DataFileError(
                path,
                "intervals/trials/split",
                f"trials with split '{s}'",
                f"splits {sorted(splits)}",
            )
    return ds


def attach_truth(ds, path: Path, part: str, bin_ms: int) -> int:
    """Add the synthetic truth to a resampled NWBDataset as signal ``dsid_truth``: held-in rates,
    held-out rates (spikes per bin) and latents (bin means). Return the number of rate columns."""
    rates, latents, heldout = read_truth(path, part)
    n_bins = int(np.ceil(len(rates) / bin_ms))
    if n_bins != len(ds.data):
        raise DataFileError(
            path,
            f"{part}/latents",
            f"{len(ds.data) * bin_ms} samples (the NWB file's 1 ms grid)",
            f"{len(rates)}",
        )

    def per_bin(x, mean):
        x = np.concatenate([x, np.zeros((n_bins * bin_ms - len(x), x.shape[1]))])
        return x.reshape(n_bins, bin_ms, -1).sum(1) / (bin_ms if mean else 1)

    arr = np.hstack(
        [
            per_bin(rates[:, ~heldout], False),
            per_bin(rates[:, heldout], False),
            per_bin(latents, True),
        ]
    )
    ds.add_continuous_data(arr, TRUTH, chan_names=[f"{i:04d}" for i in range(arr.shape[1])])
    return rates.shape[1]


def as_counts(x, name: str, log) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    bad = np.isnan(x)
    if bad.any():
        log(f"  note: {int(bad.sum())} NaN bins in {name} (outside observed intervals) stored as 0")
        x = np.where(bad, 0.0, x)
    return np.rint(x).astype(np.int32)
