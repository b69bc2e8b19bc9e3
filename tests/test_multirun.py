"""`dsid train -m` (Hydra multirun) on tiny data: one run directory per job, all W&B runs in one
group named after the sweep."""

from omegaconf import OmegaConf

from dsid.cli import main as cli_main
from tests.test_training_e2e import TINY_OVERRIDES

FAST = [o for o in TINY_OVERRIDES if not o.startswith(("trainer.max_epochs", "infer.n_samples"))]


def run_record(run_dir):
    """The ``run`` record (group, display name) of the offline W&B run in ``run_dir``."""
    from wandb.proto import wandb_internal_pb2 as pb

    from dsid.runs.wandb_offline import iter_records

    (path,) = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    for raw in iter_records(path):
        rec = pb.Record()
        rec.ParseFromString(raw)
        if rec.WhichOneof("record_type") == "run":
            return rec.run
    raise AssertionError(f"{path}: no run record")


def test_multirun_sweep_groups_runs_in_wandb(tiny_lorenz, tmp_path):
    sweep = tmp_path / "2030-01-01" / "12-00-00_ablation"
    code = cli_main(
        [
            "train",
            "-m",
            "data=file",
            f"data.path={tiny_lorenz}",
            *FAST,
            "infer.n_samples=1",
            "logger=wandb",
            "seed=0,1",
            "trainer.max_epochs=1",
            f"hydra.sweep.dir={sweep}",
            "hydra.sweep.subdir=${hydra.job.num}",
        ]
    )
    assert code == 0
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1"]
    records = [run_record(job) for job in jobs]
    assert {r.run_group for r in records} == {"2030-01-01_12-00-00_ablation"}
    assert records[0].run_id != records[1].run_id
    assert [r.display_name.split()[0] for r in records] == ["default#0", "default#1"]
    for job, seed in zip(jobs, (0, 1)):
        assert (job / "checkpoints" / "best.ckpt").exists() and (job / "metrics.json").exists()
        assert OmegaConf.load(job / "config.yaml").seed == seed
