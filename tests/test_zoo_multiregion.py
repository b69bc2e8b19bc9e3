"""Tests of the ``multiregion_rnn`` zoo member: file layout and multi-area truth, chaos, messages
and delays, and interventions (silencing a region, cutting or scaling an edge)."""

import inspect

import h5py
import numpy as np
import pytest

from dsid.data.tensor_file import SPLITS, load_tensor_file, write_tensor_file
from dsid.zoo.members import ZOO
from dsid.zoo.members.multiregion_rnn import (
    Perturbation,
    build_network,
    draw_trials,
    make_multiregion_rnn,
    simulate,
)

SMALL = dict(n_trials=(24, 8, 8), n_time=40, neurons_per_region=10)
EDGES = {"0_1": (2, 1), "1_0": (4, 1), "1_2": (0, 2), "2_3": (3, 1)}  # delay, rank


@pytest.fixture(scope="module")
def net():
    return build_network(0)


@pytest.fixture(scope="module")
def trials(net):
    return draw_trials(net, 16, 60, [0, 1])


@pytest.fixture(scope="module")
def base(net, trials):
    return simulate(net, trials)


def test_registered_with_full_size_defaults():
    assert "multiregion_rnn" in ZOO and ZOO["multiregion_rnn"].summary
    p = {k: v.default for k, v in inspect.signature(make_multiregion_rnn).parameters.items()}
    assert p["n_trials"] == (300, 75, 75) and p["n_time"] == 100 and p["bin_ms"] == 10.0
    assert p["n_regions"] == 4 and 40 <= p["neurons_per_region"] <= 50
    assert 40 <= p["units_per_region"] <= 60 and p["perturb"] is None


def test_file_has_the_multiarea_truth(tmp_path):
    d = load_tensor_file(
        write_tensor_file(tmp_path / "mr.h5", make_multiregion_rnn(seed=0, **SMALL)),
        require_splits=SPLITS,
    )
    assert d.n_areas == 4 and d.area_names == ["R0", "R1", "R2", "R3"]
    assert np.all(np.diff(d.heldout.astype(int)) >= 0), "held-in neurons first"
    for a in range(4):
        assert (d.area == a).sum() == 10 and d.heldout[d.area == a].sum() == 2
    want = np.zeros((4, 4), bool)
    for key, (delay, _) in EDGES.items():
        s, t = map(int, key.split("_"))
        want[s, t] = True
        assert d.delay_bins[s, t] == delay
    assert np.array_equal(d.effectome > 0, want) and np.all(d.delay_bins[~want] == -1)
    for split, k in zip(SPLITS, SMALL["n_trials"]):
        sd = d.splits[split]
        assert set(sd.truth_messages) == set(EDGES)
        for key, (_, rank) in EDGES.items():
            assert sd.truth_messages[key].shape == (k, 40, rank)
            assert sd.truth_messages[key].std() > 0.1
        assert sd.truth_inputs.shape == (k, 40, 4)
        assert set(np.unique(sd.truth_inputs)) == {0.0, 1.0}
        assert sd.truth_latents.shape == (k, 40, 32) and sd.truth_rates.shape == sd.spikes.shape
    hz = d.splits["train"].truth_rates.mean() * 1000 / d.bin_ms
    assert 5 <= hz <= 20
    with h5py.File(tmp_path / "mr.h5", "r") as f:
        assert np.array_equal(f["truth/latent_area"][()], np.repeat(np.arange(4), 8))
        assert f["truth/edges/1_2/U"].shape == (50, 2) and f["truth/rnn/J"].shape == (4, 50, 50)
        assert f["truth/readout/weights"].shape == (40, 50)


def test_readout_reproduces_the_file(net):
    """The stored read-out maps the simulated unit rates to the file's rates."""
    d = make_multiregion_rnn(seed=0, **SMALL)
    sim = simulate(net, draw_trials(net, sum(SMALL["n_trials"]), 40, [0, 1]))
    w, b = d.extra["truth/readout/weights"], d.extra["truth/readout/bias"]
    log_rates = np.stack([sim["rates"][a, :24] @ w[n] for n, a in enumerate(d.area)], -1)
    assert np.allclose(np.exp(b + log_rates), d.splits["train"].truth_rates, rtol=1e-4)


def test_chaotic_without_noise_and_bounded(net):
    quiet = draw_trials(net, 8, 500, [3])
    quiet["noise"][:] = 0.0
    quiet["pulses"][:] = 0.0
    nudged = dict(quiet, x0=quiet["x0"] + 1e-6 * np.random.default_rng(1).normal(size=(4, 8, 50)))
    a, b = simulate(net, quiet)["states"], simulate(net, nudged)["states"]
    sep = np.linalg.norm((a - b).transpose(1, 2, 0, 3).reshape(8, 500, -1), axis=-1)
    assert np.median(sep[:, -1] / sep[:, 0]) > 1e3  # nearby states separate
    assert np.abs(a).max() < 20  # bounded
    assert a[:, :, -100:].std(2).mean() > 0.5  # and not settling on a fixed point


