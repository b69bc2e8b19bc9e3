"""A tiny PBT with local Ray (2 members, a few epochs): the exported best run works with
`dsid infer`, a crashed member (absurd learning rate: NaN loss) is replaced, an interrupted search
resumes where it stopped. Slow: run with `-m slow`."""

import json
import os
import signal

import h5py
import pytest

from dsid.cli import main as cli_main
from dsid.runs.config import compose
from dsid.tuning.callbacks import read_history
from dsid.tuning.pbt import run_pbt

pytestmark = pytest.mark.slow

TINY = [
    "model.ic_size=8",
    "model.co_size=2",
    "model.factor_size=6",
    "model.encoder.hidden_size=16",
    "model.encoder.ci_size=4",
    "model.generator.hidden_size=16",
    "model.generator.controller_size=8",
    "data.batch_size=20",
    "train.kl_ramp_steps=4",
    "train.l2_ramp_steps=4",
    "train.metrics_every_n_steps=4",
    "infer.n_samples=2",
    "tune=pbt",
    "tune.population=2",
    "tune.perturbation_interval=2",
    "tune.resources_per_trial.cpu=0.5",
    "tune.num_cpus=1",
    "tune.verbose=0",
]


def tiny_cfg(data, *extra):
    return compose(["data=file", f"data.path={data}", *TINY, *extra])


def by_trial(history):
    out = {}
    for row in history:
        out.setdefault(row["trial"], []).append(row)
    return out


def wandb_runs(run_dir):
    """(group, job_type) of every offline W&B run under run_dir/wandb."""
    from wandb.proto import wandb_internal_pb2 as pb

    from dsid.runs.wandb_offline import iter_records

    runs = []
    for path in sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb")):
        for raw in iter_records(path):
            rec = pb.Record()
            rec.ParseFromString(raw)
            if rec.WhichOneof("record_type") == "run":
                runs.append((rec.run.run_group, rec.run.job_type, rec.run.run_id))
                break
    return runs


def test_pbt_exports_a_usable_run_and_replaces_a_crashed_member(tiny_lorenz, tmp_path):
    run_dir = tmp_path / "tune"
    # synchronous decisions: tiny members start seconds apart but train an epoch in a fraction of
    # one, so member 0 could otherwise finish before member 1 even starts (and crashes)
    cfg = tiny_cfg(
        tiny_lorenz, "tune.total_epochs=6", "tune.members=[{},{lr: 1000.0}]", "tune.synch=true"
    )
    summary = run_pbt(cfg, run_dir=run_dir)

    # the crashed member (NaN loss at its first steps) was replaced by a copy of member 0 and
    # trained on to the end
    rows = by_trial(read_history(run_dir / "history.jsonl"))
    crashed = [t for t, r in rows.items() if r[0]["member"] == 1][0]
    assert rows[crashed][0]["failed"] and "non-finite" in rows[crashed][0]["error"]
    healthy_after = [r for r in rows[crashed] if not r["failed"]]
    assert healthy_after and healthy_after[-1]["epoch"] == 6
    assert healthy_after[-1]["hp"]["lr"] < 1.0  # explored from member 0's, not the absurd one
    decisions = read_history(run_dir / "decisions.jsonl")
    assert any(d["trial"] == crashed and d["donor_member"] == 0 for d in decisions)
    assert all(r[-1]["epoch"] == 6 for r in rows.values())

    # the winner is an ordinary run directory that `dsid infer` accepts
    best = run_dir / "best"
    assert summary["best_dir"] == str(best) and summary["interrupted"] is False
    for name in ("config.yaml", "checkpoints/best.ckpt", "inference.h5", "metrics.json"):
        assert (best / name).exists(), name
    from omegaconf import OmegaConf

    exported = OmegaConf.to_container(OmegaConf.load(best / "config.yaml"))
    assert exported["train"]["lr"] == pytest.approx(summary["best"]["hp"]["lr"])
    assert "tune" not in exported
    metrics = json.loads((best / "metrics.json").read_text())
    assert "val/co_bps" in metrics and "pbt/val/recon_heldin" in metrics
    (best / "inference.h5").unlink()
    assert cli_main(["infer", str(best), "--samples", "2"]) == 0
    with h5py.File(best / "inference.h5") as f:
        assert f["valid/rates"].shape == (20, 20, 12)

    # the trajectories plot, and one W&B run per member plus the summary, all in one group
    assert (run_dir / "pbt_trajectories.png").stat().st_size > 10_000
    runs = wandb_runs(run_dir)
    assert len({g for g, _, _ in runs}) == 1
    assert sorted(j for _, j, _ in runs) == ["pbt-member", "pbt-member", "pbt-summary"]


