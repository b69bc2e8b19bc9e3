"""The exact generative models of the zoo members whose true rates carry noise, for their Bayes
ceilings.

``low_rate`` (a van der Pol cycle with diffusion) and ``multiarea_feedback`` (three areas' noisy
limit cycles, kicked by unobserved input events, with delayed messages) have true rates the spikes
cannot fully reveal, so the oracle (the true rates) is not a score any model can reach. Each builder
here returns the member's model as a :class:`~dsid.zoo.ceilings.particle_smoother.StateSpace` for
the particle smoother (``benchmarks/bayes_ceiling.py``), and checks it against the file's ground
truth: the neurons' log-linear read-out is fitted from the true latents and rates (exact up to
float32 rounding), and the dynamics must explain the true latents up to the noise the member draws.
"""

from __future__ import annotations

import inspect
from typing import Callable, Dict, Tuple

import numpy as np

from dsid.data.integrate import rk4
from dsid.data.multiarea.synth import synth_multiarea
from dsid.data.multiarea.system import build_system
from dsid.data.tensor_file import DSIDData
from dsid.evaluation.metrics import fit_linear_map
from dsid.zoo.ceilings.particle_smoother import StateSpace
from dsid.zoo.ceilings.state_noise import GaussianWithKicks
from dsid.zoo.members.low_rate import (
    bin_dt,
    initial_states,
    limit_cycle,
    make_low_rate,
    van_der_pol,
)
from dsid.zoo.members.multiarea_feedback import EDGES, write_multiarea_feedback

Checks = Dict[str, float]


def _defaults(fn) -> dict:
    return {
        k: v.default
        for k, v in inspect.signature(fn).parameters.items()
        if v.default is not inspect.Parameter.empty
    }


def _read_out(data: DSIDData) -> Tuple[Callable[[np.ndarray], np.ndarray], float]:
    """The neurons' log-rates as an affine map of the true latents, fitted on the training split,
    and its largest error in log-rate (float32 rounding when the read-out is log-linear)."""
    tr = data.splits["train"]
    z = tr.truth_latents.reshape(-1, tr.truth_latents.shape[-1]).astype(np.float64)
    log_r = np.log(tr.truth_rates.reshape(-1, tr.truth_rates.shape[-1]).astype(np.float64))
    w = fit_linear_map(z, log_r, ridge=0.0)
    err = float(np.abs(np.c_[z, np.ones(len(z))] @ w - log_r).max())
    return (lambda x: x @ w[:-1] + w[-1]), err


def _refuse(name: str, checks: Checks, limits: Checks) -> None:
    bad = [
        f"{k} = {checks[k]:.3g} (expected <= {v:g})"
        for k, v in limits.items()
        if not checks[k] <= v
    ]
    if bad:
        raise ValueError(
            f"{name}: the file does not follow the member's generative model with its default "
            f"arguments and seed 0 ({'; '.join(bad)}): write it with `dsid synth {name}`"
        )


def low_rate(data: DSIDData) -> Tuple[StateSpace, Checks]:
    """``low_rate``'s model: its start distribution, its van der Pol drift with diffusion, its
    read-out."""
    p = _defaults(make_low_rate)
    f, dt = van_der_pol(p["mu"]), bin_dt(data.bin_ms, p["freq_hz"])
    cycle = limit_cycle(f, dt)
    log_rates, err = _read_out(data)
    model = StateSpace(
        prior=lambda rng, n: initial_states(rng, n, cycle, p["amp_range"]),
        step=lambda x: rk4(f, x, 2, dt)[:, 1],
        noise_sd=p["noise"] * np.sqrt(dt),
        log_rates=log_rates,
    )
    z = data.splits["train"].truth_latents.astype(np.float64)
    r = z[:, 1:].reshape(-1, z.shape[-1]) - model.step(z[:, :-1].reshape(-1, z.shape[-1]))
    checks = {
        "read-out log-rate error": err,
        "noise sd / the member's": float(r.std() / model.noise_sd),
    }
    _refuse("low_rate", checks, {"read-out log-rate error": 1e-3, "noise sd / the member's": 1.05})
    return model, checks


