"""Diagnostic figures of a model's outputs: rates over a spike raster, latents, PSTHs, inferred
inputs, 3-D trajectories, training curves, and the communication of multi-area models."""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from dsid.data.coordinates import bin_starts_ms
from dsid.evaluation.figures.single_area import (
    plot_inferred_inputs,
    plot_psths,
    plot_training_curves,
    plot_trajectories,
)
from dsid.evaluation.figures.style import (
    INFERRED,
    SPIKES,
    STYLE,
    TRUE,
    save_figures,
    smoothed,
    styled,
    subplots,
)
from dsid.evaluation.metrics import map_to_latents
from dsid.evaluation.multiarea.communication import communication_figures
from dsid.models.protocol import CommunicationModel

__all__ = ["diagnostic_figures", "plot_latents", "plot_rates", "save_figures"]


@styled
def plot_rates(
    true: Optional[np.ndarray],
    inferred: np.ndarray,
    spikes: np.ndarray,
    heldout: np.ndarray,
    bin_ms: float,
    n_neurons: int = 4,
    trial: int = 0,
    start_ms: float = 0.0,
):
    """True vs inferred rates (spikes/s) of a few held-in and held-out neurons on one trial (the
    smoothed spikes instead of the truth when there is none), over the trial's spike raster (every
    neuron; held-out ones in colour); times in ms from the alignment event (the first bin starts
    at ``start_ms``)."""
    hi, ho = np.flatnonzero(~heldout), np.flatnonzero(heldout)
    picks = list(hi[: max(n_neurons - min(len(ho), n_neurons // 2), 1)]) + list(
        ho[: n_neurons // 2]
    )
    fig = Figure(figsize=(6.0, 1.1 * len(picks) + 1.8))
    grid = fig.add_gridspec(
        len(picks) + 1, 1, height_ratios=[1.0] * len(picks) + [1.6], hspace=0.15
    )
    t = bin_starts_ms(inferred.shape[1], bin_ms, start_ms)
    hz = 1000.0 / bin_ms
    axes = [fig.add_subplot(grid[i]) for i in range(len(picks) + 1)]
    for ax, n in zip(axes, picks):
        if true is not None:
            ax.plot(t, true[trial, :, n] * hz, color=TRUE, label="true")
        else:  # without ground truth, the data smoothed as a reference
            smooth = smoothed(spikes[trial, : len(t), n]) * hz
            ax.plot(t, smooth, color=SPIKES, lw=0.6, label="smoothed spikes")
        ax.plot(t, inferred[trial, :, n] * hz, color=INFERRED, label="inferred")
        ax.text(
            0.01,
            0.95,
            f"neuron {n}{' (held out)' if heldout[n] else ''}",
            transform=ax.transAxes,
            va="top",
            fontsize=7,
        )
        ax.set_ylabel("spikes/s")
        ax.tick_params(labelbottom=False)
        ax.set_xlim(t[0], t[-1] + bin_ms)
    axes[0].legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2)
    raster = axes[-1]
    T = spikes.shape[1]
    for n in range(spikes.shape[2]):
        counts = np.asarray(spikes[trial, :T, n]).astype(int)
        times = np.repeat(t[:T] + bin_ms / 2, np.clip(counts, 0, None))
        raster.vlines(times, n + 0.1, n + 0.9, color=INFERRED if heldout[n] else SPIKES, lw=0.6)
    raster.set_xlim(t[0], t[-1] + bin_ms)
    raster.set_ylim(0, spikes.shape[2])
    raster.set_ylabel("neuron")
    raster.set_xlabel("time (ms)")
    fig.suptitle(f"rates, validation trial {trial} (raster: held-out neurons in colour)")
    return fig


@styled
def plot_latents(
    true: np.ndarray,
    mapped: np.ndarray,
    bin_ms: float = 1.0,
    trial: int = 0,
    start_ms: float = 0.0,
):
    """True latents vs inferred factors mapped onto them (affine map fit on train), with the R2 of
    each latent over the validation split."""
    L = true.shape[-1]
    shown = min(L, 6)
    fig, axes = subplots(shown, 1, figsize=(6.0, 1.0 * shown + 0.8), sharex=True, squeeze=False)
    t = bin_starts_ms(true.shape[1], bin_ms, start_ms)
    flat_t, flat_m = true.reshape(-1, L), mapped.reshape(-1, L)
    r2 = 1 - ((flat_t - flat_m) ** 2).sum(0) / ((flat_t - flat_t.mean(0)) ** 2).sum(0).clip(1e-12)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(t, true[trial, :, i], color=TRUE, label="true")
        ax.plot(t, mapped[trial, :, i], color=INFERRED, ls="--", label="inferred, mapped")
        ax.set_ylabel(f"latent {i}\n(a.u.)")
        ax.text(
            0.99, 0.95, f"R2 {r2[i]:.2f}", transform=ax.transAxes, ha="right", va="top", fontsize=7
        )
    axes[0, 0].legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2)
    axes[-1, 0].set_xlabel("time (ms)")
    more = f" (first {shown} of {L})" if shown < L else ""
    fig.suptitle(f"latents, validation trial {trial}{more}; R2 over the validation split")
    fig.tight_layout()
    return fig


def diagnostic_figures(
    data,
    outputs: Dict[str, Dict[str, np.ndarray]],
    n_neurons: int = 4,
    model=None,
    history: Optional[Sequence[Dict[str, float]]] = None,
):
    """Name -> figure for the validation split: ``rates`` (over a raster), ``latents`` (with truth),
    ``psths`` (files with conditions), ``inputs`` (models with inferred inputs), ``trajectories``,
    ``training`` (with ``history``: the metrics while training) and, for models of interacting
    areas, the effectome, delays and messages."""
    va, tr = data.splits["valid"], data.splits["train"]
    out_va = outputs["valid"]
    start = data.time_start_ms  # times in ms from the alignment event
    figs = {
        "rates": plot_rates(
            va.truth_rates,
            out_va["rates"],
            va.spikes,
            data.heldout,
            data.bin_ms,
            n_neurons,
            start_ms=start,
        )
    }
    has_latents = (
        va.truth_latents is not None and tr.truth_latents is not None and "train" in outputs
    )
    if has_latents:
        mapped = map_to_latents(outputs["train"]["factors"], tr.truth_latents, out_va["factors"])
        figs["latents"] = plot_latents(va.truth_latents, mapped, data.bin_ms, start_ms=start)
    if va.condition is not None:
        figs["psths"] = plot_psths(
            va.spikes,
            out_va["rates"],
            va.condition,
            data.bin_ms,
            va.truth_rates,
            n_neurons,
            start_ms=start,
        )
    if out_va.get("inferred_inputs") is not None and out_va["inferred_inputs"].shape[-1]:
        figs["inputs"] = plot_inferred_inputs(
            out_va["inferred_inputs"], data.bin_ms, va.truth_inputs, start_ms=start
        )
    if "factors" in out_va:
        figs["trajectories"] = plot_trajectories(
            out_va["factors"],
            outputs.get("train", {}).get("factors"),
            tr.truth_latents if has_latents else None,
            va.truth_latents if has_latents else None,
            va.condition,
        )
    if history:
        oracle = next((r["val/oracle_co_bps"] for r in history if "val/oracle_co_bps" in r), None)
        figs["training"] = plot_training_curves(history, oracle)
    if isinstance(model, CommunicationModel):
        with matplotlib.rc_context(STYLE):
            figs.update(communication_figures(model, data, outputs))
    return figs