def test_message_is_the_source_at_the_delay(net, base):
    rates = base["rates"]
    for s, d, delay, U, _ in net.edges:
        m = base["messages"][s, d]
        assert np.allclose(m[:, delay:], rates[s][:, : 60 - delay] @ U)
        # a linear read-out of the source's rates explains the message only at the true lag
        r2 = []
        for lag in range(7):
            x = rates[s][:, 6 - lag : 60 - lag].reshape(-1, 50)
            y = m[:, 6:].reshape(-1, m.shape[-1])
            x = np.c_[x, np.ones(len(x))]
            res = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
            r2.append(1 - (res**2).sum() / ((y - y.mean(0)) ** 2).sum())
        assert int(np.argmax(r2)) == delay and r2[delay] > 0.9999
        assert max(r2[:delay] + r2[delay + 1 :]) < 0.995


def test_silencing_a_region(net, trials, base):
    out = simulate(net, trials, Perturbation(silence_area=2))
    assert np.all(out["rates"][2] == 0) and np.all(out["messages"][2, 3] == 0)
    for a in (0, 1):  # upstream only of region 2: untouched, bin for bin
        assert np.array_equal(out["rates"][a], base["rates"][a])
    for key in ((0, 1), (1, 0), (1, 2)):
        assert np.array_equal(out["messages"][key], base["messages"][key])
    assert np.abs(out["rates"][3] - base["rates"][3]).mean() > 0.1  # its target changes
    # region 1 is in the loop with region 0: silencing it changes region 0 too
    loop = simulate(net, trials, Perturbation(silence_area=1))
    assert np.abs(loop["rates"][0] - base["rates"][0]).mean() > 0.1


def test_cutting_and_scaling_edges(net, trials, base):
    out = simulate(net, trials, Perturbation(cut_edges=[(2, 3)], edge_scale={(1, 2): 2.0}))
    assert np.all(out["messages"][2, 3] == 0)
    assert np.allclose(out["messages"][1, 2], 2 * base["messages"][1, 2])
    for a in (0, 1):
        assert np.array_equal(out["rates"][a], base["rates"][a])
    assert np.abs(out["rates"][3] - base["rates"][3]).mean() > 0.1
    assert np.array_equal(simulate(net, trials, Perturbation())["rates"], base["rates"])


def test_perturbation_from_a_bin(net, trials, base):
    t0 = 25
    out = simulate(net, trials, Perturbation(silence_area=1, from_bin=t0))
    # nothing changes before the intervention; messages of bin t0 on are 0 (in transit too)
    assert np.array_equal(out["rates"][:, :, :t0], base["rates"][:, :, :t0])
    assert np.all(out["rates"][1, :, t0:] == 0)
    assert np.all(out["messages"][1, 0][:, t0:] == 0) and np.all(out["messages"][1, 2][:, t0:] == 0)
    assert np.array_equal(out["messages"][1, 0][:, :t0], base["messages"][1, 0][:, :t0])
    # the first bin the messages act on is t0 + 1: region 0's rates at t0 are as before
    assert np.array_equal(out["rates"][0, :, t0], base["rates"][0, :, t0])
    assert np.abs(out["rates"][0, :, t0 + 1 :] - base["rates"][0, :, t0 + 1 :]).mean() > 0.05
    held = simulate(net, trials, Perturbation(clamp_edges=[(1, 2)], from_bin=t0))
    m = held["messages"][1, 2]
    assert np.array_equal(m[:, :t0], base["messages"][1, 2][:, :t0])
    assert np.array_equal(m[:, t0:], np.repeat(m[:, t0 - 1 : t0], m.shape[1] - t0, 1))
    assert np.array_equal(held["rates"][:2], base["rates"][:2])  # upstream of the edge
    with pytest.raises(ValueError, match="from_bin"):
        Perturbation(clamp_edges=[(1, 2)])


def test_perturbed_member_keeps_the_unperturbed_regions():
    plain = make_multiregion_rnn(seed=0, **SMALL)
    cut = make_multiregion_rnn(seed=0, perturb=Perturbation(silence_area=2), **SMALL)
    upstream = np.isin(plain.area, (0, 1))
    for split in SPLITS:
        p, c = plain.splits[split], cut.splits[split]
        assert np.array_equal(p.truth_rates[..., upstream], c.truth_rates[..., upstream])
        assert not np.allclose(
            p.truth_rates[..., plain.area == 3], c.truth_rates[..., cut.area == 3]
        )
    assert cut.effectome[2, 3] == 0 and cut.delay_bins[2, 3] == -1 and cut.effectome[1, 2] > 0


def test_region_count():
    assert [e[:2] for e in build_network(0, n_regions=3, n_candidates=2).edges] == [
        (0, 1),
        (1, 0),
        (1, 2),
    ]
    assert (3, 4) in [e[:2] for e in build_network(0, n_regions=5, n_candidates=2).edges]
    with pytest.raises(ValueError, match="n_regions"):
        build_network(0, n_regions=2)


def test_deterministic_by_seed(tmp_path):
    files = [
        write_tensor_file(tmp_path / f"{i}.h5", make_multiregion_rnn(seed=seed, **SMALL))
        for i, seed in enumerate((1, 1, 2))
    ]

    def contents(path):
        with h5py.File(path, "r") as f:
            names = []
            f.visit(names.append)
            return {k: f[k][()] for k in names if isinstance(f[k], h5py.Dataset)}

    one, again, other = map(contents, files)
    assert one.keys() == again.keys() and all(np.array_equal(one[k], again[k]) for k in one)
    assert not np.array_equal(one["train/spikes"], other["train/spikes"])
    assert not np.allclose(one["truth/rnn/J"], other["truth/rnn/J"])