def multiarea_feedback(data: DSIDData) -> Tuple[StateSpace, Checks]:
    """``multiarea_feedback``'s model. The state is the three areas' latents (3 x 4); a step reads
    the last ``max delay + 1`` states (the messages' sources, delays bins back); the noise is
    Gaussian plus each area's input events (kicks of fixed size in random directions, Poisson in
    time). A trial's history starts ``max delay`` bins before its first bin from ``N(0, 0.5^2)``
    with no messages before that, as the member simulates it."""
    p, q = _defaults(write_multiarea_feedback), _defaults(synth_multiarea)
    system = build_system(
        seed=0,
        n_areas=3,
        latent_size=p["latent_size"],
        bin_ms=data.bin_ms,
        edges=EDGES,
        gain=q["gain"],
        noise_std=q["noise_std"],
        events_per_trial=p["events_per_trial"],
        event_size=p["event_size"],
    )
    size, burn = p["latent_size"], max(e[2] for e in system.edges)
    order = burn + 1
    n_time = data.splits["train"].spikes.shape[
        1
    ]  # events come at events_per_trial per trial's bins
    noise = GaussianWithKicks(
        sd=q["noise_std"], rate=p["events_per_trial"] / n_time, size=p["event_size"], block=size
    )
    area = [slice(a * size, (a + 1) * size) for a in range(len(system.W))]
    recurrent = np.zeros((size * len(system.W),) * 2)  # block-diagonal: each area's W, transposed
    # delay -> the messages' (source -> destination) maps of the edges with that delay
    coupling = {}
    for a, w in enumerate(system.W):
        recurrent[area[a], area[a]] = w.T
    for src, dst, delay, u, v in system.edges:
        coupling.setdefault(delay, np.zeros_like(recurrent))[area[src], area[dst]] += u @ v.T

    def step(h: np.ndarray) -> np.ndarray:
        out = np.tanh(h[:, -1] @ recurrent)
        for delay, m in coupling.items():
            out += h[:, -1 - delay] @ m
        return out

    def prior(rng: np.random.Generator, n: int) -> np.ndarray:
        h = np.zeros((n, order, size * len(system.W)))
        h[:, -1] = rng.normal(0.0, system.init_std, h[:, -1].shape)
        for _ in range(burn):
            x = step(h) + noise.sample(rng, h[:, -1].shape)
            h = np.concatenate([h[:, 1:], x[:, None]], 1)
        return h

    log_rates, err = _read_out(data)
    z = data.splits["train"].truth_latents.astype(np.float64)
    hist = np.lib.stride_tricks.sliding_window_view(
        z[:, :-1], order, axis=1
    )  # (K, T - order, D, order)
    pred = step(hist.transpose(0, 1, 3, 2).reshape(-1, order, z.shape[-1]))
    r = (z[:, order:].reshape(-1, z.shape[-1]) - pred).reshape(-1, len(area), size)
    norm = np.linalg.norm(r, axis=-1)
    quiet = r[norm < 0.5 * noise.size]
    checks = {
        "read-out log-rate error": err,
        "noise sd / the member's": float(quiet.std() / noise.sd),
        "input events per bin / the member's": float(
            (norm >= 0.5 * noise.size).mean() / noise.rate
        ),
    }
    _refuse(
        "multiarea_feedback",
        checks,
        {
            "read-out log-rate error": 1e-3,
            "noise sd / the member's": 1.05,
            "input events per bin / the member's": 1.2,
        },
    )
    # the member's kicks (0.03 per bin and area) are too rare for a few thousand particles to find
    # their directions: the filter proposes them at 0.2 and its weights correct for it
    proposal = GaussianWithKicks(sd=noise.sd, rate=0.2, size=noise.size, block=size, single=True)
    model = StateSpace(
        prior=prior,
        step=step,
        noise_sd=noise.sd,
        log_rates=log_rates,
        order=order,
        noise=noise,
        proposal=proposal,
    )
    return model, checks


#: Members with a known generative model: name -> builder(data) -> (StateSpace, checks).
STATE_SPACES = {"low_rate": low_rate, "multiarea_feedback": multiarea_feedback}
#: Members whose start a particle filter cannot find from the prior (multiarea_feedback: 12
#: dimensions that spikes pin down far more narrowly than the prior spreads them, beyond thousands
#: of particles): their smoother is told each trial's first ``order`` true states, so its score
#: bounds the ceiling from above (an estimator told more can only do better).
START_TOLD = {"multiarea_feedback"}
