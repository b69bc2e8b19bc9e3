"""The metrics of a model's posterior-averaged outputs on its data, the same for every entry point
(training, ``dsid infer``, PBT export): split metrics, per-session metrics of stitched models and
the communication metrics of multi-area models."""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from dsid.evaluation.metrics import bits_per_spike, input_r2_per_dim, latent_r2_per_dim, rate_r2
from dsid.evaluation.multiarea.communication import communication_metrics
from dsid.models.protocol import CommunicationModel

Outputs = Dict[str, Dict[str, np.ndarray]]  # split -> name -> array


def split_metrics(data, outputs: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, float]:
    """bps (held-in), co_bps (held-out), and with ground truth rate_r2, latent_r2 (its worst latent
    dimension: latent_r2_min), oracle co_bps and, for models with inferred inputs on data with
    true unobserved inputs, input_r2 (its worst input: input_r2_min)."""
    heldout = np.asarray(data.heldout, bool)
    metrics: Dict[str, float] = {}
    for split, prefix in (("train", "train"), ("valid", "val")):
        if split not in outputs:
            continue
        sd, rates = data.splits[split], outputs[split]["rates"][:, : data.n_time]
        metrics[f"{prefix}/bps"] = bits_per_spike(rates[..., ~heldout], sd.spikes[..., ~heldout])
        if heldout.any():
            metrics[f"{prefix}/co_bps"] = bits_per_spike(
                rates[..., heldout], sd.spikes[..., heldout]
            )
            if sd.truth_rates is not None:
                metrics[f"{prefix}/oracle_co_bps"] = bits_per_spike(
                    sd.truth_rates[..., heldout], sd.spikes[..., heldout]
                )
        if sd.truth_rates is not None:
            metrics[f"{prefix}/rate_r2"] = rate_r2(rates, sd.truth_rates)
    tr, va = data.splits.get("train"), data.splits.get("valid")
    if tr is not None and va is not None and tr.truth_latents is not None and "valid" in outputs:
        f_tr = outputs["train"]["factors"][:, : data.n_time]
        f_va = outputs["valid"]["factors"][:, : data.n_time]
        per_dim = latent_r2_per_dim(f_tr, tr.truth_latents, f_va, va.truth_latents)
        if per_dim.size:  # the average, and the worst-recovered latent dimension
            metrics["val/latent_r2"], metrics["val/latent_r2_min"] = (
                float(per_dim.mean()),
                float(per_dim.min()),
            )
    if (
        tr is not None
        and va is not None
        and tr.truth_inputs is not None
        and "train" in outputs
        and "valid" in outputs
        and "inferred_inputs" in outputs["valid"]
    ):
        per_input = input_r2_per_dim(
            outputs["train"]["inferred_inputs"][:, : data.n_time],
            tr.truth_inputs,
            outputs["valid"]["inferred_inputs"][:, : data.n_time],
            va.truth_inputs,
            data.bin_ms,
        )
        if per_input.size:  # the average, and the worst-recovered input
            metrics["val/input_r2"] = float(per_input.mean())
            metrics["val/input_r2_min"] = float(per_input.min())
    return metrics


def model_metrics(model, data, outputs: Outputs) -> Dict[str, float]:
    """Split metrics plus, for models of interacting areas, the communication metrics."""
    metrics = split_metrics(data, outputs)
    if isinstance(model, CommunicationModel):
        metrics.update(communication_metrics(model, data, outputs))
    return {k: float(v) for k, v in metrics.items()}


def run_metrics(model, sessions: Sequence, outputs: Sequence[Outputs]) -> Dict[str, float]:
    """The metrics of every session: one session as ``split/metric``; several as
    ``split/s{i}/metric`` each and their mean over sessions as ``split/metric``."""
    if len(sessions) == 1:
        return model_metrics(model, sessions[0], outputs[0])
    metrics, pooled = {}, {}
    for s, (data, out) in enumerate(zip(sessions, outputs)):
        for key, value in split_metrics(data, out).items():
            split, name = key.split("/", 1)
            metrics[f"{split}/s{s}/{name}"] = float(value)
            pooled.setdefault(key, []).append(float(value))
    metrics.update({k: float(np.mean(v)) for k, v in pooled.items()})
    return metrics
