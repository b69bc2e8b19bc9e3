"""Tests of the synthetic multi-area generator (dsid.data.multiarea.synth)."""

import argparse

import h5py
import numpy as np
import pytest

from dsid.data.commands import register_cli
from dsid.data.multiarea.report import coupling_report
from dsid.data.multiarea.synth import synth_multiarea, synth_two_area_linear
from dsid.data.multiarea.system import DEFAULT_EDGES
from dsid.data.tensor_file import load_tensor_file

SMALL = dict(n_trials=(24, 8, 8), n_time=40)
L = 4  # default latent size per area


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return synth_multiarea(tmp_path_factory.mktemp("ma") / "ma.h5", seed=3, **SMALL)


def test_layout_edges_and_shapes(small):
    d = load_tensor_file(small, require_splits=("train", "valid", "test"))
    assert d.area_names == ["A0", "A1", "A2"] and d.bin_ms == 10.0 and d.n_areas == 3
    assert np.array_equal(d.area, np.repeat([0, 1, 2], 80))
    want_delay = -np.ones((3, 3), int)
    for s, t, dl, _, _ in DEFAULT_EDGES:
        want_delay[s, t] = dl
    assert np.array_equal(d.delay_bins, want_delay)
    assert np.array_equal(d.effectome > 0, want_delay >= 0)
    assert np.all(np.diag(d.effectome) == 0) and d.effectome[0, 2] == 0
    for a in range(3):
        h = d.heldout[d.area == a]
        assert h.sum() == 16 and (~h).any()
    for split, n in zip(("train", "valid", "test"), SMALL["n_trials"]):
        sd = d.splits[split]
        assert sd.spikes.shape == (n, 40, 240) and sd.truth_rates.shape == sd.spikes.shape
        assert sd.truth_latents.shape == (n, 40, 3 * L)
        assert {k: v.shape[-1] for k, v in sd.truth_messages.items()} == {
            "0_1": 1,
            "1_2": 2,
            "2_0": 1,
        }
        assert all(v.shape[:2] == (n, 40) for v in sd.truth_messages.values())
    hz = np.concatenate([s.truth_rates.ravel() for s in d.splits.values()]) * 1000 / d.bin_ms
    lo, hi = np.percentile(hz, [1, 99])
    assert 0.5 < lo and hi < 60, (lo, hi)


def test_deterministic_by_seed(small, tmp_path):
    again = synth_multiarea(tmp_path / "again.h5", seed=3, **SMALL)
    other = synth_multiarea(tmp_path / "other.h5", seed=4, **SMALL)
    with h5py.File(small) as a, h5py.File(again) as b, h5py.File(other) as c:
        names = []
        a.visit(lambda k: names.append(k) if isinstance(a[k], h5py.Dataset) else None)
        for k in names:
            assert np.array_equal(a[k][()], b[k][()]), k
        assert not np.array_equal(a["train/spikes"][()], c["train/spikes"][()])


def test_messages_recomputed_from_latents(small):
    d = load_tensor_file(small)
    with h5py.File(small) as f:
        edges = {
            k: (f[f"truth/edges/{k}/U"][()], int(f[f"truth/edges/{k}/delay_bins"][()]))
            for k in f["truth/edges"]
        }
    for split in ("train", "valid"):
        sd = d.splits[split]
        for key, msg in sd.truth_messages.items():
            src, dst = map(int, key.split("_"))
            U, dl = edges[key]
            assert dl == d.delay_bins[src, dst]
            x = sd.truth_latents[..., src * L : (src + 1) * L].astype(np.float64)
            np.testing.assert_allclose(msg[:, dl:], x[:, : 40 - dl] @ U, atol=1e-5)

            def corr(lag):  # stored message vs U^T x_src(t - lag), pooled
                a, b = msg[:, 8:, 0].ravel(), (x[:, 8 - lag : 40 - lag] @ U)[..., 0].ravel()
                return np.corrcoef(a, b)[0, 1]

            assert corr(dl) > 0.9999
            assert all(corr(lag) < 0.99 for lag in range(8) if lag != dl)


def test_options_hidden_driver_and_external_input(tmp_path):
    p = synth_multiarea(
        tmp_path / "h.h5", seed=1, unrecorded_driver=True, external_input=True, **SMALL
    )
    d = load_tensor_file(p)
    assert d.splits["train"].truth_latents.shape[-1] == 3 * L and d.effectome.shape == (3, 3)
    assert set(d.splits["train"].truth_messages) == {"0_1", "1_2", "2_0"}
    with h5py.File(p) as f:
        assert f["train/truth/hidden/latents"].shape == (24, 40, L)
        assert set(f["train/truth/hidden/messages"]) == {"H_0", "H_2"}
        u = f["train/truth/external_input"][()]
        assert u.shape == (24, 40, 1) and set(np.unique(u)) <= {0.0, 1.0} and u.sum() > 0


def test_two_area_linear_delay_is_recoverable(tmp_path):
    p = synth_two_area_linear(tmp_path / "lin.h5", delay=4, seed=0)
    d = load_tensor_file(p)
    assert (
        d.delay_bins.tolist() == [[-1, 4], [-1, -1]] and d.effectome[0, 1] > 0 == d.effectome[1, 0]
    )
    tr = d.splits["train"]
    assert tr.spikes.shape == (200, 50, 40) and tr.truth_messages["0_1"].shape == (200, 50, 1)
    x0, x1 = tr.truth_latents[..., :2], tr.truth_latents[..., 2:]

    def fit_r2(lag):  # x1(t+1) ~ [x1(t), x0(t - lag)]
        t0 = 10
        y = x1[:, t0 + 1 :].reshape(-1, 2)
        X = np.concatenate(
            [x1[:, t0:-1], x0[:, t0 - lag : 49 - lag], np.ones_like(x1[:, t0:-1, :1])], -1
        )
        X = X.reshape(-1, 5)
        res = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
        return 1 - res.var() / y.var()

    assert int(np.argmax([fit_r2(lag) for lag in range(9)])) == 4


