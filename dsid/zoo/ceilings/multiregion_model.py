"""``multiregion_rnn``'s exact generative model as a :class:`GaussianStateSpace`, for a lower bound
on its Bayes ceiling (``benchmarks/bayes_ceiling.py``).

The state is every region's units ``x`` (regions x units) and, for each delayed edge ``s -> d``, the
edge's last ``delay`` projections ``U^T tanh(x_s)`` (so a step reads one state, not a history). The
noise is the member's process noise plus its private input pulses, which the Gaussian model treats
as noise of their own mean and variance along each region's input vector. (Told the true pulses
instead, the smoother scored no better on draw 0: what it loses against the exact posterior is
mostly the linearised chaotic step, which the process-noise inflation makes up for in part.)

The model is the member's network for the file's draw seed, checked by re-simulating the member:
the file must be ``make_multiregion_rnn(seed=draw)`` with its default arguments (its true rates
are compared).
"""

from __future__ import annotations

import functools
import inspect
from typing import Dict, Tuple

import numpy as np

from dsid.data.tensor_file import SPLITS, DSIDData
from dsid.zoo.ceilings.gaussian_smoother import GaussianStateSpace
from dsid.zoo.members.multiregion_rnn import (
    build_network,
    draw_trials,
    make_multiregion_rnn,
    simulate,
)

#: trials simulated afresh for the distribution of the state at a trial's first bin
PRIOR_TRIALS = 2000


def _defaults() -> dict:
    sig = inspect.signature(make_multiregion_rnn).parameters.items()
    return {k: v.default for k, v in sig if v.default is not inspect.Parameter.empty}


@functools.lru_cache(maxsize=2)
def _network(seed: int):
    """The draw's network with the member's default arguments (kept, like :func:`_member`)."""
    p = _defaults()
    return build_network(
        seed, p["n_regions"], p["units_per_region"], p["gain"], p["alpha"], noise_std=p["noise_std"]
    )


@functools.lru_cache(maxsize=2)
def _member(seed: int) -> DSIDData:
    """The member drawn with ``seed`` (kept: a benchmark builds the model once per setting)."""
    return make_multiregion_rnn(seed=seed)


def _reference(data: DSIDData, seed: int) -> Tuple[DSIDData, Dict[str, float]]:
    """The member re-simulated from ``seed``; the file's true rates must be its rates (float32
    rounding), so the reference's weights and read-out are the file's."""
    ref = _member(seed)
    errs = [
        np.abs(
            np.log(data.splits[s].truth_rates.astype(np.float64))
            - np.log(ref.splits[s].truth_rates.astype(np.float64))
        ).max()
        if data.splits[s].truth_rates is not None
        and data.splits[s].truth_rates.shape == ref.splits[s].truth_rates.shape
        else np.inf
        for s in SPLITS
        if s in data.splits
    ]
    checks = {"true log-rate error": float(max(errs))}
    if not checks["true log-rate error"] <= 1e-3:
        raise ValueError(
            f"multiregion_rnn: the file is not make_multiregion_rnn(seed={seed}) with its default "
            f"arguments (largest true log-rate difference {checks['true log-rate error']:.3g}): "
            f"write it with `dsid synth zoo --seed {seed}`, or pass the seed it was written with"
        )
    return ref, checks


