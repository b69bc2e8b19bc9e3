"""The generative system behind the synthetic multi-area data: each area's nonlinear latent
dynamics (damped rotations through ``tanh``), directed delayed low-rank edges between areas, private
input events, an optional hidden driver and external pulses, and the simulation of trials. The data
file is written by :mod:`dsid.data.multiarea.synth`; :mod:`dsid.data.multiarea.report` and the
zoo's Bayes ceilings use the system directly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from dsid.data.perturbation import Perturbation, intervened_message, message_gains

Edge = Tuple[int, int, int, int, float]  # (src, dst, delay_bins, rank, gain)


#: Private input events (off by default) per area and trial, and their size (see synth_multiarea).
EVENTS_PER_TRIAL, EVENT_SIZE = 0.0, 1.0


#: The default 3-area system: 0->1 delay 3 rank 1; 1->2 delay 1 rank 2; 2->0 delay 5 rank 1.
DEFAULT_EDGES: Tuple[Edge, ...] = ((0, 1, 3, 1, 0.20), (1, 2, 1, 2, 0.15), (2, 0, 5, 1, 0.18))


def default_edges(n_areas: int) -> Tuple[Edge, ...]:
    """:data:`DEFAULT_EDGES` for 3 areas; 0->1 for 2; else a ring i->i+1 cycling their
    delays/ranks/gains."""
    if n_areas == 3:
        return DEFAULT_EDGES
    return tuple(
        (i, (i + 1) % n_areas, *DEFAULT_EDGES[i % 3][2:])
        for i in range(n_areas if n_areas > 2 else 1)
    )


def rotation(w: float) -> np.ndarray:
    """The 2 x 2 rotation by ``w`` radians."""
    return np.array([[np.cos(w), -np.sin(w)], [np.sin(w), np.cos(w)]])


def orthonormal_columns(rng, n: int, k: int) -> np.ndarray:
    """``k`` random orthonormal columns in ``n`` dimensions, (n, k)."""
    return np.linalg.qr(rng.normal(size=(n, n)))[0][:, :k]


def _oscillator(rng, size: int, freq_hz: float, bin_ms: float, gain: float) -> np.ndarray:
    """Recurrent matrix ``gain * Q R Q^T``: rotation planes at ``freq_hz`` (x1, x1.6, ...) in a
    random basis."""
    m = np.zeros((size, size))
    for i in range(size // 2):
        m[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = rotation(
            2 * np.pi * freq_hz * 1.6**i * bin_ms / 1000
        )
    if size % 2:
        m[-1, -1] = 1.0
    q = orthonormal_columns(rng, size, size)
    return gain * q @ m @ q.T


@dataclass
class MultiAreaSystem:
    """Every simulated area's dynamics and noise, the edges between them, and the inputs."""

    W: List[np.ndarray]  # per simulated area (recorded first, then hidden), (L, L)
    noise: np.ndarray  # per simulated area, std of the process noise per bin
    edges: List[tuple]  # (src, dst, delay, U (L, k), V (L, k))
    linear: bool = False
    init_std: float = 0.5
    input_area: Optional[int] = None
    input_B: Optional[np.ndarray] = None  # (L,)
    pulses_per_trial: float = 2.0
    pulse_bins: int = 3
    events_per_trial: float = 0.0  # private input events of every simulated area (mean per trial)
    event_size: float = 0.0  # norm of each event's kick of the latent state


def autonomous_step(system: MultiAreaSystem, a: int, x: np.ndarray) -> np.ndarray:
    """Autonomous part of area ``a``'s update: ``tanh(W x)`` (``W x`` if linear), x (..., L)."""
    lin = x @ system.W[a].T
    return lin if system.linear else np.tanh(lin)


def input_events(rng, system: MultiAreaSystem, shape, T: int) -> np.ndarray:
    """Private input events of one area: kicks of norm ``event_size`` in random directions at random
    bins, ``events_per_trial`` per ``T`` bins on average. Shape: ``shape`` = (bins, trials, L)."""
    ev = np.zeros(shape)
    if system.events_per_trial <= 0:
        return ev
    count = rng.poisson(system.events_per_trial * shape[0] / T, size=shape[1])
    for i in np.flatnonzero(count):
        kick = rng.normal(size=(count[i], shape[2]))
        np.add.at(
            ev[:, i],
            rng.integers(0, shape[0], count[i]),
            system.event_size * kick / np.linalg.norm(kick, axis=-1, keepdims=True),
        )
    return ev


def simulate(
    system: MultiAreaSystem, n: int, T: int, seed, perturb: Optional[Perturbation] = None
) -> dict:
    """Simulate ``n`` trials of ``T`` stored bins after a burn-in of max(delays) bins (at least 1).

    ``x_dst(s+1) = f(x_dst(s)) + sum_edges V m_s + B u_s + noise`` with ``m_s = U^T x_src(s - d)``
    (zero before the trial start) and ``f(x) = tanh(W x)`` (or ``W x`` when ``linear``). Under
    ``perturb`` the same draws run with the intervention (a silenced area's latents are 0).
    """
    rng = np.random.default_rng(seed)
    burn, n_a = max([e[2] for e in system.edges] + [1]), len(system.W)
    S = burn + T
    X = [np.zeros((S, n, w.shape[0])) for w in system.W]
    for a, w in enumerate(system.W):
        X[a][0] = rng.normal(0, system.init_std, (n, w.shape[0]))
    noise = [rng.normal(0, system.noise[a], (S, n, w.shape[0])) for a, w in enumerate(system.W)]
    u = np.zeros((S, n))
    if system.input_area is not None:
        for i in range(n):
            for t0 in rng.integers(burn, S, rng.poisson(system.pulses_per_trial)):
                u[t0 : t0 + system.pulse_bins, i] = 1.0
    erng = np.random.default_rng([*np.atleast_1d(seed), 7])
    events = [
        input_events(erng, system, (S, n, w.shape[0]), T) for w in system.W
    ]  # acting on x(t + 1)
    msgs = {(s, d): np.zeros((S, n, U.shape[1])) for s, d, _, U, _ in system.edges}
    contrib = {(s, d): np.zeros((S, n, V.shape[0])) for s, d, _, _, V in system.edges}
    gains, held, start = message_gains(perturb, system.edges, S, burn)
    silenced = None if perturb is None else perturb.silence_area
    for t in range(S):  # messages at t (the last one too), then the update to t + 1
        if silenced is not None and t >= start:
            X[silenced][t] = 0.0
        for s, d, dl, U, V in system.edges:
            value = X[s][t - dl] @ U if t >= dl else 0.0
            msgs[s, d][t] = intervened_message(msgs, t, (s, d), value, gains, held, start)
            contrib[s, d][t] = msgs[s, d][t] @ V.T
        if t == S - 1:
            break
        drive = [noise[a][t + 1] + events[a][t] for a in range(n_a)]
        for s, d, *_ in system.edges:
            drive[d] += contrib[s, d][t]
        if system.input_area is not None:
            drive[system.input_area] += u[t][:, None] * system.input_B
        for a in range(n_a):
            X[a][t + 1] = autonomous_step(system, a, X[a][t]) + drive[a]
    tr = lambda z: np.ascontiguousarray(z[burn:].swapaxes(0, 1))  # noqa: E731  -> (n, T, ...)
    return {
        "latents": [tr(x) for x in X],
        "messages": {k: tr(v) for k, v in msgs.items()},
        "contrib": {k: tr(v) for k, v in contrib.items()},
        "input": tr(u)[..., None],
        "noise": [tr(z) for z in noise],
        "events": [tr(e) for e in events],
    }


def make_system(
    seed: int,
    n_areas: int,
    latent_size: int,
    bin_ms: float,
    edges,
    gain: float,
    noise_std: float,
    unrecorded_driver: bool,
    external_input: bool,
    events_per_trial: float = 0.0,
    event_size: float = 0.0,
) -> MultiAreaSystem:
    """The system of :func:`~dsid.data.multiarea.synth.synth_multiarea`'s arguments, drawn from
    ``seed``: every area's dynamics, the edges (hidden driver's included) with their coupling
    matrices, and the external input's direction when there is one."""
    rng = np.random.default_rng([seed, 0])
    edges = default_edges(n_areas) if edges is None else tuple(edges)
    n_sim = n_areas + bool(unrecorded_driver)
    freqs = [2.0 + 1.1 * a for a in range(n_areas)] + [1.3]
    W = [_oscillator(rng, latent_size, freqs[a], bin_ms, gain) for a in range(n_sim)]
    for src, dst, dl, k, g in edges:
        if (
            not (0 <= src < n_areas and 0 <= dst < n_areas)
            or src == dst
            or dl < 0
            or not 1 <= k <= latent_size
        ):
            raise ValueError(
                f"edge {(src, dst, dl, k, g)}: expected 0 <= src != dst < {n_areas}, "
                f"delay >= 0 and 1 <= rank <= {latent_size}"
            )
    if len({e[:2] for e in edges}) != len(edges):
        raise ValueError(f"edges {edges}: expected at most one edge per (src, dst) pair")
    all_edges = list(edges)
    if unrecorded_driver:  # hidden area drives the first and the last recorded area
        all_edges += [(n_areas, 0, 2, 1, 0.2), (n_areas, n_areas - 1, 2, 1, 0.2)]
    cpl = [
        (
            s,
            d,
            dl,
            orthonormal_columns(rng, latent_size, k),
            g * orthonormal_columns(rng, latent_size, k),
        )
        for s, d, dl, k, g in all_edges
    ]
    system = MultiAreaSystem(
        W=W,
        noise=np.full(n_sim, noise_std),
        edges=cpl,
        events_per_trial=events_per_trial,
        event_size=event_size,
    )
    if external_input:
        b = rng.normal(size=latent_size)
        system.input_area, system.input_B = 0, 0.5 * b / np.linalg.norm(b)
    return system


def build_system(
    *,
    seed: int = 0,
    n_areas: int = 3,
    latent_size: int = 4,
    bin_ms: float = 10.0,
    edges: Optional[Sequence[Edge]] = None,
    gain: float = 1.2,
    noise_std: float = 0.03,
    events_per_trial: float = EVENTS_PER_TRIAL,
    event_size: float = EVENT_SIZE,
) -> MultiAreaSystem:
    """The generative system :func:`synth_multiarea` simulates with these arguments (its dynamics
    ``W``, coupling ``edges`` as ``(src, dst, delay, U, V)``, noise and events), for whoever needs
    the exact model, such as a Bayes ceiling. Recorded areas only (no hidden driver, no external
    input)."""
    return make_system(
        seed,
        n_areas,
        latent_size,
        bin_ms,
        edges,
        gain,
        noise_std,
        False,
        False,
        events_per_trial,
        event_size,
    )
