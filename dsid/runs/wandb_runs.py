"""W&B runs beside a training run's: evaluation, submission and fit reports each log to a run of
their own in ``RUN_DIR/wandb``, grouped under the training run's name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional


def run_name(cfg: Mapping[str, Any], run_dir: Path) -> str:
    """The training run's name (its W&B name: ``experiment_name``), else the run directory's
    name."""
    return str(cfg.get("experiment_name") or Path(run_dir).resolve().name)


def train_wandb_id(run_dir: Path) -> Optional[str]:
    """The W&B id of the training run logged in ``RUN_DIR/wandb`` (its first run), if any."""
    runs = sorted((run_dir / "wandb").glob("*run-*-*")) if (run_dir / "wandb").is_dir() else []
    return runs[0].name.rsplit("-", 1)[-1] if runs else None


def wandb_run(
    cfg: Mapping[str, Any],
    run_dir: Path,
    job_type: str,
    mode: Optional[str] = None,
    config: Optional[Dict[str, Any]] = None,
):
    """A new W&B run in ``RUN_DIR/wandb`` next to the training run's: the run's project and entity,
    group = the training run's name, offline unless the run logged online (or ``mode`` says)."""
    import wandb

    log_cfg = cfg.get("logger") or {}
    if mode is None:
        mode = log_cfg.get("mode", "offline") if log_cfg.get("kind") == "wandb" else "offline"
    if mode not in ("offline", "online", "disabled"):
        raise ValueError(f"wandb mode={mode}: expected offline, online or disabled")
    os.environ.setdefault("WANDB_SILENT", "true")
    name = run_name(cfg, run_dir)
    return wandb.init(
        project=log_cfg.get("project") or "dsid",
        entity=log_cfg.get("entity"),
        group=name,
        name=f"{name}:{job_type}",
        job_type=job_type,
        dir=str(run_dir),
        mode=mode,
        config={
            "run_dir": str(run_dir),
            "train_wandb_id": train_wandb_id(run_dir),
            **(config or {}),
        },
        reinit="create_new",
    )
