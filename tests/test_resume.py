"""A run directory belongs to one run: resume after SIGKILL equals the uninterrupted run, the status
file, the lock, refusing to overwrite, unfinished runs refused by `dsid infer`, corrupt
checkpoints."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dsid.cli import main as cli_main
from dsid.runs.config import compose
from dsid.runs.load import CheckpointError, load_module
from dsid.runs.status import RunDirError, read_status, run_lock
from dsid.runs.train import train
from dsid.training.weight_average import RAW_KEY
from tests.test_training_e2e import TINY_OVERRIDES

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 24
SCRIPT = """
import sys, time, torch
torch.set_num_threads(1)
import pytorch_lightning as pl
from dsid.runs.config import compose
from dsid.runs.load import CheckpointError, load_module
from dsid.runs.train import resume_run, train

class Slow(pl.Callback):  # epochs long enough to be killed in the middle of the run
    def on_train_epoch_end(self, trainer, module):
        time.sleep(0.25)

data, run_dir, mode = sys.argv[1:4]
if mode == "resume":
    resume_run(run_dir, callbacks=[Slow()])
else:
    train(compose(["data=file", f"data.path={data}", "logger=csv", *sys.argv[4:]]), run_dir=run_dir,
          callbacks=[Slow()])
"""


def start(data, run_dir, mode, overrides=()):
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(data), str(run_dir), mode, *overrides],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def weights(path, entry="state_dict"):
    return torch.load(path, map_location="cpu", weights_only=False)[entry]


@pytest.mark.usefixtures("one_thread")
def test_a_killed_run_resumes_to_the_same_result(tiny_lorenz, tmp_path):
    overrides = [*TINY_OVERRIDES, f"trainer.max_epochs={EPOCHS}", "train.metrics_every_n_steps=3"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    proc = start(tiny_lorenz, killed, "train", overrides)
    last = killed / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and not (
        last.exists() and torch.load(last, weights_only=False)["epoch"] >= 5
    ):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert read_status(killed)["status"] == "running"  # as the killed process left it
    assert not (killed / "metrics.json").exists()
    with pytest.raises(RunDirError, match="the run is running"):  # not a finished model
        cli_main(["infer", str(killed)])
    assert start(tiny_lorenz, whole, "train", overrides).wait() == 0
    resumed = start(tiny_lorenz, killed, "resume")
    assert resumed.wait() == 0, resumed.stderr.read()
    status = read_status(killed)
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (whole, killed))
    assert (
        status["status"] == "finished"
        and status["resumed"] == 1
        and status["epochs"] == a["epochs"] == EPOCHS
    )
    for key in ("val/co_bps", "val/rate_r2", "val/latent_r2", "train/bps"):
        assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), key
    for entry in ("state_dict", RAW_KEY):  # the weight average and the trained weights
        wa, wb = (weights(d / "checkpoints" / "last.ckpt", entry) for d in (whole, killed))
        assert wa.keys() == wb.keys() and len(wa) > 0
        for key in wa:
            torch.testing.assert_close(wb[key], wa[key], rtol=1e-5, atol=1e-7)
    histories = [json.loads((d / "metrics_history.json").read_text()) for d in (whole, killed)]
    assert [r["epoch"] for r in histories[1]] == [r["epoch"] for r in histories[0]]  # carried over
    assert histories[1][-1]["val/co_bps"] == pytest.approx(histories[0][-1]["val/co_bps"], rel=1e-5)
    assert cli_main(["infer", str(killed), "--samples", "1"]) == 0  # finished: inference allowed


def test_a_run_directory_holds_one_run(tiny_lorenz, tmp_path):
    cfg = compose(
        [
            "data=file",
            f"data.path={tiny_lorenz}",
            "logger=csv",
            *TINY_OVERRIDES,
            "trainer.max_epochs=2",
        ]
    )
    train(cfg, run_dir=str(tmp_path))
    assert read_status(tmp_path)["status"] == "finished" and not (tmp_path / ".lock").exists()
    config = (tmp_path / "config.yaml").read_text()
    with pytest.raises(RunDirError, match="already holds a run .status: finished.*overwrite=true"):
        train(cfg, run_dir=str(tmp_path))
    assert (tmp_path / "config.yaml").read_text() == config  # nothing of the first run was touched
    with pytest.raises(RunDirError, match="the run finished; there is nothing to resume"):
        train(cfg, run_dir=str(tmp_path), resume=True)
    with run_lock(tmp_path):  # another process training here
        (tmp_path / ".lock").write_text(
            json.dumps({"pid": os.getppid(), "host": os.uname().nodename})
        )
        with pytest.raises(RunDirError, match=f"in use by process {os.getppid()}"):
            train(
                compose(
                    [
                        "data=file",
                        f"data.path={tiny_lorenz}",
                        "logger=csv",
                        *TINY_OVERRIDES,
                        "trainer.max_epochs=2",
                        "overwrite=true",
                    ]
                ),
                run_dir=str(tmp_path),
            )
    before = (tmp_path / "checkpoints" / "best.ckpt").stat().st_mtime_ns
    train(
        compose(
            [
                "data=file",
                f"data.path={tiny_lorenz}",
                "logger=csv",
                *TINY_OVERRIDES,
                "trainer.max_epochs=2",
                "overwrite=true",
            ]
        ),
        run_dir=str(tmp_path),
    )
    assert (tmp_path / "checkpoints" / "best.ckpt").stat().st_mtime_ns != before


def test_a_failed_run_records_its_error(tiny_lorenz, tmp_path):
    cfg = compose(
        [
            "data=file",
            f"data.path={tiny_lorenz}",
            "logger=csv",
            *TINY_OVERRIDES,
            "trainer.max_epochs=2",
            "train.lr=1e6",
        ]
    )
    with pytest.raises(FloatingPointError):
        train(cfg, run_dir=str(tmp_path))
    status = read_status(tmp_path)
    assert status["status"] == "failed" and "non-finite training loss" in status["error"]
    assert not (tmp_path / ".lock").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    (tmp_path / ".lock").write_text(json.dumps({"pid": int(dead), "host": os.uname().nodename}))
    with run_lock(tmp_path):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / ".lock").exists()


def test_a_corrupt_checkpoint_is_named_and_the_last_one_used(tiny_lorenz, tmp_path):
    cfg = compose(
        [
            "data=file",
            f"data.path={tiny_lorenz}",
            "logger=csv",
            *TINY_OVERRIDES,
            "trainer.max_epochs=3",
        ]
    )
    train(cfg, run_dir=str(tmp_path))
    best, last = tmp_path / "checkpoints" / "best.ckpt", tmp_path / "checkpoints" / "last.ckpt"
    best.write_bytes(best.read_bytes()[:1000])  # truncated, as by a full disk
    with pytest.warns(
        UserWarning, match=r"best.ckpt: not a readable DSID checkpoint.*using .*last.ckpt"
    ):
        assert cli_main(["infer", str(tmp_path), "--samples", "1"]) == 0
    last.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"last.ckpt: not a readable DSID checkpoint"):
        load_module(last)


def test_dsid_train_leaves_nothing_outside_its_run_directory(tiny_lorenz, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "mine"
    args = [
        "train",
        "data=file",
        f"data.path={tiny_lorenz}",
        "logger=csv",
        *TINY_OVERRIDES,
        "trainer.max_epochs=1",
        f"run_dir={run_dir}",
    ]
    assert cli_main(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mine"
    ]  # no runs/<date>/..., no .log file
    assert (run_dir / "config.yaml").exists() and not list(run_dir.glob("*.log"))
    assert not (run_dir / ".hydra").exists()  # no second copy of the config
    with pytest.raises(SystemExit):  # a failed launch in the default location leaves nothing
        cli_main(["train", "data=file", f"data.path={tmp_path / 'missing.h5'}", "logger=csv"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


@pytest.mark.parametrize(
    "override,error,match",
    [
        (
            "model.factor_size=-1",
            "RegistryError",
            r"model.factor_size=-1: expected an integer >= 1",
        ),
        (
            "model.generator.hidden_size=0",
            "RegistryError",
            r"generator 'lfads': hidden_size=0: expected a positive",
        ),
        ("train.lr=0", "ValueError", r"train.lr=0.*expected a positive learning rate"),
        ("trainer.max_epochs=0", "ValueError", r"trainer.max_epochs=0: expected at least 1"),
    ],
)
def test_settings_that_cannot_train_are_refused(tiny_lorenz, tmp_path, override, error, match):
    cfg = compose(
        ["data=file", f"data.path={tiny_lorenz}", "logger=csv", *TINY_OVERRIDES, override]
    )
    with pytest.raises(Exception, match=match) as err:
        train(cfg, run_dir=str(tmp_path))
    assert type(err.value).__name__ == error
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "inference.h5").exists()


def test_gpu_trainer_without_a_gpu_says_so(tiny_lorenz, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = compose(["data=file", f"data.path={tiny_lorenz}", "logger=csv", "trainer=gpu"])
    with pytest.raises(RuntimeError, match="no CUDA GPU is visible.*use trainer=cpu"):
        train(cfg, run_dir=str(tmp_path))


def test_implausible_counts_give_a_warning(tmp_path):
    from dsid.data.datamodule import DSIDDataModule
    from dsid.data.synth_lorenz import make_lorenz_benchmark
    from dsid.data.tensor_file import write_tensor_file

    data = make_lorenz_benchmark(seed=1, n_trials=(6, 2, 2), n_time=10, n_neurons=5, n_heldout=1)
    data.splits["train"].spikes[0, 0, 0] = 10**6
    path = write_tensor_file(tmp_path / "big.h5", data)
    with pytest.warns(
        UserWarning, match=r"big.h5: field 'train/spikes': up to 1e\+06 counts in one 10 ms bin"
    ):
        DSIDDataModule(str(path)).setup()


def test_two_process_ddp_training_through_the_dsid_command(tiny_lorenz, tmp_path):
    """`dsid train ... trainer.strategy=ddp trainer.devices=2` on the CPU (gloo): the second process
    is started by re-running the command's overrides and joins; the first one owns the run
    directory. Two processes of 10 trials a batch follow the loss trajectory of one process of 20
    (other batches and random draws: within a tolerance, 10% on average, 25% at most: the first
    epoch's mean loss, over the initial transient, moves by about 20% with the random draws
    alone)."""
    import csv

    import h5py

    dsid = Path(sys.executable).parent / "dsid"
    common = [
        str(dsid),
        "train",
        "data=file",
        f"data.path={tiny_lorenz}",
        "logger=csv",
        *TINY_OVERRIDES,
        "trainer.max_epochs=8",
        "infer.n_samples=1",
        "train.metrics_every_n_steps=0",
    ]
    runs = {
        "ddp": [
            *common,
            "data.batch_size=10",
            "+trainer.strategy=ddp",
            "trainer.devices=2",
            "trainer.accelerator=cpu",
            f"run_dir={tmp_path / 'ddp'}",
        ],
        "one": [*common, f"run_dir={tmp_path / 'one'}"],
    }
    losses = {}
    for name, cmd in runs.items():
        done = subprocess.run(
            cmd,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert read_status(tmp_path / name)["status"] == "finished"
        with open(tmp_path / name / "csv" / "metrics.csv") as f:
            losses[name] = [
                float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")
            ]
        if name == "ddp":
            assert "GLOBAL_RANK: 1" in done.stderr + done.stdout  # a second process really trained
    with h5py.File(
        tmp_path / "ddp" / "inference.h5"
    ) as f:  # every trial once, from the first process
        assert [f[f"{s}/rates"].shape[0] for s in ("train", "valid", "test")] == [60, 20, 20]
    assert len(losses["ddp"]) == len(losses["one"]) == 8
    assert losses["ddp"][-1] < 0.8 * losses["ddp"][0]  # it learns
    gaps = [abs(a - b) / abs(b) for a, b in zip(losses["ddp"], losses["one"])]
    assert max(gaps) <= 0.25 and sum(gaps) / len(gaps) <= 0.1, (gaps, losses["ddp"], losses["one"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "one"]


@pytest.mark.parametrize(
    "env,launched",
    [
        ({}, False),
        ({"LOCAL_RANK": "0"}, False),
        ({"LOCAL_RANK": "1"}, True),
        ({"SLURM_PROCID": "3"}, True),
        ({"NODE_RANK": "1"}, True),
    ],
)
def test_the_first_process_owns_the_run(monkeypatch, env, launched):
    from dsid.runs.train import launched_process

    for name in ("LOCAL_RANK", "NODE_RANK", "RANK", "GROUP_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert launched_process() is launched


def test_a_resumed_run_logs_to_its_own_wandb_run(tmp_path):
    from dsid.runs.train import make_logger

    cfg = {"logger": {"kind": "wandb", "mode": "offline"}, "experiment_name": "x"}
    logger = make_logger(cfg, tmp_path, resume_id="abc123")
    assert logger._wandb_init["id"] == "abc123" and logger._wandb_init["resume"] == "allow"
    assert make_logger(cfg, tmp_path)._wandb_init["id"] is None  # a new run gets a new W&B run


def test_resume_takes_no_other_overrides_and_needs_a_checkpoint(tmp_path):
    with pytest.raises(
        SystemExit, match="continues a run with its own config; drop trainer.max_epochs=3"
    ):
        cli_main(["train", f"resume={tmp_path}", "trainer.max_epochs=3"])
    (tmp_path / "config.yaml").write_text("data: {path: x.h5}\n")
    with pytest.raises(SystemExit, match="no checkpoints/last.ckpt to resume from"):
        cli_main(["train", f"resume={tmp_path}"])
