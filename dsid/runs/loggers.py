"""The logger of a training run (``make_logger``): CSV, or W&B runs grouped by sweep."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import pytorch_lightning as pl

from dsid.models import model_name


def logger_settings(cfg: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """The ``logger`` section checked: its kind (csv or wandb) and its other settings."""
    log_cfg = dict(cfg.get("logger") or {"kind": "csv"})
    kind = log_cfg.pop("kind", "csv")
    if kind not in ("csv", "wandb"):
        raise ValueError(f"logger.kind={kind}: expected wandb or csv")
    mode = log_cfg.get("mode", "offline")
    if kind == "wandb" and mode not in ("offline", "online", "disabled"):
        raise ValueError(f"logger.mode={mode}: expected offline, online or disabled")
    return kind, log_cfg


def sweep_context() -> Optional[Dict[str, str]]:
    """Under a Hydra multirun (``dsid train -m``): ``group``, the sweep directory's name (with its
    date folder: ``2025-01-31_12-00-00_lorenz_lfads``), shared by every job of the sweep, and
    ``job``, this job's number and overrides (``#3 model.coupling=delay,seed=1``). None
    otherwise."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
            return None
        hc = HydraConfig.get()
        depth = max(len(Path(str(hc.sweep.subdir)).parts), 1)
        sweep_dir = Path(str(hc.runtime.output_dir)).parents[depth - 1]
        dated = re.fullmatch(r"\d{4}-\d{2}-\d{2}", sweep_dir.parent.name)
        return {
            "group": f"{sweep_dir.parent.name}_{sweep_dir.name}" if dated else sweep_dir.name,
            "job": f"#{hc.job.num} {hc.job.override_dirname}".strip()[:120],
        }
    except Exception:  # noqa: BLE001  (no Hydra context: not a sweep)
        return None


def make_logger(cfg: Dict[str, Any], run_dir: Path, resume_id: Optional[str] = None):
    """The configured logger; under ``dsid train -m`` W&B runs are grouped by sweep
    (``logger.group`` still wins when set); ``resume_id`` continues that W&B run."""
    kind, log_cfg = logger_settings(cfg)
    if kind == "csv":
        return pl.loggers.CSVLogger(str(run_dir), name="csv", version="")
    return _wandb_logger(cfg, log_cfg, run_dir, resume_id)


def _wandb_logger(cfg, log_cfg: Dict[str, Any], run_dir: Path, resume_id: Optional[str]):
    """A W&B logger whose run summaries keep each metric's best value."""
    mode = log_cfg.get("mode", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    if wandb.run is not None:  # WandbLogger would silently log into that run instead
        warnings.warn(
            f"finishing the W&B run {wandb.run.name!r} left open; each DSID run logs "
            "to a run of its own"
        )
        wandb.finish()
    sweep = sweep_context() or {}
    name = cfg.get("experiment_name")
    kind_tags = [model_name(cfg.get("model") or {}), str(name)]
    logger = pl.loggers.WandbLogger(
        project=log_cfg.get("project", "dsid"),
        entity=log_cfg.get("entity"),
        mode=mode,
        group=log_cfg.get("group") or sweep.get("group") or name,
        tags=sorted(set(list(log_cfg.get("tags") or []) + kind_tags)),
        job_type="sweep" if sweep else "train",
        log_model=bool(log_cfg.get("log_model", True)),
        name=f"{name}{sweep['job']}" if sweep else name,
        save_dir=str(run_dir),
        config={**cfg, "sweep": sweep} if sweep else cfg,
        **({"id": resume_id, "resume": "allow"} if resume_id else {}),
    )
    # Lightning always passes `anonymous`, a setting W&B has retired and warns about on every run
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    run = logger.experiment  # the summaries keep each metric's best value, not its last
    for key, best in (
        ("val/co_bps", "max"),
        ("val/rate_r2", "max"),
        ("val/latent_r2", "max"),
        ("val/select", "min"),
        ("val/loss", "min"),
    ):
        run.define_metric(key, summary=best)
    return logger
