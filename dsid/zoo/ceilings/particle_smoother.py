"""The best any model can do on a system whose generative model is known: a particle smoother.

For a Markov state with known transition noise and Poisson spikes, ``E[rates_t | a trial's held-in
spikes]`` is the best prediction of the held-out neurons from the held-in ones: under the Poisson
likelihood the point prediction that maximises the expected score is the posterior mean rate. Its
co-bps is therefore the *ceiling* a model can reach. With a noisy state it lies below the oracle's
(true rates), which would need to know the noise the spikes do not reveal.

The smoother is forward filtering (bootstrap particle filter, systematic resampling every bin) and
backward simulation (FFBSi, Godsill, Doucet & West 2004), vectorised over trials. Delayed
interactions (a state that depends on the last ``order`` states, as messages between areas with
delays do) are handled exactly: each filtered particle keeps its own history (its ancestors), and a
backward draw of ``x_t`` weighs every transition ``x_t`` still enters (the next ``order`` bins of
the chosen path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np
from tqdm import tqdm

from dsid.zoo.ceilings.state_noise import GaussianNoise


@dataclass(frozen=True)
class StateSpace:
    """``x_{t+1} = step(history_t) + noise``, spikes_t ~ Poisson(exp(log_rates(x_t))).

    ``order`` is how many recent states the step reads. With ``order == 1`` ``prior(rng, n)``
    returns ``n`` initial states (n, D) and ``step`` maps (n, D) -> (n, D). With ``order == k > 1``
    ``prior`` returns the history at the first bin, (n, k, D) oldest first (its last state is
    ``x_0``), and ``step`` maps histories (n, k, D) -> (n, D). The noise is Gaussian with
    ``noise_sd`` unless ``noise`` is given (an object with ``sample(rng, shape)`` and
    ``logpdf(residual)``, see :mod:`dsid.zoo.ceilings.state_noise`). The filter draws the noise
    from ``proposal`` (default: the noise itself, a bootstrap filter) and corrects the weights by
    the density ratio: a proposal that tries the noise's rare events (kicks) more often finds them
    with fewer particles.
    """

    prior: Callable[[np.random.Generator, int], np.ndarray]
    step: Callable[[np.ndarray], np.ndarray]
    noise_sd: float
    log_rates: Callable[
        [np.ndarray], np.ndarray
    ]  # (n, D) -> (n, N) log spikes per bin, every neuron
    order: int = 1
    noise: Optional[object] = None
    proposal: Optional[object] = None

    def __post_init__(self):
        if self.order < 1:
            raise ValueError(f"StateSpace: order must be >= 1, got {self.order}")
        if self.noise is None:
            object.__setattr__(self, "noise", GaussianNoise(self.noise_sd))
        if self.proposal is None:
            object.__setattr__(self, "proposal", self.noise)

    def mean_next(self, history: np.ndarray) -> np.ndarray:
        """The noise-free next state of histories (n, order, D) -> (n, D)."""
        return self.step(history[:, -1] if self.order == 1 else history)

    def initial(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` initial histories, (n, order, D)."""
        x = np.asarray(self.prior(rng, n), np.float64)
        return x[:, None] if self.order == 1 else x


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


