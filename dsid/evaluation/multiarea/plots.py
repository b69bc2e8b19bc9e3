"""Figures for multi-area ground-truth recovery: effectomes, delays, messages.

Built with the object-oriented matplotlib API (``matplotlib.figure.Figure``, Agg-rendered on save),
so nothing touches pyplot's global state; each function returns the Figure.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

import numpy as np
from matplotlib.figure import Figure

from dsid.data.coordinates import bin_starts_ms
from dsid.evaluation.metrics import apply_linear_map, fit_linear_map

Arrays = Union[Sequence[np.ndarray], Mapping[str, np.ndarray]]


def _names(n: int, area_names: Optional[Sequence[str]]) -> list:
    return list(area_names) if area_names is not None else [f"A{a}" for a in range(n)]


#: an edge weaker than this fraction of the strongest one is drawn as absent ("~0")
NEGLIGIBLE = 0.01


def plot_effectomes(true, inferred, area_names: Optional[Sequence[str]] = None) -> Figure:
    """Side-by-side heatmaps of the true and inferred effectomes (row src, column dst), one colour
    scale; the inferred one alone when ``true`` is None (data without ground truth).

    The diagonal (not part of the effectome) is blanked; values are written in the cells, and an
    edge below :data:`NEGLIGIBLE` of the strongest one of its panel is blank, marked "~0".
    """
    panels = [("inferred effectome", np.array(inferred, dtype=float))]
    if true is not None:
        panels.insert(0, ("true effectome", np.array(true, dtype=float)))
    mats = [m for _, m in panels]
    if any(m.shape != mats[-1].shape for m in mats) or mats[-1].ndim != 2:
        shapes = " and ".join(f"{t.split()[0]} {m.shape}" for t, m in panels)
        raise ValueError(f"{shapes}: expected the same (A, A) shape")
    n = mats[0].shape[0]
    names = _names(n, area_names)
    faint = []
    for m in mats:
        np.fill_diagonal(m, np.nan)
        top = np.nanmax(np.abs(m)) if np.isfinite(m).any() else 0.0
        weak = np.isfinite(m) & (np.abs(m) < NEGLIGIBLE * top)
        faint.append(weak)
        m[weak] = np.nan
    finite = np.concatenate([m[np.isfinite(m)] for m in mats])
    lo = min(0.0, float(finite.min())) if finite.size else 0.0
    hi = float(finite.max()) if finite.size and finite.max() > lo else lo + 1.0
    fig = Figure(figsize=(4.5 * len(panels), 4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, m), weak in zip(axes, panels, faint):
        im = ax.imshow(m, vmin=lo, vmax=hi, cmap="viridis")
        ax.set(
            title=title,
            xticks=range(n),
            yticks=range(n),
            xticklabels=names,
            yticklabels=names,
            xlabel="destination",
            ylabel="source",
        )
        for i in range(n):
            for j in range(n):
                if weak[i, j]:
                    ax.text(j, i, "~0", ha="center", va="center", fontsize=7, color="0.5")
                elif i != j and np.isfinite(m[i, j]):
                    ax.text(
                        j,
                        i,
                        f"{m[i, j]:.2g}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="w" if m[i, j] < (lo + hi) / 2 else "k",
                    )
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="strength")
    return fig


def plot_delays(inferred_delays, true_delays, area_names: Optional[Sequence[str]] = None) -> Figure:
    """Grouped bars of true vs inferred delay (bins) for every edge that is true or inferred
    (>= 0)."""
    inf, tru = np.asarray(inferred_delays, dtype=float), np.asarray(true_delays, dtype=float)
    if inf.shape != tru.shape or tru.ndim != 2:
        raise ValueError(
            f"inferred {inf.shape} and true {tru.shape}: expected the same (A, A) shape"
        )
    names = _names(tru.shape[0], area_names)
    off = ~np.eye(tru.shape[0], dtype=bool)
    pairs = [(i, j) for i, j in zip(*np.nonzero(off & ((tru >= 0) | (inf >= 0))))]
    fig = Figure(figsize=(max(4.0, 1.0 + 0.9 * len(pairs)), 3.5), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(pairs))
    tv = [tru[p] if tru[p] >= 0 else np.nan for p in pairs]
    iv = [inf[p] if inf[p] >= 0 else np.nan for p in pairs]
    ax.bar(x - 0.2, tv, 0.4, label="true")
    ax.bar(x + 0.2, iv, 0.4, label="inferred")
    ax.set(
        xticks=x,
        xticklabels=[f"{names[i]}→{names[j]}" for i, j in pairs],
        ylabel="delay (bins)",
        xlabel="edge (source→destination)",
        title="edge delays (missing bar: no edge)",
    )
    ax.legend()
    return fig


def _as_list(x: Arrays, edge_names: Sequence[str]) -> list:
    if isinstance(x, Mapping):
        return [np.asarray(x[k]) for k in edge_names]
    return [np.asarray(v) for v in x]


def plot_messages(
    true: Arrays,
    inferred: Arrays,
    edge_names: Sequence[str],
    trial: int = 0,
    area_names: Optional[Sequence[str]] = None,
    bin_ms: Optional[float] = None,
    start_ms: float = 0.0,
) -> Figure:
    """Per-edge traces of the true message (solid) and the inferred one (dashed) on one trial.

    ``true``/``inferred``: one (trials, T, k) array per edge, as sequences in ``edge_names`` order
    ("src_dst", area indices) or mappings keyed by the names. For display the inferred message is
    mapped onto the true one by an affine least-squares fit over all trials (its dimension and sign
    are arbitrary). With ``area_names`` edges read "V1 -> V2"; with ``bin_ms`` time is in ms from
    the alignment event (the first bin starts at ``start_ms``), in bins otherwise.
    """
    tl, il = _as_list(true, edge_names), _as_list(inferred, edge_names)
    if not len(tl) == len(il) == len(edge_names):
        raise ValueError(
            f"plot_messages: {len(tl)} true, {len(il)} inferred, {len(edge_names)} edge names"
        )
    fig = Figure(figsize=(7, 2.2 * max(1, len(tl))), layout="constrained")
    axes = np.atleast_1d(fig.subplots(max(1, len(tl)), 1, squeeze=False)[:, 0])
    for ax, t, i, name in zip(axes, tl, il, edge_names):
        label = _edge_label(name, area_names)
        t = t[..., None] if t.ndim == 2 else t
        i = i[..., None] if i.ndim == 2 else i
        w = fit_linear_map(i.reshape(-1, i.shape[-1]), t.reshape(-1, t.shape[-1]))
        aligned = apply_linear_map(i[trial], w)
        x = np.arange(t.shape[1]) if bin_ms is None else bin_starts_ms(t.shape[1], bin_ms, start_ms)
        for d in range(t.shape[-1]):
            (line,) = ax.plot(x, t[trial, :, d], lw=1.5, label=f"true dim {d}")
            ax.plot(
                x,
                aligned[:, d],
                ls="--",
                color=line.get_color(),
                lw=1.5,
                label=f"inferred (aligned) dim {d}",
            )
        ax.set(title=f"message {label}, trial {trial}", ylabel="message (a.u.)")
    axes[0].legend(fontsize=7, ncol=2, loc="lower left", bbox_to_anchor=(0.0, 1.15))
    axes[-1].set_xlabel("time (bins)" if bin_ms is None else "time (ms)")
    return fig


def _edge_label(name: str, area_names: Optional[Sequence[str]]) -> str:
    """ "0_1" as "V1 -> V2" (area names) or "0 -> 1"; any other name as it is."""
    parts = str(name).split("_")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return str(name)
    src, dst = (int(p) for p in parts)
    if area_names is not None and max(src, dst) < len(area_names):
        return f"{area_names[src]} -> {area_names[dst]}"
    return f"{src} -> {dst}"


def plot_perturbation(
    area_rms: np.ndarray,
    area_mean: np.ndarray,
    time_ms: np.ndarray,
    from_bin: int,
    area_names: Optional[Sequence[str]] = None,
    title: str = "",
) -> Figure:
    """What an intervention does to each area, bin by bin: the root mean square change of rate
    over trials and neurons (left) and the change of the area's trial-averaged mean rate (right),
    both in spikes/s; a dashed line at the first bin the intervention acts on.

    Shape: area_rms, area_mean (A, T); time_ms (T,)."""
    names = _names(area_rms.shape[0], area_names)
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    for a, name in enumerate(names):
        axes[0].plot(time_ms, area_rms[a], label=name)
        axes[1].plot(time_ms, area_mean[a], label=name)
    for ax, label in zip(axes, ("RMS change of rate (spikes/s)", "change of mean rate (spikes/s)")):
        if from_bin + 1 < len(time_ms):
            ax.axvline(time_ms[from_bin + 1], color="k", ls="--", lw=0.8)
        ax.set(xlabel="time (ms)", ylabel=label)
    axes[1].axhline(0.0, color="0.6", lw=0.6)
    axes[0].legend(fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_silencing(matrix: np.ndarray, names: Sequence[str], from_bin: int) -> Figure:
    """Heatmap of a silencing matrix (``dsid analyze``: row the silenced area, column the affected
    one), values in the cells. Shape: matrix (A, A)."""
    fig = Figure(figsize=(4.8, 4), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(matrix, cmap="magma", vmin=0.0)
    n = len(names)
    ax.set(
        xticks=range(n),
        yticks=range(n),
        xticklabels=names,
        yticklabels=names,
        xlabel="affected area",
        ylabel="silenced area",
        title=f"silencing from bin {from_bin}: RMS change / rate SD",
    )
    top = np.nanmax(matrix) if np.isfinite(matrix).any() else 0.0
    for (s, d), v in np.ndenumerate(matrix):
        if np.isfinite(v):  # dark text on the bright end of the colour map
            ink = "k" if v > 0.6 * top else "w"
            ax.text(d, s, f"{v:.2f}", ha="center", va="center", color=ink, fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig
