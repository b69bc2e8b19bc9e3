"""Diagnostic figures of a model's outputs: rates, latents, and the communication of multi-area models."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dsid.evaluation.metrics import map_to_latents  # noqa: E402
from dsid.evaluation.multiarea_eval import communication_figures  # noqa: E402
from dsid.models.protocol import CommunicationModel  # noqa: E402


def plot_rates(true: Optional[np.ndarray], inferred: np.ndarray, spikes: np.ndarray,
               heldout: np.ndarray, bin_ms: float, n_neurons: int = 4, trial: int = 0):
    """True vs inferred rates (spikes/s) of a few held-in and held-out neurons on one trial."""
    hi, ho = np.flatnonzero(~heldout), np.flatnonzero(heldout)
    picks = list(hi[: max(n_neurons - min(len(ho), n_neurons // 2), 1)]) + list(ho[: n_neurons // 2])
    fig, axes = plt.subplots(len(picks), 1, figsize=(7, 1.6 * len(picks)), sharex=True, squeeze=False)
    t = np.arange(inferred.shape[1]) * bin_ms
    scale = 1000.0 / bin_ms
    for ax, n in zip(axes[:, 0], picks):
        ax.vlines(t[spikes[trial, :, n] > 0], 0, 0.15 * scale * max(inferred[trial, :, n].max(), 1e-3),
                  color="0.7", lw=0.8, label="spikes")
        if true is not None:
            ax.plot(t, true[trial, :, n] * scale, "k", lw=1.5, label="true")
        ax.plot(t, inferred[trial, :, n] * scale, "C1", lw=1.5, label="inferred")
        ax.set_ylabel(f"#{n}{' (ho)' if heldout[n] else ''}\nHz", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (ms)")
    fig.suptitle("rates: true vs inferred (validation trial %d)" % trial, fontsize=9)
    fig.tight_layout()
    return fig


def plot_latents(true: np.ndarray, mapped: np.ndarray, trial: int = 0):
    """True latents vs inferred factors mapped onto them (affine map fit on train)."""
    L = true.shape[-1]
    fig, axes = plt.subplots(L, 1, figsize=(7, 1.5 * L), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(true[trial, :, i], "k", lw=1.5, label="true")
        ax.plot(mapped[trial, :, i], "C0--", lw=1.5, label="factors, mapped")
        ax.set_ylabel(f"latent {i}", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    axes[-1, 0].set_xlabel("bin")
    fig.suptitle("latents: true vs inferred factors (validation trial %d)" % trial, fontsize=9)
    fig.tight_layout()
    return fig


def diagnostic_figures(data, outputs: Dict[str, Dict[str, np.ndarray]], n_neurons: int = 4, model=None):
    """Name -> figure for the validation split, plus, for models of interacting areas, the effectome,
    delays and messages (:func:`~dsid.evaluation.multiarea_eval.communication_figures`)."""
    va, tr = data.splits["valid"], data.splits["train"]
    figs = {"rates": plot_rates(va.truth_rates, outputs["valid"]["rates"], va.spikes, data.heldout,
                                data.bin_ms, n_neurons)}
    if va.truth_latents is not None and tr.truth_latents is not None and "train" in outputs:
        mapped = map_to_latents(outputs["train"]["factors"], tr.truth_latents,
                                outputs["valid"]["factors"])
        figs["latents"] = plot_latents(va.truth_latents, mapped)
    if isinstance(model, CommunicationModel):
        figs.update(communication_figures(model, data, outputs))
    return figs


def save_figures(figs, fig_dir: Path, suffix: str = "") -> None:
    """Write every figure as ``fig_dir/{name}{suffix}.png``."""
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    for name, fig in figs.items():
        fig.savefig(fig_dir / f"{name}{suffix}.png", dpi=90)
