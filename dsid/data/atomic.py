"""Writing files atomically (HDF5, JSON): readers see the old file or the complete new one, never a
part."""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py

# temporary files older than this were left by a killed writer (a live write finishes much sooner)
STALE_SECONDS = 24 * 3600


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(path) -> None:
    """Remove the temporary files an earlier, killed write of ``path`` left (older than a day)."""
    path = Path(path)
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if time.time() - tmp.stat().st_mtime > STALE_SECONDS:
                tmp.unlink()
        except OSError:
            pass


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A hidden temporary path beside ``path`` to write; it replaces ``path`` only when the block
    ends without an error. On an error, an interrupt included, nothing is left behind, and what a
    killed writer left is removed later; an ``OSError`` (a full disk, say) names ``path``, not the
    temporary. The file gets the usual permissions (0666 less the umask), not the temporary file's
    owner-only ones."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as err:
        if err.errno is None:
            raise
        raise type(err)(err.errno, err.strerror, str(path)) from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_h5(path) -> Iterator[h5py.File]:
    """Open a new HDF5 file for writing that replaces ``path`` only when the block ends without an
    error (:func:`atomic_path`): readers see the old file or the complete new one."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            yield f


def write_json(path, obj, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, default=str))
    return Path(path)
