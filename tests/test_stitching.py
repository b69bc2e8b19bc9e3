"""Multi-session stitching: batches from one session each, bad sessions refused, a two-session fit
on tiny data runs, its loss drops, and metrics are reported per session."""

import csv

import h5py
import numpy as np
import pytest
import torch

from dsid.cli import main as cli_main
from dsid.data.multisession import MultiSessionDataModule, SessionBatchSampler, session_of
from dsid.data.synth_lorenz import make_lorenz_benchmark
from dsid.data.tensor_file import DataFileError, write_tensor_file
from dsid.models.readin import readin_maps
from dsid.registry import OBSERVATIONS
from dsid.runs.config import compose
from dsid.runs.load import load_module
from dsid.runs.train import train

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def session_file(tmp_path, name, seed, n_neurons, n_time=20, n_heldout=2, **kwargs):
    data = make_lorenz_benchmark(
        seed=seed,
        n_trials=(40, 10, 10),
        n_time=n_time,
        n_neurons=n_neurons,
        n_heldout=n_heldout,
        **kwargs,
    )
    return write_tensor_file(tmp_path / name, data)


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sessions")
    return [session_file(tmp, "a.h5", 11, 10), session_file(tmp, "b.h5", 12, 7)]


def test_batches_come_from_one_session_each(two_sessions):
    dm = MultiSessionDataModule([str(p) for p in two_sessions], batch_size=16)
    dm.setup()
    seen = {0: 0, 1: 0}
    order = []
    for batch in dm.train_dataloader():
        s = session_of(batch)
        assert batch["spikes"].shape[-1] == (10 if s == 0 else 7)
        seen[s] += batch["spikes"].shape[0]
        order.append(s)
    assert seen == {0: 40, 1: 40}
    assert order != sorted(order)  # sessions interleave
    assert [session_of(b) for b in dm.val_dataloader()] == [0, 1]
    info = dm.info
    assert info["n_sessions"] == 2 and [len(s["heldout"]) for s in info["sessions"]] == [10, 7]


def test_sampler_reshuffles_every_epoch():
    sampler = SessionBatchSampler([5, 3], batch_size=2, shuffle=True, seed=0)
    a, b = list(sampler), list(sampler)
    assert len(a) == len(sampler) == 5 and a != b
    assert sorted(i for batch in a for i in batch) == list(range(8))


def test_mixed_session_batch_is_refused():
    with pytest.raises(ValueError, match="mixes sessions"):
        session_of({"session": torch.tensor([0, 1])})


def test_mismatched_bins_are_refused_naming_file_and_field(tmp_path, two_sessions):
    short = session_file(tmp_path, "short.h5", 13, 6, n_time=15)
    with pytest.raises(DataFileError) as err:
        MultiSessionDataModule([str(two_sessions[0]), str(short)]).setup()
    msg = str(err.value)
    assert str(short) in msg and "'train/spikes'" in msg and "T=20 bins" in msg and "T=15" in msg


def test_mismatched_bin_width_is_refused(tmp_path, two_sessions):
    data = make_lorenz_benchmark(seed=14, n_trials=(4, 2, 2), n_time=20, n_neurons=5, n_heldout=1)
    data.bin_ms = 20.0
    other = write_tensor_file(tmp_path / "wide.h5", data)
    with pytest.raises(DataFileError, match="'attrs/bin_ms': expected 10.0 ms like session 0"):
        MultiSessionDataModule([str(two_sessions[0]), str(other)]).setup()


def test_bad_session_lists_and_unsupported_data(tmp_path, two_sessions):
    with pytest.raises(ValueError, match="non-empty list"):
        MultiSessionDataModule([])
    with pytest.raises(ValueError, match="listed once"):
        MultiSessionDataModule([str(two_sessions[0])] * 2)
    calcium = session_file(tmp_path, "ca.h5", 15, 6, observation="calcium")
    dm = MultiSessionDataModule(
        [str(calcium), str(two_sessions[0])],
        observation_check=OBSERVATIONS.get("zero_inflated_gamma"),
    )
    dm.setup()  # calcium traces and counts are both non-negative: accepted
    with pytest.raises(
        ValueError, match="'train/spikes': the gamma observation model needs"
    ) as err:
        MultiSessionDataModule([str(calcium)], observation_check=OBSERVATIONS.get("gamma")).setup()
    assert str(calcium) in str(err.value) and "zeros" in str(err.value)


