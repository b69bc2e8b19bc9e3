"""Posterior-averaged inference for every split, written to ``RUN_DIR/inference.h5``."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from dsid.data.atomic import atomic_h5
from dsid.data.tensor_file import DSIDData, load_tensor_file
from dsid.training.lightning_module import split_metrics

INFERENCE_FILE = "inference.h5"


@torch.no_grad()
def infer_split(module, spikes: np.ndarray, n_samples: int = 20, batch_size: int = 256,
                n_forward: int = 0, desc: str = "") -> Dict[str, np.ndarray]:
    """Average the model's outputs over ``n_samples`` posterior samples (dropout off).

    Returns rates (trials, T + n_forward, N), factors, and inferred_inputs when the model has them,
    plus the outputs named in the model's ``extra_output_keys`` (e.g. multi-area messages).
    ``n_samples=0`` uses the posterior means instead of samples.
    """
    model = module.model if hasattr(module, "model") else module
    model.eval()
    device = next(model.parameters()).device
    sums: Dict[str, list] = {}
    x_all = torch.as_tensor(np.asarray(spikes, np.float32))
    batches = range(0, x_all.shape[0], batch_size)
    for start in tqdm(batches, desc=desc, leave=False, disable=not desc or len(batches) < 4):
        x = x_all[start:start + batch_size].to(device)
        xin, _ = model.augment(x, "predict")
        acc: Dict[str, torch.Tensor] = {}
        reps = max(n_samples, 1)
        keys = [("rates", "rates"), ("factors", "factors"), ("inferred_inputs", "co_sample")]
        keys += [(k, k) for k in getattr(model, "extra_output_keys", ())]
        for _ in range(reps):
            out = model(xin, n_forward=n_forward, sample=n_samples > 0)
            for key, src in keys:
                if src in out:
                    acc[key] = acc.get(key, 0) + out[src] / reps
        for key, val in acc.items():
            sums.setdefault(key, []).append(val.cpu().numpy())
    return {k: np.concatenate(v) for k, v in sums.items()}


def infer_module(module, data: DSIDData, n_samples: int = 20, batch_size: int = 256,
                 out: Optional[Path] = None) -> Dict[str, Dict[str, np.ndarray]]:
    """Infer every split of ``data``; write ``out`` (HDF5, atomically) when given.

    File layout: ``{split}/rates`` (trials, T, N), ``{split}/factors``, ``{split}/inferred_inputs``,
    and ``{split}/rates_forward`` (trials, T_fwd, N) when the data has forward bins.
    """
    n_fwd = data.n_forward
    outputs = {}
    for split, sd in data.splits.items():
        res = infer_split(module, sd.spikes, n_samples, batch_size, n_forward=n_fwd, desc=split)
        T = sd.spikes.shape[1]
        if n_fwd:
            res["rates_forward"] = res["rates"][:, T:]
        res = {k: (v[:, :T] if k != "rates_forward" else v) for k, v in res.items()}
        outputs[split] = res
    if out is not None:
        write_inference(out, outputs, n_samples)
    return outputs


def write_inference(path, outputs: Dict[str, Dict[str, np.ndarray]], n_samples: int) -> Path:
    path = Path(path)
    with atomic_h5(path) as f:
        f.attrs["n_samples"] = n_samples
        for split, res in outputs.items():
            for key, arr in res.items():
                f.create_dataset(f"{split}/{key}", data=arr.astype(np.float32), compression="gzip",
                                 compression_opts=1)
    return path


def read_inference(path) -> Dict[str, Dict[str, np.ndarray]]:
    with h5py.File(path, "r") as f:
        return {s: {k: f[s][k][()] for k in f[s]} for s in f}


def final_metrics(data: DSIDData, outputs, model=None) -> Dict[str, float]:
    """Split metrics plus the model's own (``model.extra_metrics(data, outputs)``, if defined)."""
    metrics = split_metrics(data, outputs)
    extra = getattr(model, "extra_metrics", None)
    if extra is not None:
        metrics.update(extra(data, outputs))
    return {k: float(v) for k, v in metrics.items()}


def infer_run(run_dir, n_samples: Optional[int] = None, data_path: Optional[str] = None) -> Path:
    """``dsid infer RUN_DIR``: reload the best checkpoint and rewrite ``RUN_DIR/inference.h5``."""
    from dsid.training.run import load_best, load_run_config

    cfg = load_run_config(run_dir)
    module = load_best(run_dir)
    path = data_path or cfg["data"]["path"]
    data = load_tensor_file(path, counts=getattr(module.model.observation, "integer_counts", True))
    n = int(n_samples if n_samples is not None else (cfg.get("infer") or {}).get("n_samples", 20))
    out = Path(run_dir) / INFERENCE_FILE
    infer_module(module, data, n_samples=n, out=out)
    return out
