"""Facts about the seven Neural Latents Benchmark datasets, as ``nlb_tools`` (0.0.4) uses them.

Alignment windows, behavior fields and condition fields mirror ``nlb_tools.make_tensors.PARAMS``
(a test checks they agree); file names follow the DANDI releases, for example
``000128/sub-Jenkins/sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb`` and
``..._desc-test_ecephys.nwb``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

BIN_SIZES = (5, 20)
PHASES = ("val", "test")
SYNTH_LIKES = ("mc_maze", "area2_bump", "dmfc_rsg", "mc_rtt")  # datasets `dsid synth nlb` imitates


@dataclass(frozen=True)
class NLBSpec:
    """One NLB dataset: where its files live and which fields NLB's tensors are built from."""

    name: str
    dandiset: str
    subject: str
    session: Optional[str]  # the ``ses-`` part of the file names (mc_maze family only)
    behavior_source: str  # "data" (a TimeSeries) or "trial_info" (trial-table columns)
    behavior_field: Tuple[str, ...]  # TimeSeries name, or trial-table columns
    align_field: str  # alignment of the model input window
    align_range: Tuple[int, int]  # input window around align_field, ms
    lag: Optional[int]  # behavior lag, ms (None when behavior comes from the trial table)
    cond_fields: Tuple[str, ...] = ()  # PSTH conditions (empty: no PSTH metric)
    trial_fields: Tuple[str, ...] = ()  # further trial-table columns nlb_tools reads
    decode_mask_field: Optional[str] = None  # separate velocity decoders per value (area2_bump)
    fp_len: int = 200  # forward-prediction window, ms
    baseline_kern_sd: int = 50  # smoothing baseline defaults (nlb_tools' run_smoothing.py)
    baseline_alpha: float = 0.01

    @property
    def time_series_behavior(self) -> bool:
        return self.behavior_source == "data"

    @property
    def metric_names(self) -> Tuple[str, ...]:
        names = ["co_bps", "tp_corr" if self.name == "dmfc_rsg" else "vel_r2"]
        if self.cond_fields:
            names.append("psth_r2")
        return tuple(names + ["fp_bps"])

    def file_prefix(self) -> str:
        ses = f"_ses-{self.session}" if self.session else ""
        return f"sub-{self.subject}{ses}_desc-"

    def train_file(self) -> str:
        return f"{self.file_prefix()}train_behavior+ecephys.nwb"

    def test_file(self) -> str:
        return f"{self.file_prefix()}test_ecephys.nwb"

    def required_trial_fields(self, test_file: bool = False) -> Tuple[str, ...]:
        """Trial-table columns nlb_tools reads from the train file (or, fewer, from the test
        file)."""
        fields = ["split", self.align_field, *self.trial_fields]
        if not test_file:
            fields += [
                *self.cond_fields,
                *([self.decode_mask_field] if self.decode_mask_field else []),
            ]
            if self.behavior_source == "trial_info":
                fields += [*self.behavior_field, "is_outlier"]
        return tuple(dict.fromkeys(f for f in fields if f != "start_time"))

    def key(self, bin_ms: int) -> str:
        """The dataset key nlb_tools uses in submissions and targets (``mc_maze_20`` at 20 ms)."""
        return self.name if int(bin_ms) == 5 else f"{self.name}_{int(bin_ms)}"


_MAZE = dict(
    dandiset="000128",
    subject="Jenkins",
    behavior_source="data",
    behavior_field=("hand_vel",),
    align_field="move_onset_time",
    align_range=(-250, 450),
    cond_fields=("trial_type", "trial_version"),
)

SPECS: Dict[str, NLBSpec] = {
    "mc_maze": NLBSpec(name="mc_maze", session="full", lag=100, **_MAZE),
    "mc_rtt": NLBSpec(
        name="mc_rtt",
        dandiset="000129",
        subject="Indy",
        session=None,
        behavior_source="data",
        behavior_field=("finger_vel",),
        align_field="start_time",
        align_range=(0, 600),
        lag=140,
        baseline_kern_sd=30,
        baseline_alpha=0.1,
    ),
    "area2_bump": NLBSpec(
        name="area2_bump",
        dandiset="000127",
        subject="Han",
        session=None,
        behavior_source="data",
        behavior_field=("hand_vel",),
        align_field="move_onset_time",
        align_range=(-100, 500),
        lag=-20,
        cond_fields=("cond_dir", "ctr_hold_bump"),
        decode_mask_field="ctr_hold_bump",
        baseline_kern_sd=30,
    ),
    "dmfc_rsg": NLBSpec(
        name="dmfc_rsg",
        dandiset="000130",
        subject="Haydn",
        session=None,
        behavior_source="trial_info",
        behavior_field=("is_eye", "theta", "is_short", "ts", "tp"),
        align_field="go_time",
        align_range=(-1500, 0),
        lag=None,
        trial_fields=("set_time",),
        cond_fields=("is_eye", "theta", "is_short", "ts"),
        baseline_kern_sd=60,
        baseline_alpha=0.001,
    ),
}
for _size, _dandi, _sd in (
    ("large", "000138", 40),
    ("medium", "000139", 60),
    ("small", "000140", 60),
):
    SPECS[f"mc_maze_{_size}"] = NLBSpec(
        name=f"mc_maze_{_size}",
        session=_size,
        lag=120,
        baseline_kern_sd=_sd,
        baseline_alpha=0.1,
        **{**_MAZE, "dandiset": _dandi},
    )

DATASETS = tuple(SPECS)


def get_spec(name: str) -> NLBSpec:
    """The spec of NLB dataset ``name``; an unknown name is an error listing the known ones."""
    if name not in SPECS:
        raise ValueError(f"unknown NLB dataset '{name}': expected one of {', '.join(DATASETS)}")
    return SPECS[name]


def check_bin(bin_ms) -> int:
    """NLB scores 5 ms and 20 ms submissions only; anything else is an error."""
    try:
        value = float(bin_ms)
    except (TypeError, ValueError):
        value = float("nan")
    if value not in BIN_SIZES:
        raise ValueError(
            f"bin_ms: expected one of {BIN_SIZES} (the NLB bin sizes, ms), found {bin_ms!r}"
        )
    return int(value)


@contextmanager
def quiet_nlb_tools(level=logging.ERROR):
    """Silence nlb_tools' routine log warnings (overlaps, NaN drops) for the duration of a block."""
    logger = logging.getLogger("nlb_tools")
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


NLB_TOOLS_MISSING = (
    "the NLB commands need nlb-tools, which DSID's training does not: install it with "
    "`pip install --no-deps nlb-tools==0.0.4` (its pandas<=1.3.4 pin has no wheel for "
    "Python 3.11; it works with pandas 2.x)"
)


def require_nlb_tools() -> None:
    """Raise ImportError with install instructions when nlb_tools is not installed."""
    import importlib.util

    if importlib.util.find_spec("nlb_tools") is None:
        raise ImportError(NLB_TOOLS_MISSING)