def test_readin_maps_use_shared_conditions_when_present(two_sessions):
    dm = MultiSessionDataModule([str(p) for p in two_sessions])
    dm.setup()
    maps = readin_maps(dm.sessions, 4)  # no conditions: per-session PCA
    assert [w.shape for w, _ in maps] == [(8, 4), (5, 4)]
    for sess in dm.sessions:
        sess.splits["train"].condition = np.arange(40) % 4
    maps = readin_maps(dm.sessions, 3)  # shared conditions: regression onto the joint PCs
    for (w, b), sess in zip(maps, dm.sessions):
        x = sess.splits["train"].spikes[..., ~sess.heldout].astype(float)
        cond = sess.splits["train"].condition
        psth = np.concatenate([x[cond == k].mean(0) for k in range(4)])
        np.testing.assert_allclose((psth @ w + b).std(0), 1.0, rtol=1e-6)
        np.testing.assert_allclose((psth @ w + b).mean(0), 0.0, atol=1e-8)


TINY = [
    "model.ic_size=8",
    "model.co_size=2",
    "model.factor_size=6",
    "+model.readin_size=6",
    "model.encoder.hidden_size=16",
    "model.encoder.ci_size=4",
    "model.generator.hidden_size=16",
    "model.generator.controller_size=8",
    "trainer.max_epochs=10",
    "data.batch_size=20",
    "train.lr=0.01",
    "train.kl_ramp_steps=8",
    "train.l2_ramp_steps=8",
    "train.metrics_every_n_steps=10",
    "infer.n_samples=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=csv",
]


def test_two_session_fit_runs_and_loss_drops(two_sessions, tmp_path):
    files = ",".join(str(p) for p in two_sessions)
    cfg = compose(["data=multisession", f"data.files=[{files}]", *TINY])
    metrics = train(cfg, run_dir=str(tmp_path))
    with open(tmp_path / "csv" / "metrics.csv") as f:
        losses = [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
    assert len(losses) == 10 and losses[-1] < 0.9 * losses[0], losses
    for key in (
        "val/s0/co_bps",
        "val/s1/co_bps",
        "val/co_bps",
        "val/s0/rate_r2",
        "val/s1/latent_r2",
        "seconds_per_epoch",
        "n_parameters",
    ):
        assert np.isfinite(metrics[key]), key
    assert metrics["val/co_bps"] == pytest.approx(
        (metrics["val/s0/co_bps"] + metrics["val/s1/co_bps"]) / 2
    )
    assert (tmp_path / "inference_session0.h5").exists() and (
        tmp_path / "inference_session1.h5"
    ).exists()
    best = load_module(tmp_path / "checkpoints" / "best.ckpt")
    assert best.model.n_sessions == 2  # a checkpoint alone rebuilds the stitched model


def test_stitching_needs_a_stitchable_model(two_sessions, tmp_path):
    files = ",".join(str(p) for p in two_sessions)
    cfg = compose(["data=multisession", f"data.files=[{files}]", "model.name=ndt", *TINY])
    with pytest.raises(
        ValueError, match="stitch several sessions .data.files. with model.name=sae"
    ):
        train(cfg, run_dir=str(tmp_path))


def test_infer_command_on_a_stitched_run_uses_each_sessions_maps(two_sessions, tmp_path):
    files = ",".join(str(p) for p in two_sessions)
    short = [o if not o.startswith("trainer.max_epochs") else "trainer.max_epochs=2" for o in TINY]
    train(compose(["data=multisession", f"data.files=[{files}]", *short]), run_dir=str(tmp_path))
    for s in (0, 1):
        (tmp_path / f"inference_session{s}.h5").unlink()
    assert cli_main(["infer", str(tmp_path), "--samples", "2"]) == 0
    for s, n_neurons in ((0, 10), (1, 7)):
        with h5py.File(tmp_path / f"inference_session{s}.h5") as f:
            for split, n in (("train", 40), ("valid", 10), ("test", 10)):
                assert f[f"{split}/rates"].shape == (n, 20, n_neurons)
                assert np.all(f[f"{split}/rates"][()] > 0)
    with pytest.raises(ValueError, match="stitches 2 sessions"):
        cli_main(["infer", str(tmp_path), "--data", str(two_sessions[0])])
