"""The final model of ``dsid fit --all-neurons``: after the held-out neurons have chosen the kept
start and scored it (co-smoothing), one more model with the same settings and seed reads every
neuron, the held-out ones included.

It trains on a copy of the data file with no neuron held out (``RUN_DIR/all_neurons.h5``, the
user's trial and unit ids kept) for at most as many optimizer steps as the kept start took, its
checkpoint chosen by the same validation objective (the likelihood of the validation trials'
spikes, now of every neuron), in ``RUN_DIR/all_neurons/``, an ordinary run directory
(``dsid.load_run``, ``Run.transform``, ``dsid train resume=...`` if its process dies). Its own
co-bps cannot be measured (no neuron is held out): the report's scores are the kept start's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from dsid.autofit.budget import Budget
from dsid.autofit.fit_config import budget_limits
from dsid.data.tensor_file import load_tensor_file, write_tensor_file
from dsid.runs.train import train

ALL_NEURONS_DIR = "all_neurons"
ALL_NEURONS_FILE = "all_neurons.h5"


def all_neurons_file(data_path: Path, out: Path) -> Tuple[Path, int]:
    """A copy of the DSID tensor file ``data_path`` with no neuron held out, written to ``out``;
    returns its path and number of neurons."""
    data = load_tensor_file(data_path, counts=False)
    every = dataclasses.replace(data, heldout=np.zeros_like(data.heldout))
    return write_tensor_file(out, every), int(data.n_neurons)


def train_all_neurons(
    data_path: Path,
    run_dir: Path,
    steps: int,
    config: Callable[[Path, List[str]], Dict[str, Any]],
    say: Callable[[str], None],
) -> Dict[str, Any]:
    """Train the all-neuron model for at most ``steps`` optimizer steps; ``config(path, limits)``
    composes the kept start's config on the data file ``path`` with the trainer ``limits``.
    Returns the report's ``all_neurons`` entry: run directory, neurons, step limit and the
    held-in bits/spike of its validation trials."""
    steps = max(1, int(steps))
    path, n = all_neurons_file(data_path, Path(run_dir) / ALL_NEURONS_FILE)
    folder = Path(run_dir) / ALL_NEURONS_DIR
    say(
        f"the final model on all neurons: the kept start's settings and seed, at most {steps} "
        f"steps, in {folder} ..."
    )
    metrics = train(config(path, budget_limits(Budget(steps=steps))), run_dir=str(folder))
    return {
        "run_dir": str(folder),
        "data": str(path),
        "neurons": n,
        "max_steps": steps,
        "val_bps": metrics.get("val/bps"),
    }


def all_neurons_lines(entry: Dict[str, Any]) -> List[str]:
    """The report's lines about the all-neuron model (none without one)."""
    if not entry:
        return []
    bps = entry.get("val_bps")
    return [
        f"final model on all {entry['neurons']} neurons (held-out ones too): {entry['run_dir']}",
        "  the kept start's settings and seed, at most its "
        f"{entry['max_steps']} steps; validation bits/spike of every neuron "
        + (f"{bps:.4f}" if isinstance(bps, (int, float)) else "n/a")
        + "; its co-bps cannot be measured (none held out): the scores above are the kept start's",
    ]
