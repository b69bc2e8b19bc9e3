"""Writing HDF5 files atomically: readers see the old file or the complete new one, never a part."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py


@contextmanager
def atomic_h5(path) -> Iterator[h5py.File]:
    """Open a new HDF5 file for writing that replaces ``path`` only when the block ends without an
    error (a temporary file in the same folder, renamed); on an error nothing is left behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".h5.tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