def multiregion_rnn(
    data: DSIDData, seed: int, inflation: float = 1.0
) -> Tuple[GaussianStateSpace, Dict[str, float]]:
    """The member's model for the draw written with ``seed``. ``inflation`` multiplies the process
    noise's variance: a smoother setting (a linearised chaotic step spreads less than the true
    posterior does, and extra noise makes up for it), chosen on training trials."""
    net = _network(seed)
    ref, checks = _reference(data, seed)
    a_n, n = net.B.shape
    nx, alpha = a_n * n, net.alpha
    region = [slice(a * n, (a + 1) * n) for a in range(a_n)]
    offset, d = buffer_layout(net)
    inputs = data.splits["train"].truth_inputs.astype(np.float64)
    mu_u, var_u = inputs.mean(), inputs.var()

    # constant part of the step's Jacobian; the tanh derivative scales the columns of `mix`
    mix = np.zeros((nx, nx))  # x_{t+1} = (1 - alpha) x + alpha (mix tanh(x) + const) + ...
    for a in range(a_n):
        mix[region[a], region[a]] = net.J[a]
    const_jac = np.zeros((d, d))
    const_jac[:nx, :nx] = (1 - alpha) * np.eye(nx)
    for e, (s, dst, dl, U, V) in enumerate(net.edges):
        k = U.shape[1]
        if dl == 0:
            mix[region[dst], region[s]] += V @ U.T
            continue
        last = offset[e] + (dl - 1) * k
        const_jac[region[dst], last : last + k] = alpha * V
        for lag in range(1, dl):  # lag-k slot moves to lag k + 1
            dst_slot, src_slot = offset[e] + lag * k, offset[e] + (lag - 1) * k
            const_jac[dst_slot : dst_slot + k, src_slot : src_slot + k] = np.eye(k)
    drift = alpha * mu_u * net.B.reshape(-1)

    def step(z: np.ndarray) -> np.ndarray:
        r = np.tanh(z[:, :nx])
        out = np.empty_like(z)
        out[:, :nx] = (1 - alpha) * z[:, :nx] + alpha * (r @ mix.T) + drift
        out[:, nx:] = z[:, nx:] @ const_jac[nx:, nx:].T
        for e, (s, dst, dl, U, V) in enumerate(net.edges):
            k = U.shape[1]
            if dl:
                last = offset[e] + (dl - 1) * k
                out[:, region[dst]] += alpha * z[:, last : last + k] @ V.T
                out[:, offset[e] : offset[e] + k] = r[:, region[s]] @ U
        return out

    def step_jacobian(z: np.ndarray) -> np.ndarray:
        sech2 = 1.0 - np.tanh(z[:, :nx]) ** 2
        jac = np.broadcast_to(const_jac, (z.shape[0], d, d)).copy()
        jac[:, :nx, :nx] += alpha * mix[None] * sech2[:, None, :]
        for e, (s, dst, dl, U, V) in enumerate(net.edges):
            if dl:
                jac[:, offset[e] : offset[e] + U.shape[1], region[s]] = (
                    U.T[None] * sech2[:, None, region[s]]
                )
        return jac

    weights = np.asarray(ref.extra["truth/readout/weights"], np.float64)  # (N, units)
    bias = np.asarray(ref.extra["truth/readout/bias"], np.float64)
    area = np.asarray(data.area)
    read = np.zeros((area.size, nx))  # each neuron reads its region's units
    for i, a in enumerate(area):
        read[i, region[a]] = weights[i]

    def log_rates(z: np.ndarray) -> np.ndarray:
        return bias + np.tanh(z[:, :nx]) @ read.T

    def log_rates_jacobian(z: np.ndarray, neurons: np.ndarray) -> np.ndarray:
        sech2 = 1.0 - np.tanh(z[:, :nx]) ** 2
        h = np.zeros((z.shape[0], neurons.size, d))
        h[:, :, :nx] = read[neurons][None] * sech2[:, None, :]
        return h

    noise = np.zeros((d, d))
    noise[:nx, :nx] = inflation * net.noise_std**2 * np.eye(nx)
    for a in range(a_n):
        noise[region[a], region[a]] += alpha**2 * var_u * np.outer(net.B[a], net.B[a])
    noise[nx:, nx:] += 1e-10 * np.eye(d - nx)
    mean0, cov0 = _prior(seed)
    model = GaussianStateSpace(
        prior_mean=mean0,
        prior_cov=cov0,
        noise_cov=noise,
        step=step,
        step_jacobian=step_jacobian,
        log_rates=log_rates,
        log_rates_jacobian=log_rates_jacobian,
        states=lambda z: np.tanh(z[:, :nx]),
    )
    return model, checks


def buffer_layout(net) -> Tuple[Dict[int, int], int]:
    """Where the state keeps edge ``e``'s lag-``k`` projection: at ``offset[e] + (k - 1) * rank``,
    after the regions' units; and the state's size."""
    offset, d = {}, net.B.size
    for e, (_, _, dl, U, _) in enumerate(net.edges):
        offset[e], d = d, d + dl * U.shape[1]
    return offset, d


def augmented_states(net, sim: Dict[str, np.ndarray], lag: int) -> np.ndarray:
    """The model's states of simulated trials (``simulate`` output whose first ``lag`` stored
    bins come before the bins wanted), from bin ``lag`` on.

    Shape: -> (trials, T' - lag, D).
    """
    offset, d = buffer_layout(net)
    x, r = sim["states"], sim["rates"]  # (A, K, T', units)
    a_n, k, n_time, n = x.shape
    z = np.zeros((k, n_time - lag, d))
    z[..., : a_n * n] = np.moveaxis(x[:, :, lag:], 0, 2).reshape(k, n_time - lag, -1)
    for e, (s, _, dl, U, _) in enumerate(net.edges):
        for back in range(1, dl + 1):
            slot = offset[e] + (back - 1) * U.shape[1]
            z[..., slot : slot + U.shape[1]] = r[s, :, lag - back : n_time - back] @ U
    return z


@functools.lru_cache(maxsize=2)
def _prior(seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the state at a trial's first bin, over freshly simulated trials of
    the draw's network (the member's start: ``N(0, 1)`` units some bins before, with noise and no
    pulses yet); kept per seed (read-only).

    Shape: (D,), (D, D).
    """
    net = _network(seed)
    lag = max(e[2] for e in net.edges)
    trials = draw_trials(net, PRIOR_TRIALS, 1, [seed, 1000])
    sim = simulate(net, {**trials, "burn": np.int64(int(trials["burn"]) - lag)})
    z = augmented_states(net, sim, lag)[:, 0]
    mean, cov = z.mean(0), np.cov(z.T) + 1e-8 * np.eye(z.shape[1])
    mean.setflags(write=False)
    cov.setflags(write=False)
    return mean, cov
