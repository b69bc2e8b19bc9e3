"""Tests of the synthetic data zoo (dsid.zoo.members): layout, truth, determinism, and each member's
point."""

import argparse
import inspect

import h5py
import numpy as np
import pytest

from dsid.data.synth_lorenz import make_lorenz_benchmark
from dsid.data.tensor_file import SPLITS, load_tensor_file, write_tensor_file
from dsid.zoo.commands import register_cli
from dsid.zoo.members import ZOO
from dsid.zoo.members.chaotic_rnn import largest_lyapunov, make_chaotic_rnn, simulate_rnn
from dsid.zoo.members.context_integration import make_context_integration
from dsid.zoo.members.high_rate import make_high_rate
from dsid.zoo.members.integrator import make_integrator
from dsid.zoo.members.low_rate import make_low_rate
from dsid.zoo.members.multiarea_feedback import write_multiarea_feedback
from dsid.zoo.members.multiregion_rnn import make_multiregion_rnn
from dsid.zoo.members.multiregion_task import make_multiregion_task
from dsid.zoo.members.sensory import make_sensory

TRIALS = (40, 12, 12)
T = 40
MAKERS = {  # tiny versions of every member
    "lorenz": lambda seed: make_lorenz_benchmark(seed=seed, n_trials=TRIALS, n_time=T),
    "chaotic_rnn": lambda seed: make_chaotic_rnn(
        seed=seed, n_trials=TRIALS, n_time=T, n_conditions=8
    ),
    "integrator": lambda seed: make_integrator(seed=seed, n_trials=TRIALS, n_time=T),
    "context_integration": lambda seed: make_context_integration(
        seed=seed, n_trials=TRIALS, n_time=T, n_neurons=30, n_heldout=8
    ),
    "sensory": lambda seed: make_sensory(seed=seed, n_trials=TRIALS, n_time=T),
    "low_rate": lambda seed: make_low_rate(seed=seed, n_trials=TRIALS, n_time=T),
    "high_rate": lambda seed: make_high_rate(seed=seed, n_trials=TRIALS, n_time=T),
    "multiregion_rnn": lambda seed: make_multiregion_rnn(
        seed=seed, n_trials=TRIALS, n_time=T, n_regions=3, neurons_per_region=10
    ),
    "multiregion_task": lambda seed: make_multiregion_task(
        seed=seed, n_trials=TRIALS, n_time=T, neurons_per_region=10
    ),
}


