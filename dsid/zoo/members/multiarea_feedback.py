"""``multiarea_feedback``: three areas with a feedback loop, from
:func:`~dsid.data.multiarea.synth.synth_multiarea`.

Edges (src, dst, delay bins, rank, gain): A0->A1 (3, 1, 0.20), A1->A0 (4, 1, 0.15) closing a loop,
and A1->A2 (2, 2, 0.15). Every area gets private input events (3 per trial, size 1) so the delays
are identifiable (see ``synth_multiarea``). The written file's neurons are reordered held-in first
(areas in order within each block); every other field is as ``synth_multiarea`` writes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import h5py
import numpy as np

from dsid.data.atomic import atomic_path
from dsid.data.multiarea.synth import synth_multiarea
from dsid.data.perturbation import Perturbation
from dsid.data.tensor_file import SPLITS

EDGES = ((0, 1, 3, 1, 0.20), (1, 0, 4, 1, 0.15), (1, 2, 2, 2, 0.15))


def _heldin_first(src: Path, dst: Path) -> None:
    """Copy the DSID file ``src`` to ``dst`` with its neurons reordered held-in first (stable)."""
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        order = np.argsort(f["neurons/heldout"][()], kind="stable")
        per_neuron = {"neurons/area", "neurons/heldout"} | {
            f"{s}/{k}" for s in SPLITS for k in ("spikes", "forward_spikes", "truth/rates")
        }
        g.attrs.update(dict(f.attrs))

        def copy(name, obj):
            if isinstance(obj, h5py.Group):
                g.require_group(name).attrs.update(dict(obj.attrs))
            elif name in per_neuron:
                g.create_dataset(
                    name,
                    data=obj[()][..., order],
                    compression=obj.compression,
                    compression_opts=obj.compression_opts,
                )
            else:
                f.copy(obj, g.require_group(str(Path(name).parent)), name=Path(name).name)

        f.visititems(copy)


def write_multiarea_feedback(
    out,
    *,
    seed: int = 0,
    n_trials: Sequence[int] = (600, 150, 150),
    n_time: int = 100,
    neurons_per_area: int = 40,
    heldout_fraction: float = 0.2,
    bin_ms: float = 10.0,
    latent_size: int = 4,
    events_per_trial: float = 3.0,
    event_size: float = 1.0,
    perturb: Optional[Perturbation] = None,
) -> Path:
    """Write the feedback-loop multi-area member to ``out`` (atomically); return its path.
    ``perturb``: the same trials under an intervention (``synth_multiarea``)."""
    out = Path(out)
    with atomic_path(out) as tmp:
        native = tmp.with_name(tmp.name + ".native.h5")
        try:
            synth_multiarea(
                native,
                seed=seed,
                n_areas=3,
                neurons_per_area=neurons_per_area,
                heldout_fraction=heldout_fraction,
                n_trials=n_trials,
                n_time=n_time,
                bin_ms=bin_ms,
                latent_size=latent_size,
                edges=EDGES,
                events_per_trial=events_per_trial,
                event_size=event_size,
                perturb=perturb,
            )
            _heldin_first(native, tmp)
        finally:
            native.unlink(missing_ok=True)
    return out
