"""Synthetic multi-area data with known directed, delayed, low-rank communication.

Each area has its own nonlinear latent dynamics; areas talk through low-rank "messages" with known
delays. The DSID tensor file written holds spikes plus the ground truth: rates, latents, messages,
effectome and delays (the tensor file table in README.md), and, under
``truth/edges/{src}_{dst}/{U,V}``, the coupling matrices, so every message can be recomputed from
the stored latents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from dsid.data.multiarea.system import (
    EVENT_SIZE,
    EVENTS_PER_TRIAL,
    Edge,
    MultiAreaSystem,
    make_system,
    orthonormal_columns,
    rotation,
    simulate,
)
from dsid.data.perturbation import Perturbation
from dsid.data.tensor_file import SPLITS, DSIDData, SplitData, write_tensor_file


def _neurons(rng, latents_by_area, n_per_area: int, heldout_fraction: float, base_hz, mod: float):
    """Per-area log-linear Poisson readouts of standardized latents; returns
    per-area (b, C, mu, sd), heldout."""
    params, heldout = [], []
    for z in latents_by_area:
        L = z.shape[-1]
        mu, sd = z.reshape(-1, L).mean(0), z.reshape(-1, L).std(0) + 1e-8
        C = rng.normal(0, mod / np.sqrt(L), (n_per_area, L))
        b = np.log(rng.uniform(*base_hz, n_per_area))
        params.append((b, C, mu, sd))
        h = np.zeros(n_per_area, bool)
        n_out = min(int(round(heldout_fraction * n_per_area)), n_per_area - 1)
        h[rng.permutation(n_per_area)[:n_out]] = True
        heldout.append(h)
    return params, np.concatenate(heldout)


def _write(
    out,
    system: MultiAreaSystem,
    seed: int,
    n_areas: int,
    n_trials,
    n_time: int,
    bin_ms: float,
    neurons_per_area: int,
    heldout_fraction: float,
    base_hz=(4.0, 12.0),
    mod: float = 0.6,
    perturb: Optional[Perturbation] = None,
) -> Path:
    sims = {
        sp: simulate(system, n, n_time, [seed, 1, i])
        for i, (sp, n) in enumerate(zip(SPLITS, n_trials))
    }
    nrng = np.random.default_rng([seed, 2])
    params, heldout = _neurons(
        nrng, sims["train"]["latents"][:n_areas], neurons_per_area, heldout_fraction, base_hz, mod
    )
    if perturb is not None:  # the same trials, neurons and spike draws under the intervention
        sims = {
            sp: simulate(system, n, n_time, [seed, 1, i], perturb)
            for i, (sp, n) in enumerate(zip(SPLITS, n_trials))
        }
    splits, extra = {}, {}
    for i, (sp, sim) in enumerate(sims.items()):
        rates = (
            np.concatenate(
                [
                    np.exp(b + ((z - mu) / sd) @ C.T)
                    for z, (b, C, mu, sd) in zip(sim["latents"][:n_areas], params)
                ],
                -1,
            )
            * bin_ms
            / 1000
        )
        spikes = np.random.default_rng([seed, 3, i]).poisson(rates).astype(np.int32)
        msgs = {f"{s}_{d}": m for (s, d), m in sim["messages"].items() if s < n_areas}
        splits[sp] = SplitData(
            spikes=spikes,
            truth_rates=rates,
            truth_messages=msgs,
            truth_latents=np.concatenate(sim["latents"][:n_areas], -1),
        )
        extra.update(
            {f"{sp}/truth/hidden/latents": z.astype(np.float32) for z in sim["latents"][n_areas:]}
        )
        extra.update(
            {
                f"{sp}/truth/hidden/messages/H_{d}": m.astype(np.float32)
                for (s, d), m in sim["messages"].items()
                if s >= n_areas
            }
        )
        if system.input_area is not None:
            extra[f"{sp}/truth/external_input"] = sim["input"].astype(np.float32)
        if system.events_per_trial > 0:
            extra[f"{sp}/truth/private_input"] = np.concatenate(sim["events"][:n_areas], -1).astype(
                np.float32
            )
    eff = np.zeros((n_areas, n_areas))
    delay = -np.ones((n_areas, n_areas), np.int64)
    for s, d, dl, U, V in system.edges:
        key = f"{s}_{d}" if s < n_areas else f"H_{d}"
        extra[f"truth/edges/{key}/U"], extra[f"truth/edges/{key}/V"] = U, V
        extra[f"truth/edges/{key}/delay_bins"] = np.int64(dl)
        if s < n_areas:
            c = sims["train"]["contrib"][s, d]
            eff[s, d] = np.sqrt(c.reshape(-1, c.shape[-1]).var(0).sum())
            delay[s, d] = dl
    extra["truth/latent_area"] = np.repeat(np.arange(n_areas), system.W[0].shape[0])
    if system.input_area is not None:
        extra["truth/external_input_area"] = np.int64(system.input_area)
        extra["truth/external_input_B"] = system.input_B
    data = DSIDData(
        bin_ms=bin_ms,
        area=np.repeat(np.arange(n_areas), neurons_per_area),
        heldout=heldout,
        splits=splits,
        area_names=[f"A{a}" for a in range(n_areas)],
        effectome=eff,
        delay_bins=delay,
    )
    return write_tensor_file(out, data, extra=extra)


def _check(
    n_areas,
    neurons_per_area,
    heldout_fraction,
    n_trials,
    n_time,
    latent_size,
    events_per_trial=0.0,
    event_size=0.0,
) -> tuple:
    n_trials = tuple(int(n) for n in n_trials)
    for ok, what, got in (
        (n_areas >= 2, "n_areas >= 2", n_areas),
        (neurons_per_area >= 2, "neurons_per_area >= 2", neurons_per_area),
        (0 <= heldout_fraction < 1, "0 <= heldout_fraction < 1", heldout_fraction),
        (len(n_trials) == 3 and min(n_trials) >= 1, "n_trials: 3 positive counts", n_trials),
        (n_time >= 1 and latent_size >= 2, "n_time >= 1, latent_size >= 2", (n_time, latent_size)),
        (
            events_per_trial >= 0 and event_size >= 0,
            "events_per_trial >= 0, event_size >= 0",
            (events_per_trial, event_size),
        ),
    ):
        if not ok:
            raise ValueError(f"expected {what}, got {got}")
    return n_trials


def synth_multiarea(
    out,
    *,
    seed: int = 0,
    n_areas: int = 3,
    neurons_per_area: int = 80,
    heldout_fraction: float = 0.2,
    n_trials: Sequence[int] = (600, 150, 150),
    n_time: int = 100,
    bin_ms: float = 10.0,
    latent_size: int = 4,
    edges: Optional[Sequence[Edge]] = None,
    gain: float = 1.2,
    noise_std: float = 0.03,
    events_per_trial: float = EVENTS_PER_TRIAL,
    event_size: float = EVENT_SIZE,
    unrecorded_driver: bool = False,
    external_input: bool = False,
    perturb: Optional[Perturbation] = None,
) -> Path:
    """Write a multi-area DSID tensor file with known communication; return its path.

    Dynamics (per bin): ``x_a(t+1) = tanh(W_a x_a(t)) + sum_{src->a} V m_t + noise``,
    ``W_a = gain * Q R Q^T`` with rotation planes at ``2 + 1.1 a`` Hz (and x1.6 for a second plane):
    a noisy limit cycle of ``latent_size`` dims per area with its own frequency. The message on edge
    ``src->dst`` is ``m_t = U^T x_src(t - delay)`` (``U`` orthonormal columns, rank k) and acts on
    ``x_dst(t+1)`` through ``V = edge_gain * orthonormal``. Trials start from random states
    ``N(0, 0.5^2)``, ``max delay`` bins before the first stored bin (so every stored message is
    defined).

    Args:
        out: output file path.
        seed: everything (dynamics, coupling, trials, neurons, spikes) is a function of it.
        n_areas: recorded areas, named ``A0, A1, ...``.
        neurons_per_area: Poisson neurons per area (60-100 recommended); log-rate = affine map of
            the area's standardized latents, baselines 4-12 spikes/s, roughly 1-40 spikes/s overall.
        heldout_fraction: fraction of each area's neurons held out (each area keeps held-in
            neurons).
        n_trials: (train, valid, test) trial counts.
        n_time: stored bins per trial. bin_ms: bin width (frequencies are in Hz, so set real time).
        latent_size: latent dims per area; ``truth/latents`` concatenates areas
            (``A * latent_size``).
        edges: ``(src, dst, delay_bins, rank, edge_gain)`` tuples; default :func:`default_edges`
            (3 areas: 0->1 delay 3 rank 1; 1->2 delay 1 rank 2; 2->0 delay 5 rank 1).
        gain: recurrent gain (> 1: self-sustained oscillation). noise_std: process noise per bin.
        events_per_trial, event_size: private input events of every area (inputs from outside the
            recorded areas): on average ``events_per_trial`` per trial and area, each a one-bin kick
            of the area's latent state of norm ``event_size`` in a random direction (stored, per
            area, in ``{split}/truth/private_input``). They make the delays identifiable: without
            them the areas are smooth oscillators, and a linear read-out of the source's latents one
            bin off the true delay still explains ~99% of a message
            (:func:`~dsid.data.multiarea.report. coupling_report` measures this); with 3 events of
            size 1 per trial, 96-98%.
        unrecorded_driver: add a hidden area (1.3 Hz, no neurons, not in ``truth/latents`` nor the
            effectome) driving areas 0 and A-1 (delay 2, rank 1, gain 0.2); its latents and messages
            are stored under ``{split}/truth/hidden/{latents,messages/H_dst}``.
        external_input: add unit pulses (3 bins, ~2 per trial at random times) entering area 0
            through a fixed vector ``B`` (``truth/external_input_B``); the input is stored in
            ``{split}/truth/external_input`` (trials, T, 1).
        perturb: the same trials, neurons and spike draws under an intervention
            (:class:`~dsid.data.perturbation.Perturbation`), to compare with the file without it.

    Stored truth: rates (spikes per bin), latents, ``messages/{src}_{dst}`` (area indices),
    ``effectome`` (the std, root total variance, of the edge's contribution ``V m_t`` over train; 0
    off-edge and on the diagonal), ``delay_bins`` (-1 off-edge),
    ``truth/edges/{src}_{dst}/{U,V,delay_bins}``, ``truth/latent_area``.
    """
    n_trials = _check(
        n_areas,
        neurons_per_area,
        heldout_fraction,
        n_trials,
        n_time,
        latent_size,
        events_per_trial,
        event_size,
    )
    system = make_system(
        seed,
        n_areas,
        latent_size,
        bin_ms,
        edges,
        gain,
        noise_std,
        unrecorded_driver,
        external_input,
        events_per_trial,
        event_size,
    )
    return _write(
        out,
        system,
        seed,
        n_areas,
        n_trials,
        n_time,
        bin_ms,
        neurons_per_area,
        heldout_fraction,
        perturb=perturb,
    )


def synth_two_area_linear(
    out,
    *,
    delay: int = 4,
    seed: int = 0,
    n_trials: Sequence[int] = (200, 50, 50),
    n_time: int = 50,
    neurons_per_area: int = 20,
    bin_ms: float = 10.0,
    edge_gain: float = 0.8,
    heldout_fraction: float = 0.2,
) -> Path:
    """Write a tiny linear two-area system 0->1 (rank 1, ``delay`` bins) for delay-recovery tests.

    ``x_a(t+1) = W_a x_a(t) + [a == 1] V U^T x_0(t - delay) + noise`` with 2-D damped rotations
    (``|eig| = 0.8, 0.9``); area 0 is noise-driven (std 0.5), area 1 mostly message-driven (noise
    0.05). Same file layout and truth fields as :func:`synth_multiarea`.
    """
    n_trials = _check(2, neurons_per_area, heldout_fraction, n_trials, n_time, 2)
    if delay < 0:
        raise ValueError(f"delay: expected >= 0, got {delay}")
    rng = np.random.default_rng([seed, 0])
    W = [
        0.8 * rotation(2 * np.pi * 2 * bin_ms / 1000),
        0.9 * rotation(2 * np.pi * 5 * bin_ms / 1000),
    ]
    system = MultiAreaSystem(
        W=W,
        noise=np.array([0.5, 0.05]),
        linear=True,
        edges=[
            (
                0,
                1,
                delay,
                orthonormal_columns(rng, 2, 1),
                edge_gain * orthonormal_columns(rng, 2, 1),
            )
        ],
    )
    return _write(
        out,
        system,
        seed,
        2,
        n_trials,
        n_time,
        bin_ms,
        neurons_per_area,
        heldout_fraction,
        base_hz=(5.0, 15.0),
        mod=1.0,
    )
