"""One figure style for every DSID figure: readable at paper size, units on every axis,
PNG + SVG."""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from dsid.data.atomic import atomic_path
from dsid.evaluation.smoothing_baseline import smoothing_matrix

STYLE = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.2,
    "figure.dpi": 100,
    "savefig.bbox": "tight",
}
TRUE, INFERRED, SPIKES = "black", "C1", "0.35"  # colours of truth, model, data
FORMATS = ("png", "svg")


def styled(fn):
    """Run a figure function inside DSID's style (no change to the caller's matplotlib settings)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, **kwargs):
    """``(figure, axes)`` as ``matplotlib.pyplot.subplots`` gives them, on a figure of its own
    outside pyplot: DSID chooses no backend and leaves the caller's (a notebook's ``plt.show()``,
    an interactive window) as it was. Such a figure is saved with :func:`save_figures` and shown in
    a notebook like any other."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save_figures(figs, fig_dir: Path, suffix: str = "") -> None:
    """Write every figure as ``fig_dir/{name}{suffix}.png`` (200 dpi) and ``.svg``, each atomically
    (a killed process or a full disk leaves the earlier figure or none, never half of one)."""
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    for name, fig in figs.items():
        for ext in FORMATS:
            with atomic_path(fig_dir / f"{name}{suffix}.{ext}") as tmp:
                fig.savefig(tmp, dpi=200, format=ext)


def smoothed(counts: np.ndarray, sd_bins: float = 2.0) -> np.ndarray:
    """``counts`` (T,) smoothed by a Gaussian of ``sd_bins`` bins, the same length as ``counts``
    however short (the smoothing baseline's kernel, renormalised at the edges)."""
    x = np.asarray(counts, dtype=float)
    return smoothing_matrix(x.size, sd_bins) @ x
