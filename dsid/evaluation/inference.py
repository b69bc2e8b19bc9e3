"""Posterior-averaged inference of a model over whole data sets, and the ``inference.h5`` files."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Dict, Iterator, Optional

import h5py
import numpy as np
import torch
from tqdm import tqdm

from dsid.data.atomic import atomic_h5
from dsid.data.coordinates import TIME_START, TRIAL_ID, UNIT_ID, trial_ids, unit_ids
from dsid.data.tensor_file import SPLITS, DSIDData
from dsid.evaluation.forward_calibration import calibrate_forward
from dsid.models.core import sample_means

INFERENCE_FILE = "inference.h5"
# the default seed of the posterior samples: the same model and data give the same inference file
DEFAULT_SEED = 0


def inference_file(session: int, n_sessions: int) -> str:
    """``inference.h5`` for a one-session model, ``inference_session{i}.h5`` for each stitched
    session."""
    return INFERENCE_FILE if n_sessions == 1 else f"inference_session{session}.h5"


# the most output entries (rows x bins x neurons) one forward pass may produce: bounds the memory of
# a pass (rates, parameters, factors and states are each of about this size) at a few hundred MB
MAX_PASS_ENTRIES = 2**24


def pass_plan(n_trials: int, n_samples: int, batch_size: int, n_bins: int, n_neurons: int) -> int:
    """Trials per forward pass: up to ``batch_size`` trials, each repeated once per posterior
    sample in the same pass, and no more rows than :data:`MAX_PASS_ENTRIES` allows."""
    reps = max(n_samples, 1)
    by_memory = max(MAX_PASS_ENTRIES // max(reps * n_bins * n_neurons, 1), 1)
    return max(min(batch_size, by_memory, n_trials), 1)


def infer_split(
    model,
    spikes: np.ndarray,
    n_samples: int = 20,
    batch_size: int = 256,
    n_forward: int = 0,
    session: int = 0,
    desc: str = "",
    ext: Optional[np.ndarray] = None,
) -> Dict[str, np.ndarray]:
    """Average the model's outputs over ``n_samples`` posterior samples (dropout off, the model's
    train/eval mode restored afterwards). All samples of a trial run in the same forward pass (the
    trial encoded once, its samples side by side on the batch axis), in passes of at most
    ``batch_size`` trials and a bounded size; a model with a ``sample_means`` method averages them
    itself (rates a few trials at a time), any other one's forward outputs are averaged here.

    Returns the model's ``output_keys`` (rates (trials, T + n_forward, N), factors, inferred_inputs
    when the model has them, messages of multi-area models). ``n_samples=0`` uses the posterior
    means instead of samples. ``ext`` (trials, T + n_forward, E): the known external inputs.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums: Dict[str, list] = {}
    x_all = torch.as_tensor(np.asarray(spikes, np.float32))
    ext_all = None if ext is None else torch.as_tensor(np.asarray(ext, np.float32))
    n, T, N = x_all.shape
    reps = max(n_samples, 1)
    step = pass_plan(n, n_samples, batch_size, T + n_forward, N)
    starts = range(0, n, step)
    try:
        with torch.inference_mode():
            # (disable=None: tqdm draws no bar when standard error is not a terminal, a log file)
            quiet = True if not desc or len(starts) < 4 else None
            for start in tqdm(starts, desc=desc, leave=False, disable=quiet):
                x = x_all[start : start + step].to(device)
                xin, _ = model.augment(x, "predict", session=session)
                e = None if ext_all is None else ext_all[start : start + step].to(device)
                kw = dict(
                    session=session,
                    n_forward=n_forward,
                    sample=n_samples > 0,
                    n_samples=reps,
                    ext=e,
                )
                if hasattr(model, "sample_means"):
                    means = model.sample_means(xin, **kw)
                else:
                    means = sample_means(model(xin, **kw), model.output_keys, reps)
                for key, val in means.items():
                    sums.setdefault(key, []).append(val.cpu().numpy())
    finally:
        model.train(was_training)
    return {k: np.concatenate(v) for k, v in sums.items()}


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Random draws from ``seed`` inside the block (on the CPU, and on ``device`` when it is a
    GPU); the caller's random state is put back afterwards."""
    device = torch.device(device)
    gpus = []
    if device.type == "cuda":
        gpus = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=gpus):
        torch.default_generator.manual_seed(seed)
        for gpu in gpus:
            torch.cuda.default_generators[gpu].manual_seed(seed)
        yield


