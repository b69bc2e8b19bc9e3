"""A Gaussian smoother for systems too large for particles: an extended Kalman smoother whose
Poisson update is a Laplace approximation (a few Newton steps on each bin's posterior).

For a state of hundreds of dimensions (``multiregion_rnn``: four 50-unit chaotic networks) a
particle filter collapses onto a few particles, while a Gaussian posterior, carried bin by bin
through the linearised dynamics and corrected by each bin's spikes, stays usable. Its posterior is
an approximation, so its posterior mean rates predict the held-out neurons *no better* than the
exact posterior would: its co-bps is a **lower bound** on the Bayes ceiling (an estimator that knows
the true model and still does this well shows what the data support at least).

Model: ``z_{t+1} = step(z_t) + noise``, noise ``N(0, noise_cov)``, ``z_0 ~ N(prior_mean,
prior_cov)``, spikes ``y_t ~ Poisson(exp(log_rates(z_t)))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np
from tqdm import tqdm


@dataclass(frozen=True)
class GaussianStateSpace:
    """A state-space model with its derivatives, vectorised over trials.

    ``step(z)`` (K, D) -> (K, D) and ``step_jacobian(z)`` -> (K, D, D); ``log_rates(z)`` (K, D) ->
    (K, N) log spikes per bin of every neuron and ``log_rates_jacobian(z, neurons)`` -> (K, n, D)
    for the neurons listed; ``states(z)`` -> (K, S) the quantities reported as smoothed states.
    """

    prior_mean: np.ndarray  # (D,)
    prior_cov: np.ndarray  # (D, D)
    noise_cov: np.ndarray  # (D, D)
    step: Callable[[np.ndarray], np.ndarray]
    step_jacobian: Callable[[np.ndarray], np.ndarray]
    log_rates: Callable[[np.ndarray], np.ndarray]
    log_rates_jacobian: Callable[[np.ndarray, np.ndarray], np.ndarray]
    states: Callable[[np.ndarray], np.ndarray]


def _symmetric(p: np.ndarray) -> np.ndarray:
    return 0.5 * (p + np.swapaxes(p, -1, -2))


def laplace_update(
    model: GaussianStateSpace,
    mean: np.ndarray,
    cov: np.ndarray,
    spikes: np.ndarray,
    observed: np.ndarray,
    iterations: int = 4,
) -> Tuple[np.ndarray, np.ndarray]:
    """One bin's posterior ``N(mean, cov)`` prior times Poisson ``spikes`` of the ``observed``
    neurons, by Newton steps on its log density (Fisher scoring, in covariance form so no
    inverse of ``cov`` is needed).

    Shape: ``mean`` (K, D), ``cov`` (K, D, D), ``spikes`` (K, n) -> (K, D), (K, D, D).
    """
    z = mean
    for _ in range(iterations):
        lam = np.exp(model.log_rates(z)[:, observed])
        h = model.log_rates_jacobian(z, observed)  # (K, n, D)
        ph = cov @ np.swapaxes(h, 1, 2)  # (K, D, n)
        s = h @ ph
        s[:, np.arange(lam.shape[1]), np.arange(lam.shape[1])] += 1.0 / lam
        gain = np.swapaxes(np.linalg.solve(s, np.swapaxes(ph, 1, 2)), 1, 2)  # (K, D, n)
        post = _symmetric(cov - gain @ np.swapaxes(ph, 1, 2))
        resid = spikes - lam + lam * np.einsum("knd,kd->kn", h, z - mean)
        z = mean + np.einsum("kdm,km->kd", post @ np.swapaxes(h, 1, 2), resid)
    return z, post


def smooth_trials(
    model: GaussianStateSpace,
    spikes: np.ndarray,
    observed: np.ndarray,
    drive: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Smoothed means and covariances of the states of trials whose ``observed`` neurons fired
    ``spikes``: Laplace-Kalman filter forward, Rauch-Tung-Striebel backward through the linearised
    dynamics. ``drive`` (known inputs) is added to ``step(z_t)``.

    Shape: ``spikes`` (K, T, n), ``drive`` (K, T, D) -> means (K, T, D), covariances
    (K, T, D, D).
    """
    k, n_time, _ = spikes.shape
    d = model.prior_mean.size
    f_mean, f_cov = np.empty((k, n_time, d)), np.empty((k, n_time, d, d))
    p_mean, p_cov = np.empty_like(f_mean), np.empty_like(f_cov)
    jac = np.empty((k, n_time, d, d))
    mean = np.broadcast_to(model.prior_mean, (k, d)).copy()
    cov = np.broadcast_to(model.prior_cov, (k, d, d)).copy()
    for t in range(n_time):
        p_mean[:, t], p_cov[:, t] = mean, cov
        f_mean[:, t], f_cov[:, t] = laplace_update(model, mean, cov, spikes[:, t], observed)
        jac[:, t] = model.step_jacobian(f_mean[:, t])
        mean = model.step(f_mean[:, t]) + (0.0 if drive is None else drive[:, t])
        cov = _symmetric(jac[:, t] @ f_cov[:, t] @ np.swapaxes(jac[:, t], 1, 2) + model.noise_cov)
    s_mean, s_cov = f_mean.copy(), f_cov.copy()
    for t in range(n_time - 2, -1, -1):
        # G = P_f F^T P_pred^{-1}, from P_pred G^T = F P_f
        g = np.swapaxes(
            np.linalg.solve(p_cov[:, t + 1], jac[:, t] @ f_cov[:, t]), 1, 2
        )  # (K, D, D)
        s_mean[:, t] = f_mean[:, t] + np.einsum(
            "kde,ke->kd", g, s_mean[:, t + 1] - p_mean[:, t + 1]
        )
        s_cov[:, t] = _symmetric(
            f_cov[:, t] + g @ (s_cov[:, t + 1] - p_cov[:, t + 1]) @ np.swapaxes(g, 1, 2)
        )
    return s_mean, s_cov


