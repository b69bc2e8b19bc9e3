"""Figures beyond rates and latents: condition-averaged PSTHs, inferred inputs, 3-D latent
trajectories and training curves."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure

from dsid.data.coordinates import bin_starts_ms
from dsid.evaluation.figures.style import INFERRED, TRUE, smoothed, styled, subplots
from dsid.evaluation.metrics import map_to_latents


@styled
def plot_psths(
    spikes: np.ndarray,
    rates: np.ndarray,
    condition: np.ndarray,
    bin_ms: float,
    true: Optional[np.ndarray] = None,
    n_neurons: int = 4,
    max_conditions: int = 6,
    start_ms: float = 0.0,
):
    """Condition-averaged firing rates (spikes/s) of a few neurons: the model's (solid), the truth's
    (dashed, when known) and the smoothed data's (thin), one colour per condition."""
    conds = np.unique(condition)[:max_conditions]
    neurons = np.argsort(-spikes.mean((0, 1)))[:n_neurons]  # the most active neurons
    t = bin_starts_ms(rates.shape[1], bin_ms, start_ms)
    hz = 1000.0 / bin_ms
    fig, axes = subplots(1, len(neurons), figsize=(1.9 * len(neurons) + 0.4, 2.0), squeeze=False)
    for ax, n in zip(axes[0], neurons):
        for i, c in enumerate(conds):
            sel = condition == c
            colour = f"C{i % 10}"
            ax.plot(t, rates[sel, :, n].mean(0) * hz, color=colour, label=f"cond. {c}")
            data = smoothed(spikes[sel, :, n].mean(0)) * hz
            ax.plot(t, data, color=colour, lw=0.5, alpha=0.6)
            if true is not None:
                ax.plot(t, true[sel, :, n].mean(0) * hz, color=colour, ls="--", lw=0.9)
        ax.set_title(f"neuron {n}")
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("rate (spikes/s)")
    axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    truth = ", truth (dashed)" if true is not None else ""
    fig.suptitle(f"condition-averaged rates: model (solid){truth}, smoothed spikes (thin)")
    fig.tight_layout()
    return fig


@styled
def plot_inferred_inputs(
    inputs: np.ndarray,
    bin_ms: float,
    true: Optional[np.ndarray] = None,
    n_trials: int = 3,
    start_ms: float = 0.0,
):
    """Inferred inputs (controller outputs, a.u.) over time on a few trials; the true inputs below
    when the data has them."""
    rows = 2 if true is not None else 1
    k = min(n_trials, inputs.shape[0])
    fig, axes = subplots(rows, k, figsize=(2.3 * k + 0.4, 1.8 * rows), squeeze=False, sharex=True)
    t = bin_starts_ms(inputs.shape[1], bin_ms, start_ms)
    for j in range(k):
        for u in range(inputs.shape[2]):
            axes[0, j].plot(t, inputs[j, :, u], color=f"C{u % 10}", label=f"input {u}")
        axes[0, j].set_title(f"trial {j}")
        axes[0, j].set_ylabel("inferred input (a.u.)")
        if true is not None:
            for u in range(true.shape[2]):
                axes[1, j].plot(
                    t, true[j, :, u], color=TRUE if true.shape[2] == 1 else f"C{u % 10}", lw=0.9
                )
            axes[1, j].set_ylabel("true input (a.u.)")
        axes[-1, j].set_xlabel("time (ms)")
    axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def _pca(x: np.ndarray, k: int = 3) -> np.ndarray:
    flat = x.reshape(-1, x.shape[-1])
    flat = flat - flat.mean(0)
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    proj = flat @ vt[:k].T
    if proj.shape[1] < k:
        proj = np.pad(proj, ((0, 0), (0, k - proj.shape[1])))
    return proj.reshape(*x.shape[:-1], k)


@styled
def plot_trajectories(
    factors_valid: np.ndarray,
    factors_train: Optional[np.ndarray] = None,
    latents_train: Optional[np.ndarray] = None,
    latents_valid: Optional[np.ndarray] = None,
    condition: Optional[np.ndarray] = None,
    n_trials: int = 12,
):
    """3-D latent trajectories: the first three principal components of the factors, or with ground
    truth the factors mapped onto the true latents (linear map fit on train) next to the truth."""
    aligned = latents_valid is not None and factors_train is not None and latents_train is not None
    panels = [
        (
            "inferred (mapped to truth)" if aligned else "inferred factors (PCA)",
            _pca(map_to_latents(factors_train, latents_train, factors_valid))
            if aligned
            else _pca(factors_valid),
        )
    ]
    if aligned:
        panels.append(("true latents", _pca(latents_valid)))
    fig = Figure(figsize=(3.2 * len(panels), 3.0))
    for i, (title, traj) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1, projection="3d")
        for j in range(min(n_trials, traj.shape[0])):
            c = f"C{int(condition[j]) % 10}" if condition is not None else f"C{j % 10}"
            ax.plot(traj[j, :, 0], traj[j, :, 1], traj[j, :, 2], color=c, lw=0.8)
            ax.scatter(*traj[j, 0, :3], color=c, s=6)
        ax.set_title(title)
        ax.set_xlabel("PC 1 (a.u.)")
        ax.set_ylabel("PC 2 (a.u.)")
        ax.set_zlabel("PC 3 (a.u.)")
    fig.tight_layout()
    return fig


CURVES = (
    ("val/co_bps", "co-bps (bits/spike)"),
    ("val/bps", "held-in bits/spike"),
    ("val/rate_r2", "rate R2"),
    ("val/latent_r2", "latent R2"),
)


@styled
def plot_training_curves(history: Sequence[Dict[str, float]], oracle: Optional[float] = None):
    """The periodic validation metrics against optimizer steps (``metrics_history.json``)."""
    shown: List = [(k, label) for k, label in CURVES if any(k in r for r in history)]
    fig, axes = subplots(
        1, max(len(shown), 1), figsize=(2.2 * max(len(shown), 1) + 0.4, 2.0), squeeze=False
    )
    for ax, (key, label) in zip(axes[0], shown):
        rows = [r for r in history if key in r]
        ax.plot(
            [r.get("step", r.get("epoch", 0)) for r in rows],
            [r[key] for r in rows],
            "o-",
            color=INFERRED,
            ms=3,
        )
        if key == "val/co_bps" and oracle is not None:
            ax.axhline(oracle, color=TRUE, ls="--", lw=0.9, label="oracle")
            ax.legend(loc="lower right")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(label)
    if not shown:
        axes[0, 0].set_xlabel("optimizer step")
        axes[0, 0].set_ylabel("no metrics recorded")
    fig.tight_layout()
    return fig
