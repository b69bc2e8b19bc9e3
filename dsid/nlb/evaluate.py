"""Score a trained run on NLB (``dsid nlb evaluate``), and the run's rates as NLB's submission
arrays, which ``dsid nlb submit`` (:mod:`dsid.nlb.submit`) also writes.

Both commands read the run (``dsid.runs.load.load_run``: its ``config.yaml`` and best
checkpoint), its ``inference.h5`` (posterior-averaged rates of every split, written by
``dsid.runs.infer.infer_run`` when missing) and the prepared NLB file the run was trained on. The
submission's train rates are DSID train + valid put back in NLB's training-trial order
(``nlb/train_order``); its eval rates and forward rates are DSID ``test``'s ``rates`` and
``rates_forward``.

Checks run before anything is written: a run directory without a model, a run trained on non-NLB
data, or an evaluation asked of a test-phase file (no targets) is a clear error and leaves the run
as it was.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import h5py
import numpy as np

from dsid.data.atomic import write_json
from dsid.data.tensor_file import DataFileError, load_tensor_file
from dsid.evaluation.inference import INFERENCE_FILE, infer_data
from dsid.nlb.scoring import (
    evaluate_submission,
    load_targets,
    oracle_submission,
    read_nlb_info,
    read_train_order,
    submission_from_rates,
)
from dsid.runs.infer import infer_run
from dsid.runs.load import checkpoint_path, load_run
from dsid.runs.wandb_runs import wandb_run

METRICS_FILE = "nlb_metrics.json"
SPLITS = ("train", "valid", "test")


class NLBRunError(ValueError):
    """A run that cannot be scored or submitted as asked (test-phase file, mismatched inference,
    ...)."""


# ----- the run ------------------------------------------------------------------------------------
def run_data_path(run_dir, cfg: Mapping[str, Any], data_path=None) -> Path:
    """The prepared NLB file of a run (``data_path`` overrides the run's ``data.path``), checked."""
    data_cfg = cfg.get("data") or {}
    if data_path is None:
        if data_cfg.get("files"):
            raise NLBRunError(
                f"{run_dir}: trained on several sessions (data.files); NLB scores one dataset: "
                "pass the NLB file with --data"
            )
        data_path = data_cfg.get("path")
        if not data_path:
            raise NLBRunError(f"{run_dir}: its config.yaml has no data.path")
    path = Path(data_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such DSID tensor file (the data of run {run_dir}; run from the "
            "directory it was trained in, or pass --data FILE)"
        )
    with h5py.File(path, "r") as f:
        if "nlb/dataset" not in f:
            raise DataFileError(
                path,
                "nlb/dataset",
                f"an NLB file written by `dsid nlb prepare` (run {run_dir} "
                "was trained on non-NLB data; NLB scores need NLB data)",
                "no nlb group",
            )
    read_train_order(path)  # refuses files of the older layout
    return path


def _split_shapes(path: Path) -> Dict[str, tuple]:
    with h5py.File(path, "r") as f:
        shapes = {s: f[f"{s}/spikes"].shape for s in SPLITS}
        shapes["forward"] = f["train/forward_spikes"].shape[1] if "train/forward_spikes" in f else 0
    return shapes


def _read_rates(inf_path: Path, data_path: Path, run_dir: Path) -> Dict[str, np.ndarray]:
    """``rates`` of every split and the test trials' ``rates_forward`` from ``inference.h5``,
    checked against the data file's shapes."""
    shapes = _split_shapes(data_path)
    hint = f"run `dsid infer {run_dir}` (or pass --samples N) to write it again from the model"
    out: Dict[str, np.ndarray] = {}
    with h5py.File(inf_path, "r") as f:
        for split in SPLITS:
            if f"{split}/rates" not in f:
                raise NLBRunError(
                    f"{inf_path}: no '{split}/rates' (inference of another data layout); {hint}"
                )
            rates = f[f"{split}/rates"][()]
            if rates.shape != shapes[split]:
                raise NLBRunError(
                    f"{inf_path}: '{split}/rates' has shape {rates.shape}, but {data_path} has "
                    f"{split} spikes of shape {shapes[split]}; {hint}"
                )
            out[split] = rates
        n_fwd = shapes["forward"]
        if n_fwd and "test/rates_forward" in f:
            fwd = f["test/rates_forward"][()]
            if fwd.shape != (shapes["test"][0], n_fwd, shapes["test"][2]):
                raise NLBRunError(
                    f"{inf_path}: 'test/rates_forward' has shape {fwd.shape}, expected "
                    f"{(shapes['test'][0], n_fwd, shapes['test'][2])}; {hint}"
                )
            out["forward"] = fwd
        out_samples = int(f.attrs.get("n_samples", -1))
        weight = f.attrs.get("forward_weight")
    if n_fwd and "forward" not in out:
        warnings.warn(
            f"{inf_path}: no 'test/rates_forward': "
            "the submission has no forward rates (no fp-bps); "
            f"{hint}"
        )
    out["n_samples"] = out_samples
    out["forward_weight"] = None if weight is None else float(weight)
    return out


def run_submission(run_dir, n_samples: Optional[int] = None, data_path=None, log=None):
    """``(submission, info, data_path, meta)`` of a trained run; ``meta``: the posterior samples
    averaged (``n_samples``) and the weight of the forward rates against the mean rates
    (``forward_weight``, None when the inference predates the mix; see
    :mod:`dsid.evaluation.forward_calibration`).

    Uses ``RUN_DIR/inference.h5`` (written first when missing, or again when ``n_samples`` is
    given). With ``data_path`` (another prepared file of the same dataset, e.g. the test-phase one)
    the model infers that file's trials in memory and the run's ``inference.h5`` is left alone.
    """
    log = log or (lambda msg: None)
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    cfg = run.config
    checkpoint_path(run_dir)
    path = run_data_path(run_dir, cfg, data_path)
    info = read_nlb_info(path)
    order = read_train_order(path)
    n_default = int((cfg.get("infer") or {}).get("n_samples", 20))
    if data_path is not None:
        n = n_default if n_samples is None else int(n_samples)
        log(f"inferring {path} with the model of {run_dir} ({n} posterior samples)")
        data = load_tensor_file(path, require_splits=SPLITS)
        with tempfile.TemporaryDirectory() as tmp:
            inf_path = Path(tmp) / INFERENCE_FILE
            infer_data(
                run.model,
                data,
                n_samples=n,
                batch_size=int((cfg.get("infer") or {}).get("batch_size", 256)),
                out=inf_path,
            )
            rates = _read_rates(inf_path, path, run_dir)
    else:
        inf_path = run_dir / INFERENCE_FILE
        if n_samples is not None or not inf_path.exists():
            n = n_default if n_samples is None else int(n_samples)
            log(f"writing {inf_path} ({n} posterior samples)")
            infer_run(run_dir, n_samples=n, data_path=str(path))
        rates = _read_rates(inf_path, path, run_dir)
    meta = {"n_samples": rates.pop("n_samples"), "forward_weight": rates.pop("forward_weight")}
    if meta["forward_weight"] is not None:
        log(
            f"forward rates: {meta['forward_weight']:g} x the model's + "
            f"{1 - meta['forward_weight']:g} x the mean "
            "rates (the mix the validation trials chose)"
        )
    return submission_from_rates(info, order, rates), info, path, meta


# ----- W&B and files ------------------------------------------------------------------------------
def format_scores(columns: Mapping[str, Mapping[str, float]], title: Optional[str] = None) -> str:
    """A table: one row per metric, one column per submission
    (``{"model": {...}, "oracle": {...}}``)."""
    names = list(dict.fromkeys(k for col in columns.values() for k in col))
    width = max([len(c) for c in columns] + [8])
    lines = [title] if title else []
    lines.append(f"  {'metric':<8}" + "".join(f" {c:>{width}}" for c in columns))
    for k in names:
        lines.append(
            f"  {k:<8}"
            + "".join(
                f" {col[k]:>{width}.4f}" if k in col else f" {'-':>{width}}"
                for col in columns.values()
            )
        )
    return "\n".join(lines)


# ----- the commands -------------------------------------------------------------------------------
def evaluate_run(
    run_dir,
    n_samples: Optional[int] = None,
    data_path=None,
    wandb_mode: Optional[str] = None,
    log_wandb: bool = True,
    log=None,
) -> Dict[str, Any]:
    """``dsid nlb evaluate``: score a run's posterior-averaged rates with
    ``nlb_tools.evaluation.evaluate`` against the val-phase targets stored in its data file.

    Returns (and writes to ``RUN_DIR/nlb_metrics.json``) ``{"metrics": {co_bps, vel_r2 | tp_corr,
    psth_r2, fp_bps}, "oracle": {...} (synthetic data only), "dataset", "key", ...}``; logs the
    metrics as ``val/nlb_<metric>`` to a W&B run in the run directory unless ``log_wandb`` is false.
    """
    log = log or (lambda msg: None)
    run_dir = Path(run_dir)
    cfg = load_run(run_dir).config
    checkpoint_path(run_dir)
    path = run_data_path(run_dir, cfg, data_path)
    info = read_nlb_info(path)
    if info["heldout_unknown"]:
        raise NLBRunError(
            f"{path}: a test-phase file (NLB's test trials, held-out spikes unknown): there are no "
            f"targets to score locally. Use `dsid nlb submit {run_dir} --out FILE.h5` and upload "
            "the file to EvalAI, or train on a val-phase file to score locally"
        )
    targets = load_targets(path)
    sub, info, path, meta = run_submission(run_dir, n_samples, data_path, log)
    metrics = evaluate_submission(sub, targets)
    result: Dict[str, Any] = {
        "dataset": info["dataset"],
        "key": info["key"],
        "bin_ms": info["bin_ms"],
        "phase": info["phase"],
        "data_path": str(path),
        "run_dir": str(run_dir),
        **meta,
        "metrics": metrics,
    }
    if info["has_truth"]:
        result["oracle"] = evaluate_submission(oracle_submission(path), targets)
    write_json(run_dir / METRICS_FILE, result)
    if log_wandb:
        run = wandb_run(
            cfg,
            run_dir,
            "nlb-evaluate",
            wandb_mode,
            {
                "nlb": {
                    k: result[k]
                    for k in ("dataset", "key", "bin_ms", "phase", "data_path", "n_samples")
                }
            },
        )
        try:
            values = {f"val/nlb_{k}": v for k, v in metrics.items()}
            values.update(
                {f"val/nlb_oracle_{k}": v for k, v in (result.get("oracle") or {}).items()}
            )
            run.log(values)
            run.summary.update(values)
            result["wandb_dir"] = str(Path(run.dir).parent) if run.dir else None
        finally:
            run.finish()
    return result


def format_result(result: Mapping[str, Any]) -> str:
    cols = {"model": result["metrics"]}
    if result.get("oracle"):
        cols["oracle"] = result["oracle"]
    return format_scores(
        cols,
        f"NLB {result['key']} ({result['phase']} phase, {result['bin_ms']} ms bins, "
        f"{result['n_samples']} posterior samples): {result['run_dir']}",
    )
