"""``multiregion_rnn``: a CURBD-style multi-region chaotic rate network.

Every region ``a`` is a chaotic rate RNN of ``units_per_region`` units (``r = tanh(x)``), and
regions talk through sparse, low-rank, delayed links. Once per bin::

    x_a(t+1) = x_a(t) + alpha (-x_a(t) + J_a r_a(t) + sum_{s->a} V_sa m_sa(t) + B_a u_a(t)) + noise
    m_sa(t) = U_sa^T r_s(t - delay_sa)        (the message of edge s->a, rank 1 or 2)

``J_a ~ N(0, gain^2 / units)`` with ``gain`` 2.5, the most chaotic of ``n_candidates`` draws (at ~50
units a gain of 1.5-2, CURBD's for 500-unit regions, mostly gives limit cycles or tori, coupled
regions too); ``alpha`` 0.2 (tau 50 ms at 10 ms bins); ``U`` orthonormal columns, ``V`` Gaussian
entries of std ``edge_gain``. ``u_a`` is each region's unobserved private input (a few 2-bin pulses
per trial, ``{split}/truth/inputs`` (trials, T, A)): it makes the delays identifiable. Edges
(:data:`EDGES`, those within ``n_regions``): 0->1 (delay 2, rank 1), 1->0 (4, 1) closing a loop,
1->2 (0, 2), 2->3 (3, 1), 3->4 (1, 1). Each region is read by ``neurons_per_region`` Poisson
neurons, log-rate ``b + C r_a`` (about 5-20 spikes/s), about 20% held out, held-in neurons first.
``truth/latents`` are the top ``pcs_per_region`` principal components of each region's rates
(``truth/latent_area``); messages, effectome, delays and every weight are written as truth too.
:func:`simulate` re-runs the same trials (same initial states, noise and pulses) under a
:class:`Perturbation` (a silenced region, cut or scaled edges).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from dsid.data.perturbation import Perturbation, intervened_message, message_gains
from dsid.data.tensor_file import SPLITS, DSIDData, SplitData
from dsid.zoo.members.chaotic_rnn import largest_lyapunov

#: (src, dst, delay_bins, rank); a network of A regions keeps the edges with src, dst < A.
EDGES: Tuple[Tuple[int, int, int, int], ...] = (
    (0, 1, 2, 1),
    (1, 0, 4, 1),
    (1, 2, 0, 2),
    (2, 3, 3, 1),
    (3, 4, 1, 1),
)


@dataclass
class Network:
    """The regions' recurrent weights ``J`` (A, n, n), input vectors ``B`` (A, n), the edges
    ``(src, dst, delay, U (n, k), V (n, k))``, ``alpha = dt / tau`` and the process noise std."""

    J: np.ndarray
    B: np.ndarray
    edges: List[Tuple[int, int, int, np.ndarray, np.ndarray]]
    alpha: float
    noise_std: float


def build_network(
    seed: int,
    n_regions: int = 4,
    units_per_region: int = 50,
    gain: float = 2.5,
    alpha: float = 0.2,
    edge_gain: float = 1.0,
    input_gain: float = 2.0,
    noise_std: float = 0.05,
    n_candidates: int = 16,
) -> Network:
    """The network drawn from ``seed`` (see the module docstring)."""
    if not 3 <= n_regions <= 5:
        raise ValueError(f"n_regions: expected 3 to 5, got {n_regions}")
    rng, n = np.random.default_rng([seed, 0]), units_per_region
    J = np.empty((n_regions, n, n))
    for a in range(n_regions):
        Js = rng.normal(0.0, gain / np.sqrt(n), (n_candidates, n, n))
        J[a] = Js[int(np.argmax(largest_lyapunov(Js, alpha, seed=seed)))]
    B = input_gain * rng.normal(size=(n_regions, n))
    edges = [
        (s, d, dl, np.linalg.qr(rng.normal(size=(n, k)))[0], edge_gain * rng.normal(size=(n, k)))
        for s, d, dl, k in EDGES
        if s < n_regions and d < n_regions
    ]
    return Network(J, B, edges, alpha, noise_std)


def draw_trials(
    network: Network,
    n_trials: int,
    n_time: int,
    seed,
    burn: int = 20,
    pulses_per_trial: float = 3.0,
    pulse_bins: int = 2,
) -> Dict[str, np.ndarray]:
    """Every random draw of ``n_trials`` trials: initial states ``N(0, 1)`` ``burn`` bins before the
    first stored bin, process noise, and each region's private pulses (Poisson count per trial and
    region, at random stored bins).

    Shape: ``x0`` (A, n_trials, units); ``noise`` (burn + T, A, n_trials, units); ``pulses``
    (burn + T, n_trials, A); ``burn`` a scalar.
    """
    A, units = network.B.shape
    burn = max([burn] + [e[2] for e in network.edges])
    S, rng = burn + n_time, np.random.default_rng(seed)
    x0 = rng.normal(size=(A, n_trials, units))
    noise = network.noise_std * rng.normal(size=(S, A, n_trials, units))
    pulses, count = np.zeros((S, n_trials, A)), rng.poisson(pulses_per_trial, (n_trials, A))
    for i, a in zip(*np.nonzero(count)):
        for t0 in rng.integers(burn, S, count[i, a]):
            pulses[t0 : t0 + pulse_bins, i, a] = 1.0
    return {"x0": x0, "noise": noise, "pulses": pulses, "burn": np.int64(burn)}


def simulate(
    network: Network, trials: Dict[str, np.ndarray], perturb: Optional[Perturbation] = None
) -> Dict[str, object]:
    """Run ``trials`` (from :func:`draw_trials`) through ``network``, under ``perturb`` if given
    (the same draws, so an unperturbed and a perturbed run differ only by the intervention).

    Shape: ``states``, ``rates`` (A, trials, T, units) (``x`` and ``r = tanh(x)``, stored bins);
    ``messages`` ``{(src, dst): (trials, T, rank)}``; ``inputs`` (trials, T, A).
    """
    noise, burn = trials["noise"], int(trials["burn"])
    S, A, n, _ = noise.shape
    gains, held, start = message_gains(perturb, network.edges, S, burn)
    keep = np.ones((A, 1, 1))
    if perturb is not None and perturb.silence_area is not None:
        keep[perturb.silence_area] = 0.0
    x, r = np.empty(noise.shape), np.empty(noise.shape)
    x[0] = trials["x0"]
    msgs = {(s, d): np.zeros((S, n, U.shape[1])) for s, d, _, U, _ in network.edges}
    for t in range(S):  # messages at t from rates at t - delay, then the update to t + 1
        r[t] = np.tanh(x[t]) * keep if t >= start else np.tanh(x[t])
        for s, d, dl, U, _ in network.edges:
            value = r[t - dl, s] @ U if t >= dl else 0.0
            msgs[s, d][t] = intervened_message(msgs, t, (s, d), value, gains, held, start)
        if t == S - 1:
            break
        drive = np.einsum("anj,aij->ani", r[t], network.J)
        drive += network.B[:, None, :] * trials["pulses"][t].T[..., None]
        for s, d, _, _, V in network.edges:
            drive[d] += msgs[s, d][t] @ V.T
        x[t + 1] = x[t] + network.alpha * (drive - x[t]) + noise[t + 1]
    stored = lambda z: np.ascontiguousarray(np.moveaxis(z[burn:], 0, -2))  # noqa: E731
    return {
        "states": stored(x),
        "rates": stored(r),
        "messages": {k: np.ascontiguousarray(m[burn:].swapaxes(0, 1)) for k, m in msgs.items()},
        "inputs": np.ascontiguousarray(trials["pulses"][burn:].swapaxes(0, 1)),
    }


def _readout(rng, n_units: int, n_neurons: int, bin_ms: float):
    """Log-linear Poisson read-out ``b + C r`` of one region: weights (neurons, units) of std
    ``1 / sqrt(units)`` and baselines 4-12 spikes/s.

    Shape: ``C`` (n_neurons, n_units), ``b`` (n_neurons,) (log spikes per bin).
    """
    C = rng.normal(0.0, 1.0 / np.sqrt(n_units), (n_neurons, n_units))
    return C, np.log(rng.uniform(4.0, 12.0, n_neurons) * bin_ms / 1000.0)


def make_multiregion_rnn(
    *,
    seed: int = 0,
    n_trials: Sequence[int] = (300, 75, 75),
    n_time: int = 100,
    n_regions: int = 4,
    units_per_region: int = 50,
    neurons_per_region: int = 45,
    heldout_fraction: float = 0.2,
    pcs_per_region: int = 8,
    bin_ms: float = 10.0,
    gain: float = 2.5,
    alpha: float = 0.2,
    noise_std: float = 0.05,
    pulses_per_trial: float = 3.0,
    perturb: Optional[Perturbation] = None,
) -> DSIDData:
    """Build the member in memory (deterministic by ``seed``); see the module docstring.

    ``perturb`` simulates the same trials under an intervention, with the same spike draws and the
    unperturbed run's read-out and principal components (so files compare bin by bin). Effectome:
    the root total variance, over train, of each edge's input ``V m`` to its target (0 off-edge);
    delay_bins -1 off-edge (and on edges the perturbation silences).
    """
    n_trials = tuple(int(k) for k in n_trials)
    if len(n_trials) != 3 or min(n_trials) < 1:
        raise ValueError(f"n_trials: expected 3 positive counts, got {n_trials}")
    net = build_network(seed, n_regions, units_per_region, gain, alpha, noise_std=noise_std)
    trials = draw_trials(net, sum(n_trials), n_time, [seed, 1], pulses_per_trial=pulses_per_trial)
    base = simulate(net, trials)
    sim = base if perturb is None else simulate(net, trials, perturb)
    n_train, rng = n_trials[0], np.random.default_rng([seed, 2])
    n_out = min(max(int(round(heldout_fraction * neurons_per_region)), 1), neurons_per_region - 1)
    latents, rates, weights, bias = [], [[], []], [[], []], [[], []]
    for a in range(n_regions):
        flat = base["rates"][a, :n_train].reshape(-1, units_per_region)
        mean = flat.mean(0)
        pcs = np.linalg.svd(flat - mean, full_matrices=False)[2][:pcs_per_region].T
        latents.append((sim["rates"][a] - mean) @ pcs)
        C, b = _readout(rng, units_per_region, neurons_per_region, bin_ms)
        lam = np.exp(b + sim["rates"][a] @ C.T)
        for part, sl in enumerate((slice(None, -n_out), slice(-n_out, None))):  # held-in first
            rates[part].append(lam[..., sl])
            weights[part].append(C[sl])
            bias[part].append(b[sl])
    rates_all = np.concatenate(rates[0] + rates[1], -1)
    latents_all = np.concatenate(latents, -1)
    spikes = np.random.default_rng([seed, 3]).poisson(rates_all).astype(np.int32)
    area = np.concatenate(
        [np.full(neurons_per_region - n_out, a) for a in range(n_regions)]
        + [np.full(n_out, a) for a in range(n_regions)]
    )
    splits, start = {}, 0
    for split, k in zip(SPLITS, n_trials):
        sl = slice(start, start + k)
        splits[split] = SplitData(
            spikes=spikes[sl],
            truth_rates=rates_all[sl].astype(np.float32),
            truth_latents=latents_all[sl].astype(np.float32),
            truth_inputs=sim["inputs"][sl].astype(np.float32),
            truth_messages={f"{s}_{d}": m[sl] for (s, d), m in sim["messages"].items()},
        )
        start += k
    eff, delay = np.zeros((n_regions, n_regions)), -np.ones((n_regions, n_regions), np.int64)
    extra = {
        "truth/latent_area": np.repeat(np.arange(n_regions), pcs_per_region),
        "truth/rnn/J": net.J,
        "truth/rnn/B": net.B,
        "truth/rnn/alpha": np.float64(alpha),
        "truth/rnn/noise_std": np.float64(noise_std),
        "truth/readout/weights": np.concatenate(weights[0] + weights[1]),
        "truth/readout/bias": np.concatenate(bias[0] + bias[1]),
    }
    for s, d, dl, U, V in net.edges:
        contrib = sim["messages"][s, d][:n_train] @ V.T
        eff[s, d] = np.sqrt(contrib.reshape(-1, units_per_region).var(0).sum())
        delay[s, d] = dl if eff[s, d] > 0 else -1
        extra[f"truth/edges/{s}_{d}/U"], extra[f"truth/edges/{s}_{d}/V"] = U, V
        extra[f"truth/edges/{s}_{d}/delay_bins"] = np.int64(dl)
    return DSIDData(
        bin_ms=float(bin_ms),
        area=area.astype(np.int64),
        heldout=np.arange(area.size) >= area.size - n_regions * n_out,
        splits=splits,
        area_names=[f"R{a}" for a in range(n_regions)],
        effectome=eff,
        delay_bins=delay,
        extra=extra,
    )
