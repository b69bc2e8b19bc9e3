"""One in-process training on tiny synthetic data: loss drops, outputs are written, W&B reads
back."""

from pathlib import Path

import h5py
import numpy as np
import pytest
from omegaconf import OmegaConf

from dsid.cli import main as cli_main
from dsid.data.synth_lorenz import write_lorenz_benchmark
from dsid.data.tensor_file import DataFileError
from dsid.runs.config import compose
from dsid.runs.train import train
from dsid.runs.wandb_offline import read_offline_run

TINY_OVERRIDES = [
    "model.ic_size=8",
    "model.co_size=2",
    "model.factor_size=6",
    "model.encoder.hidden_size=16",
    "model.encoder.ci_size=4",
    "model.generator.hidden_size=16",
    "model.generator.controller_size=8",
    "trainer.max_epochs=12",
    "data.batch_size=20",
    "train.lr=0.01",
    "train.kl_ramp_steps=8",
    "train.l2_ramp_steps=8",
    "train.metrics_every_n_steps=8",
    "infer.n_samples=3",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


@pytest.fixture(scope="module")
def trained_run(tiny_lorenz, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    cfg = compose(["data=file", f"data.path={tiny_lorenz}", "logger=wandb", *TINY_OVERRIDES])
    metrics = train(cfg, run_dir=str(run_dir))
    return run_dir, metrics


def test_loss_drops_and_metrics_are_logged(trained_run):
    run_dir, metrics = trained_run
    logged = read_offline_run(run_dir)
    losses = [row["train/loss"] for row in logged["history"] if "train/loss" in row]
    assert len(losses) == 12
    assert losses[-1] < 0.9 * losses[0], losses
    for key in ("val/co_bps", "val/rate_r2", "val/latent_r2", "val/oracle_co_bps", "train/co_bps"):
        assert any(key in row for row in logged["history"]), key
        assert np.isfinite(metrics[key])
    assert logged["summary"]["final/val/co_bps"] == pytest.approx(metrics["val/co_bps"])
    assert logged["config"]["model"]["generator"]["hidden_size"] == 16
    assert metrics["val/co_bps"] > -0.5 and metrics["val/oracle_co_bps"] > 0


def test_outputs_written_and_infer_command_rewrites_them(trained_run, tiny_lorenz):
    run_dir, _ = trained_run
    assert (run_dir / "checkpoints" / "best.ckpt").exists()
    assert (run_dir / "figures" / "rates.png").exists() and (
        run_dir / "figures" / "latents.png"
    ).exists()
    path = run_dir / "inference.h5"
    path.unlink()
    assert cli_main(["infer", str(run_dir), "--samples", "2"]) == 0
    with h5py.File(path) as f:
        for split, n in (("train", 60), ("valid", 20), ("test", 20)):
            assert f[f"{split}/rates"].shape == (n, 20, 12)
            assert f[f"{split}/factors"].shape == (n, 20, 6)
            assert f[f"{split}/inferred_inputs"].shape == (n, 20, 2)
            assert np.all(f[f"{split}/rates"][()] > 0)


def test_infer_without_model_is_a_clear_error(tmp_path):
    (tmp_path / "config.yaml").write_text("data: {path: x.h5}\n")
    with pytest.raises(FileNotFoundError, match="no trained model"):
        cli_main(["infer", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="not a DSID run directory"):
        cli_main(["infer", str(tmp_path / "nothing")])


def test_run_config_names_its_data_by_absolute_path(
    trained_run, tiny_lorenz, tmp_path, monkeypatch
):
    run_dir, _ = trained_run
    cfg = OmegaConf.load(run_dir / "config.yaml")
    assert Path(cfg.data.path).is_absolute() and Path(cfg.data.path) == Path(tiny_lorenz).resolve()
    monkeypatch.chdir(tmp_path)  # another directory: `dsid infer` still reads the run's own data
    assert cli_main(["infer", str(run_dir.resolve()), "--samples", "1"]) == 0
    with h5py.File(run_dir / "inference.h5") as f:
        assert f["train/rates"].shape == (60, 20, 12)


def test_infer_on_other_data_checks_it_and_keeps_the_runs_own_inference(trained_run, tmp_path):
    run_dir, _ = trained_run
    own = (run_dir / "inference.h5").read_bytes()
    wide = write_lorenz_benchmark(
        tmp_path / "wide.h5", seed=3, n_trials=(6, 2, 2), n_time=20, n_neurons=20, n_heldout=3
    )
    with pytest.raises(DataFileError, match=r"wide.h5: field 'neurons': expected 12 neurons"):
        cli_main(["infer", str(run_dir), "--data", str(wide)])
    layout = write_lorenz_benchmark(
        tmp_path / "layout.h5", seed=3, n_trials=(6, 2, 2), n_time=20, n_neurons=12, n_heldout=5
    )
    with pytest.raises(DataFileError, match="neurons/heldout"):
        cli_main(["infer", str(run_dir), "--data", str(layout)])
    other = write_lorenz_benchmark(
        tmp_path / "other.h5", seed=3, n_trials=(6, 2, 2), n_time=20, n_neurons=12, n_heldout=3
    )
    assert cli_main(["infer", str(run_dir), "--data", str(other), "--samples", "1"]) == 0
    with h5py.File(run_dir / "inference_other.h5") as f:
        assert f["train/rates"].shape == (6, 20, 12)
    assert (run_dir / "inference.h5").read_bytes() == own  # the run's own inference is untouched
    with pytest.raises(ValueError, match="the run's own inference"):
        cli_main(
            ["infer", str(run_dir), "--data", str(other), "--out", str(run_dir / "inference.h5")]
        )
    with pytest.raises(ValueError, match="--out .*: only with --data"):
        cli_main(["infer", str(run_dir), "--out", str(tmp_path / "elsewhere.h5")])
    assert not (tmp_path / "elsewhere.h5").exists()


def test_a_mistyped_data_path_is_an_error_not_synthetic_data(tmp_path):
    bad = tmp_path / "goood.h5"
    cfg = compose(
        [f"data.path={bad}", *TINY_OVERRIDES, "logger=csv"]
    )  # data=lorenz (synth) by default
    with pytest.raises(FileNotFoundError, match="goood.h5: no such DSID tensor file"):
        train(cfg, run_dir=str(tmp_path / "run"))
    assert not bad.exists()


def test_metrics_history_and_time_to_targets(trained_run):
    import json

    from dsid.runs.hydra_train import time_to_targets_line
    from dsid.runs.report import first_time_targets_met

    run_dir, _ = trained_run
    history = json.loads((run_dir / "metrics_history.json").read_text())
    # 3 optimizer steps per epoch, metrics every 8 steps: at the first validation after steps 8, 16,
    # 24 and 32, at the first one, and after the last epoch
    assert [(r["epoch"], r["step"]) for r in history] == [
        (0, 3),
        (2, 9),
        (5, 18),
        (7, 24),
        (10, 33),
        (11, 36),
    ]
    assert (
        all(r["seconds"] >= 0 for r in history) and history[-1]["seconds"] >= history[0]["seconds"]
    )
    met = {
        "epoch": 3,
        "seconds": 12.5,
        "val/latent_r2": 0.95,
        "val/rate_r2": 0.9,
        "val/co_bps": 0.3,
        "val/oracle_co_bps": 0.32,
    }
    assert first_time_targets_met([{**met, "val/co_bps": 0.2}, met]) == (12.5, 3)
    assert first_time_targets_met([{**met, "val/rate_r2": 0.5}]) is None
    assert time_to_targets_line(run_dir).startswith("targets: ")


def test_end_of_run_table_shows_targets_only_for_the_demo():
    from dsid.runs.report import LORENZ_TARGETS, format_table

    metrics = {"val/co_bps": 0.2, "val/oracle_co_bps": 0.4, "val/rate_r2": 0.5, "train/bps": 0.1}
    plain = format_table(metrics)
    assert "PASS" not in plain and "MISS" not in plain and "target" not in plain
    assert all(k in plain for k in metrics)
    demo = format_table(metrics, LORENZ_TARGETS)
    assert "MISS" in demo and "val/latent_r2" in demo  # a target the run lacks is a miss


def test_third_party_noise_is_filtered_at_the_source():
    import logging
    import warnings

    from dsid.runs.quiet import quiet_third_party

    quiet_third_party()
    quiet_third_party()  # idempotent
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    assert logger.filters.count(logger.filters[-1]) == 1
    kept = []
    handler = logging.Handler()
    handler.emit = lambda record: kept.append(record.getMessage())
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        for msg in (
            "GPU available: False, used: False",
            "TPU available: False, using: 0 TPU cores",
            "💡 Tip: For seamless cloud logging ... try installing [litlogger]",
            "GPU available: True (cuda), used: True",
            "a real message",
        ):
            logger.info(msg)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    assert kept == ["GPU available: True (cuda), used: True", "a real message"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        quiet_third_party()
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", DeprecationWarning)
        warnings.warn("something else", UserWarning)
    assert [str(w.message) for w in caught] == ["something else"]


def test_a_wandb_run_prints_no_warning_about_retired_settings(tiny_lorenz, tmp_path, capfd):
    cfg = compose(
        ["data=file", f"data.path={tiny_lorenz}", "logger=wandb", *TINY_OVERRIDES]
        + ["trainer.max_epochs=1", "infer.n_samples=1"]
    )
    train(cfg, run_dir=str(tmp_path / "run"))
    out, err = capfd.readouterr()
    assert "anonymous" not in out + err
    assert read_offline_run(tmp_path / "run")["history"]  # it did log
