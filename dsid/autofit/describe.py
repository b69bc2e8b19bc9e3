"""What the fitting rules know about a data set: sizes and statistics read from a DSID tensor
file."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Tuple

import numpy as np

from dsid.autofit.information import predictable_information
from dsid.data.tensor_file import DSIDData, load_tensor_file


@dataclass(frozen=True)
class DataDescription:
    """Sizes and statistics of a data set (training split unless said otherwise)."""

    n_train: int  # training trials
    n_valid: int  # validation trials
    n_time: int  # bins per trial
    n_forward: int  # forward-prediction bins after the window
    bin_ms: float
    n_heldin: int
    n_heldout: int
    n_areas: int
    mean_rate_hz: float  # mean firing rate of held-in neurons
    ext_input_size: int  # channels of known external inputs (0: none)
    integer_counts: bool  # spike counts (True) or other observations (False)
    has_truth: bool  # true rates in the valid split (oracle scores possible)
    info_nats: float  # predictable information per training trial (nats; see information.py)
    area_heldin: Tuple[int, ...] = ()  # held-in neurons of each area (area order; () unknown)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def describe_data(data: DSIDData) -> DataDescription:
    """The :class:`DataDescription` of loaded data (train and valid splits required)."""
    train, valid = data.splits["train"], data.splits["valid"]
    spikes = np.asarray(train.spikes)
    heldin = spikes[..., data.heldin]
    integer = bool(np.issubdtype(spikes.dtype, np.integer) or np.allclose(spikes, np.round(spikes)))
    return DataDescription(
        n_train=int(spikes.shape[0]),
        n_valid=int(valid.spikes.shape[0]),
        n_time=int(spikes.shape[1]),
        n_forward=data.n_forward,
        bin_ms=float(data.bin_ms),
        n_heldin=int(data.heldin.sum()),
        n_heldout=int(data.heldout.sum()),
        n_areas=data.n_areas,
        mean_rate_hz=float(heldin.mean() * 1000.0 / data.bin_ms),
        ext_input_size=data.ext_input_size,
        integer_counts=integer,
        has_truth=valid.truth_rates is not None,
        info_nats=round(predictable_information(heldin, data.bin_ms), 1) if integer else 0.0,
        area_heldin=tuple(int((data.heldin & (data.area == a)).sum()) for a in range(data.n_areas)),
    )


def describe_file(path) -> DataDescription:
    """Read, validate and describe a DSID tensor file (clear errors naming the file and field)."""
    return describe_data(load_tensor_file(path, require_splits=("train", "valid"), counts=False))
