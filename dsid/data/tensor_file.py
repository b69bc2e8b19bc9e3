"""The DSID tensor file (HDF5): the one input format every model reads.

Layout (documented in README.md): attrs ``bin_ms``; ``neurons/{area,area_names,heldout}``;
``{train,valid,test}/{spikes,forward_spikes,ext_inputs,behavior,condition}``;
``{split}/truth/{rates,latents,inputs}``;
``{split}/truth/messages/{src}_{dst}``; ``truth/{effectome,delay_bins}``. Unknown groups are
ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import h5py
import numpy as np

from dsid.data.atomic import atomic_h5

SPLITS = ("train", "valid", "test")


class DataFileError(ValueError):
    """A DSID tensor file that is missing a field or holds a field of the wrong shape or type."""

    def __init__(self, path, field: str, expected: str, found: str = ""):
        self.path, self.field = str(path), field
        msg = f"{path}: field '{field}': expected {expected}"
        if found:
            msg += f", found {found}"
        super().__init__(msg)


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


def _check_counts(path, name: str, arr: np.ndarray, n_neurons: int, ndim: int = 3) -> None:
    if arr.ndim != ndim or arr.shape[-1] != n_neurons:
        raise DataFileError(path, name, f"shape (trials, T, {n_neurons})", f"shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataFileError(path, name, "integer spike counts", f"dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if np.isnan(arr).any():
            raise DataFileError(
                path, name, "no NaN values", f"{int(np.isnan(arr).sum())} NaN values"
            )
        if not np.allclose(arr, np.round(arr)):
            raise DataFileError(path, name, "integer spike counts", "non-integer values")
    if arr.size and arr.min() < 0:
        raise DataFileError(path, name, "non-negative spike counts", f"minimum {arr.min()}")


def _checked_ext(
    path, split: str, ext: np.ndarray, trials: int, n_time: int, n_fwd: int
) -> np.ndarray:
    """``{split}/ext_inputs`` as float32 after checking shape (trials, T or T + T_fwd, E) and
    values."""
    name = f"{split}/ext_inputs"
    lengths = sorted({n_time, n_time + n_fwd})
    if ext.ndim != 3 or ext.shape[0] != trials or ext.shape[1] not in lengths:
        want = " or ".join(f"({trials}, {t}, E)" for t in lengths)
        raise DataFileError(path, name, f"shape {want}", f"shape {ext.shape}")
    if not (np.issubdtype(ext.dtype, np.floating) or np.issubdtype(ext.dtype, np.integer)):
        raise DataFileError(path, name, "numeric values", f"dtype {ext.dtype}")
    if not np.isfinite(ext).all():
        raise DataFileError(
            path, name, "finite values", f"{int((~np.isfinite(ext)).sum())} NaN or inf values"
        )
    if (
        n_fwd and ext.shape[1] == n_time
    ):  # no inputs known past the window: they are taken as zero there
        ext = np.concatenate([ext, np.zeros((trials, n_fwd, ext.shape[2]), ext.dtype)], axis=1)
    return np.asarray(ext, np.float32)


def _check_ext_consistent(path, splits: Dict[str, "SplitData"]) -> None:
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


def _read(group: h5py.Group, name: str) -> Optional[np.ndarray]:
    return group[name][()] if name in group else None


def load_tensor_file(path, require_splits=("train", "valid"), counts: bool = True) -> DSIDData:
    """Read and validate a DSID tensor file; raise :class:`DataFileError` naming file and field.

    ``counts=False`` accepts non-count observations (for example calcium traces), still refusing
    NaN.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such DSID tensor file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataFileError(path, "/", "an HDF5 file", str(err)) from err
    with f:
        if "bin_ms" not in f.attrs:
            raise DataFileError(path, "attrs/bin_ms", "a positive float bin width in ms", "nothing")
        bin_ms = float(f.attrs["bin_ms"])
        if not bin_ms > 0:
            raise DataFileError(path, "attrs/bin_ms", "a positive bin width", str(bin_ms))
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
        n = area.shape[0]
        n_areas = int(area.max()) + 1
        missing = sorted(set(range(n_areas)) - set(area.tolist()))
        if missing:
            raise DataFileError(
                path,
                "neurons/area",
                f"every area 0..{n_areas - 1} to have neurons",
                f"none in areas {missing}",
            )
        heldout = _read(f["neurons"], "heldout")
        if heldout is None:
            heldout = np.zeros(n, bool)
        heldout = np.asarray(heldout)
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
        area_names = None
        if names is not None:
            area_names = [x.decode() if isinstance(x, bytes) else str(x) for x in names]
            if len(area_names) != n_areas:
                raise DataFileError(
                    path, "neurons/area_names", f"{n_areas} names", f"{len(area_names)}"
                )
        splits: Dict[str, SplitData] = {}
        n_time = None
        for split in SPLITS:
            if split not in f:
                if split in require_splits:
                    raise DataFileError(
                        path, f"{split}/spikes", "a (trials, T, N) array", "no such group"
                    )
                continue
            g = f[split]
            if "spikes" not in g:
                raise DataFileError(path, f"{split}/spikes", "a (trials, T, N) array", "nothing")
            spikes = g["spikes"][()]
            if counts:
                _check_counts(path, f"{split}/spikes", spikes, n)
            else:
                if spikes.ndim != 3 or spikes.shape[-1] != n:
                    raise DataFileError(
                        path, f"{split}/spikes", f"shape (trials, T, {n})", f"{spikes.shape}"
                    )
                if np.isnan(spikes).any():
                    raise DataFileError(path, f"{split}/spikes", "no NaN values", "NaN values")
            if spikes.shape[0] == 0:
                raise DataFileError(path, f"{split}/spikes", "at least one trial", "0 trials")
            if n_time is None:
                n_time = spikes.shape[1]
            elif spikes.shape[1] != n_time:
                raise DataFileError(
                    path,
                    f"{split}/spikes",
                    f"T={n_time} bins like the other splits",
                    f"T={spikes.shape[1]}",
                )
            trials = spikes.shape[0]
            sd = SplitData(spikes=spikes)
            fwd = _read(g, "forward_spikes")
            if fwd is not None:
                if counts:
                    _check_counts(path, f"{split}/forward_spikes", fwd, n)
                if fwd.shape[0] != trials:
                    raise DataFileError(
                        path, f"{split}/forward_spikes", f"{trials} trials", f"{fwd.shape[0]}"
                    )
                sd.forward_spikes = fwd
            for name, attr, rank in (("behavior", "behavior", 3), ("condition", "condition", 1)):
                arr = _read(g, name)
                if arr is None:
                    continue
                if (
                    arr.ndim != rank
                    or arr.shape[0] != trials
                    or (rank == 3 and arr.shape[1] != n_time)
                ):
                    want = f"({trials}, {n_time}, B)" if rank == 3 else f"({trials},)"
                    raise DataFileError(
                        path, f"{split}/{name}", f"shape {want}", f"shape {arr.shape}"
                    )
                setattr(sd, attr, arr)
            ext = _read(g, "ext_inputs")
            if ext is not None:
                sd.ext_inputs = _checked_ext(
                    path,
                    split,
                    ext,
                    trials,
                    n_time,
                    0 if sd.forward_spikes is None else sd.forward_spikes.shape[1],
                )
            if "truth" in g:
                t = g["truth"]
                rates = _read(t, "rates")
                if rates is not None:
                    if rates.shape != spikes.shape:
                        raise DataFileError(
                            path, f"{split}/truth/rates", f"shape {spikes.shape}", f"{rates.shape}"
                        )
                    if np.isnan(rates).any() or rates.min() < 0:
                        raise DataFileError(
                            path, f"{split}/truth/rates", "finite non-negative rates", "NaN or <0"
                        )
                    sd.truth_rates = rates
                for name, attr, dim in (
                    ("latents", "truth_latents", "L"),
                    ("inputs", "truth_inputs", "U"),
                ):
                    arr = _read(t, name)
                    if arr is None:
                        continue
                    if arr.ndim != 3 or arr.shape[:2] != spikes.shape[:2]:
                        raise DataFileError(
                            path,
                            f"{split}/truth/{name}",
                            f"shape ({trials}, {n_time}, {dim})",
                            f"{arr.shape}",
                        )
                    setattr(sd, attr, arr)
                if "messages" in t:
                    sd.truth_messages = {k: t["messages"][k][()] for k in t["messages"]}
            splits[split] = sd
        _check_ext_consistent(path, splits)
        effectome = delay = None
        if "truth" in f:
            effectome = _read(f["truth"], "effectome")
            delay = _read(f["truth"], "delay_bins")
            for name, arr in (("truth/effectome", effectome), ("truth/delay_bins", delay)):
                if arr is not None and arr.shape != (n_areas, n_areas):
                    raise DataFileError(path, name, f"shape ({n_areas}, {n_areas})", f"{arr.shape}")
    return DSIDData(
        bin_ms=bin_ms,
        area=area.astype(np.int64),
        heldout=heldout,
        splits=splits,
        area_names=area_names,
        effectome=effectome,
        delay_bins=delay,
        path=str(path),
    )


def write_tensor_file(path, data: DSIDData, extra: Optional[Dict[str, np.ndarray]] = None) -> Path:
    """Write ``data`` to ``path`` atomically (a temporary file renamed on success).

    ``extra`` maps further dataset paths (for example ``"nlb/eval_target"``) to arrays.
    """
    path = Path(path)
    with atomic_h5(path) as f:
        f.attrs["bin_ms"] = float(data.bin_ms)
        g = f.create_group("neurons")
        g["area"] = np.asarray(data.area, dtype=np.int64)
        g["heldout"] = np.asarray(data.heldout, dtype=bool)
        if data.area_names is not None:
            g["area_names"] = np.array([s.encode() for s in data.area_names])
        for split, sd in data.splits.items():
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
