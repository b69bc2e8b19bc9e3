"""SIGKILL in each phase of ``dsid train``, ``dsid infer --data`` and ``dsid nlb submit`` (real
processes), then ``dsid train resume=RUN_DIR`` or a rerun: the result equals the uninterrupted
one and no partial file is left. Slow (many processes, each importing torch): ``-m slow``."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from dsid.data.synth_lorenz import write_lorenz_benchmark
from dsid.runs.load import load_module
from dsid.runs.status import read_status
from dsid.training.weight_average import RAW_KEY
from tests.nlb.conftest import TINY_TRAIN
from tests.test_bad_input_errors import TINY
from tests.test_faults_slow import DSID, _kill_when
from tests.test_faults_slow import SMALL as FIT_SMALL

pytestmark = [pytest.mark.slow, pytest.mark.faults]

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny models: one thread, the same in every run
# 100 neurons x 100 bins: an inference file takes ~0.1 s to write, long enough to be killed in
LORENZ = dict(n_time=100, n_neurons=100, n_heldout=25)
TRAIN = [*TINY, "trainer.max_epochs=10", "train.metrics_every_n_steps=2", "data.batch_size=20"]
LAST = Path("checkpoints/last.ckpt")
# where to kill `dsid train`: glob patterns in the run directory that all match (`.NAME.*.tmp`: the
# temporary file of NAME's atomic write, i.e. NAME is being written)
TRAIN_PHASES = {
    "start": ["config.yaml"],
    "training": [str(LAST)],
    "last.ckpt write": ["checkpoints/.last.ckpt.*.tmp", str(LAST)],
    "best.ckpt write": ["checkpoints/.best.ckpt.*.tmp", str(LAST)],
    "final inference": [".inference.h5.*.tmp"],
    "report": ["figures/.*.tmp", "metrics.json"],
}


class Phase:
    """A phase of ``proc``'s run, for ``_kill_when``: ``exists()`` once every glob pattern matches
    under ``root``. A file being written lives for milliseconds: each call looks every 0.2 ms for
    1 s (``_kill_when`` sleeps between calls); on a match it stops the process (SIGSTOP) and
    continues it (SIGCONT) unless the match is still there: the kill lands inside the phase."""

    def __init__(self, proc: subprocess.Popen, root: Path, *patterns: str):
        self.proc, self.root, self.patterns = proc, Path(root), patterns

    def _found(self) -> bool:
        return all(any(self.root.glob(p)) for p in self.patterns)

    def exists(self) -> bool:
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:
            if self._found():
                os.kill(self.proc.pid, signal.SIGSTOP)
                _, code = os.waitpid(self.proc.pid, os.WUNTRACED)
                assert os.WIFSTOPPED(code), "the process ended before the phase to kill it in"
                if self._found():
                    return True
                os.kill(self.proc.pid, signal.SIGCONT)
            time.sleep(0.0002)  # some phases last a few milliseconds
        return False

    def __str__(self) -> str:
        return f"{self.root}/{' + '.join(self.patterns)}"


def _dsid(*args, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([DSID, *map(str, args)], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0 or not ok, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _kill_in(root: Path, patterns, *args) -> None:
    """Start ``dsid ARGS`` and SIGKILL it in the phase ``patterns`` (under ``root``) marks."""
    proc = subprocess.Popen([DSID, *map(str, args)], stdout=subprocess.DEVNULL, env=ENV)
    _kill_when(proc, Phase(proc, root, *patterns))


def _h5(path) -> dict:
    """Every dataset and attribute of an HDF5 file, by name."""
    out = {}
    with h5py.File(path, "r") as f:
        out.update({f"attrs/{k}": v for k, v in f.attrs.items()})
        f.visititems(lambda k, v: out.update({k: v[()]}) if isinstance(v, h5py.Dataset) else None)
    return out


def _assert_same_h5(path, ref) -> None:
    a, b = _h5(path), _h5(ref)
    assert a.keys() == b.keys() and any("rates" in k for k in a)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def _train_args(data: Path, run: Path) -> list:
    return ["train", "data=file", f"data.path={data}", f"run_dir={run}", *TRAIN]


@pytest.fixture(scope="module")
def lorenz(tmp_path_factory):
    """The data file and an uninterrupted `dsid train` run on it."""
    root = tmp_path_factory.mktemp("kill_train")
    data = write_lorenz_benchmark(root / "data.h5", seed=2, n_trials=(60, 20, 20), **LORENZ)
    _dsid(*_train_args(data, root / "whole"))
    return data, root / "whole"


def _weights(run: Path, name: str, entry: str):
    return torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=False)[entry]


@pytest.mark.parametrize("phase", list(TRAIN_PHASES))
def test_dsid_train_killed_in_a_phase_then_resumed_equals_the_uninterrupted_run(
    lorenz, tmp_path, phase
):
    data, whole = lorenz
    run = tmp_path / "run"
    _kill_in(run, TRAIN_PHASES[phase], *_train_args(data, run))
    assert (read_status(run) or {}).get("status") in (None, "running")
    assert (run / LAST).exists() == (phase != "start")  # the first one is written after epoch 1
    resumed = _dsid("train", f"resume={run}", ok=phase != "start")
    if phase == "start":  # nothing to resume: one line saying so, then the run again
        assert resumed.returncode == 2, resumed.stderr
        assert re.fullmatch(  # one line
            rf"error: {run}: no {LAST} to resume from .*start the run again with overwrite=true\n",
            resumed.stderr,
        ), resumed.stderr
        _dsid(*_train_args(data, run), "overwrite=true")
    status = read_status(run)
    assert status["status"] == "finished" and status["resumed"] == int(phase != "start")
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (whole, run))
    for key in ("val/co_bps", "val/rate_r2", "val/latent_r2", "train/bps", "epochs"):
        assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), key
    for name, entry in (
        ("last.ckpt", "state_dict"),
        ("last.ckpt", RAW_KEY),
        ("best.ckpt", "state_dict"),
    ):
        wa, wb = _weights(whole, name, entry), _weights(run, name, entry)
        assert wa.keys() == wb.keys() and len(wa) > 0
        for key in wa:
            torch.testing.assert_close(wb[key], wa[key], rtol=1e-5, atol=1e-7)
    for ckpt in (run / "checkpoints").glob("*.ckpt"):
        load_module(ckpt)
    assert not sorted(run.rglob("*.tmp"))  # what the killed write left is gone too


def test_dsid_infer_killed_while_writing_leaves_no_partial_file(lorenz, tmp_path):
    data, whole = lorenz
    run = shutil.copytree(whole, tmp_path / "run")
    other = write_lorenz_benchmark(tmp_path / "other.h5", seed=5, n_trials=(120, 40, 40), **LORENZ)
    _dsid("infer", run, "--data", other, "--out", tmp_path / "whole.h5")
    out = run / "inference_other.h5"
    _kill_in(run, [".inference_other.h5.*.tmp"], "infer", run, "--data", other)
    assert not out.exists() and any(run.glob(".inference_other.h5.*.tmp"))  # killed writing it
    _dsid("infer", run, "--data", other)
    _assert_same_h5(out, tmp_path / "whole.h5")


@pytest.fixture(scope="module")
def nlb_run(tmp_path_factory):
    """A tiny run (2 epochs) on a synthetic mc_maze-like file, test phase, 5 ms bins."""
    pytest.importorskip("nlb_tools")
    from dsid.nlb.prepare import prepare
    from dsid.nlb.synth import write_synthetic_nlb

    root = tmp_path_factory.mktemp("kill_nlb")
    nwb = write_synthetic_nlb("mc_maze", root / "synth", seed=0)["train"].parent
    data = prepare("mc_maze", nwb, 5, "test", root / "mc_maze_5_test.h5")
    run = root / "run"
    _dsid(
        "train",
        "data=file",
        f"data.path={data}",
        "logger=csv",
        f"run_dir={run}",
        "trainer.max_epochs=2",
        *TINY_TRAIN,
    )
    return run


def test_dsid_nlb_submit_killed_while_writing_leaves_no_partial_file(nlb_run, tmp_path):
    submit = ["nlb", "submit", nlb_run, "--no-wandb", "--out"]
    _dsid(*submit, tmp_path / "whole.h5")
    out = tmp_path / "submission.h5"
    _kill_in(tmp_path, [".submission.h5.*.tmp"], *submit, out)
    assert not out.exists() and any(tmp_path.glob(".submission.h5.*.tmp"))  # killed writing it
    _dsid(*submit, out)
    _assert_same_h5(out, tmp_path / "whole.h5")


def test_dsid_fit_killed_between_keeping_a_start_and_its_report_resumes_to_the_same_report(
    tmp_path,
):
    """The kept start is moved up into RUN_DIR, then the report is written: a kill in between."""
    data = write_lorenz_benchmark(
        tmp_path / "data.h5", seed=2, n_trials=(40, 12, 12), n_time=15, n_neurons=12, n_heldout=3
    )
    args = ["fit", data, "--budget", "30steps", *FIT_SMALL]
    _dsid(*args, "--out", tmp_path / "whole")
    out = tmp_path / "killed"
    _kill_in(out, [str(LAST), "fit_state.json"], *args, "--out", out)  # moved up, no report yet
    assert not (out / "fit_report.json").exists()
    _dsid("fit", "--resume", out)
    whole, resumed = (
        json.loads((d / "fit_report.json").read_text()) for d in (tmp_path / "whole", out)
    )
    assert [s["seed"] for s in resumed["starts"]] == [s["seed"] for s in whole["starts"]]
    assert resumed["metrics"]["val/co_bps"] == whole["metrics"]["val/co_bps"]
    assert not (out / "fit_state.json").exists() and not sorted(out.rglob("*.tmp"))
