"""The architecture sweep and ``dsid compare``: table, plot, offline W&B run, clear errors."""

import json
import time

import pytest
from omegaconf import OmegaConf

from dsid.cli import main as cli_main
from dsid.runs.compare import describe_model, find_runs, format_table, run_row
from dsid.runs.config import compose, config_dir
from dsid.runs.wandb_offline import read_offline_run

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


TINY = [
    "model.ic_size=8",
    "model.co_size=2",
    "model.factor_size=6",
    "model.encoder.ci_size=4",
    "trainer.max_epochs=2",
    "data.batch_size=30",
    "train.metrics_every_n_steps=4",
    "infer.n_samples=1",
    "trainer.enable_model_summary=false",
    "logger=csv",
    "trainer.max_time=null",
]


def fake_run(root, name, model, metrics):
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(OmegaConf.to_yaml({"experiment_name": "x", "model": model}))
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def test_sweep_covers_encoders_generators_and_count_observations():
    cfg = compose(["experiment=compare_architectures"])
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        hydra_cfg = hydra_compose(
            config_name="train",
            overrides=["experiment=compare_architectures"],
            return_hydra_config=True,
        )
    params = hydra_cfg.hydra.sweeper.params
    assert set(params["encoder@model.encoder"].split(",")) == {"bigru", "transformer"}
    assert set(params["generator@model.generator"].split(",")) == {"lfads", "node", "linear"}
    assert set(params["observation@model.observation"].split(",")) == {
        "poisson",
        "negative_binomial",
    }
    assert cfg.trainer.max_time


def test_table_and_labels(tmp_path):
    a = fake_run(
        tmp_path,
        "a",
        {
            "name": "sae",
            "encoder": {"name": "bigru"},
            "generator": {"name": "node"},
            "observation": {"name": "poisson"},
        },
        {
            "val/co_bps": 0.31,
            "val/rate_r2": 0.9,
            "val/latent_r2": 0.95,
            "n_parameters": 12345,
            "seconds_per_epoch": 2.5,
        },
    )
    b = fake_run(
        tmp_path,
        "b",
        {"name": "ndt", "observation": {"name": "negative_binomial"}},
        {"val/co_bps": 0.2},
    )
    rows = [run_row(a), run_row(b)]
    table = format_table(rows)
    assert "bigru+node/poisson" in table and "ndt/negative_binomial" in table
    assert "12,345" in table and "0.3100" in table and "2.50" in table
    assert table.splitlines()[3].count(" - ") >= 2  # missing metrics print as '-'
    assert (
        describe_model(
            {
                "model": {
                    "name": "stitched",
                    "encoder": {"name": "bigru"},
                    "generator": {"name": "lfads"},
                    "observation": {"name": "poisson"},
                }
            }
        )
        == "stitched:bigru+lfads/poisson"
    )
    assert find_runs([tmp_path]) == [a, b]


def test_not_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a DSID run directory"):
        find_runs([tmp_path])


def test_multirun_sweep_then_compare(tiny_lorenz, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    code = cli_main(
        [
            "train",
            "-m",
            "experiment=compare_architectures",
            f"data.path={tiny_lorenz}",
            "data.synth=null",
            "encoder@model.encoder=bigru",
            "generator@model.generator=lfads,linear",
            "observation@model.observation=negative_binomial",
            f"hydra.sweep.dir={sweep}",
            *TINY,
        ]
    )
    assert code == 0
    runs = find_runs([sweep])
    assert len(runs) == 2
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["seconds_per_epoch"] > 0 and metrics["n_parameters"] > 1000
    capsys.readouterr()
    out = tmp_path / "cmp"
    assert cli_main(["compare", str(sweep), "--out", str(out), "--sort", "co_bps"]) == 0
    printed = capsys.readouterr().out
    assert (
        "bigru+lfads/negative_binomial" in printed and "bigru+linear/negative_binomial" in printed
    )
    assert "s/epoch" in printed and "latent R2" in printed
    assert (out / "compare.png").stat().st_size > 1000 and (out / "compare.csv").exists()
    for _ in range(100):  # the W&B service may still be writing the offline run file
        logged = read_offline_run(out)
        if logged["history"]:
            break
        time.sleep(0.2)
    row = logged["history"][-1]  # W&B flattens the logged table and image into their fields
    assert row["compare/table/_type"] == "table-file" and row["compare/table/nrows"] == 2
    assert row["compare/plot/_type"] == "image-file"
