"""Composing run configs from ``configs/`` in-process (tests, notebooks, tuning) and making them
plain."""

from __future__ import annotations

from typing import Any, List, Optional

from omegaconf import DictConfig, OmegaConf

from dsid.training.defaults import config_dir

__all__ = ["compose", "config_dir", "hydra_quoted", "quoted_paths", "to_plain"]

# settings whose values are file or folder paths (a path may hold spaces, commas, accents, quotes)
PATH_KEYS = ("data.path", "run_dir", "hydra.run.dir", "hydra.sweep.dir")


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


def hydra_quoted(value) -> str:
    """``value`` for Hydra's override grammar: as it is when plain (ASCII letters, digits,
    ``_-/.``), else in single quotes with a quote escaped (``\\'``), backslashes doubled
    before a quote and at the end, and ``${`` escaped (no interpolation)."""
    text = str(value)
    if text and all(c.isascii() and (c.isalnum() or c in "_-/.") for c in text):
        return text
    pieces = text.replace("${", "\\${").split("'")
    return "'" + "\\'".join(p + "\\" * (len(p) - len(p.rstrip("\\"))) for p in pieces) + "'"


def quoted_paths(overrides: List[str]) -> List[str]:
    """``overrides`` with each path setting (:data:`PATH_KEYS`) that Hydra's grammar cannot read
    as one value (``run_dir=/data/rün``, ``data.path=/data/a, b.h5``) quoted as one path; what
    Hydra reads (a quoted value; a sweep ``data.path=a.h5,b.h5`` with ``-m``) is left as the user
    wrote it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    multirun = any(o in ("-m", "--multirun") for o in overrides)
    out = []
    for o in overrides:
        key, sep, value = o.partition("=")
        if sep and key.lstrip("+~") in PATH_KEYS:
            try:
                one_value = multirun or not parser.parse_overrides([o])[0].is_sweep_override()
            except OverrideParseException:
                one_value = False
            o = o if one_value else f"{key}={hydra_quoted(value)}"
        out.append(o)
    return out
