"""How much a synthetic multi-area system's communication can be recovered, from its ground truth.

Two questions decide whether a benchmark on the system is meaningful: do the messages matter to
their destinations (else no model needs them), and is each edge's delay identifiable (else no model
can recover it: a message that a linear map of the source's latents one bin off reproduces almost
perfectly leaves the delay undetermined to within bins).
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from dsid.data.multiarea.system import autonomous_step, input_events, make_system, simulate


def _lag_r2(message: np.ndarray, source: np.ndarray, lag: int, start: int) -> float:
    """R2 of the best affine read-out of ``message(t)`` from ``source(t - lag)``, bins
    ``t >= start``."""
    T = message.shape[1]
    y = message[:, start:].reshape(-1, message.shape[-1])
    x = source[:, start - lag : T - lag].reshape(len(y), -1)
    x = np.concatenate([x, np.ones((len(x), 1))], 1)
    res = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    return float(1 - res.var(0).sum() / y.var(0).sum())


def coupling_report(
    *, seed: int = 0, n_trials: int = 200, n_time: int = 100, **kwargs
) -> Dict[str, Dict]:
    """Message dependence per destination and delay identifiability per edge (``kwargs`` as
    :func:`~dsid.data.multiarea.synth.synth_multiarea`).

    ``report["areas"][dst]``: ``innovation_fraction``: share of the variance of the one-step drive
    ``x(t+1) - f(x(t))`` that is message; ``step_fraction``: variance of the summed message
    contribution over the latents' variance; ``input_determined``: ``1 - E[Var(x | messages)] /
    Var(x)``, the conditional variance from re-running the destination from fresh initial states,
    noise and private events under the same incoming messages (and external input);
    ``input_determined_late``: the same over the second half of the trial.

    ``report["edges"]["src_dst"]``: ``delay_bins``; ``one_bin_off_loss`` and ``two_bins_off_loss``:
    the share of the true message's variance that the best affine read-out of the source's true
    latents one (two) bins off the true delay cannot explain (the better side): how sharply the
    data pin the delay down, with perfect knowledge of the latents.
    """
    kw = {
        "n_areas": 3,
        "latent_size": 4,
        "bin_ms": 10.0,
        "edges": None,
        "gain": 1.2,
        "noise_std": 0.03,
        "unrecorded_driver": False,
        "external_input": False,
        **kwargs,
    }
    n_areas, system = kw["n_areas"], make_system(seed, **kw)
    on = simulate(system, n_trials, n_time, [seed, 9])
    tv = lambda z: float(z.reshape(-1, z.shape[-1]).var(0).sum())  # noqa: E731
    areas = {}
    for dst in range(n_areas):
        inc = [v for (s, d), v in on["contrib"].items() if d == dst]
        if not inc:
            continue
        msg = sum(inc)  # contribution at t acts on x(t+1)
        drive = msg + (on["input"] * system.input_B if system.input_area == dst else 0)
        x = on["latents"][dst]
        reps = []
        for r in range(2):  # destination alone, same drive, fresh initial state, noise and events
            rng = np.random.default_rng([seed, 10, r])
            events = input_events(rng, system, (n_time, n_trials, x.shape[-1]), n_time).swapaxes(
                0, 1
            )
            z = np.zeros_like(x)
            z[:, 0] = rng.normal(0, system.init_std, x[:, 0].shape)
            for t in range(n_time - 1):
                noise = rng.normal(0, system.noise[dst], z[:, 0].shape)
                z[:, t + 1] = (
                    autonomous_step(system, dst, z[:, t]) + drive[:, t] + events[:, t] + noise
                )
            reps.append(z)
        cond = (reps[0] - reps[1]) ** 2 / 2
        late = slice(n_time // 2, None)
        own = on["noise"][dst][:, 1:] + on["events"][dst][:, :-1]
        areas[dst] = {
            "innovation_fraction": tv(msg[:, :-1]) / tv(drive[:, :-1] + own),
            "step_fraction": tv(msg) / tv(x),
            "input_determined": 1 - float(cond.mean((0, 1)).sum()) / tv(x),
            "input_determined_late": 1 - float(cond[:, late].mean((0, 1)).sum()) / tv(x[:, late]),
        }
    edges = {}
    for s, d, dl, _, _ in system.edges:
        if s >= n_areas:
            continue
        m, src = on["messages"][s, d], on["latents"][s]
        start = dl + 2
        off = lambda k: 1 - max(_lag_r2(m, src, lag, start) for lag in (dl - k, dl + k) if lag >= 0)  # noqa: E731
        edges[f"{s}_{d}"] = {
            "delay_bins": int(dl),
            "one_bin_off_loss": off(1),
            "two_bins_off_loss": off(2),
        }
    return {"areas": areas, "edges": edges}
