"""NLB submissions and scores, through ``nlb_tools.evaluation.evaluate``.

A submission is ``{dataset_key: {train_rates_heldin, train_rates_heldout, eval_rates_heldin,
eval_rates_heldout[, eval_rates_heldin_forward, eval_rates_heldout_forward]}}``: arrays
(trials, T, N) in spikes per bin; the key carries ``_20`` at 20 ms (``mc_maze_20``) as nlb_tools
expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import h5py
import numpy as np
from threadpoolctl import threadpool_limits

from dsid.data.atomic import atomic_h5
from dsid.data.tensor_file import DataFileError
from dsid.nlb.specs import check_bin, get_spec, quiet_nlb_tools

METRIC_NAMES = {
    "co-bps": "co_bps",
    "vel R2": "vel_r2",
    "psth R2": "psth_r2",
    "fp-bps": "fp_bps",
    "tp corr": "tp_corr",
}
RATE_KEYS = (
    "train_rates_heldin",
    "train_rates_heldout",
    "eval_rates_heldin",
    "eval_rates_heldout",
    "eval_rates_heldin_forward",
    "eval_rates_heldout_forward",
)


def _str(x) -> str:
    x = x[()] if isinstance(x, h5py.Dataset) else x
    return x.decode() if isinstance(x, bytes) else str(x)


def _object_index(labels: np.ndarray, n_cond: int) -> np.ndarray:
    """Per-trial condition labels -> the object array of index arrays nlb_tools uses."""
    out = np.empty(n_cond, dtype=object)
    for c in range(n_cond):
        out[c] = np.flatnonzero(labels == c)
    return out


def read_nlb_info(dsid_file) -> Dict[str, object]:
    """The scalar ``nlb/`` facts of a prepared file: dataset, key, bin_ms, phase, n_heldin,
    heldout_unknown."""
    path = Path(dsid_file)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such DSID tensor file")
    with h5py.File(path, "r") as f:
        if "nlb/dataset" not in f:
            raise DataFileError(
                path, "nlb/dataset", "an NLB file written by `dsid nlb prepare`", "no nlb group"
            )
        g = f["nlb"]
        return {
            "dataset": _str(g["dataset"]),
            "key": _str(g["key"]),
            "bin_ms": int(g["bin_ms"][()]),
            "phase": _str(g["phase"]),
            "n_heldin": int(g["n_heldin"][()]),
            "heldout_unknown": bool(g["heldout_unknown"][()]),
            "has_truth": "truth" in g,
        }


def load_targets(dsid_file) -> Dict[str, Dict[str, np.ndarray]]:
    """The evaluation targets stored by ``prepare`` (phase 'val'), as ``evaluate`` wants them."""
    path = Path(dsid_file)
    info = read_nlb_info(path)
    with h5py.File(path, "r") as f:
        if info["heldout_unknown"] or "nlb/target" not in f:
            raise DataFileError(
                path,
                "nlb/target",
                "NLB evaluation targets (a file prepared with phase 'val')",
                f"phase '{info['phase']}': held-out spikes of the evaluation trials are unknown "
                "(score test-phase submissions on EvalAI)",
            )
        g = f["nlb/target"]
        target = {k: g[k][()] for k in g if not k.endswith("_cond_labels")}
        n_cond = target["psth"].shape[0] if "psth" in target else 0
        for split in ("train", "eval"):
            if f"{split}_cond_labels" in g:
                target[f"{split}_cond_idx"] = _object_index(g[f"{split}_cond_labels"][()], n_cond)
    return {info["key"]: target}


def _rates(name: str, x, n_trials=None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"{name}: expected rates of shape (trials, T, N), found shape {x.shape}")
    if not np.isfinite(x).all() or (x < 0).any():
        raise ValueError(f"{name}: expected finite non-negative rates (spikes per bin)")
    if n_trials is not None and x.shape[0] != n_trials:
        raise ValueError(f"{name}: expected {n_trials} trials, found {x.shape[0]}")
    return x


def make_submission(
    dataset: str,
    bin_ms: int,
    train_rates,
    eval_rates,
    eval_rates_forward=None,
    n_heldin: int = None,
) -> Dict[str, Dict[str, np.ndarray]]:
    """Split rates (trials, T, N; held-in then held-out neurons; spikes per bin) into NLB's
    submission."""
    key = get_spec(dataset).key(check_bin(bin_ms))
    tr, ev = _rates("train_rates", train_rates), _rates("eval_rates", eval_rates)
    if n_heldin is None or not 0 < int(n_heldin) < tr.shape[2]:
        raise ValueError(f"n_heldin: expected 0 < n_heldin < N={tr.shape[2]}, found {n_heldin}")
    if ev.shape[1:] != tr.shape[1:]:
        raise ValueError(
            f"eval_rates: expected (trials, {tr.shape[1]}, {tr.shape[2]}) like train_rates, "
            f"found {ev.shape}"
        )
    k = int(n_heldin)
    sub = {
        "train_rates_heldin": tr[..., :k],
        "train_rates_heldout": tr[..., k:],
        "eval_rates_heldin": ev[..., :k],
        "eval_rates_heldout": ev[..., k:],
    }
    if eval_rates_forward is not None:
        fw = _rates("eval_rates_forward", eval_rates_forward, ev.shape[0])
        if fw.shape[2] != tr.shape[2]:
            raise ValueError(
                f"eval_rates_forward: expected {tr.shape[2]} neurons, found {fw.shape[2]}"
            )
        sub.update(eval_rates_heldin_forward=fw[..., :k], eval_rates_heldout_forward=fw[..., k:])
    return {key: sub}


def evaluate_submission(submission, targets) -> Dict[str, float]:
    """Score a one-dataset submission with nlb_tools:
    ``co_bps, vel_r2 | tp_corr, psth_r2, fp_bps``."""
    from nlb_tools.evaluation import evaluate

    common = [k for k in submission if k in targets]
    if len(common) != 1:
        raise ValueError(
            f"expected one dataset in both submission ({sorted(submission)}) and targets "
            f"({sorted(targets)}), found {common}"
        )
    key = common[0]
    with (
        threadpool_limits(limits=1),
        quiet_nlb_tools(),
    ):  # small ridge fits: extra threads only contend
        results = evaluate({key: targets[key]}, {key: submission[key]})
    if not results:
        raise ValueError(f"nlb_tools.evaluation.evaluate scored nothing for '{key}'")
    raw = next(iter(results[0].values()))
    flat = {}
    for name, value in raw.items():
        name = name.split("] ", 1)[-1]  # scaling datasets: "[500] co-bps"
        flat[METRIC_NAMES.get(name, name)] = float(value)
    return flat


def submission_from_rates(
    info: Mapping[str, Any], order: np.ndarray, rates: Mapping[str, np.ndarray]
):
    """NLB's submission from DSID rates: ``rates['train']``, ``['valid']``, ``['test']``
    (trials, T, N) and optionally ``['forward']`` (test trials, T_fwd, N), spikes per bin."""
    return make_submission(
        info["dataset"],
        info["bin_ms"],
        to_nlb_train_order(order, rates["train"], rates["valid"]),
        rates["test"],
        rates.get("forward"),
        n_heldin=info["n_heldin"],
    )


def save_submission_h5(submission, out) -> Path:
    """Write a fresh submission file (temporary file then rename): nothing stale from an earlier
    file."""
    out = Path(out)
    with atomic_h5(out) as f:
        for key, group in submission.items():
            g = f.create_group(key)
            for name, arr in group.items():
                g.create_dataset(name, data=np.asarray(arr, dtype=np.float32), compression="gzip")
    return out


def load_submission_h5(path) -> Dict[str, Dict[str, np.ndarray]]:
    with h5py.File(path, "r") as f:
        return {k: {n: f[k][n][()] for n in f[k]} for k in f}


def read_train_order(dsid_file) -> np.ndarray:
    """``nlb/train_order``: ``np.concatenate([train, valid])[order]`` is in NLB's training-trial
    order."""
    path = Path(dsid_file)
    with h5py.File(path, "r") as f:
        if "nlb/train_order" not in f or "test" not in f:
            raise DataFileError(
                path,
                "nlb/train_order",
                "NLB's training trials in train/valid and its evaluation "
                "trials in 'test' (the layout of this version of `dsid nlb prepare`: prepare the "
                "file again)",
                "an older layout",
            )
        return f["nlb/train_order"][()]


def to_nlb_train_order(order: np.ndarray, train, valid) -> np.ndarray:
    """Arrays of the DSID ``train`` and ``valid`` splits -> one array in NLB's training-trial
    order."""
    x = np.concatenate([np.asarray(train), np.asarray(valid)])
    if len(x) != len(order):
        raise ValueError(
            f"train + valid: expected {len(order)} trials (nlb/train_order), found {len(x)}"
        )
    return x[order]


def oracle_submission(dsid_file) -> Dict[str, Dict[str, np.ndarray]]:
    """The submission made of the true rates that ``prepare`` copied from a synthetic dataset's
    truth."""
    path = Path(dsid_file)
    info = read_nlb_info(path)
    order = read_train_order(path)
    fields = (
        "train/truth/rates",
        "valid/truth/rates",
        "test/truth/rates",
        "nlb/truth/eval_rates_forward",
    )
    with h5py.File(path, "r") as f:
        for field in fields:
            if field not in f:
                raise DataFileError(
                    path, field, "true rates (a file prepared from `dsid synth nlb` data)", "none"
                )
        train, valid, test, forward = (f[x][()] for x in fields)
    return make_submission(
        info["dataset"],
        info["bin_ms"],
        to_nlb_train_order(order, train, valid),
        test,
        forward,
        n_heldin=info["n_heldin"],
    )


def format_metrics(metrics: Dict[str, float], title: Optional[str] = None) -> str:
    """A small two-column table of metrics."""
    lines = [title] if title else []
    lines += [f"  {k:<8} {v:8.4f}" for k, v in metrics.items()]
    return "\n".join(lines)
