"""``load_run(run_dir) -> Run``: a finished (or running) run directory, read back."""

from __future__ import annotations

import functools
import json
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
from omegaconf import OmegaConf

from dsid.data.coordinates import bin_starts_ms, bin_times_ms, unit_ids
from dsid.data.tensor_file import DSIDData, load_tensor_file
from dsid.evaluation.inference import (
    infer_split,
    inference_file,
    read_coordinates,
    read_inference,
    seeded,
)
from dsid.runs.config import to_plain
from dsid.runs.perturb import perturb_run
from dsid.training.lightning_module import TrainingModule

BEST_CKPT = "checkpoints/best.ckpt"
LAST_CKPT = "checkpoints/last.ckpt"


def load_run_config(run_dir) -> Dict[str, Any]:
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: not a DSID run directory (no config.yaml)")
    return to_plain(OmegaConf.load(path))


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read (truncated, corrupt, not a checkpoint)."""


def checkpoint_path(run_dir) -> Path:
    """The run's best checkpoint, else its last one; a clear error when it has none."""
    for name in (BEST_CKPT, LAST_CKPT):
        if (Path(run_dir) / name).exists():
            return Path(run_dir) / name
    raise FileNotFoundError(
        f"{run_dir}: no trained model ({BEST_CKPT} is missing): train first, "
        "e.g. `dsid train experiment=lorenz_lfads`"
    )


def load_module(path, map_location: str = "cpu") -> TrainingModule:
    """A training module (with its model) from a checkpoint file alone; a file that cannot be read
    is a :class:`CheckpointError` naming it."""
    try:
        return TrainingModule.load_from_checkpoint(str(path), map_location=map_location)
    except (
        OSError,
        EOFError,
        RuntimeError,
        ValueError,
        KeyError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
    ) as err:
        raise CheckpointError(
            f"{path}: not a readable DSID checkpoint ({type(err).__name__}: {err}); "
            "the file is truncated or corrupt"
        ) from err


def load_best(run_dir, map_location: str = "cpu") -> TrainingModule:
    """The training module of the run's best checkpoint, else (missing or unreadable, with a
    warning) of its last one."""
    best, last = Path(run_dir) / BEST_CKPT, Path(run_dir) / LAST_CKPT
    path = checkpoint_path(run_dir)
    try:
        return load_module(path, map_location)
    except CheckpointError as err:
        if path != best or not last.exists():
            raise
        warnings.warn(f"{err}; using {last} instead")
        return load_module(last, map_location)


