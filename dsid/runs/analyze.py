"""``dsid analyze RUN``: what a trained multi-area run says about communication, with or without
ground truth: every edge's strength, delay, lag range and rank (beside the linear baseline's), what
silencing each area is predicted to do to every other, the recovery scores when the file has truth,
and figures; kept in ``RUN/analysis/``.

Silencing matrix: entry (s, d) is the predicted root mean square change of area d's rates when
every message leaving area s is silenced from ``from_bin`` on (default: the middle of the trial;
bins after it), over trials and d's neurons, relative to the standard deviation of d's inferred
rates over the same bins: a scale-free size of s's influence on d (the diagonal is left out:
the model does not predict what silencing does to an area's own neurons).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from dsid.data.atomic import write_json
from dsid.evaluation.figures.style import save_figures
from dsid.evaluation.multiarea.edges import edge_scores
from dsid.evaluation.multiarea.plots import plot_delays, plot_effectomes, plot_silencing
from dsid.evaluation.multiarea.spread import seed_spread, spread_lines
from dsid.evaluation.multiarea.summary import (
    communication,
    communication_lines,
    edge_readouts,
    fmt,
)
from dsid.runs.perturb import perturb_run

ANALYSIS_FILE = "analysis.json"


def silencing_matrix(run, data, split: str, from_bin: int) -> np.ndarray:
    """(A, A) silencing matrix (see the module docstring) on ``data``, the run's data; nan on the
    diagonal and for areas that send nothing."""
    model = run.model
    A = model.n_areas
    out = np.full((A, A), np.nan)
    for s in range(A):
        if not model.coupling.outgoing(s):
            continue
        res = perturb_run(run, "silence", area=s, from_bin=from_bin, split=split, data=data)
        after = slice(from_bin + 1, None)
        delta, base = res["rates_delta"][:, after], res["rates_base"][:, after]
        for d in range(A):
            cols = res["unit_area"] == d
            if d == s or not cols.any():
                continue
            spread = float(np.sqrt(base[..., cols].var((0, 1)).mean()))
            rms = float(np.sqrt((delta[..., cols] ** 2).mean()))
            out[s, d] = rms / spread if spread > 0 else np.nan
    return out


def _check_multiarea(run) -> None:
    if not hasattr(run.model, "coupling"):
        raise ValueError(
            f"{run.run_dir}: a {type(run.model).__name__} model has no areas to analyse "
            "(dsid analyze needs a multi-area run: model=multiarea)"
        )


def _same_data(run, other, data) -> None:
    """``other`` must be a multi-area run of the same trials as ``run`` (``data``)."""
    _check_multiarea(other)
    theirs = other.sessions()[0]
    mine, their_spikes = data.splits["valid"].spikes, theirs.splits["valid"].spikes
    if np.shape(mine) != np.shape(their_spikes) or not np.array_equal(mine, their_spikes):
        raise ValueError(
            f"--with {other.run_dir}: fitted on {theirs.path}, whose validation trials are not "
            f"those of {run.run_dir} ({data.path}): fits to compare must share their data"
        )


def analyze_run(
    run,
    split: str = "valid",
    from_bin: Optional[int] = None,
    out=None,
    others: Sequence = (),
) -> Dict[str, Any]:
    """Analyse ``run`` (a :class:`~dsid.runs.load.Run` of a multi-area model; the edge read-outs
    on its validation trials, the silencing matrix on ``split``'s) and write
    ``analysis.json`` and figures to ``out`` (default ``RUN/analysis``); returns the analysis:
    ``communication`` (:func:`~dsid.evaluation.multiarea.summary.communication`), ``silencing``
    (the matrix, nested lists, None for a NaN), ``from_bin``, ``split``, ``scores`` (the run's
    recovery metrics, ``val/...``, when its file has truth) and ``files``. With ``others`` (runs
    of the same data, other seeds) also ``across_runs``: every edge over all these fits
    (:func:`~dsid.evaluation.multiarea.spread.seed_spread`, with ``run_dirs``)."""
    model = run.model
    _check_multiarea(run)
    data = run.sessions()[0]
    for other in others:  # before any work
        _same_data(run, other, data)
    if split not in data.splits:
        raise ValueError(
            f"split: {data.path} has no split {split!r} (has {', '.join(data.splits)})"
        )
    n_time = data.splits[split].spikes.shape[1]
    t0 = n_time // 2 if from_bin is None else int(from_bin)
    if not 0 <= t0 < n_time - 1:  # checked before any work: a silencing needs a bin to act on
        raise ValueError(
            f"from_bin: {from_bin} is not a bin from 0 to {n_time - 2} (trials of {n_time} bins; "
            "a silencing from bin t first acts on bin t + 1)"
        )
    comm = communication(model, data)
    names = comm["area_names"]
    silencing = (
        silencing_matrix(run, data, split, t0)
        if model.edges
        else np.full((len(names),) * 2, np.nan)
    )
    out = Path(out) if out is not None else Path(run.run_dir) / "analysis"
    figs = {
        "effectome": plot_effectomes(data.effectome, comm["effectome"], names),
        "silencing": plot_silencing(silencing, names, t0),
    }
    if data.delay_bins is not None and model.edges:
        figs["delays"] = plot_delays(model.delays(), data.delay_bins, names)
    save_figures(figs, out)
    scores = {k: v for k, v in run.metrics.items() if k.startswith("val/")}
    if comm["rank"] is not None:  # measured now, so a run trained before these scores has them
        found = edge_scores(np.asarray(comm["rank"]), np.asarray(comm["lag_range"]), data)
        scores.update({f"val/{k}": v for k, v in found.items()})
    result = {
        "run_dir": str(run.run_dir),
        "split": split,
        "from_bin": t0,
        "communication": comm,
        "silencing": [
            [None if not math.isfinite(v) else round(v, 5) for v in row] for row in silencing
        ],
        "scores": scores,
        "files": [str(out / f"{name}.png") for name in figs] + [str(out / ANALYSIS_FILE)],
    }
    if others:
        comm_arrays = {
            "effectome": np.asarray(comm["effectome"], float),
            "delay_bins": np.asarray(comm["delay_bins"], float),
            "rank": np.asarray(comm["rank"] or np.zeros((len(names),) * 2), int),
        }
        readouts = [comm_arrays] + [edge_readouts(o.model, data) for o in others]
        result["across_runs"] = {
            **seed_spread(readouts),
            "run_dirs": [str(r.run_dir) for r in (run, *others)],
        }
    write_json(out / ANALYSIS_FILE, result)
    return result


def analysis_lines(result: Dict[str, Any]) -> List[str]:
    """The printed analysis: the edges, the silencing matrix and the recovery scores."""
    comm, names = result["communication"], result["communication"]["area_names"]
    lines = communication_lines(comm, result.get("scores") or {})
    lines.append(
        f"silencing from bin {result['from_bin']} (row: silenced area; RMS change of each "
        "area's rates / their SD; - not predicted):"
    )
    lines.append("  " + " " * 12 + "".join(f"{n:>10}" for n in names))
    for name, row in zip(names, result["silencing"]):
        cells = "".join(f"{'-' if v is None else fmt(v, 3):>10}" for v in row)
        lines.append(f"  {name:<12}{cells}")
    if result.get("across_runs"):
        lines += spread_lines(result["across_runs"], names)
    lines.append("wrote " + ", ".join(result["files"]))
    return lines
