"""The DSID tensor file (HDF5): the one input format every model reads.

Layout (documented in README.md): attrs ``bin_ms``, ``time_start_ms``;
``neurons/{area,area_names,heldout,unit_id}``;
``{train,valid,test}/{spikes,forward_spikes,ext_inputs,behavior,condition,trial_id}``;
``{split}/truth/{rates,latents,inputs}``;
``{split}/truth/messages/{src}_{dst}``; ``truth/{effectome,delay_bins}``. Unknown groups are
ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import h5py
import numpy as np

from dsid.data.atomic import atomic_h5
from dsid.data.coordinates import (
    TIME_START,
    TRIAL_ID,
    UNIT_ID,
    check_trial_ids,
    read_time_start,
    read_trial_id,
    read_unit_id,
)
from dsid.data.validation import (
    DataFileError,
    check_area_matrix,
    check_bin_ms,
    check_bins,
    check_ext_consistent,
    check_observations,
    check_truth,
    check_truth_rates,
    checked_ext,
)

__all__ = [
    "SPLITS",
    "DataFileError",
    "DSIDData",
    "SplitData",
    "load_tensor_file",
    "write_tensor_file",
]

SPLITS = ("train", "valid", "test")


@dataclass
class SplitData:
    """One split's arrays; optional ones are ``None``."""

    spikes: np.ndarray  # (trials, T, N)
    forward_spikes: Optional[np.ndarray] = None  # (trials, T_fwd, N)
    behavior: Optional[np.ndarray] = None  # (trials, T, B)
    condition: Optional[np.ndarray] = None  # (trials,)
    truth_rates: Optional[np.ndarray] = None  # (trials, T, N), spikes per bin
    truth_latents: Optional[np.ndarray] = None  # (trials, T, L)
    truth_messages: Dict[str, np.ndarray] = field(
        default_factory=dict
    )  # "src_dst" -> (trials, T, k)
    ext_inputs: Optional[np.ndarray] = (
        None  # (trials, T + T_fwd, E) known inputs fed to the generator
    )
    truth_inputs: Optional[np.ndarray] = None  # (trials, T, U) the true unobserved inputs
    trial_id: Optional[np.ndarray] = (
        None  # (trials,) ids in the user's data (dsid.data.coordinates)
    )

    @property
    def n_trials(self) -> int:
        return int(self.spikes.shape[0])


@dataclass
class DSIDData:
    """The contents of a DSID tensor file."""

    bin_ms: float
    area: np.ndarray  # (N,) int
    heldout: np.ndarray  # (N,) bool
    splits: Dict[str, SplitData]
    area_names: Optional[List[str]] = None
    effectome: Optional[np.ndarray] = None  # (A, A)
    delay_bins: Optional[np.ndarray] = None  # (A, A)
    path: Optional[str] = None
    extra: Dict[str, np.ndarray] = field(default_factory=dict)  # other datasets, by path
    unit_id: Optional[np.ndarray] = None  # (N,) ids in the user's data (dsid.data.coordinates)
    time_start_ms: float = 0.0  # the first bin's start, ms from the alignment event

    @property
    def n_neurons(self) -> int:
        return int(self.area.shape[0])

    @property
    def n_areas(self) -> int:
        return int(self.area.max()) + 1 if self.area.size else 0

    @property
    def heldin(self) -> np.ndarray:
        return ~self.heldout

    @property
    def n_time(self) -> int:
        return int(next(iter(self.splits.values())).spikes.shape[1])

    @property
    def n_forward(self) -> int:
        fwd = [s.forward_spikes for s in self.splits.values() if s.forward_spikes is not None]
        return int(fwd[0].shape[1]) if fwd else 0

    def drop_ext_inputs(self) -> None:
        """Leave out the known external inputs of every split (a model trained without them)."""
        for sd in self.splits.values():
            sd.ext_inputs = None

    @property
    def ext_input_size(self) -> int:
        """Channels of the known external inputs (``{split}/ext_inputs``), 0 without them."""
        ext = [s.ext_inputs for s in self.splits.values() if s.ext_inputs is not None]
        return int(ext[0].shape[-1]) if ext else 0

    @property
    def latent_size(self) -> int:
        lat = [s.truth_latents for s in self.splits.values() if s.truth_latents is not None]
        return int(lat[0].shape[-1]) if lat else 0


def _read(group: h5py.Group, name: str) -> Optional[np.ndarray]:
    return group[name][()] if name in group else None