def _draw(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of normalised ``weights`` (..., P). Shape: (..., P) -> (...)."""
    u = rng.random(weights.shape[:-1] + (1,))
    return np.minimum((np.cumsum(weights, -1) < u).sum(-1), weights.shape[-1] - 1)


class _Filtered:
    """A chunk's filtered particles: states ``xs`` (T, K, P, D), ancestors ``anc`` (T, K, P) (row t:
    the particle at t - 1 each particle at t descends from), normalised ``weights`` (T, K, P), the
    first histories ``start`` (K, P, order, D) and ``means`` (T - 1, K, P, D), each particle's next
    mean."""

    def __init__(
        self,
        model: StateSpace,
        spikes: np.ndarray,
        observed: np.ndarray,
        n_particles: int,
        rng: np.random.Generator,
        start: Optional[np.ndarray] = None,
    ):
        k, n_time, _ = spikes.shape
        if start is None:
            hist = model.initial(rng, k * n_particles)
        else:  # every particle starts from its trial's known history
            hist = np.repeat(
                np.asarray(start, np.float64).reshape(k, 1, model.order, -1), n_particles, 1
            )
        order, d = hist.shape[-2:]
        self.start = hist.reshape(k, n_particles, order, d)
        self.xs = np.empty((n_time, k, n_particles, d))
        self.anc = np.zeros((n_time, k, n_particles), np.int64)
        self.means = np.empty((n_time - 1, k, n_particles, d))
        self.weights = np.empty((n_time, k, n_particles))
        hist = self.start
        for t in range(n_time):
            correction = 0.0  # the proposal's log density ratio (0 for a bootstrap filter)
            if t:
                self.means[t - 1] = model.mean_next(hist.reshape(-1, order, d)).reshape(
                    k, n_particles, d
                )
                self.anc[t] = _systematic(self.weights[t - 1], rng)
                x = np.take_along_axis(self.means[t - 1], self.anc[t][..., None], 1)
                eps = model.proposal.sample(rng, x.shape)
                x = x + eps
                if model.proposal is not model.noise:
                    correction = model.noise.logpdf(eps) - model.proposal.logpdf(eps)
                hist = np.concatenate(
                    [
                        np.take_along_axis(hist, self.anc[t][..., None, None], 1)[:, :, 1:],
                        x[:, :, None],
                    ],
                    2,
                )
            self.xs[t] = hist[:, :, -1]
            lr = model.log_rates(self.xs[t].reshape(-1, d))[:, observed].reshape(k, n_particles, -1)
            self.weights[t] = _normalise(
                (spikes[:, t, None, :] * lr - np.exp(lr)).sum(-1) + correction
            )

    def histories(self, t: int, order: int) -> np.ndarray:
        """Every particle's last ``order`` states at bin t (its own and its ancestors'),
        (K, P, order, D)."""
        k, p = self.xs.shape[1:3]
        out = np.empty((k, p, order) + self.xs.shape[3:])
        idx = np.broadcast_to(np.arange(p), (k, p)).copy()
        for j in range(order):
            if t - j < 0:  # before the first bin: the bin-0 particle's starting history (last: x_0)
                out[:, :, : order - j] = np.take_along_axis(self.start, idx[..., None, None], 1)[
                    :, :, t : order - 1
                ]
                break
            out[:, :, order - 1 - j] = np.take_along_axis(self.xs[t - j], idx[..., None], 1)
            if t - j > 0:
                idx = np.take_along_axis(self.anc[t - j], idx, 1)
        return out


def _smooth_chunk(
    model: StateSpace,
    spikes: np.ndarray,
    observed: np.ndarray,
    n_particles: int,
    n_paths: int,
    rng: np.random.Generator,
    start: Optional[np.ndarray],
) -> Tuple[np.ndarray, np.ndarray]:
    f = _Filtered(model, spikes, observed, n_particles, rng, start)
    n_time, k, _, d = f.xs.shape
    rows = np.arange(k)[:, None]
    idx = _draw(f.weights[-1][:, None, :].repeat(n_paths, 1), rng)  # (k, paths)
    path = np.empty((n_time, k, n_paths, d))
    path[-1] = f.xs[-1][rows, idx]
    for t in range(n_time - 2, -1, -1):
        logk = model.noise.logpdf(
            path[t + 1][:, :, None, :] - f.means[t][:, None, :, :]
        )  # (k, paths, P)
        if model.order > 1:  # x_t also enters the transitions to x_{t+2}, ..., x_{t+order}
            hist = f.histories(t, model.order)
            p = hist.shape[1]
            for j in range(1, min(model.order, n_time - 1 - t)):
                mixed = np.concatenate(
                    [  # the particle's states up to t, then the path's from t + 1
                        np.broadcast_to(hist[:, None, :, j:], (k, n_paths, p, model.order - j, d)),
                        np.broadcast_to(
                            path[t + 1 : t + 1 + j].transpose(1, 2, 0, 3)[:, :, None],
                            (k, n_paths, p, j, d),
                        ),
                    ],
                    3,
                )
                mean = model.mean_next(mixed.reshape((-1,) + mixed.shape[3:])).reshape(
                    mixed.shape[:3] + (d,)
                )
                logk = logk + model.noise.logpdf(path[t + 1 + j][:, :, None, :] - mean)
        idx = _draw(_normalise(np.log(f.weights[t] + 1e-300)[:, None, :] + logk), rng)
        path[t] = f.xs[t][rows, idx]
    rates = np.exp(model.log_rates(path.reshape(-1, d))).reshape(n_time, k, n_paths, -1).mean(2)
    return rates.transpose(1, 0, 2), path.mean(2).transpose(1, 0, 2)


def smoothed_rates(
    model: StateSpace,
    spikes: np.ndarray,
    observed: np.ndarray,
    n_particles: int = 1000,
    n_paths: int = 100,
    seed: int = 0,
    chunk: int = 8,
    desc: str = "",
    start: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Posterior means of every neuron's rates and of the state given the ``observed`` neurons'
    spikes, trial by trial (``chunk`` trials at a time), from ``n_paths`` smoothed trajectories
    drawn from ``n_particles`` filtered particles per bin. ``start``, each trial's history at its
    first bin when it is known (instead of the model's prior), gives the posterior of an estimator
    told the start.

    Shape:
        spikes: (K, T, N_obs) counts of the neurons ``observed`` (indices into log_rates' N)
        start: (K, order, D), optional
        returns rates (K, T, N) in spikes per bin, states (K, T, D)
    """
    spikes = np.asarray(spikes, np.float64)
    observed = np.asarray(observed)
    if spikes.ndim != 3 or spikes.shape[-1] != observed.size:
        raise ValueError(
            f"smoothed_rates: spikes must be (trials, T, {observed.size} observed neurons), "
            f"got {spikes.shape}"
        )
    if spikes.shape[1] < 2:
        raise ValueError(f"smoothed_rates: at least 2 bins per trial, got {spikes.shape[1]}")
    if start is not None and np.shape(start)[:2] != (spikes.shape[0], model.order):
        raise ValueError(
            f"smoothed_rates: start must be (trials {spikes.shape[0]}, order {model.order}, D), "
            f"got {np.shape(start)}"
        )
    rng = np.random.default_rng(seed)
    parts = [
        _smooth_chunk(
            model,
            spikes[i : i + chunk],
            observed,
            n_particles,
            n_paths,
            rng,
            None if start is None else start[i : i + chunk],
        )
        for i in tqdm(range(0, spikes.shape[0], chunk), desc=desc, disable=not desc, leave=False)
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
