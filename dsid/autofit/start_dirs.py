"""Where the starts of a ``dsid fit`` run: ``OUT/starts/seed<k>/`` each, the kept one moved up into
``OUT`` at the end, so ``OUT`` is an ordinary run directory (``dsid infer OUT``, ``dsid.load_run``)
and the other starts stay beside it for comparison."""

from __future__ import annotations

import shutil
from pathlib import Path

from dsid.autofit.fit_state import STATE_FILE
from dsid.runs.status import RunDirError, prepare_new_run

STARTS_DIR = "starts"


def start_dir(out: Path, seed: int) -> Path:
    """The run directory of the start with ``seed``."""
    return Path(out) / STARTS_DIR / f"seed{seed}"


def prepare_fit_dir(out: Path, overwrite: bool = False) -> None:
    """Check that ``out`` may take a new fit (as :func:`~dsid.runs.status.prepare_new_run` does for
    one run); with ``overwrite``, an earlier fit's starts are removed too."""
    out = Path(out)
    starts, state = out / STARTS_DIR, out / STATE_FILE
    if state.exists() and not overwrite:
        raise RunDirError(
            f"{out}: holds an unfinished fit ({STATE_FILE}); continue it with "
            f"`dsid fit --resume {out}`, or pass overwrite=true to replace it"
        )
    if starts.exists() and not overwrite:
        prepare_new_run(out)  # a run there is named first; otherwise the starts are
        raise RunDirError(
            f"{out}: already holds the starts of an earlier fit ({starts}); choose another --out, "
            "or pass overwrite=true to replace it"
        )
    prepare_new_run(out, overwrite=overwrite)
    if starts.exists():
        shutil.rmtree(starts)
    if state.exists():
        state.unlink()


def keep_start(out: Path, kept: Path) -> None:
    """Move the run in ``kept`` (a start's directory) up into ``out``; remove ``out/starts`` when
    no other start is left in it."""
    out, kept = Path(out), Path(kept)
    clash = [p.name for p in kept.iterdir() if (out / p.name).exists()]
    if clash:
        raise RunDirError(f"{out}: already holds {', '.join(sorted(clash))}")
    for entry in kept.iterdir():
        entry.rename(out / entry.name)
    kept.rmdir()
    starts = out / STARTS_DIR
    if starts.exists() and not any(starts.iterdir()):
        starts.rmdir()