def load_tensor_file(path, require_splits=("train", "valid"), counts: bool = True) -> DSIDData:
    """Read and validate a DSID tensor file; raise :class:`DataFileError` naming file and field.

    ``counts=False`` accepts non-count observations (for example calcium traces), still refusing
    NaN and inf.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such DSID tensor file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataFileError(path, "/", "an HDF5 file", str(err)) from err
    with f:
        bin_ms = check_bin_ms(path, f.attrs.get("bin_ms"))
        area, heldout, area_names = _read_neurons(f, path)
        splits: Dict[str, SplitData] = {}
        for split in SPLITS:
            if split in f:
                splits[split] = _read_split(f[split], path, split, area.size, counts, splits)
            elif split in require_splits:
                raise DataFileError(
                    path, f"{split}/spikes", "a (trials, T, N) array", "no such group"
                )
        check_ext_consistent(path, splits)
        check_trial_ids(path, {s: sd.trial_id for s, sd in splits.items()})
        unit_id, time_start = read_unit_id(f, path, area.size), read_time_start(f, path)
        n_areas = int(area.max()) + 1
        matrices = {}
        for name in ("effectome", "delay_bins"):
            arr = _read(f["truth"], name) if "truth" in f else None
            if arr is not None:
                check_area_matrix(path, f"truth/{name}", arr, n_areas)
            matrices[name] = arr
    return DSIDData(
        bin_ms=bin_ms,
        area=area.astype(np.int64),
        heldout=heldout,
        splits=splits,
        area_names=area_names,
        effectome=matrices["effectome"],
        delay_bins=matrices["delay_bins"],
        path=str(path),
        unit_id=unit_id,
        time_start_ms=time_start,
    )


def _read_neurons(f: h5py.File, path) -> Tuple[np.ndarray, np.ndarray, Optional[List[str]]]:
    """``neurons/{area,heldout,area_names}``, checked."""
    if "neurons" not in f or "area" not in f["neurons"]:
        raise DataFileError(path, "neurons/area", "an (N,) integer array", "nothing")
    area = np.asarray(f["neurons/area"][()])
    if area.ndim != 1 or not np.issubdtype(area.dtype, np.integer):
        raise DataFileError(
            path, "neurons/area", "an (N,) integer array", f"{area.dtype} {area.shape}"
        )
    if area.size == 0:
        raise DataFileError(path, "neurons/area", "at least one neuron", "0 neurons")
    if area.min() < 0:
        raise DataFileError(path, "neurons/area", "area indices >= 0", f"minimum {area.min()}")
    n, n_areas = area.shape[0], int(area.max()) + 1
    missing = sorted(set(range(n_areas)) - set(area.tolist()))
    if missing:
        raise DataFileError(
            path,
            "neurons/area",
            f"every area 0..{n_areas - 1} to have neurons",
            f"none in areas {missing}",
        )
    heldout = _read(f["neurons"], "heldout")
    heldout = np.zeros(n, bool) if heldout is None else np.asarray(heldout)
    if heldout.shape != (n,) or heldout.dtype != bool:
        raise DataFileError(
            path, "neurons/heldout", f"a ({n},) bool array", f"{heldout.dtype} {heldout.shape}"
        )
    for a in range(n_areas):
        if not (~heldout[area == a]).any():
            raise DataFileError(
                path,
                "neurons/heldout",
                f"at least one held-in neuron in area {a}",
                "all of its neurons held out",
            )
    names = _read(f["neurons"], "area_names")
    if names is None:
        return area, heldout, None
    area_names = [x.decode() if isinstance(x, bytes) else str(x) for x in names]
    if len(area_names) != n_areas:
        raise DataFileError(path, "neurons/area_names", f"{n_areas} names", f"{len(area_names)}")
    return area, heldout, area_names


def _read_split(
    g: h5py.Group, path, split: str, n: int, counts: bool, before: Dict[str, SplitData]
) -> SplitData:
    """One split's arrays, checked against the neurons and the splits read ``before`` it."""
    if "spikes" not in g:
        raise DataFileError(path, f"{split}/spikes", "a (trials, T, N) array", "nothing")
    spikes = g["spikes"][()]
    check_observations(path, f"{split}/spikes", spikes, n, counts)
    other = next(iter(before.values()), None)
    n_time = check_bins(
        path, f"{split}/spikes", spikes, None if other is None else other.spikes.shape[1]
    )
    trials = spikes.shape[0]
    sd = SplitData(spikes=spikes, trial_id=read_trial_id(g, path, split, trials))
    fwd = _read(g, "forward_spikes")
    if fwd is not None:
        check_observations(path, f"{split}/forward_spikes", fwd, n, counts)
        if fwd.shape[0] != trials:
            raise DataFileError(
                path, f"{split}/forward_spikes", f"{trials} trials", f"{fwd.shape[0]}"
            )
        sd.forward_spikes = fwd
    for name, rank in (("behavior", 3), ("condition", 1)):
        arr = _read(g, name)
        if arr is None:
            continue
        if arr.ndim != rank or arr.shape[0] != trials or (rank == 3 and arr.shape[1] != n_time):
            want = f"({trials}, {n_time}, B)" if rank == 3 else f"({trials},)"
            raise DataFileError(path, f"{split}/{name}", f"shape {want}", f"shape {arr.shape}")
        setattr(sd, name, arr)
    ext = _read(g, "ext_inputs")
    if ext is not None:
        n_fwd = 0 if sd.forward_spikes is None else sd.forward_spikes.shape[1]
        sd.ext_inputs = checked_ext(path, split, ext, trials, n_time, n_fwd)
    if "truth" in g:
        _read_truth(g["truth"], path, split, sd)
    return sd


