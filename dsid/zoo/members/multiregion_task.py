"""``multiregion_task``: a context-dependent decision spread over three regions that talk through
delayed channels, with every input unobserved.

A trial starts with a brief context cue (A or B) into the *context* region; two noisy evidence
streams then arrive in the *sensory* region; the *integrator* region accumulates the stream the
context selects, up to an absorbing bound, and feeds its running decision back to the sensory
region. Per bin (``clip`` to ``[-bound, bound]``, ``eps`` Gaussian process noise)::

    sensory     s_k <- (1 - 1/tau_s) s_k + g_e e_k + eps            (k = 1, 2: filtered evidence)
                f   <- (1 - 1/tau_f) f + g_f m_IS / tau_f + eps     (top-down feedback)
    context     c   <- clip(c + k_c (cue_A - cue_B), -1, 1)          (persistent context)
                u   <- u + (1 - u) / tau_u                           (urgency)
    integrator  a   <- clip((1 - leak) a + k (g m_SI1 + (1 - g) m_SI2) + eps), g = (1 + m_CI) / 2
                       (unchanged once |a| = bound)
                b   <- (1 - 1/tau_b) b + tanh(2 a) / tau_b           (commitment)

with the messages ``m_SI = (s_1, s_2)`` 2 bins back (rank 2), ``m_CI = c`` 1 bin back (rank 1) and
``m_IS = a`` 3 bins back (rank 1): a loop sensory <-> integrator and a gating input from context.
Each region's neurons are log-linear read-outs of its own standardized latents (mixed selectivity),
about 20% of each region held out. Few trials for the neurons (the cognitive-task regime), every
input unobserved (``truth/inputs``: cue A, cue B, e1, e2). The truth holds the messages, the
effectome (each edge's root total variance of what its message changes in its target's update,
over train), delays and ranks; :func:`simulate` re-runs the same trials under a
:class:`~dsid.data.perturbation.Perturbation` (a silenced region holds its latents at 0 and sends
0).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from dsid.data.perturbation import Perturbation, intervened_message, message_gains
from dsid.data.tensor_file import SPLITS, DSIDData, SplitData
from dsid.zoo.members.packing import loglinear_readout

REGIONS = ("sensory", "integrator", "context")
LATENTS = (3, 2, 2)  # sensory (s1, s2, f), integrator (a, b), context (c, u)
#: (src, dst, delay_bins, rank): sensory -> integrator, context -> integrator, integrator -> sensory
EDGES = ((0, 1, 2, 2), (2, 1, 1, 1), (1, 0, 3, 1))
COHERENCES = (-0.5, -0.2, 0.2, 0.5)
PARAMS = dict(
    tau_s=5.0, g_e=0.2, tau_f=4.0, g_f=1.0, k_c=0.5, tau_u=50.0, k=0.08, leak=0.01,
    bound=1.5, tau_b=5.0, noise=0.02,
)  # fmt: skip


def draw_trials(n_trials: int, n_time: int, seed, evidence_noise: float = 1.0) -> Dict:
    """Every random draw of ``n_trials`` trials: context, coherences, the inputs (cue in bins
    ``[T/20, T/10)``, evidence in ``[T/5, 4T/5)``), the urgency's start and the process noise.

    Shape: ``inputs`` (K, T, 4) (cue A, cue B, e1, e2); ``noise`` (K, T, 7); ``u0`` (K,);
    ``condition`` (K,) indexes (context, coherence 1, coherence 2).
    """
    rng, coh = np.random.default_rng(seed), np.asarray(COHERENCES)
    context = rng.integers(0, 2, n_trials)
    c1, c2 = rng.integers(0, coh.size, n_trials), rng.integers(0, coh.size, n_trials)
    cue_on, cue_off = n_time // 20, max(n_time // 10, n_time // 20 + 1)
    ev_on, ev_off = n_time // 5, 4 * n_time // 5
    inputs = np.zeros((n_trials, n_time, 4))
    inputs[np.arange(n_trials), cue_on:cue_off, context] = 1.0
    for k, ci in ((2, c1), (3, c2)):
        stream = coh[ci, None] + evidence_noise * rng.normal(size=(n_trials, n_time))
        inputs[:, ev_on:ev_off, k] = stream[:, ev_on:ev_off]
    return {
        "inputs": inputs,
        "noise": PARAMS["noise"] * rng.normal(size=(n_trials, n_time, sum(LATENTS))),
        "u0": rng.uniform(0.0, 0.3, n_trials),
        "condition": ((context * coh.size + c1) * coh.size + c2).astype(np.int64),
    }


def simulate(trials: Dict, perturb: Optional[Perturbation] = None) -> Dict:
    """Run ``trials`` (from :func:`draw_trials`), under ``perturb`` if given (the same draws).

    Shape: ``latents`` (K, T, 7) (s1, s2, f, a, b, c, u); ``messages`` ``{(src, dst): (K, T,
    rank)}``; ``effects`` ``{(src, dst): (K, T, latents of dst)}`` what each edge's message
    changes in its target's update.
    """
    p, inputs, noise = PARAMS, trials["inputs"], trials["noise"]
    n, n_time, _ = inputs.shape
    gains, held, start = message_gains(perturb, EDGES, n_time, 0)
    silent = None if perturb is None else perturb.silence_area
    z = np.zeros((n, n_time, sum(LATENTS)))
    z[:, 0, 6] = trials["u0"]
    msgs = {(s, d): np.zeros((n_time, n, k)) for s, d, _, k in EDGES}
    effects = {(s, d): np.zeros((n, n_time, LATENTS[d])) for s, d, _, _ in EDGES}
    source = {0: lambda t: z[:, t, 0:2], 1: lambda t: z[:, t, 3:4], 2: lambda t: z[:, t, 5:6]}
    for t in range(n_time):
        if silent is not None and t >= start:
            z[:, t, _slice(silent)] = 0.0
        for s, d, dl, k in EDGES:
            value = source[s](t - dl) if t >= dl else np.zeros((n, k))
            msgs[s, d][t] = intervened_message(msgs, t, (s, d), value, gains, held, start)
        if t == n_time - 1:
            break
        x, e = z[:, t], noise[:, t + 1]
        m_si, m_ci, m_is = msgs[0, 1][t], msgs[2, 1][t][:, 0], msgs[1, 0][t][:, 0]
        gate = (1 + m_ci) / 2
        drive = gate * m_si[:, 0] + (1 - gate) * m_si[:, 1]
        nxt = z[:, t + 1]
        nxt[:, 0:2] = (1 - 1 / p["tau_s"]) * x[:, 0:2] + p["g_e"] * inputs[:, t, 2:4] + e[:, 0:2]
        nxt[:, 2] = (1 - 1 / p["tau_f"]) * x[:, 2] + p["g_f"] * m_is / p["tau_f"] + e[:, 2]
        a = np.clip((1 - p["leak"]) * x[:, 3] + p["k"] * drive + e[:, 3], -p["bound"], p["bound"])
        nxt[:, 3] = np.where(np.abs(x[:, 3]) >= p["bound"], x[:, 3], a)
        nxt[:, 4] = (1 - 1 / p["tau_b"]) * x[:, 4] + np.tanh(2 * x[:, 3]) / p["tau_b"]
        nxt[:, 5] = np.clip(x[:, 5] + p["k_c"] * (inputs[:, t, 0] - inputs[:, t, 1]), -1, 1)
        nxt[:, 6] = x[:, 6] + (1 - x[:, 6]) / p["tau_u"]
        effects[0, 1][:, t, 0] = p["k"] * drive
        effects[2, 1][:, t, 0] = p["k"] * m_ci / 2 * (m_si[:, 0] - m_si[:, 1])
        effects[1, 0][:, t, 2] = p["g_f"] * m_is / p["tau_f"]
    return {
        "latents": z,
        "messages": {key: np.ascontiguousarray(m.swapaxes(0, 1)) for key, m in msgs.items()},
        "effects": effects,
    }


def _slice(region: int) -> slice:
    start = sum(LATENTS[:region])
    return slice(start, start + LATENTS[region])


def make_multiregion_task(
    *,
    seed: int = 0,
    n_trials: Sequence[int] = (240, 60, 60),
    n_time: int = 100,
    neurons_per_region: int = 60,
    heldout_fraction: float = 0.2,
    bin_ms: float = 10.0,
    min_rate: float = 1.0,
    max_rate: float = 30.0,
    perturb: Optional[Perturbation] = None,
) -> DSIDData:
    """Build the member in memory (deterministic by ``seed``); see the module docstring.
    ``perturb`` simulates the same trials under an intervention, with the same spike draws and
    the unperturbed run's read-out (so files compare bin by bin); delay_bins -1 off-edge."""
    n_trials = tuple(int(k) for k in n_trials)
    if len(n_trials) != 3 or min(n_trials) < 1:
        raise ValueError(f"n_trials: expected 3 positive counts, got {n_trials}")
    if neurons_per_region < 2:
        raise ValueError(f"neurons_per_region: expected at least 2, got {neurons_per_region}")
    trials = draw_trials(sum(n_trials), n_time, [seed, 1])
    base = simulate(trials)
    sim = base if perturb is None else simulate(trials, perturb)
    rng, n_train = np.random.default_rng([seed, 2]), n_trials[0]
    n_out = min(max(int(round(heldout_fraction * neurons_per_region)), 1), neurons_per_region - 1)
    log_hz = [[], []]
    for a in range(len(REGIONS)):
        read = loglinear_readout(
            base["latents"][:n_train, :, _slice(a)], rng, neurons_per_region, min_rate, max_rate
        )
        lam = read(sim["latents"][..., _slice(a)])
        log_hz[0].append(lam[..., :-n_out])  # held-in first
        log_hz[1].append(lam[..., -n_out:])
    rates = np.exp(np.concatenate(log_hz[0] + log_hz[1], -1)) * bin_ms / 1000.0
    spikes = np.random.default_rng([seed, 3]).poisson(rates).astype(np.int32)
    area = np.concatenate(
        [np.full(neurons_per_region - n_out, a) for a in range(len(REGIONS))]
        + [np.full(n_out, a) for a in range(len(REGIONS))]
    )
    splits, start = {}, 0
    for split, k in zip(SPLITS, n_trials):
        sl = slice(start, start + k)
        splits[split] = SplitData(
            spikes=spikes[sl],
            truth_rates=rates[sl].astype(np.float32),
            truth_latents=sim["latents"][sl].astype(np.float32),
            condition=trials["condition"][sl],
            truth_inputs=trials["inputs"][sl].astype(np.float32),
            truth_messages={f"{s}_{d}": m[sl] for (s, d), m in sim["messages"].items()},
        )
        start += k
    eff, delay = np.zeros((3, 3)), -np.ones((3, 3), np.int64)
    for s, d, dl, _ in EDGES:
        change = sim["effects"][s, d][:n_train].reshape(-1, LATENTS[d])
        eff[s, d] = np.sqrt(change.var(0).sum())
        delay[s, d] = dl if eff[s, d] > 0 else -1
    return DSIDData(
        bin_ms=float(bin_ms),
        area=area.astype(np.int64),
        heldout=np.arange(area.size) >= area.size - len(REGIONS) * n_out,
        splits=splits,
        area_names=list(REGIONS),
        effectome=eff,
        delay_bins=delay,
        extra={"truth/latent_area": np.repeat(np.arange(len(REGIONS)), LATENTS)},
    )
