"""``dsid infer RUN_DIR``: the posterior-averaged outputs of a trained run, written again, or of the
run's model on other data with the same neurons (written to a file of its own)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from dsid.data.tensor_file import DataFileError, DSIDData
from dsid.evaluation.inference import DEFAULT_SEED, infer_data, read_data_path
from dsid.runs.load import Run, load_run


def check_compatible(run: Run, data: DSIDData, path) -> None:
    """Refuse data whose neurons (count, held-out layout) or bin width differ from the model's."""
    info = run.module.hparams["data_info"]
    heldout = np.asarray(info.get("heldout", []), bool)
    if data.n_neurons != heldout.size:
        raise DataFileError(
            path,
            "neurons",
            f"{heldout.size} neurons like the data of run {run.run_dir}",
            f"{data.n_neurons}",
        )
    if not np.array_equal(np.asarray(data.heldout, bool), heldout):
        raise DataFileError(
            path,
            "neurons/heldout",
            f"the held-out layout of run {run.run_dir}'s data ({int(heldout.sum())} held out)",
            f"a different layout ({int(data.heldout.sum())} held out)",
        )
    want = int(info.get("ext_input_size", 0))
    if want and data.ext_input_size != want:
        raise DataFileError(
            path,
            "{split}/ext_inputs",
            f"{want} external-input channels like run {run.run_dir}'s data",
            f"{data.ext_input_size}",
        )
    if info.get("bin_ms") is not None and not np.isclose(float(data.bin_ms), float(info["bin_ms"])):
        raise DataFileError(
            path,
            "attrs/bin_ms",
            f"{info['bin_ms']} ms like run {run.run_dir}'s data",
            f"{data.bin_ms} ms",
        )


def infer_run(
    run_dir,
    n_samples: Optional[int] = None,
    data_path: Optional[str] = None,
    out: Optional[str] = None,
    seed: int = DEFAULT_SEED,
    overwrite: bool = False,
) -> List[Path]:
    """Reload the best checkpoint and rewrite ``RUN_DIR/inference.h5`` (``inference_session{i}.h5``
    for each session of a stitched run). ``data_path``: another file with the model's neurons (one
    session only), checked and written to ``out`` (default ``RUN_DIR/inference_<file stem>.h5``,
    which replaces an inference of another data file only with ``overwrite``): the run's own
    inference is never replaced by other data's. The posterior samples are drawn from ``seed``:
    the same checkpoint and data give the same file, and the caller's random state is left as it
    was. Returns the files written."""
    with torch.random.fork_rng(devices=[]):  # loading the model draws its initial weights
        return _infer_run(run_dir, n_samples, data_path, out, seed, overwrite)


def _infer_run(run_dir, n_samples, data_path, out, seed, overwrite) -> List[Path]:
    """:func:`infer_run`'s body."""
    run = load_run(run_dir)
    data_path = other_data(run, data_path, out)
    paths = run.inference_paths()
    if data_path is not None:
        paths = [other_out(run, data_path, out, overwrite)]
    sessions = run.sessions([data_path] if data_path is not None else None)
    if data_path is not None:
        check_compatible(run, sessions[0], data_path)
    cfg_infer = run.config.get("infer") or {}
    n = int(n_samples if n_samples is not None else cfg_infer.get("n_samples", 20))
    for s, (data, path) in enumerate(zip(sessions, paths)):
        infer_data(
            run.model,
            data,
            session=s,
            n_samples=n,
            batch_size=int(cfg_infer.get("batch_size", 256)),
            out=path,
            seed=seed,
        )
    return paths


def other_data(run: Run, data_path: Optional[str], out: Optional[str]) -> Optional[str]:
    """``data_path`` when it is another file than the run's own data (None otherwise), with clear
    errors for a stitched run and for ``out`` without other data."""
    if data_path is not None and run.model.n_sessions > 1:
        raise ValueError(
            f"--data {data_path}: the run {run.run_dir} stitches {run.model.n_sessions} sessions; "
            "its inference reads the files of its config's data.files"
        )
    if data_path is not None and Path(data_path).resolve() == run.data_paths()[0].resolve():
        data_path = None  # the run's own data
    if data_path is None and out is not None:
        raise ValueError(
            f"--out {out}: only with --data (the run's own inference is {run.inference_paths()[0]})"
        )
    return data_path


def other_out(run: Run, data_path: str, out: Optional[str], overwrite: bool) -> Path:
    """The inference file of other data: ``out``, never the run's own inference, or
    ``RUN_DIR/inference_<file stem>.h5`` (checked by :func:`check_replaceable` unless
    ``overwrite``)."""
    if out is None:
        path = run.run_dir / f"inference_{Path(data_path).stem}.h5"
        if not overwrite:
            check_replaceable(path, data_path)
        return path
    if Path(out).resolve() in [p.resolve() for p in run.inference_paths()]:
        raise ValueError(f"--out {out}: that is the run's own inference; choose another file")
    return Path(out)


def check_replaceable(path: Path, data_path) -> None:
    """Refuse to replace the inference file ``path`` when it is of another data file than
    ``data_path`` (or of one it does not record); the same data file again replaces it."""
    if not path.exists():
        return
    new, old = str(Path(data_path).resolve()), read_data_path(path)
    if old != new:
        raise FileExistsError(
            f"{path}: holds the inference of {old or 'a data file it does not record'}, not of "
            f"{new}; pass --out FILE to write it elsewhere, or --overwrite to replace it"
        )
