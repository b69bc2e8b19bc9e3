"""Which edges does the data need? A trained multi-area model's edge is cut (its messages 0 from the
first bin, :mod:`dsid.models.multiarea.intervention`) and its destination's held-out neurons, which
no encoder read, are predicted again: the Poisson log-likelihood they lose, in bits per spike, is
what the edge carries (the destination's co-bps that depends on it). A percentile bootstrap over
the trials gives its interval.

This measures how much the fitted model relies on the edge to predict activity it never saw, with
everything else kept (initial conditions and inferred inputs replayed); it is not a refit without
the edge, and its interval reflects the trials, not the fitting.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from dsid.evaluation.multiarea.perturbation import predict_perturbation
from dsid.models.multiarea.intervention import build_intervention

LEVEL = 0.95


def trial_log_likelihood(rates: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """Each trial's Poisson log-likelihood without its ``log y!`` terms (they cancel in a
    difference). Shape: rates, spikes (trials, T, N) -> (trials,)."""
    rates = np.clip(np.asarray(rates, np.float64), 1e-9, None)
    return (spikes * np.log(rates) - rates).sum((1, 2))


def edge_evidence(
    model,
    spikes: np.ndarray,
    heldout: np.ndarray,
    area: np.ndarray,
    ext=None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Dict[str, np.ndarray]:
    """Every edge's bits per spike (see the module docstring) with its :data:`LEVEL` interval.

    Shape: spikes (trials, T, N), heldout and area (N,); returns ``bits``, ``low``, ``high``
    (A, A; nan where the model has no edge or the destination has no held-out spike)."""
    A = model.n_areas
    out = {k: np.full((A, A), np.nan) for k in ("bits", "low", "high")}
    spikes = np.asarray(spikes)
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, spikes.shape[0], (n_boot, spikes.shape[0]))
    for s, d in model.edges:
        cols = np.asarray(heldout, bool) & (np.asarray(area) == d)
        y = spikes[..., cols]
        if not cols.any() or y.sum() == 0:
            continue
        iv = build_intervention(model, "silence", edge=(s, d), from_bin=0)
        pred = predict_perturbation(model, spikes, iv, ext)
        gain = trial_log_likelihood(pred["rates_base"][..., cols], y) - trial_log_likelihood(
            pred["rates_perturbed"][..., cols], y
        )
        count = y.sum((1, 2))
        out["bits"][s, d] = gain.sum() / (np.log(2) * count.sum())
        resampled = gain[boot].sum(1) / (np.log(2) * np.maximum(count[boot].sum(1), 1))
        tail = 100 * (1 - LEVEL) / 2
        out["low"][s, d], out["high"][s, d] = np.percentile(resampled, [tail, 100 - tail])
    return out
