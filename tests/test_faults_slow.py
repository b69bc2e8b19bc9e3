"""Real process deaths (SIGKILL) during ``dsid fit`` and ``dsid train``, then resume: the result
equals the uninterrupted one. Slow (several processes, each importing torch): ``pytest -m slow``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dsid.data.synth_lorenz import write_lorenz_benchmark
from tests.test_fit_e2e import STALLING

pytestmark = [pytest.mark.slow, pytest.mark.faults]

DSID = str(Path(sys.executable).parent / "dsid")
SMALL = [  # small sizes; every start stalls, so the fit makes several starts
    *STALLING,
    "model.generator.hidden_size=16",
    "model.ic_size=8",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_lorenz_benchmark(
        tmp_path_factory.mktemp("faults") / "data.h5",
        seed=2,
        n_trials=(40, 12, 12),
        n_time=15,
        n_neurons=12,
        n_heldout=3,
    )


def _kill_when(process: subprocess.Popen, path: Path, timeout: float = 300.0) -> None:
    """SIGKILL ``process`` once ``path`` exists (a phase of the run reached)."""
    end = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, "the process ended before the phase to kill it in"
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _fit(args, out: Path) -> dict:
    done = subprocess.run([DSID, "fit", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "fit_report.json").read_text())


@pytest.mark.parametrize(
    "phase", ["starts/seed0/checkpoints/last.ckpt", "starts/seed1/config.yaml"]
)
def test_dsid_fit_killed_then_resumed_equals_the_uninterrupted_fit(data, tmp_path, phase):
    args = [str(data), "--budget", "60steps", *SMALL]
    whole = _fit([*args, "--out", str(tmp_path / "whole")], tmp_path / "whole")
    out = tmp_path / "killed"
    assert len(whole["starts"]) >= 2
    proc = subprocess.Popen([DSID, "fit", *args, "--out", str(out)], stdout=subprocess.DEVNULL)
    _kill_when(proc, out / phase)
    assert not (out / "fit_report.json").exists()
    resumed = _fit(["--resume", str(out)], out)
    for key in ("seed", "steps", "select"):
        assert [s[key] for s in resumed["starts"]] == [s[key] for s in whole["starts"]], key
    assert resumed["metrics"]["val/co_bps"] == whole["metrics"]["val/co_bps"]
