"""A full disk at each write of a run: the run stops with the disk's error, leaves no temporary and
no partial file, records that it failed where the disk lets it, and a rerun (or a resume, from its
last checkpoint) finishes once there is space again.

Every file a run writes goes through :func:`dsid.data.atomic.atomic_path`; the disk fills when the
chosen one is about to be created (its N-th write: ``last.ckpt`` is written more than once)."""

from __future__ import annotations

import errno
import json
import subprocess
from contextlib import contextmanager
from pathlib import Path

import h5py
import lightning_fabric.plugins.io.torch_io as torch_io
import pytest
import torch
import yaml

import dsid.data.atomic as atomic
from dsid.runs.status import read_status
from dsid.runs.train import train
from tests.test_bad_input_errors import DSID
from tests.test_run_dir_safety import tiny_cfg
from tests.test_training_e2e import TINY_OVERRIDES

pytestmark = pytest.mark.faults

# (file, which of its writes), every write of a run in the order it writes them
WRITES = [
    ("config.yaml", 1),
    ("status.json", 1),
    ("best.ckpt", 1),
    ("last.ckpt", 1),
    ("last.ckpt", 2),
    ("metrics_history.json", 1),
    ("inference.h5", 1),
    ("metrics.json", 1),
    ("rates.png", 1),
    ("training.svg", 1),
    ("status.json", 2),
]


class FullDisk:
    """Fail the ``nth`` atomic write of files named ``name`` with ENOSPC, as a full disk does."""

    def __init__(self, name: str, nth: int):
        self.name, self.nth, self.seen, self.written = name, nth, 0, []
        self._real = atomic.remove_stale_temporaries

    def __call__(self, path) -> None:  # runs when a write of ``path`` begins
        self.written.append(Path(path).name)
        if Path(path).name == self.name:
            self.seen += 1
            if self.seen == self.nth:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
        self._real(path)


def assert_every_file_whole(run_dir: Path) -> None:
    """No temporary file is left, and every file there is complete (it opens and parses)."""
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.endswith(".tmp")], files
    for p in files:
        if p.suffix == ".ckpt":
            assert "state_dict" in torch.load(p, map_location="cpu", weights_only=False)
        elif p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".yaml":
            yaml.safe_load(p.read_text())
        elif p.suffix == ".h5":
            with h5py.File(p, "r") as f:
                assert len(f.keys()) > 0


def _disk_fills(monkeypatch, tiny_lorenz, tmp_path, name, nth):
    full = FullDisk(name, nth)
    monkeypatch.setattr(atomic, "remove_stale_temporaries", full)
    run_dir = tmp_path / "run"
    cfg = tiny_cfg(tiny_lorenz, "trainer.max_epochs=3")
    error = None
    try:
        train(cfg, run_dir=str(run_dir))
    except OSError as err:
        error = err
    monkeypatch.setattr(atomic, "remove_stale_temporaries", full._real)  # space again
    assert full.seen >= nth, f"the run never wrote {name} {nth} times: {full.written}"
    return run_dir, cfg, error


def _check(monkeypatch, tiny_lorenz, tmp_path, name, nth):
    run_dir, cfg, error = _disk_fills(monkeypatch, tiny_lorenz, tmp_path, name, nth)
    assert_every_file_whole(run_dir)
    status = (read_status(run_dir) or {}).get("status")
    assert error is not None and error.errno == errno.ENOSPC, (
        f"a full disk at {name} went unnoticed"
    )
    if (name, nth) in (("config.yaml", 1), ("status.json", 1)):
        assert status is None  # the run never began: nothing to record
    elif (name, nth) == ("status.json", 2):
        assert status == "running"  # its last record could not be written: a killed run's state
    else:
        assert status == "failed" and "No space left" in read_status(run_dir)["error"]
    # with space again: resume from the last checkpoint when there is one, else start again
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.exists() and status != "finished":
        metrics = train(cfg, run_dir=str(run_dir), resume=True)
    else:
        metrics = train(
            tiny_cfg(tiny_lorenz, "trainer.max_epochs=3", "overwrite=true"), run_dir=str(run_dir)
        )
    assert metrics["epochs"] == 3 and read_status(run_dir)["status"] == "finished"
    assert_every_file_whole(run_dir)


@pytest.mark.parametrize("name,nth", WRITES, ids=[f"{n}-{k}" for n, k in WRITES])
def test_a_full_disk_at_any_write_loses_nothing(tiny_lorenz, tmp_path, monkeypatch, name, nth):
    _check(monkeypatch, tiny_lorenz, tmp_path, name, nth)


@pytest.mark.parametrize("failing_write", [1, 3])
def test_a_checkpoint_half_written_when_the_disk_fills_leaves_no_partial_file(
    tiny_lorenz, tmp_path, monkeypatch, failing_write
):
    real_save, calls = torch_io._atomic_save, [0]

    def disk_fills(checkpoint, path):
        calls[0] += 1
        if calls[0] == failing_write:  # half the file written, then the disk is full
            Path(path).write_bytes(b"\0" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(checkpoint, path)

    monkeypatch.setattr(torch_io, "_atomic_save", disk_fills)
    run_dir = tmp_path / "run"
    with pytest.raises(OSError, match="No space left"):
        train(tiny_cfg(tiny_lorenz, "trainer.max_epochs=4"), run_dir=str(run_dir))
    assert calls[0] == failing_write
    assert read_status(run_dir)["status"] == "failed"
    assert_every_file_whole(run_dir)


# a real full disk: a small tmpfs (needs the right to mount: root), each size a share of what a
# whole run writes, so the disk fills in a different phase of the run


@pytest.fixture(scope="module")
def run_size(tiny_lorenz, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    done = subprocess.run([DSID, "train", *_cli_args(tiny_lorenz, run_dir)], capture_output=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file())


def _cli_args(data, run_dir):
    return [
        "data=file",
        f"data.path={data}",
        "logger=csv",
        *TINY_OVERRIDES,
        "trainer.max_epochs=3",
        f"run_dir={run_dir}",
    ]


@contextmanager
def small_disk(where: Path, size: int):
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("share", [0.02, 0.3, 0.6, 0.9])
def test_a_real_full_disk_is_one_line_and_leaves_no_partial_file(
    tiny_lorenz, tmp_path, run_size, share
):
    with small_disk(tmp_path / "disk", max(4096, int(share * run_size))) as disk:
        run_dir = disk / "run"
        done = subprocess.run(
            [DSID, "train", *_cli_args(tiny_lorenz, run_dir)], capture_output=True, text=True
        )
        assert done.returncode == 1, done.stderr[-3000:]  # not a crash (139) nor success
        last = done.stderr.strip().splitlines()[-1]  # (Lightning's info lines may come before)
        assert last.startswith("error: OSError: [Errno 28] No space left on device: "), last
        assert f"'{run_dir}/" in last and ".tmp" not in last, last  # the file that did not fit
        assert "Traceback" not in done.stderr
        if run_dir.exists():
            assert_every_file_whole(run_dir)
