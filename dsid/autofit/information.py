"""How much the spikes of a trial say about its own rates: the information a posterior can take from
it.

A sequential autoencoder pays for every nat its posterior takes from a trial with a nat of KL; when
trials hold little information (low firing rates, few neurons, short trials), ignoring the data
(posterior collapse: every trial gets the average rates) is the easiest optimum to reach under the
full KL weight. :func:`predictable_information` measures the information from the data alone.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dsid.evaluation.metrics import poisson_nll

KERNEL_SD_MS = (25.0, 50.0, 100.0)
RANKS = (1, 2, 4, 8, 16)
MIX = (0.25, 0.5, 0.75, 1.0)


def neighbour_smoother(n_time: int, sd_bins: float) -> np.ndarray:
    """(T, T) Gaussian smoothing that leaves each bin itself out (rows sum to 1): bin t's rate
    estimated from the other bins of the same trial only, so it is an honest prediction of bin t."""
    t = np.arange(n_time)
    k = np.exp(-0.5 * ((t[:, None] - t[None, :]) / max(sd_bins, 1e-3)) ** 2)
    np.fill_diagonal(k, 0.0)
    return k / np.maximum(k.sum(1, keepdims=True), 1e-12)


def predictable_information(
    spikes: np.ndarray,
    bin_ms: float,
    max_trials: int = 200,
    kernel_sd_ms: Sequence[float] = KERNEL_SD_MS,
    seed: int = 0,
) -> float:
    """Nats per trial by which the population's spikes in the *other* bins of a trial predict each
    bin's spikes better than the neurons' mean rates (Poisson log-likelihood gain summed over bins
    and neurons). The prediction: every neuron's spikes smoothed over the other bins (a Gaussian
    kernel), pooled across neurons by a rank-k principal-component reconstruction, mixed with the
    mean rate; the best over kernel widths, ranks and mixtures. A lower bound on what a model can
    learn per trial.

    Shape:
        spikes: (trials, T, N) counts of the neurons the model reads (held-in)
    """
    x = np.asarray(spikes, dtype=np.float32)
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(
            f"predictable_information: spikes must be (trials, T, N) with trials, got {x.shape}"
        )
    if x.shape[0] > max_trials:
        x = x[np.sort(np.random.default_rng(seed).choice(x.shape[0], max_trials, replace=False))]
    mean = x.mean(axis=(0, 1))
    x = x[..., mean > 0]
    mean = mean[mean > 0]
    if x.shape[-1] == 0 or x.shape[1] < 2:
        return 0.0
    best = 0.0
    for sd_ms in kernel_sd_ms:
        smooth = np.matmul(neighbour_smoother(x.shape[1], sd_ms / bin_ms).astype(np.float32), x)
        flat = smooth.reshape(-1, x.shape[-1])
        centre = flat.mean(0)
        _, _, vt = np.linalg.svd(flat - centre, full_matrices=False)
        for rank in RANKS:
            if rank > vt.shape[0]:
                break
            v = vt[:rank]
            low = ((flat - centre) @ v.T @ v + centre).reshape(x.shape)
            for w in MIX:
                rate = np.maximum(w * low + (1 - w) * mean, 1e-3 * mean)
                gain = (x * np.log(rate / mean) - (rate - mean)).sum(dtype=np.float64) / x.shape[0]
                best = max(best, float(gain))
    return best


def mean_rate_nll(train_spikes: np.ndarray, valid_spikes: np.ndarray) -> float:
    """Mean Poisson negative log-likelihood (with log k!) per entry of ``valid_spikes`` under each
    neuron's mean rate in ``train_spikes``: the selection objective (``val/select``) of a model that
    learnt nothing but the mean rates, the zero of what a model learns.

    Shape:
        train_spikes: (trials, T, N); valid_spikes: (trials', T, N) counts
    """
    x = np.asarray(valid_spikes, dtype=np.float64)
    mean = np.maximum(np.asarray(train_spikes, dtype=np.float64).mean(axis=(0, 1)), 1e-6)
    return poisson_nll(np.broadcast_to(mean, x.shape), x) / max(x.size, 1)
