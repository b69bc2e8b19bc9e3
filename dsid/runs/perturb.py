"""``dsid perturb`` and ``Run.perturb``: a trained multi-area run's prediction of what silencing,
holding or scaling an area's (or an edge's) messages from a chosen bin does to every area's rates,
on one split of its data, and the HDF5 file and figure that keep it.

The prediction itself: :mod:`dsid.models.multiarea.intervention` (the modes and their timing) and
:mod:`dsid.evaluation.multiarea.perturbation`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import h5py
import numpy as np

from dsid.data.atomic import atomic_h5
from dsid.data.coordinates import bin_times_ms, trial_ids, unit_ids
from dsid.data.tensor_file import DSIDData
from dsid.evaluation.figures.style import save_figures
from dsid.evaluation.multiarea.perturbation import area_effect, predict_perturbation
from dsid.evaluation.multiarea.plots import plot_perturbation
from dsid.models.multiarea.intervention import build_intervention

PER_TRIAL = ("rates_base", "rates_perturbed", "rates_delta")


def perturb_run(
    run,
    mode: str,
    *,
    area=None,
    edge=None,
    factor: Optional[float] = None,
    from_bin: int = 0,
    split: str = "valid",
    batch_size: int = 256,
    data: Optional[DSIDData] = None,
) -> Dict[str, Any]:
    """``run``'s (a :class:`~dsid.runs.load.Run`) prediction of the intervention (``mode``
    silence, clamp or scale, on every edge leaving ``area`` or on ``edge`` "SRC->DST", from bin
    ``from_bin``) on the trials of ``split``, in the user's order (trials and neurons sorted by
    their ids, as ``Run.outputs``). ``data``: the run's data when already read (else read here).

    Returns ``rates_base``, ``rates_perturbed``, ``rates_delta`` (trials, T, N; spikes per bin),
    ``trial_id``, ``unit_id``, ``unit_area`` (N,), ``time_ms`` (T,), ``area_effect_rms`` and
    ``area_effect_mean`` (A, T; spikes/s: each area's root mean square and mean change over trials
    and its neurons) and ``attrs`` (what was done: mode, target, factor, bins, names)."""
    model = run.model
    if not hasattr(model, "coupling"):
        raise ValueError(
            f"{run.run_dir}: a {type(model).__name__} model has no messages between areas to "
            "intervene on (perturbation needs a multi-area run: model=multiarea)"
        )
    intervention = build_intervention(
        model, mode, area=area, edge=edge, factor=factor, from_bin=from_bin
    )
    data = run.sessions()[0] if data is None else data
    if split not in data.splits:
        raise ValueError(
            f"split: {data.path} has no split {split!r} (has {', '.join(data.splits)})"
        )
    sd = data.splits[split]
    T = sd.spikes.shape[1]
    ext = sd.ext_inputs[:, :T] if sd.ext_inputs is not None and model.ext_input_size else None
    pred = predict_perturbation(model, sd.spikes, intervention, ext, batch_size)
    pred["rates_delta"] = pred["rates_perturbed"] - pred["rates_base"]
    per_s = 1000.0 / data.bin_ms
    trial_id, unit_id = trial_ids(data, split), unit_ids(data)
    trials, units = np.argsort(trial_id, kind="stable"), np.argsort(unit_id, kind="stable")
    out: Dict[str, Any] = {k: pred[k][trials][..., units] for k in PER_TRIAL}
    delta, A = pred["rates_delta"], model.n_areas
    out.update(
        trial_id=trial_id[trials],
        unit_id=unit_id[units],
        unit_area=np.asarray(data.area)[units],
        time_ms=bin_times_ms(data, T),
        area_effect_rms=area_effect(delta, data.area, A) * per_s,
        area_effect_mean=np.stack([delta[..., data.area == a].mean((0, 2)) for a in range(A)])
        * per_s,
    )
    out["attrs"] = {
        "run_dir": str(run.run_dir),
        "data": str(data.path),
        "split": split,
        "mode": mode,
        "target": intervention.target,
        "area": "" if edge is not None else intervention.target,
        "edge": intervention.target if edge is not None else "",
        "factor": float("nan") if factor is None else float(factor),
        "from_bin": int(from_bin),
        "first_bin_affected": int(from_bin) + 1,
        "bin_ms": float(data.bin_ms),
        "area_names": list(model.area_names),
        "description": intervention.description,
        "units": "rates: spikes per bin; area_effect_*: spikes/s",
    }
    return out


def default_path(run_dir, result: Dict[str, Any]) -> Path:
    """``RUN_DIR/perturbations/<mode>_<target>[_x<factor>]_from<bin>_<split>.h5``."""
    a = result["attrs"]
    target = a["target"].replace("->", "-to-").replace(" ", "_")
    scale = f"_x{a['factor']:g}" if a["mode"] == "scale" else ""
    name = f"{a['mode']}_{target}{scale}_from{a['from_bin']}_{a['split']}"
    return Path(run_dir) / "perturbations" / f"{name}.h5"


def write_perturbation(result: Dict[str, Any], path) -> Path:
    """Write ``result`` (from :func:`perturb_run`) to the HDF5 file ``path`` (atomically) and its
    figure beside it (``.png`` and ``.svg`` of the same name); returns ``path``."""
    path = Path(path)
    with atomic_h5(path) as f:
        for key, value in result.items():
            if key != "attrs":
                f.create_dataset(key, data=np.asarray(value))
        for key, value in result["attrs"].items():
            f.attrs[key] = value
    a = result["attrs"]
    fig = plot_perturbation(
        result["area_effect_rms"],
        result["area_effect_mean"],
        result["time_ms"],
        a["from_bin"],
        a["area_names"],
        title=a["description"],
    )
    save_figures({path.stem: fig}, path.parent)
    return path


def read_perturbation(path) -> Dict[str, Any]:
    """A file of :func:`write_perturbation` read back: its arrays and ``attrs``."""
    with h5py.File(path, "r") as f:
        out: Dict[str, Any] = {k: f[k][()] for k in f}
        out["attrs"] = dict(f.attrs)
    return out