def gaussian_smoothed_rates(
    model: GaussianStateSpace,
    spikes: np.ndarray,
    observed: np.ndarray,
    samples: int = 64,
    seed: int = 0,
    chunk: int = 16,
    desc: str = "",
    drive: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """Posterior mean rates of every neuron and posterior mean states, from the smoothed Gaussian
    marginals (``samples`` draws per bin), for trials whose ``observed`` neurons fired ``spikes``.

    Shape: ``spikes`` (K, T, n) -> rates (K, T, N) (spikes per bin), states (K, T, S).
    """
    rng = np.random.default_rng(seed)
    spikes, observed = np.asarray(spikes, np.float64), np.asarray(observed)
    if spikes.ndim != 3 or spikes.shape[-1] != observed.size:
        raise ValueError(
            "gaussian_smoothed_rates: spikes must be (trials, bins, observed neurons) with one "
            f"column per observed neuron ({observed.size}), got {spikes.shape}"
        )
    if drive is not None and np.shape(drive) != spikes.shape[:2] + model.prior_mean.shape:
        raise ValueError(
            f"gaussian_smoothed_rates: drive must be (trials, bins, state) = "
            f"{spikes.shape[:2] + model.prior_mean.shape}, got {np.shape(drive)}"
        )
    rates, states = [], []
    for i in tqdm(range(0, spikes.shape[0], chunk), desc=desc, disable=not desc, leave=False):
        known = None if drive is None else drive[i : i + chunk]
        mean, cov = smooth_trials(model, spikes[i : i + chunk], observed, known)
        k, n_time, d = mean.shape
        root = np.linalg.cholesky(cov + 1e-9 * np.eye(d))
        draws = mean[:, :, None] + np.einsum(
            "ktde,ktse->ktsd", root, rng.normal(size=(k, n_time, samples, d))
        )
        flat = draws.reshape(-1, d)
        rates.append(np.exp(model.log_rates(flat)).reshape(k, n_time, samples, -1).mean(2))
        states.append(model.states(flat).reshape(k, n_time, samples, -1).mean(2))
    return np.concatenate(rates), np.concatenate(states)
