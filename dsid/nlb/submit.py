"""``dsid nlb submit``: a trained run's EvalAI submission file, checked against the prepared NLB
file's trials and logged to W&B as an artifact (scoring is in :mod:`dsid.nlb.evaluate`)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Mapping, Optional

import h5py
import numpy as np

from dsid.nlb.evaluate import NLBRunError, run_data_path, run_submission
from dsid.nlb.scoring import (
    RATE_KEYS,
    read_nlb_info,
    save_submission_h5,
)
from dsid.runs.load import checkpoint_path, load_run
from dsid.runs.wandb_runs import run_name, wandb_run


def check_submission(submission: Mapping[str, Mapping[str, np.ndarray]], dsid_file) -> None:
    """The submission has NLB's dataset key, the six rate arrays and the shapes of the prepared
    file's trials."""
    info = read_nlb_info(dsid_file)
    with h5py.File(dsid_file, "r") as f:
        n_train, n_eval = len(f["nlb/train_trial_ids"]), len(f["nlb/eval_trial_ids"])
        _, T, N = f["test/spikes"].shape
        T_fwd = f["test/forward_spikes"].shape[1] if "test/forward_spikes" in f else 0
    if list(submission) != [info["key"]]:
        raise NLBRunError(
            f"submission: expected one dataset key '{info['key']}', found {list(submission)}"
        )
    sub, k = submission[info["key"]], info["n_heldin"]
    want = {
        "train_rates_heldin": (n_train, T, k),
        "train_rates_heldout": (n_train, T, N - k),
        "eval_rates_heldin": (n_eval, T, k),
        "eval_rates_heldout": (n_eval, T, N - k),
        "eval_rates_heldin_forward": (n_eval, T_fwd, k),
        "eval_rates_heldout_forward": (n_eval, T_fwd, N - k),
    }
    for name in RATE_KEYS:
        if name not in sub:
            raise NLBRunError(f"submission[{info['key']!r}]: no '{name}'")
        if tuple(sub[name].shape) != want[name]:
            raise NLBRunError(
                f"submission[{info['key']!r}]['{name}']: expected shape {want[name]}, "
                f"found {tuple(sub[name].shape)}"
            )


def _artifact_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:120] or "submission"


def submit_run(
    run_dir,
    out,
    n_samples: Optional[int] = None,
    data_path=None,
    wandb_mode: Optional[str] = None,
    log_wandb: bool = True,
    log=None,
) -> Path:
    """``dsid nlb submit``: write the run's EvalAI submission to ``out`` (a fresh file every time).

    Meant for a run trained on (or ``data_path`` pointing to) a test-phase file; a val-phase file
    gives a warning (its eval trials are NLB's 'val' trials, which EvalAI's test phase does not
    score). The file is also logged to W&B as an artifact of type ``nlb-submission`` unless
    ``log_wandb`` is false.
    """
    log = log or (lambda msg: None)
    run_dir, out = Path(run_dir), Path(out)
    if out.suffix not in (".h5", ".hdf5"):
        raise ValueError(f"--out {out}: expected an .h5 file name (EvalAI takes HDF5 submissions)")
    cfg = load_run(run_dir).config
    checkpoint_path(run_dir)
    path = run_data_path(run_dir, cfg, data_path)
    info = read_nlb_info(path)
    if not info["heldout_unknown"]:
        warnings.warn(
            f"{path} is a val-phase file: "
            "the submission's eval trials are NLB's 'val' trials, which "
            "EvalAI's 'val' phase scores but its 'test' phase does not; "
            "for the leaderboard train on (or "
            "pass --data) a file prepared with --phase test",
            UserWarning,
            stacklevel=2,
        )
    sub, info, path, meta = run_submission(run_dir, n_samples, data_path, log)
    check_submission(sub, path)
    save_submission_h5(sub, out)
    log(
        f"wrote {out}: {info['key']} ({info['phase']} phase), "
        + ", ".join(f"{k} {tuple(v.shape)}" for k, v in sub[info["key"]].items())
    )
    if log_wandb:
        about = {
            "dataset": info["dataset"],
            "key": info["key"],
            "bin_ms": info["bin_ms"],
            "phase": info["phase"],
            "data_path": str(path),
            **meta,
        }
        run = wandb_run(cfg, run_dir, "nlb-submit", wandb_mode, {"nlb": about})
        try:
            import wandb

            art = wandb.Artifact(
                _artifact_name(f"nlb-submission-{info['key']}-{run_name(cfg, run_dir)}"),
                type="nlb-submission",
                metadata=about,
                description=f"EvalAI submission for {info['key']} ({info['phase']} phase)",
            )
            art.add_file(str(out), name=out.name)
            run.log_artifact(art)
        finally:
            run.finish()
    return out