def infer_data(
    model,
    data: DSIDData,
    session: int = 0,
    n_samples: int = 20,
    batch_size: int = 256,
    out: Optional[Path] = None,
    splits=None,
    calibrate: bool = True,
    seed: int = DEFAULT_SEED,
) -> Dict[str, Dict[str, np.ndarray]]:
    """Infer every split of ``data`` (session ``session`` of the model), forward bins included;
    write ``out`` (HDF5, atomically) when given.

    The posterior samples of each split are drawn from ``seed`` (:func:`seeded`): the same model,
    data and seed give the same outputs, and the caller's random state is left as it was.

    File layout: ``{split}/rates`` (trials, T, N), ``{split}/factors``, ``{split}/inferred_inputs``,
    and ``{split}/rates_forward`` (trials, T_fwd, N) when the data has forward bins; the attribute
    ``data_path`` names the data file. Forward rates are mixed with the mean rates by the weight
    the validation trials choose (:func:`~dsid.evaluation.forward_calibration.calibrate_forward`;
    the file's attribute ``forward_weight``, 1: unchanged) unless ``calibrate`` is False or the
    valid split is not inferred.
    """
    outputs = {}
    for split in data.splits:
        if splits is None or split in splits:
            desc = f"inference {split}" if out is not None else ""
            with seeded(seed, next(model.parameters()).device):
                outputs[split] = _infer_split_of(
                    model, data, split, session, n_samples, batch_size, desc
                )
    weight = calibrate_forward(outputs, data) if calibrate and data.n_forward else None
    if out is not None:
        write_inference(out, outputs, n_samples, forward_weight=weight, data=data)
    return outputs


def _infer_split_of(model, data: DSIDData, split: str, session, n_samples, batch_size, desc):
    """One split of :func:`infer_data`: outputs of the observed bins, and ``rates_forward``."""
    sd = data.splits[split]
    res = infer_split(
        model,
        sd.spikes,
        n_samples,
        batch_size,
        n_forward=data.n_forward,
        session=session,
        desc=desc,
        ext=sd.ext_inputs,
    )
    T = sd.spikes.shape[1]
    if data.n_forward:
        res["rates_forward"] = res["rates"][:, T:]
    return {k: (v[:, :T] if k != "rates_forward" else v) for k, v in res.items()}


def write_inference(
    path,
    outputs: Dict[str, Dict[str, np.ndarray]],
    n_samples: int,
    forward_weight: Optional[float] = None,
    data: Optional[DSIDData] = None,
) -> Path:
    """Write ``outputs`` to the inference file ``path`` (atomically). With ``data``, the data they
    are of: its path (made absolute) in the attribute ``data_path`` and the user's coordinates
    (:mod:`dsid.data.coordinates`): ``{split}/trial_id``, ``neurons/unit_id`` and the attributes
    ``bin_ms`` and ``time_start_ms``."""
    path = Path(path)
    with atomic_h5(path) as f:
        f.attrs["n_samples"] = n_samples
        if data is not None:
            if data.path is not None:
                f.attrs["data_path"] = str(Path(data.path).resolve())
            f.attrs["bin_ms"], f.attrs[TIME_START] = float(data.bin_ms), data.time_start_ms
            f[f"neurons/{UNIT_ID}"] = unit_ids(data)
            for split in outputs:
                if split in data.splits:
                    f[f"{split}/{TRIAL_ID}"] = trial_ids(data, split)
        if forward_weight is not None:
            f.attrs["forward_weight"] = forward_weight
        for split, res in outputs.items():
            for key, arr in res.items():
                f.create_dataset(
                    f"{split}/{key}",
                    data=arr.astype(np.float32),
                    compression="gzip",
                    compression_opts=1,
                )
    return path


def read_forward_weight(path) -> Optional[float]:
    """The weight of the model's forward rates in an inference file (None: no forward bins, or a
    file written before forward rates were mixed with the mean rates)."""
    with h5py.File(path, "r") as f:
        w = f.attrs.get("forward_weight")
    return None if w is None else float(w)


def read_inference(path, splits=None) -> Dict[str, Dict[str, np.ndarray]]:
    """The arrays of an inference file, by split (only ``splits`` when given); ``trial_id`` among
    them when the file records it."""
    with h5py.File(path, "r") as f:
        return {
            s: {k: f[s][k][()] for k in f[s]}
            for s in f
            if s in SPLITS and (splits is None or s in splits)
        }


def read_coordinates(path) -> Dict[str, object]:
    """The user's coordinates an inference file records: ``unit_id`` (N,), ``bin_ms`` and
    ``time_start_ms`` (each absent from the result when the file predates them)."""
    out: Dict[str, object] = {}
    with h5py.File(path, "r") as f:
        if f"neurons/{UNIT_ID}" in f:
            out[UNIT_ID] = f[f"neurons/{UNIT_ID}"][()]
        for key in ("bin_ms", TIME_START):
            if key in f.attrs:
                out[key] = float(f.attrs[key])
    return out


def read_data_path(path) -> Optional[str]:
    """The data file an inference file was written from (None: not recorded, an older file)."""
    with h5py.File(path, "r") as f:
        source = f.attrs.get("data_path")
    return None if source is None else str(source)