def _read_truth(t: h5py.Group, path, split: str, sd: SplitData) -> None:
    """``{split}/truth/{rates,latents,inputs,messages/*}`` into ``sd``, checked."""
    trials, n_time = sd.spikes.shape[:2]
    rates = _read(t, "rates")
    if rates is not None:
        check_truth_rates(path, f"{split}/truth/rates", rates, sd.spikes.shape)
        sd.truth_rates = rates
    for name, attr, dim in (("latents", "truth_latents", "L"), ("inputs", "truth_inputs", "U")):
        arr = _read(t, name)
        if arr is not None:
            check_truth(path, f"{split}/truth/{name}", arr, trials, n_time, dim)
            setattr(sd, attr, arr)
    for key in t["messages"] if "messages" in t else ():
        arr = t["messages"][key][()]
        check_truth(path, f"{split}/truth/messages/{key}", arr, trials, n_time, "k")
        sd.truth_messages[key] = arr


def write_tensor_file(path, data: DSIDData, extra: Optional[Dict[str, np.ndarray]] = None) -> Path:
    """Write ``data`` to ``path`` atomically (a temporary file renamed on success).

    ``extra`` maps further dataset paths (for example ``"nlb/eval_target"``) to arrays. A split
    without trials is not written (``test`` is optional; a file without ``train`` or ``valid`` is
    refused when read, naming the missing split).
    """
    path = Path(path)
    with atomic_h5(path) as f:
        f.attrs["bin_ms"] = float(data.bin_ms)
        if data.time_start_ms:
            f.attrs[TIME_START] = float(data.time_start_ms)
        g = f.create_group("neurons")
        g["area"] = np.asarray(data.area, dtype=np.int64)
        g["heldout"] = np.asarray(data.heldout, dtype=bool)
        if data.area_names is not None:
            g["area_names"] = np.array([s.encode() for s in data.area_names])
        if data.unit_id is not None:
            g[UNIT_ID] = np.asarray(data.unit_id, dtype=np.int64)
        for split, sd in data.splits.items():
            if sd.spikes.shape[0] == 0:
                continue
            s = f.create_group(split)
            s.create_dataset("spikes", data=sd.spikes, compression="gzip", compression_opts=1)
            if sd.forward_spikes is not None:
                s.create_dataset(
                    "forward_spikes", data=sd.forward_spikes, compression="gzip", compression_opts=1
                )
            if sd.behavior is not None:
                s["behavior"] = sd.behavior
            if sd.condition is not None:
                s["condition"] = sd.condition
            if sd.trial_id is not None:
                s[TRIAL_ID] = np.asarray(sd.trial_id, dtype=np.int64)
            if sd.truth_rates is not None:
                s["truth/rates"] = sd.truth_rates.astype(np.float32)
            if sd.truth_latents is not None:
                s["truth/latents"] = sd.truth_latents.astype(np.float32)
            if sd.ext_inputs is not None:
                s["ext_inputs"] = np.asarray(sd.ext_inputs, np.float32)
            if sd.truth_inputs is not None:
                s["truth/inputs"] = np.asarray(sd.truth_inputs, np.float32)
            for key, msg in sd.truth_messages.items():
                s[f"truth/messages/{key}"] = msg.astype(np.float32)
        if data.effectome is not None:
            f["truth/effectome"] = np.asarray(data.effectome, dtype=np.float32)
        if data.delay_bins is not None:
            f["truth/delay_bins"] = np.asarray(data.delay_bins, dtype=np.int64)
        for key, arr in {**data.extra, **(extra or {})}.items():
            f[key] = arr
    return path