def test_coupling_report_messages_matter_and_delay_identifiability():
    rep = coupling_report(n_trials=60, n_time=60)
    assert set(rep["areas"]) == {0, 1, 2}
    for r in rep["areas"].values():
        assert 0.5 < r["input_determined"] <= 1 and 0.5 < r["innovation_fraction"] <= 1
    assert {k: v["delay_bins"] for k, v in rep["edges"].items()} == {"0_1": 3, "1_2": 1, "2_0": 5}
    for e in rep["edges"].values():  # one bin off loses part of the message, two bins more
        assert 0 < e["one_bin_off_loss"] < e["two_bins_off_loss"] < 0.1
    kicked = coupling_report(n_trials=60, n_time=60, events_per_trial=3.0, event_size=1.0)
    for key, e in rep["edges"].items():  # private events pin the delays down more sharply
        assert kicked["edges"][key]["one_bin_off_loss"] > 2 * e["one_bin_off_loss"]
    for a, r in kicked["areas"].items():  # and leave less of each area to its incoming messages
        assert r["input_determined"] < rep["areas"][a]["input_determined"]


def test_private_events_are_stored(tmp_path):
    p = synth_multiarea(tmp_path / "ev.h5", seed=1, events_per_trial=4.0, event_size=1.0, **SMALL)
    with h5py.File(p) as f:
        ev = f["train/truth/private_input"][()]
    assert ev.shape == (24, 40, 3 * L)
    norms = np.linalg.norm(ev.reshape(24, 40, 3, L), axis=-1)
    kicks = norms[norms > 0]  # about 4 per trial and area, each of norm 1 (unless two share a bin)
    assert 0.7 * 4 * 24 * 3 < kicks.size < 1.3 * 4 * 24 * 3
    assert np.mean(np.isclose(kicks, 1.0, atol=1e-5)) > 0.9
    with h5py.File(synth_multiarea(tmp_path / "calm.h5", seed=1, **SMALL)) as f:
        assert "train/truth/private_input" not in f


def test_bad_edges_rejected(tmp_path):
    with pytest.raises(ValueError, match="edge"):
        synth_multiarea(tmp_path / "x.h5", edges=[(0, 0, 1, 1, 0.2)], **SMALL)
    with pytest.raises(ValueError, match="one edge per"):
        synth_multiarea(tmp_path / "x.h5", edges=[(0, 1, 1, 1, 0.2), (0, 1, 2, 1, 0.2)], **SMALL)
    with pytest.raises(ValueError, match="n_trials"):
        synth_multiarea(tmp_path / "x.h5", n_trials=(10, 5))
    for bad in ({"events_per_trial": -1.0}, {"event_size": -0.5}):
        with pytest.raises(ValueError, match="events_per_trial >= 0, event_size >= 0"):
            synth_multiarea(tmp_path / "x.h5", **bad, **SMALL)
    assert not (tmp_path / "x.h5").exists()


def test_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    top = parser.add_subparsers(dest="command")
    synth = top.add_parser("synth").add_subparsers(dest="kind")
    register_cli(top, synth)
    out = tmp_path / "cli.h5"
    args = parser.parse_args(
        [
            "synth",
            "multiarea",
            "--out",
            str(out),
            "--trials",
            "6,3,3",
            "--areas",
            "4",
            "--neurons-per-area",
            "60",
            "--seed",
            "2",
        ]
    )
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert (
        "A0->A1" in text
        and "A3->A0" in text
        and "one bin off" in text
        and "incoming messages" in text
    )
    d = load_tensor_file(out)
    assert d.n_areas == 4 and d.n_neurons == 240 and (d.delay_bins >= 0).sum() == 4


def test_interventions_rerun_the_same_trials(small, tmp_path):
    """Default edges 0->1, 1->2, 2->0: silencing area 1 from bin 20 leaves everything before bin 21
    (its own neurons: before bin 20) as it was and cuts its message; a held edge keeps its value of
    bin 19; the same neurons and spike draws."""
    from dsid.data.perturbation import Perturbation

    base = load_tensor_file(small)
    cut = load_tensor_file(
        synth_multiarea(
            tmp_path / "cut.h5", seed=3, perturb=Perturbation(silence_area=1, from_bin=20), **SMALL
        )
    )
    held = load_tensor_file(
        synth_multiarea(
            tmp_path / "held.h5",
            seed=3,
            perturb=Perturbation(clamp_edges=[(0, 1)], from_bin=20),
            **SMALL,
        )
    )
    own = base.area == 1
    for split in ("train", "valid"):
        b, c, h = base.splits[split], cut.splits[split], held.splits[split]
        assert np.array_equal(b.truth_rates[:, :21][..., ~own], c.truth_rates[:, :21][..., ~own])
        assert np.array_equal(b.truth_rates[:, :20], c.truth_rates[:, :20])
        assert np.all(c.truth_messages["1_2"][:, 20:] == 0)
        assert (
            np.abs(
                b.truth_rates[:, 22:][..., base.area == 2]
                - c.truth_rates[:, 22:][..., base.area == 2]
            ).mean()
            > 0
        )
        m = h.truth_messages["0_1"]
        assert np.array_equal(m[:, 20:], np.repeat(m[:, 19:20], m.shape[1] - 20, 1))
        assert np.array_equal(h.truth_messages["0_1"][:, :20], b.truth_messages["0_1"][:, :20])
    assert np.array_equal(base.heldout, cut.heldout)
