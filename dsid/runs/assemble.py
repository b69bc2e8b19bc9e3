"""``build_run(cfg) -> (datamodule, module)``: the one way every entry point turns a config into
data and a model (training, PBT members, benchmarks)."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Dict, Tuple

from dsid.data.datamodule import DSIDDataModule
from dsid.data.multiarea.synth import synth_multiarea
from dsid.data.multisession import MultiSessionDataModule
from dsid.data.synth_lorenz import write_lorenz_benchmark
from dsid.data.validation import check_whole
from dsid.registry import OBSERVATIONS
from dsid.runs.config import to_plain
from dsid.training.lightning_module import TrainingModule
from dsid.training.schedules import STEP_SETTINGS, check_renamed

# the built-in synthetic data sets: (data.synth, data.synth_observation) -> the file name they are
# written under on first use; any other missing file is an error (a mistyped path must not quietly
# become a synthetic data set)
BUILTIN_FILES = {
    ("lorenz", "spikes"): "lorenz.h5",
    ("lorenz", "calcium"): "lorenz_calcium.h5",
    ("multiarea", "spikes"): "multiarea.h5",
}
# trainer settings that are whole numbers (their ranges are the trainer's to check)
TRAINER_COUNTS = (
    "max_epochs",
    "min_epochs",
    "max_steps",
    "min_steps",
    "check_val_every_n_epoch",
    "log_every_n_steps",
    "accumulate_grad_batches",
)


def _integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_sizes(prefix: str, block: Any) -> None:
    """Every ``*_size`` setting under ``prefix`` is an integer (or null); ranges are the
    components' to check."""
    items = block.items() if isinstance(block, dict) else enumerate(block or ())
    for key, value in items:
        name = f"{prefix}.{key}"
        if isinstance(value, (dict, list)):
            _check_sizes(name, value)
        elif str(key).endswith("_size") and value is not None and not _integer(value):
            raise ValueError(f"{name}={value}: expected an integer size")


def check_settings(cfg) -> None:
    """Settings that cannot train, refused before anything is written: ``data.batch_size`` and
    ``data.num_workers``, the trainer's counts, every model size, the schedules' step counts."""
    cfg = to_plain(cfg)
    data = cfg.get("data") or {}
    for key, least in (("batch_size", 1), ("num_workers", 0)):
        if data.get(key) is not None:
            check_whole(f"data.{key}", data[key], least)
    trainer = cfg.get("trainer") or {}
    for key in TRAINER_COUNTS:
        if trainer.get(key) is not None and not _integer(trainer[key]):
            raise ValueError(f"trainer.{key}={trainer[key]}: expected an integer")
    _check_sizes("model", cfg.get("model") or {})
    for section in STEP_SETTINGS:
        check_renamed(section, cfg.get(section) or {})


def ensure_data(data_cfg: Dict[str, Any]) -> Path:
    """The data file, written first when missing and it is the built-in data set ``synth`` names."""
    path = Path(data_cfg["path"])
    if path.exists():
        return path
    synth = data_cfg.get("synth")
    if not synth:
        raise FileNotFoundError(
            f"data.path={path}: no such DSID tensor file (set data.path to an "
            "existing file, or data.synth=lorenz|multiarea to write a synthetic one)"
        )
    observation = data_cfg.get("synth_observation", "spikes")
    name = BUILTIN_FILES.get((synth, observation))
    if name is None:
        raise ValueError(
            f"data.synth={synth}: only 'lorenz' and 'multiarea' can be written on the fly; "
            f"use `dsid synth {synth} --out {path}` first"
        )
    if path.name != name:
        raise FileNotFoundError(
            f"data.path={path}: no such DSID tensor file. "
            f"data.synth={synth} writes the built-in data set "
            f"only under its own name ({name}, e.g. data/{name}); for your own data use `data=file "
            f"data.path=FILE`, for another synthetic data set `dsid synth {synth} --out FILE` first"
        )
    seed = int(data_cfg.get("synth_seed", 0))
    if synth == "multiarea":
        print(f"writing the synthetic multi-area system to {path} (seed {seed})")
        return synth_multiarea(path, seed=seed)
    print(f"writing the Lorenz benchmark ({observation}) to {path} (seed {seed})")
    return write_lorenz_benchmark(path, seed=seed, observation=observation)


def absolute_data_paths(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """``cfg`` with ``data.path`` (written first when it is the missing built-in data set) and
    ``data.files`` made absolute, so that the run's config names its data from anywhere. The
    settings are checked first (:func:`check_settings`): nothing is written for a bad one."""
    check_settings(cfg)
    data = dict(cfg["data"])
    if data.get("files"):
        data["files"] = [str(Path(f).resolve()) for f in data["files"]]
    elif data.get("path"):
        data["path"] = str(ensure_data(data).resolve())
    return {**cfg, "data": data}


def make_datamodule(cfg: Dict[str, Any]):
    """A DSIDDataModule over ``data.path``, or a MultiSessionDataModule when ``data.files`` lists
    several sessions (stitched by the ``sae`` model)."""
    data_cfg = cfg["data"]
    obs = cfg["model"].get("observation")
    obs_cls = OBSERVATIONS.get(obs["name"]) if obs else None
    kwargs = dict(
        batch_size=int(data_cfg.get("batch_size", 64)),
        num_workers=int(data_cfg.get("num_workers", 0)),
        seed=int(cfg.get("seed", 0)),
        observation_check=obs_cls,
    )
    if data_cfg.get("files"):
        return MultiSessionDataModule(list(data_cfg["files"]), **kwargs)
    return DSIDDataModule(
        str(ensure_data(data_cfg)), ext_inputs=bool(data_cfg.get("ext_inputs", True)), **kwargs
    )


def steps_per_epoch(cfg) -> int:
    """Optimizer steps in one epoch of the configured data (batches of the training split)."""
    dm = make_datamodule(to_plain(cfg))
    dm.setup()
    return max(1, len(dm.train_dataloader()))


def build_run(cfg) -> Tuple[Any, TrainingModule]:
    """The set-up datamodule and a freshly built training module (data-dependent initialisation
    done: ``model.init_from_data``) for a composed config."""
    cfg = to_plain(cfg)
    check_settings(cfg)
    dm = make_datamodule(cfg)
    dm.setup()
    module = TrainingModule(cfg["model"], dm.info, cfg.get("train"))
    module.model.init_from_data(dm.sessions)
    return dm, module
