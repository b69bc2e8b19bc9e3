"""``dsid.fit`` on arrays: counts in memory become the run's own tensor file, then a usual fit.

The file is written into the run directory (``RUN_DIR/data.h5``), so the run stays complete on
its own: ``dsid infer``, ``dsid fit --resume`` and ``Run.transform`` find the data where the run's
config says it is. The trials and neurons keep the user's ids (:mod:`dsid.data.coordinates`), and
``Run.outputs`` returns them in the order of the arrays given.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from dsid.autofit.fit import fit
from dsid.autofit.start_dirs import prepare_fit_dir
from dsid.data.from_numpy import from_numpy
from dsid.data.tensor_file import write_tensor_file
from dsid.runs.status import RunDirError

DATA_FILE = "data.h5"
#: the keyword arguments that describe the arrays (dsid.data.from_numpy's)
DATA_OPTIONS = (
    "heldout",
    "area",
    "area_names",
    "ext_inputs",
    "condition",
    "valid_fraction",
    "test_fraction",
    "trial_ids",
    "unit_ids",
    "time_start_ms",
)


def is_array(data: Any) -> bool:
    """Whether ``data`` is counts in memory (a NumPy array or anything array-like) rather than the
    path of a tensor file."""
    return isinstance(data, np.ndarray) or (
        data is not None and not isinstance(data, (str, Path)) and hasattr(data, "__array__")
    )


def fit_arrays(
    spikes,
    *,
    bin_ms: Optional[float] = None,
    out: Optional[str] = None,
    overrides: Sequence[str] = (),
    seed: int = 0,
    **kwargs,
) -> Dict[str, Any]:
    """Fit binned counts ``spikes`` (trials, T, N) of ``bin_ms`` ms bins: the arrays and the
    options of :func:`dsid.data.from_numpy.from_numpy` (``heldout``, ``area``, ``ext_inputs``,
    ``condition``, ``trial_ids``, ``unit_ids``, ``time_start_ms``, the split fractions; trials are
    split with ``seed``) are written to ``RUN_DIR/data.h5``, then :func:`dsid.autofit.fit.fit`
    runs on that file with the other keyword arguments (``budget``, ``verbose``, ...)."""
    if bin_ms is None:
        raise ValueError("dsid.fit on arrays: bin_ms, the bin width in ms, is needed")
    options = {k: kwargs.pop(k) for k in DATA_OPTIONS if k in kwargs}
    run_dir = Path(out or f"runs/fit/{time.strftime('%Y-%m-%d_%H-%M-%S')}_arrays")
    path = run_dir / DATA_FILE
    overwrite = any(o.replace(" ", "").lower() == "overwrite=true" for o in overrides)
    if path.exists() and not overwrite:
        raise RunDirError(
            f"{run_dir}: already holds the data of an earlier fit ({DATA_FILE}); choose another "
            "out, or pass overwrite=true to replace it"
        )
    if not overwrite:  # a folder holding a run or a fit is refused before the data is written
        prepare_fit_dir(run_dir, overwrite=False)  # (without overwrite it only checks)
    data = from_numpy(spikes, bin_ms=bin_ms, seed=seed, **options)  # bad arrays: before any write
    run_dir.mkdir(parents=True, exist_ok=True)
    write_tensor_file(path, data)
    return fit(path, out=str(run_dir), overrides=overrides, seed=seed, **kwargs)


def fit_data(data, **kwargs) -> Dict[str, Any]:
    """:func:`fit_arrays` for counts in memory, :func:`dsid.autofit.fit.fit` for a file's path."""
    return fit_arrays(data, **kwargs) if is_array(data) else fit(data, **kwargs)
