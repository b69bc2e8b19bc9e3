"""A full disk while a run writes a checkpoint: the run fails with the disk's error, records that
it failed, and leaves no truncated checkpoint and no temporary file."""

from __future__ import annotations

import errno
from pathlib import Path

import lightning_fabric.plugins.io.torch_io as torch_io
import pytest
import torch

from dsid.runs.status import read_status
from dsid.runs.train import train
from tests.test_run_dir_safety import tiny_cfg


@pytest.mark.parametrize("failing_write", [1, 3])
def test_a_full_disk_while_checkpointing_leaves_no_partial_file(
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
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    for ckpt in run_dir.rglob("*.ckpt"):  # what is there is complete
        assert "state_dict" in torch.load(ckpt, map_location="cpu", weights_only=False)
