"""Perturbation prediction: what a trained multi-area model says an intervention on its messages
does to every area's rates (:mod:`dsid.models.multiarea.intervention`), and how well that matches
a simulator's true effect on the same trials.

The effect is the change of rate (perturbed minus unperturbed) of every neuron, bin and trial; it is
scored on the bins the intervention can reach (``from_bin + 1`` on) and on the neurons chosen (the
silenced area's own neurons are left out: the model does not predict them), as R2 over entries:

- ``effect_r2``: of the trial-averaged effect, entries (bin, neuron): the effect a population
  recording averaged over trials shows;
- ``effect_r2_trials``: of every trial's effect, entries (trial, bin, neuron).
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch

from dsid.models.multiarea.intervention import Intervention, perturbed_rollout


def predict_perturbation(
    model,
    spikes: np.ndarray,
    intervention: Intervention,
    ext: Optional[np.ndarray] = None,
    batch_size: int = 256,
) -> Dict[str, np.ndarray]:
    """Every trial's rates as inferred and under ``intervention`` (the model's mode is restored).

    Shape:
        spikes: (trials, T, N) counts (file order); ext: (trials, T, E) or None
        returns rates_base, rates_perturbed (trials, T, N), spikes per bin, file order
    """
    last = spikes.shape[1] - 1
    if intervention.from_bin >= last:
        raise ValueError(
            f"from_bin: {intervention.from_bin} leaves no bin to act on (the trials' last bin is "
            f"{last}; an intervention from bin t first acts on bin t + 1)"
        )
    was_training = model.training
    model.eval()
    device = model.heldin_idx.device
    parts: Dict[str, list] = {"rates_base": [], "rates_perturbed": []}
    try:
        for start in range(0, spikes.shape[0], batch_size):
            sl = slice(start, start + batch_size)
            x = torch.as_tensor(np.asarray(spikes[sl], np.float32), device=device)
            e = (
                None
                if ext is None
                else torch.as_tensor(np.asarray(ext[sl], np.float32), device=device)
            )
            out = perturbed_rollout(model, x, intervention, e)
            for k in parts:
                parts[k].append(out[k].cpu().numpy())
    finally:
        model.train(was_training)
    return {k: np.concatenate(v) for k, v in parts.items()}


def r2(pred: np.ndarray, true: np.ndarray) -> float:
    """1 - residual / total sum of squares over all entries (nan when the truth is constant)."""
    pred, true = np.asarray(pred, float).ravel(), np.asarray(true, float).ravel()
    total = float(((true - true.mean()) ** 2).sum())
    return 1.0 - float(((pred - true) ** 2).sum()) / total if total > 0 else float("nan")


def effect_scores(
    pred_delta: np.ndarray, true_delta: np.ndarray, from_bin: int, neurons: np.ndarray
) -> Dict[str, float]:
    """``effect_r2`` and ``effect_r2_trials`` (see the module docstring) on bins ``from_bin + 1``
    on and the ``neurons`` (bool mask or indices), plus ``effect_rms_true`` and
    ``effect_rms_pred``, the root mean square effects there (spikes per bin).

    Shape: pred_delta, true_delta (trials, T, N)."""
    if pred_delta.shape != true_delta.shape:
        raise ValueError(
            f"predicted effect {pred_delta.shape} and true effect {true_delta.shape}: "
            "expected the same (trials, T, N) shape"
        )
    p, t = pred_delta[:, from_bin + 1 :][..., neurons], true_delta[:, from_bin + 1 :][..., neurons]
    if p.size == 0:
        raise ValueError("no bin after from_bin or no neuron to score the effect on")
    return {
        "effect_r2": r2(p.mean(0), t.mean(0)),
        "effect_r2_trials": r2(p, t),
        "effect_rms_true": float(np.sqrt((t**2).mean())),
        "effect_rms_pred": float(np.sqrt((p**2).mean())),
    }


def area_effect(delta: np.ndarray, area: np.ndarray, n_areas: int) -> np.ndarray:
    """Each area's root mean square effect per bin, over trials and the area's neurons.

    Shape: delta (trials, T, N), area (N,) -> (A, T)."""
    area = np.asarray(area)
    return np.stack([np.sqrt((delta[..., area == a] ** 2).mean((0, 2))) for a in range(n_areas)])
