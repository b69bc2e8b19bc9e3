"""A run directory belongs to one run: its status file (``running``, ``finished``, ``failed`` with
the error), a lock held while training, and the rules for starting, resuming or overwriting it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from dsid.data.atomic import write_json

STATUS_FILE = "status.json"
LOCK_FILE = ".lock"
# what a run writes into its directory, as names or glob patterns (``overwrite=true`` removes these,
# the temporary files a killed writer of one left, and nothing else): ``inference_*.h5`` are the
# sessions of a stitched run and ``dsid infer --data`` files, ``fit_report.json`` is ``dsid fit``'s
RUN_OUTPUTS = (
    "config.yaml",
    STATUS_FILE,
    "metrics.json",
    "metrics_history.json",
    "fit_report.json",
    "nlb_metrics.json",
    "checkpoints",
    "figures",
    "csv",
    "wandb",
    "inference.h5",
    "inference_*.h5",
)


class RunDirError(RuntimeError):
    """A run directory that cannot be used as asked (in use, already holds a run, nothing to
    resume)."""


def read_status(run_dir) -> Optional[Dict[str, Any]]:
    """The run's status record, or None for a directory without one."""
    path = Path(run_dir) / STATUS_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RunDirError(f"{path}: unreadable run status ({err})") from err


def write_status(run_dir, **fields: Any) -> Dict[str, Any]:
    """Merge ``fields`` into the status record, written atomically (a reader never sees half a
    file)."""
    record = {
        **(read_status(run_dir) or {}),
        **fields,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(Path(run_dir) / STATUS_FILE, record)
    return record


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def run_lock(run_dir) -> Iterator[None]:
    """Hold ``RUN_DIR/.lock`` while training; a lock left by a process that no longer runs (killed)
    is taken over, one held by a live process on this machine is an error naming it."""
    path = Path(run_dir) / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                holder = {}
            same_host = holder.get("host") == me["host"]
            if holder.get("pid") and (not same_host or _alive(int(holder["pid"]))):
                raise RunDirError(
                    f"{run_dir}: in use by process {holder['pid']} on {holder.get('host')} "
                    f"({path}); wait for it, or choose another run_dir"
                ) from None
            path.unlink(missing_ok=True)  # left by a process that died
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def run_outputs(run_dir) -> List[Path]:
    """The outputs of a run in ``run_dir``: :data:`RUN_OUTPUTS` and the hidden temporary files
    (``.NAME.*.tmp``) that a killed writer of one left."""
    run_dir = Path(run_dir)
    found = set()
    for pattern in RUN_OUTPUTS:
        found.update(run_dir.glob(pattern))
        found.update(run_dir.glob(f".{pattern}.*.tmp"))
    return sorted(found)


def remove_temporaries(run_dir) -> None:
    """Remove the hidden temporary files (``.NAME.*.tmp``) that killed writers of this run left,
    of any age: in the run directory, ``checkpoints/`` and ``figures/``. The caller holds the run's
    lock. Those of ``dsid infer --data`` (``inference_*.h5``), which takes no lock, are left to
    their cleanup by age."""
    run_dir = Path(run_dir)
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "figures"):
        for tmp in folder.glob(".*.tmp"):
            if not tmp.name.startswith(".inference_"):
                tmp.unlink(missing_ok=True)


def check_new_run(run_dir, overwrite: bool = False) -> None:
    """Refuse a ``run_dir`` that already holds a run (any of its outputs) unless ``overwrite``;
    removes nothing."""
    found = [p.name for p in run_outputs(run_dir)]
    if not found or overwrite:
        return
    status = (read_status(run_dir) or {}).get("status", "unknown")
    hint = (
        f"resume it with `dsid train resume={run_dir}`"
        if status in ("running", "failed")
        else "choose another run_dir"
    )
    raise RunDirError(
        f"{run_dir}: already holds a run (status: {status}; {', '.join(found)}); {hint}, "
        "or pass overwrite=true to replace it"
    )


def clear_run(run_dir) -> None:
    """Remove every output of an earlier run from ``run_dir`` (:func:`run_outputs`), nothing else.
    The caller holds the run's lock."""
    for target in run_outputs(run_dir):
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def prepare_new_run(run_dir, overwrite: bool = False) -> None:
    """Check that ``run_dir`` may take a new run (:func:`check_new_run`); with ``overwrite``, the
    earlier run's outputs are removed (never those of a run still training)."""
    check_new_run(run_dir, overwrite)
    if run_outputs(run_dir):
        with run_lock(run_dir):
            clear_run(run_dir)


def require_finished(run_dir, allow_unfinished: bool = False) -> None:
    """Refuse a run that has not finished (still training, failed, or killed) unless allowed; a
    directory without a status (older runs) passes."""
    status = read_status(run_dir)
    if status is None or allow_unfinished or status.get("status") == "finished":
        return
    state = status.get("status")
    extra = f": {status['error']}" if status.get("error") else ""
    raise RunDirError(
        f"{run_dir}: the run is {state}{extra}; its checkpoint is not the finished model "
        f"(resume it with `dsid train resume={run_dir}`, or pass --allow-unfinished)"
    )