def write_tiny(name, path, seed=0):
    if name == "multiarea_feedback":
        return write_multiarea_feedback(
            path, seed=seed, n_trials=TRIALS, n_time=T, neurons_per_area=10
        )
    return write_tensor_file(path, MAKERS[name](seed))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Every member, tiny, written with seed 0 and loaded back."""
    root = tmp_path_factory.mktemp("zoo")
    return {
        name: load_tensor_file(write_tiny(name, root / f"{name}.h5"), require_splits=SPLITS)
        for name in ZOO
    }


def test_catalog():
    assert set(ZOO) == set(MAKERS) | {"multiarea_feedback"}
    for name, m in ZOO.items():
        assert m.name == name and m.summary and "\n" not in m.summary and callable(m.write)
    with pytest.raises(Exception):
        ZOO["lorenz"].name = "x"  # frozen


@pytest.mark.parametrize(
    "make", [make_chaotic_rnn, make_integrator, make_sensory, make_low_rate, make_high_rate]
)
def test_full_size_defaults_are_in_range(make):
    p = {k: v.default for k, v in inspect.signature(make).parameters.items()}
    train, valid, test = p["n_trials"]
    assert 500 <= train <= 1000 and 0.2 <= valid / train <= 0.3 and 0.2 <= test / train <= 0.3
    assert 100 <= p["n_time"] <= 140 and 40 <= p["n_neurons"] <= 120 and p["bin_ms"] == 10.0
    assert 0.2 <= p["n_heldout"] / p["n_neurons"] <= 0.25


def test_multiarea_full_size_defaults():
    p = {k: v.default for k, v in inspect.signature(write_multiarea_feedback).parameters.items()}
    assert (
        500 <= p["n_trials"][0] <= 1000
        and 100 <= p["n_time"] <= 140
        and 40 <= 3 * p["neurons_per_area"] <= 120
    )


@pytest.mark.parametrize("name", sorted(ZOO))
def test_layout_and_truth(tiny, name):
    d = tiny[name]
    assert d.bin_ms == 10.0 and set(d.splits) == set(SPLITS)
    assert 0.15 <= d.heldout.mean() <= 0.3
    assert np.all(np.diff(d.heldout.astype(int)) >= 0), "held-in neurons first"
    n, L = d.n_neurons, d.latent_size
    assert L >= 2
    for split, k in zip(SPLITS, TRIALS):
        sd = d.splits[split]
        assert sd.spikes.shape == (k, T, n) and np.issubdtype(sd.spikes.dtype, np.integer)
        assert sd.truth_rates.shape == sd.spikes.shape and sd.truth_latents.shape == (k, T, L)
        assert np.isfinite(sd.truth_rates).all() and sd.truth_rates.min() >= 0
        assert np.isfinite(sd.truth_latents).all() and sd.truth_latents.std() > 0
    # spikes are Poisson draws from the rates: the counts' mean follows the rates
    sd = d.splits["train"]
    assert abs(sd.spikes.mean() / sd.truth_rates.mean() - 1) < 0.1


@pytest.mark.parametrize("name", sorted(ZOO))
def test_deterministic_by_seed(tmp_path, name):
    spikes = [
        h5py.File(write_tiny(name, tmp_path / f"{i}.h5", seed), "r")["train/spikes"][()]
        for i, seed in enumerate((1, 1, 2))
    ]
    assert np.array_equal(spikes[0], spikes[1])
    assert not np.array_equal(spikes[0], spikes[2])


@pytest.mark.parametrize("name, lo, hi", [("low_rate", 1.0, 5.0), ("high_rate", 20.0, 100.0)])
def test_firing_rate_ranges(tiny, name, lo, hi):
    d = tiny[name]
    hz = d.splits["train"].truth_rates * 1000.0 / d.bin_ms
    assert lo <= hz.mean() <= hi
    per_neuron = hz.mean((0, 1))
    assert np.mean((per_neuron >= lo) & (per_neuron <= hi)) >= 0.8  # most neurons


def test_member_specific_fields(tiny):
    for split, k in zip(SPLITS, TRIALS):
        s = tiny["sensory"].splits[split]
        assert s.ext_inputs.shape == (k, T, 3) and s.ext_inputs.std() > 0
        i = tiny["integrator"].splits[split]
        assert i.truth_inputs.shape == (k, T, 2) and set(np.unique(i.truth_inputs)) <= {0.0, 1.0}
        assert i.condition.shape == (k,) and i.condition.min() >= 0
        c = tiny["chaotic_rnn"].splits[split]
        assert c.condition.shape == (k,) and 0 <= c.condition.min() and c.condition.max() < 8
    assert tiny["chaotic_rnn"].latent_size == 50
    assert tiny["chaotic_rnn"].splits["train"].truth_latents.max() <= 1.0  # tanh(x)
    assert all(tiny[n].splits["train"].ext_inputs is None for n in ZOO if n != "sensory")


def test_integrator_latent_follows_evidence(tiny):
    sd = tiny["integrator"].splits["train"]
    net = (sd.truth_inputs[..., 0] - sd.truth_inputs[..., 1]).sum(1)
    assert np.corrcoef(net, sd.truth_latents[:, -1, 0])[0, 1] > 0.8


def test_context_cue_selects_the_integrated_stream():
    d = make_context_integration(seed=0, n_trials=(300, 50, 50), n_time=60)
    sd = d.splits["train"]
    ctx, e1, e2 = (
        sd.truth_inputs[:, :, 0].sum(1) > 0,
        sd.truth_inputs[..., 2],
        sd.truth_inputs[..., 3],
    )
    c, a = sd.truth_latents[..., 0], sd.truth_latents[..., 1]
    assert np.all(np.abs(c[:, -1]) == 1) and np.all((c[:, -1] > 0) == ctx)  # the cue sets c
    for in_a, relevant, other in ((ctx, e1, e2), (~ctx, e2, e1)):
        final = a[in_a, -1]
        assert np.corrcoef(relevant[in_a].sum(1), final)[0, 1] > 0.6
        assert abs(np.corrcoef(other[in_a].sum(1), final)[0, 1]) < 0.3
    bound = np.abs(a).max()
    held = np.abs(a[:, :-1]) >= bound  # the bound is absorbing: a commitment holds
    assert held.any() and np.all(a[:, 1:][held] == a[:, :-1][held])


def test_context_integration_is_a_few_trials_many_neurons_member():
    p = inspect.signature(make_context_integration).parameters
    n_trials, n_neurons = p["n_trials"].default, p["n_neurons"].default
    assert sum(n_trials) <= 400 and n_neurons >= 150 and n_neurons > sum(n_trials) / 2
    assert 0.2 <= p["n_heldout"].default / n_neurons <= 0.25


def _lagged(ext, lags=25):
    k, t, e = ext.shape
    f = np.zeros((k, t, e * lags + 1))
    f[..., -1] = 1.0
    for lag in range(lags):
        f[:, lag:, lag * e : (lag + 1) * e] = ext[:, : t - lag]
    return f.reshape(k * t, -1)


def test_sensory_stimulus_explains_latents():
    d = make_sensory(seed=0, n_trials=(60, 15, 30), n_time=T)
    tr, te = d.splits["train"], d.splits["test"]
    x, y = _lagged(tr.ext_inputs), tr.truth_latents.reshape(-1, d.latent_size)
    w = np.linalg.solve(x.T @ x + 1e-2 * np.eye(x.shape[1]), x.T @ y)
    y_te = te.truth_latents.reshape(-1, d.latent_size)
    r2 = 1 - ((_lagged(te.ext_inputs) @ w - y_te) ** 2).sum(0) / ((y_te - y_te.mean(0)) ** 2).sum(0)
    assert r2.mean() > 0.6 and r2.min() > 0.3


def test_chaotic_rnn_nearby_states_diverge(tmp_path):
    d = make_chaotic_rnn(seed=0, n_trials=TRIALS, n_time=T, n_conditions=8)
    J, alpha = d.extra["truth/rnn/J"], float(d.extra["truth/rnn/alpha"])
    x0 = d.extra["truth/rnn/condition_states"]
    a = simulate_rnn(J, x0, 600, alpha)
    b = simulate_rnn(J, x0 + 1e-6 * np.random.default_rng(0).normal(size=x0.shape), 600, alpha)
    sep = np.linalg.norm(a - b, axis=-1)
    assert np.median(sep[:, -1] / sep[:, 0]) > 10
    assert largest_lyapunov(J[None], alpha)[0] > 0.01
    # and the trajectories are not collapsing onto a fixed point
    assert a[:, -100:].std(1).mean() > 0.1


def test_multiarea_feedback_effectome(tiny):
    d = tiny["multiarea_feedback"]
    assert d.n_areas == 3 and d.latent_size == 12
    want = np.zeros((3, 3), bool)
    want[0, 1] = want[1, 0] = want[1, 2] = True
    assert np.array_equal(d.effectome > 0, want)
    assert d.delay_bins[0, 1] == 3 and d.delay_bins[1, 0] == 4 and d.delay_bins[1, 2] == 2
    assert set(d.splits["train"].truth_messages) == {"0_1", "1_0", "1_2"}
    for a in range(3):
        assert (d.area == a).sum() == 10 and (~d.heldout[d.area == a]).any()


def test_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    top = parser.add_subparsers(dest="command")
    synth = top.add_parser("synth").add_subparsers(dest="kind")
    register_cli(top, synth)
    assert set(synth.choices) == set(ZOO) - {"lorenz"}
    out = tmp_path / "hr.h5"
    args = parser.parse_args(["synth", "high_rate", "--out", str(out), "--seed", "3"])
    assert args.func(args) == 0 and "high_rate" in capsys.readouterr().out
    d = load_tensor_file(out)
    assert d.n_neurons == 50 and d.splits["train"].n_trials == 800
