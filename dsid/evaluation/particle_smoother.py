"""The best any model can do on a system whose generative model is known: a particle smoother.

For a Markov state with Gaussian transition noise and Poisson spikes, ``E[rates_t | a trial's held-in
spikes]`` is the best prediction of the held-out neurons from the held-in ones: under the Poisson
likelihood the point prediction that maximises the expected score is the posterior mean rate. Its
co-bps is therefore the *ceiling* a model can reach. With a noisy state it lies below the oracle's
(true rates), which would need to know the noise the spikes do not reveal.

The smoother is forward filtering (bootstrap particle filter, systematic resampling every bin) and
backward simulation (FFBSi, Godsill, Doucet & West 2004), vectorised over trials.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple

import numpy as np
from tqdm.auto import tqdm


@dataclass(frozen=True)
class StateSpace:
    """``x_0 ~ prior``, ``x_{t+1} = step(x_t) + noise_sd * N(0, I)``, spikes ~ Poisson(exp(log_rates(x_t)))."""

    prior: Callable[[np.random.Generator, int], np.ndarray]  # n initial states (n, D)
    step: Callable[[np.ndarray], np.ndarray]  # the noise-free transition, (n, D) -> (n, D)
    noise_sd: float
    log_rates: Callable[[np.ndarray], np.ndarray]  # (n, D) -> (n, N) log spikes per bin, every neuron


def _systematic(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ancestor indices by systematic resampling of each row. Shape: (K, P) -> (K, P)."""
    k, p = weights.shape
    u = (rng.random((k, 1)) + np.arange(p)) / p
    cdf = np.cumsum(weights, axis=1)
    cdf[:, -1] = 1.0
    return np.minimum(np.stack([np.searchsorted(c, v) for c, v in zip(cdf, u)]), p - 1)


def _normalise(logw: np.ndarray) -> np.ndarray:
    w = np.exp(logw - logw.max(-1, keepdims=True))
    return w / w.sum(-1, keepdims=True)


def _smooth_chunk(model: StateSpace, spikes: np.ndarray, observed: np.ndarray, n_particles: int,
                  n_paths: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    k, n_time, _ = spikes.shape
    x = model.prior(rng, k * n_particles)
    d = x.shape[-1]
    xs = np.empty((n_time, k, n_particles, d))
    means = np.empty((n_time - 1, k, n_particles, d))  # step(x_t) of every particle: the backward kernel's mean
    weights = np.empty((n_time, k, n_particles))
    for t in range(n_time):
        if t:
            means[t - 1] = model.step(xs[t - 1].reshape(-1, d)).reshape(k, n_particles, d)
            anc = _systematic(weights[t - 1], rng)
            x = np.take_along_axis(means[t - 1], anc[..., None], 1).reshape(-1, d)
            x = x + model.noise_sd * rng.standard_normal(x.shape)
        xs[t] = x.reshape(k, n_particles, d)
        lr = model.log_rates(x)[:, observed].reshape(k, n_particles, -1)
        weights[t] = _normalise((spikes[:, t, None, :] * lr - np.exp(lr)).sum(-1))
    rows = np.arange(k)[:, None]
    idx = _draw(weights[-1][:, None, :].repeat(n_paths, 1), rng)  # (k, paths)
    path = np.empty((n_time, k, n_paths, d))
    path[-1] = xs[-1][rows, idx]
    for t in range(n_time - 2, -1, -1):
        diff = path[t + 1][:, :, None, :] - means[t][:, None, :, :]  # (k, paths, particles, D)
        logk = -0.5 * (diff ** 2).sum(-1) / model.noise_sd ** 2
        idx = _draw(_normalise(np.log(weights[t] + 1e-300)[:, None, :] + logk), rng)
        path[t] = xs[t][rows, idx]
    rates = np.exp(model.log_rates(path.reshape(-1, d))).reshape(n_time, k, n_paths, -1).mean(2)
    return rates.transpose(1, 0, 2), path.mean(2).transpose(1, 0, 2)


def _draw(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of normalised ``weights`` (..., P). Shape: (..., P) -> (...)."""
    u = rng.random(weights.shape[:-1] + (1,))
    return np.minimum((np.cumsum(weights, -1) < u).sum(-1), weights.shape[-1] - 1)


def smoothed_rates(model: StateSpace, spikes: np.ndarray, observed: np.ndarray, n_particles: int = 1000,
                   n_paths: int = 100, seed: int = 0, chunk: int = 8, desc: str = "") -> Tuple[np.ndarray, np.ndarray]:
    """Posterior means of every neuron's rates and of the state given the ``observed`` neurons' spikes,
    trial by trial (``chunk`` trials at a time), from ``n_paths`` smoothed trajectories drawn from
    ``n_particles`` filtered particles per bin.

    Shape:
        spikes: (K, T, N_obs) counts of the neurons ``observed`` (indices into log_rates' N)
        returns rates (K, T, N) in spikes per bin, states (K, T, D)
    """
    spikes = np.asarray(spikes, np.float64)
    observed = np.asarray(observed)
    if spikes.ndim != 3 or spikes.shape[-1] != observed.size:
        raise ValueError(f"smoothed_rates: spikes must be (trials, T, {observed.size} observed neurons), "
                         f"got {spikes.shape}")
    if spikes.shape[1] < 2:
        raise ValueError(f"smoothed_rates: at least 2 bins per trial, got {spikes.shape[1]}")
    rng = np.random.default_rng(seed)
    parts = [_smooth_chunk(model, spikes[i:i + chunk], observed, n_particles, n_paths, rng)
             for i in tqdm(range(0, spikes.shape[0], chunk), desc=desc, disable=not desc, leave=False)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
