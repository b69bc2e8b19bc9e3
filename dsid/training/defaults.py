"""The one source of configuration defaults: the YAML files shipped in ``configs/``."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any, Dict

from omegaconf import OmegaConf

from dsid.training.schedules import check_renamed


def config_dir() -> Path:
    """DSID's config directory: ``DSID_CONFIG_DIR`` when set, else the repository's ``configs/`` (a
    source checkout or editable install), else ``dsid/configs`` inside an installed package."""
    env = os.environ.get("DSID_CONFIG_DIR")
    here = Path(__file__).resolve()
    candidates = [Path(env)] if env else [here.parents[2] / "configs", here.parents[1] / "configs"]
    for path in candidates:
        if (path / "train.yaml").exists():
            return path
    raise FileNotFoundError(
        f"{candidates[0]}: no train.yaml; set DSID_CONFIG_DIR to DSID's configs/ directory"
    )


@functools.lru_cache(maxsize=None)
def _train_defaults(path: str) -> Dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(path).get("train"), resolve=True)


def train_defaults() -> Dict[str, Any]:
    """The ``train:`` block of ``configs/train.yaml`` (a fresh copy)."""
    return copy.deepcopy(_train_defaults(str(config_dir() / "train.yaml")))


def training_config(train_cfg=None) -> Dict[str, Any]:
    """``train_cfg`` over the defaults; a key the defaults do not have is an error naming it."""
    base = train_defaults()
    given = dict(train_cfg or {})
    check_renamed("train", given)
    unknown = sorted(set(given) - set(base))
    if unknown:
        raise KeyError(
            f"train.{unknown[0]}: not a training setting (known: {', '.join(sorted(base))})"
        )
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            value = {**base[key], **value}
        base[key] = value
    if not (isinstance(base["lr"], (int, float)) and base["lr"] > 0):
        raise ValueError(f"train.lr={base['lr']}: expected a positive learning rate")
    return base
