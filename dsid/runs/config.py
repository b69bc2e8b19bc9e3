"""Composing run configs from ``configs/`` in-process (tests, notebooks, tuning) and making them
plain."""

from __future__ import annotations

from typing import Any, List, Optional

from omegaconf import DictConfig, OmegaConf

from dsid.training.defaults import config_dir

__all__ = ["compose", "config_dir", "to_plain"]


def to_plain(cfg) -> Any:
    """A composed config as plain dicts and lists (interpolations resolved)."""
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def compose(overrides: Optional[List[str]] = None, config_name: str = "train"):
    """Compose the training config in-process with Hydra overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))
