"""Training progress: a bar on a terminal, plain lines in a log file."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytorch_lightning as pl

from dsid.runs.progress import ProgressLines, progress_callback, writes_to_terminal


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_only_on_a_terminal():
    assert isinstance(progress_callback(_Terminal()), pl.callbacks.TQDMProgressBar)
    assert isinstance(progress_callback(io.StringIO()), ProgressLines)
    closed = io.StringIO()
    closed.close()
    assert not writes_to_terminal(closed) and writes_to_terminal(_Terminal())


def _trainer(step: int, max_steps: int = -1, select=None):
    metrics = {} if select is None else {"val/select": select}
    return SimpleNamespace(
        global_step=step,
        current_epoch=step // 10,
        max_steps=max_steps,
        callbacks=[],
        callback_metrics=metrics,
        sanity_checking=False,
    )


def test_progress_lines_are_written_at_their_interval_with_the_best_validation():
    out = io.StringIO()
    cb = ProgressLines(every_s=3600, stream=out)
    cb.on_train_start(_trainer(0), None)
    for step, select in ((10, 0.5), (20, 0.4), (30, 0.45)):
        cb.on_validation_end(_trainer(step, select=select), None)
        cb.on_train_batch_end(_trainer(step), None, None, None, 0)
    assert out.getvalue() == ""  # not an hour yet
    cb.every_s = 0.0
    cb.on_train_batch_end(_trainer(31, max_steps=100), None, None, None, 0)
    cb.on_train_end(_trainer(32, max_steps=100), None)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue()
    assert lines[0].startswith("training: step 31 (epoch 3), ")
    assert "100 steps at most" in lines[0] and "best val/select 0.40000 at step 20" in lines[0]
    assert lines[1].startswith("training ended: step 32")