def test_interrupted_search_resumes_where_it_stopped(tiny_lorenz, tmp_path):
    from ray import tune

    class Interrupt(tune.Callback):
        """Ctrl+C once both members have reported epoch 3 (checkpoints exist at epoch 2)."""

        def __init__(self):
            self.epochs = {}

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.epochs[trial.trial_id] = result.get("epoch", 0)
            if (
                len(self.epochs) == 2
                and min(self.epochs.values()) >= 3
                and not self.__dict__.get("sent")
            ):
                self.sent = True
                os.kill(os.getpid(), signal.SIGINT)

    run_dir = tmp_path / "tune"
    cfg = tiny_cfg(tiny_lorenz, "tune.total_epochs=8", "tune.export=true")
    first = run_pbt(cfg, run_dir=run_dir, callbacks=[Interrupt()])
    assert first["interrupted"] and not (run_dir / "best").exists()
    before = read_history(run_dir / "history.jsonl")
    n_before = len(before)
    assert max(r["epoch"] for r in before) < 8

    # `dsid tune run_dir=... tune.resume=true` (the saved config is reused)
    assert cli_main(["tune", f"run_dir={run_dir}", "tune.resume=true", "tune.num_cpus=1"]) == 0
    after = read_history(run_dir / "history.jsonl")[n_before:]
    rows = by_trial(after)
    assert set(rows) == {r["trial"] for r in before}  # the same members, not new ones
    for trial, r in rows.items():
        # continued from a checkpoint (epoch 2 or later), not from scratch
        assert r[0]["epoch"] >= 3, (trial, [x["epoch"] for x in r])
        assert r[-1]["epoch"] == 8
    assert (run_dir / "best" / "checkpoints" / "best.ckpt").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] is False


def test_tune_on_stitched_sessions_exports_every_session(tmp_path):
    from dsid.data.synth_lorenz import make_lorenz_benchmark
    from dsid.data.tensor_file import write_tensor_file

    files = [
        write_tensor_file(
            tmp_path / f"s{i}.h5",
            make_lorenz_benchmark(
                seed=20 + i, n_trials=(40, 10, 10), n_time=20, n_neurons=n, n_heldout=2
            ),
        )
        for i, n in ((0, 10), (1, 7))
    ]
    run_dir = tmp_path / "tune"
    cfg = compose(
        [
            "data=multisession",
            f"data.files=[{files[0]},{files[1]}]",
            "+model.readin_size=6",
            *TINY,
            "tune.total_epochs=2",
        ]
    )
    summary = run_pbt(cfg, run_dir=run_dir)
    best = run_dir / "best"
    assert summary["best_dir"] == str(best)
    metrics = json.loads((best / "metrics.json").read_text())
    assert "val/s0/co_bps" in metrics and "val/s1/co_bps" in metrics
    for s, n_neurons in ((0, 10), (1, 7)):
        with h5py.File(best / f"inference_session{s}.h5") as f:
            assert f["valid/rates"].shape == (10, 20, n_neurons)
    assert cli_main(["infer", str(best), "--samples", "2"]) == 0


def test_tune_spreads_members_over_a_two_node_ray_cluster(tiny_lorenz, tmp_path):
    """A head node and a second node process on this machine (one CPU each), joined by address: the
    two members (one CPU each) must train on different nodes."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        run_dir = tmp_path / "tune"
        cfg = tiny_cfg(
            tiny_lorenz,
            "tune.total_epochs=2",
            f"tune.address={cluster.address}",
            "tune.resources_per_trial.cpu=1",
            "tune.synch=true",
            "tune.export=false",
        )
        run_pbt(cfg, run_dir=run_dir)
        rows = [r for r in read_history(run_dir / "history.jsonl") if not r["failed"]]
        assert {r["member"] for r in rows} == {0, 1}
        assert len({r["node"] for r in rows}) == 2, rows  # both nodes trained members
    finally:
        ray.shutdown()
        cluster.shutdown()
