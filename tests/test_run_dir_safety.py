"""An earlier run is removed only when the new one can start; `overwrite=true` removes every output
of a run and nothing else; `dsid infer --data` never silently replaces another file's inference."""

import hashlib
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from dsid.cli import main as cli_main
from dsid.data.synth_lorenz import write_lorenz_benchmark
from dsid.evaluation.inference import read_data_path
from dsid.runs.config import compose
from dsid.runs.load import load_run_config
from dsid.runs.status import RUN_OUTPUTS, prepare_new_run, read_status
from dsid.runs.train import train
from tests.test_training_e2e import TINY_OVERRIDES

pytestmark = pytest.mark.faults


def tiny_cfg(data, *overrides):
    return compose(
        [
            "data=file",
            f"data.path={data}",
            "logger=csv",
            *TINY_OVERRIDES,
            "trainer.max_epochs=2",
            *overrides,
        ]
    )


@pytest.fixture(scope="module")
def finished_run(tiny_lorenz, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finished")
    train(tiny_cfg(tiny_lorenz), run_dir=str(run_dir))
    return run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path):
    """A copy of the finished run for a test to change."""
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


def snapshot(run_dir):
    """Every file of a run directory with a digest of its contents."""
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(run_dir).rglob("*"))
        if p.is_file()
    }


def with_nan_spikes(src, dst):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        spikes = f["train/spikes"][()].astype(np.float32)
        spikes[0, 0, 0] = np.nan
        del f["train/spikes"]
        f["train/spikes"] = spikes
    return dst


@pytest.mark.parametrize(
    "override,match",
    [
        ("data.path=NAN", "NaN"),
        ("model.factor_size=0", "model.factor_size=0"),
        ("early_stopping.patience_steps=-1", "patience_steps=-1"),
        ("+trainer.no_such_setting=1", "trainer.no_such_setting"),
        ("+plots.no_such_setting=1", "no_such_setting"),
    ],
)
def test_a_run_that_cannot_start_leaves_the_earlier_one_whole(
    run_copy, tiny_lorenz, tmp_path, override, match
):
    before = snapshot(run_copy)
    if override == "data.path=NAN":
        override = f"data.path={with_nan_spikes(tiny_lorenz, tmp_path / 'bad_nan.h5')}"
    cfg = tiny_cfg(tiny_lorenz, "overwrite=true", override)
    with pytest.raises(Exception, match=match):
        train(cfg, run_dir=str(run_copy))
    assert snapshot(run_copy) == before
    assert read_status(run_copy)["status"] == "finished"


def test_overwrite_removes_every_output_of_a_run_and_nothing_else(tmp_path):
    run_dir = tmp_path / "run"
    outputs = [
        "config.yaml",
        "status.json",
        "metrics.json",
        "metrics_history.json",
        "fit_report.json",
        "nlb_metrics.json",
        "inference.h5",
        "inference_session1.h5",
        "inference_other.h5",
        ".metrics.json.x1y2.tmp",  # left by a killed writer
        "checkpoints/best.ckpt",
        "figures/rates.png",
        "csv/metrics.csv",
        "wandb/run/files.txt",
    ]
    mine = ["notes.txt", "my_inference.h5", "data/x.h5", "inference.h5.bak"]
    for name in outputs + mine:
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_text(name)
    prepare_new_run(run_dir, overwrite=True)
    left = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    assert left == sorted(mine)
    assert "inference_*.h5" in RUN_OUTPUTS


def test_overwrite_leaves_no_stale_output_beside_the_new_run(run_copy, tiny_lorenz, tmp_path):
    other = write_lorenz_benchmark(
        tmp_path / "other.h5", seed=3, n_trials=(6, 2, 2), n_time=20, n_neurons=12, n_heldout=3
    )
    assert cli_main(["infer", str(run_copy), "--data", str(other), "--samples", "1"]) == 0
    (run_copy / "fit_report.json").write_text("{}")
    (run_copy / "notes.txt").write_text("mine")
    assert (run_copy / "metrics_history.json").exists()
    train(tiny_cfg(tiny_lorenz, "overwrite=true", "train.metrics_every_n_steps=0"), str(run_copy))
    for stale in ("inference_other.h5", "fit_report.json", "metrics_history.json"):
        assert not (run_copy / stale).exists(), stale
    assert (run_copy / "notes.txt").read_text() == "mine"
    assert read_status(run_copy)["status"] == "finished" and (run_copy / "inference.h5").exists()


def test_infer_does_not_replace_the_inference_of_another_file_of_the_same_name(run_copy, tmp_path):
    a, b = tmp_path / "a" / "x.h5", tmp_path / "b" / "x.h5"
    for seed, path in ((3, a), (4, b)):
        path.parent.mkdir()
        write_lorenz_benchmark(
            path, seed=seed, n_trials=(6, 2, 2), n_time=20, n_neurons=12, n_heldout=3
        )
    out = run_copy / "inference_x.h5"
    assert cli_main(["infer", str(run_copy), "--data", str(a), "--samples", "1"]) == 0
    assert read_data_path(out) == str(a.resolve())
    written = out.read_bytes()
    both = rf"inference_x.h5: .*{re.escape(str(a))}, not of {re.escape(str(b))}; .*--overwrite"
    with pytest.raises(FileExistsError, match=both):
        cli_main(["infer", str(run_copy), "--data", str(b), "--samples", "1"])
    assert out.read_bytes() == written
    assert cli_main(["infer", str(run_copy), "--data", str(a), "--samples", "1"]) == 0  # a re-run
    elsewhere = tmp_path / "b_rates.h5"
    assert cli_main(["infer", str(run_copy), "--data", str(b), "--out", str(elsewhere)]) == 0
    assert read_data_path(elsewhere) == str(b.resolve())
    assert read_data_path(out) == str(a.resolve())
    assert cli_main(["infer", str(run_copy), "--data", str(b), "--overwrite"]) == 0
    assert read_data_path(out) == str(b.resolve())
    assert read_data_path(run_copy / "inference.h5") == load_run_config(run_copy)["data"]["path"]