@dataclass
class Run:
    """A run directory: its config, paths, metrics; the module (best checkpoint) and the data load
    on first use."""

    run_dir: Path
    config: Dict[str, Any]

    @property
    def metrics(self) -> Dict[str, Any]:
        path = self.run_dir / "metrics.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @property
    def checkpoint(self) -> Path:
        return checkpoint_path(self.run_dir)

    @functools.cached_property
    def module(self) -> TrainingModule:
        return load_best(self.run_dir)

    @property
    def model(self):
        return self.module.model

    def data_paths(self) -> List[Path]:
        """The run's data files (one per session), relative paths as given in its config."""
        data = self.config.get("data") or {}
        return [Path(p) for p in (data.get("files") or [data.get("path")]) if p]

    def sessions(self, paths: Optional[List] = None) -> List[DSIDData]:
        """The run's data (or the files ``paths``, one per session), read as the model's
        observation model needs."""
        counts = getattr(self.model.observation, "integer_counts", True)
        sessions = [load_tensor_file(p, counts=counts) for p in (paths or self.data_paths())]
        if not int(self.module.hparams["data_info"].get("ext_input_size", 0)):
            for data in sessions:  # a model trained without the file's external inputs
                data.drop_ext_inputs()
        return sessions

    def outputs(
        self, split: str = "valid", session: int = 0, order: str = "user"
    ) -> Dict[str, Any]:
        """The posterior-averaged outputs of ``split`` from the run's inference file: ``rates``
        (trials, T, N; spikes per bin), ``factors``, ``inferred_inputs`` (models with a controller),
        ``rates_forward`` (data with forward bins), with the user's coordinates
        (:mod:`dsid.data.coordinates`): ``trial_id`` (trials,), ``unit_id`` (N,) and ``time_ms``
        (T,), each bin's start in ms from the alignment event.

        ``order="user"``: trials sorted by their ids and neurons by theirs, the order of the user's
        own data (the array given to ``dsid.data.from_numpy``, the NWB tables); ``"file"``: the
        tensor file's order (its ``spikes``: held-in neurons first)."""
        if order not in ("user", "file"):
            raise ValueError(f"outputs: order {order!r}: expected 'user' or 'file'")
        path = self.inference_paths()[session]
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no inference file; write it with `dsid infer {self.run_dir}`"
            )
        found = read_inference(path, splits=(split,))
        if split not in found:
            raise KeyError(f"{path}: no split {split!r} (has {', '.join(read_inference(path))})")
        return in_user_coordinates(found[split], read_coordinates(path), order == "user")

    def transform(
        self,
        spikes,
        ext_inputs=None,
        session: int = 0,
        n_samples: int = 20,
        seed: int = 0,
        batch_size: int = 256,
    ) -> Dict[str, np.ndarray]:
        """The model's inference on new trials of the neurons it was fitted on, like a fitted
        estimator's ``transform``. ``spikes`` (trials, T, N): counts in the order of
        :meth:`outputs` (neurons sorted by their ids: the user's own); the held-out neurons'
        columns are not read (zeros will do). ``ext_inputs`` (trials, T, E) when the model was
        trained with known inputs. Returns ``rates`` (trials, T, N; spikes per bin) in that order,
        ``factors``, ``inferred_inputs`` (models with a controller), ``unit_id`` and ``time_ms``;
        posterior samples drawn from ``seed`` (the same call gives the same outputs)."""
        data = self.sessions()[session]
        x = np.asarray(spikes, dtype=np.float32)
        if x.ndim != 3 or x.shape[2] != data.n_neurons or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(
                f"transform: spikes must be (trials, T, {data.n_neurons}) (the run's neurons), "
                f"got shape {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError("transform: spikes must be finite")
        ext = None if ext_inputs is None else np.asarray(ext_inputs, dtype=np.float32)
        needs_ext = data.ext_input_size > 0
        if needs_ext != (ext is not None) or (ext is not None and ext.shape[:2] != x.shape[:2]):
            want = f"({x.shape[0]}, {x.shape[1]}, {data.ext_input_size})" if needs_ext else "None"
            got = "None" if ext is None else str(ext.shape)
            raise ValueError(f"transform: ext_inputs must be {want} for this model, got {got}")
        ids = unit_ids(data)
        order = np.argsort(ids, kind="stable")  # column k is file neuron order[k]
        in_file_order = np.empty_like(x)
        in_file_order[..., order] = x
        device = next(self.model.parameters()).device
        with seeded(seed, device):
            out = infer_split(
                self.model, in_file_order, n_samples, batch_size, session=session, ext=ext
            )
        out["rates"] = out["rates"][..., order]
        out.update(unit_id=ids[order], time_ms=bin_times_ms(data, x.shape[1]))
        return out

    def perturb(self, mode: str, **kwargs) -> Dict[str, Any]:
        """A multi-area run's prediction of an intervention on its messages: ``mode`` silence,
        clamp or scale (with ``factor``) on every edge leaving ``area`` or on ``edge``
        ("SRC->DST"), from bin ``from_bin``, on ``split`` (default valid):
        :func:`dsid.runs.perturb.perturb_run`; ``dsid.runs.perturb.write_perturbation`` writes it
        to a file with its figure."""
        return perturb_run(self, mode, **kwargs)

    def inference_paths(self) -> List[Path]:
        n = self.model.n_sessions
        return [self.run_dir / inference_file(s, n) for s in range(n)]


def load_run(run_dir) -> Run:
    """The run in ``run_dir`` (a clear error when it is not one)."""
    run_dir = Path(run_dir)
    return Run(run_dir=run_dir, config=load_run_config(run_dir))


def in_user_coordinates(arrays: Dict[str, Any], coords: Dict[str, Any], reorder: bool) -> Dict:
    """One split's inference ``arrays`` with ``trial_id``, ``unit_id`` and ``time_ms`` (ids are
    the file's positions, and ``time_ms`` is left out, when the file predates them), trials and
    neurons sorted by their ids when ``reorder``."""
    out = dict(arrays)
    rates = out["rates"]
    n_trials, n_time, n_neurons = rates.shape
    trial_id = np.asarray(out.pop("trial_id", np.arange(n_trials)))
    unit_id = np.asarray(coords.get("unit_id", np.arange(n_neurons)))
    if reorder:
        trials, units = np.argsort(trial_id, kind="stable"), np.argsort(unit_id, kind="stable")
        out = {k: v[trials] for k, v in out.items()}
        out = {k: v[..., units] if k.startswith("rates") else v for k, v in out.items()}
        trial_id, unit_id = trial_id[trials], unit_id[units]
    out.update(trial_id=trial_id, unit_id=unit_id)
    if "bin_ms" in coords:
        out["time_ms"] = bin_starts_ms(n_time, coords["bin_ms"], coords.get("time_start_ms", 0.0))
    return out
