"""One training run from a composed config: data, model, loggers, callbacks, fit, inference, metrics."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from dsid.data.datamodule import DSIDDataModule
from dsid.registry import OBSERVATIONS
from dsid.training.callbacks import PlotCallback
from dsid.training.lightning_module import SAEModule

BEST_CKPT = "checkpoints/best.ckpt"


def to_plain(cfg) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def ensure_data(data_cfg: Dict[str, Any]) -> Path:
    """The data file, written first when missing and ``synth`` names a built-in generator."""
    path = Path(data_cfg["path"])
    if path.exists():
        return path
    synth = data_cfg.get("synth")
    if not synth:
        raise FileNotFoundError(f"data.path={path}: no such DSID tensor file (set data.path to an "
                                "existing file, or data.synth=lorenz to write the Lorenz benchmark)")
    if synth != "lorenz":
        raise ValueError(f"data.synth={synth}: only 'lorenz' can be written on the fly; "
                         f"use `dsid synth {synth} --out {path}` first")
    from dsid.data.synth_lorenz import write_lorenz_benchmark

    print(f"writing the Lorenz benchmark to {path} (seed {data_cfg.get('synth_seed', 0)})")
    return write_lorenz_benchmark(path, seed=int(data_cfg.get("synth_seed", 0)))


def make_datamodule(cfg: Dict[str, Any]) -> DSIDDataModule:
    data_cfg = cfg["data"]
    path = ensure_data(data_cfg)
    obs_cls = OBSERVATIONS.get(cfg["model"]["observation"]["name"]) if "observation" in cfg["model"] \
        else None
    return DSIDDataModule(str(path), batch_size=int(data_cfg.get("batch_size", 64)),
                          num_workers=int(data_cfg.get("num_workers", 0)), seed=int(cfg.get("seed", 0)),
                          observation_check=obs_cls)


def make_logger(cfg: Dict[str, Any], run_dir: Path):
    log_cfg = dict(cfg.get("logger") or {"kind": "csv"})
    kind = log_cfg.pop("kind", "csv")
    if kind == "csv":
        return pl.loggers.CSVLogger(str(run_dir), name="csv", version="")
    if kind == "wandb":
        mode = log_cfg.get("mode", "offline")
        if mode not in ("offline", "online", "disabled"):
            raise ValueError(f"logger.mode={mode}: expected offline, online or disabled")
        os.environ.setdefault("WANDB_SILENT", "true")
        return pl.loggers.WandbLogger(
            project=log_cfg.get("project", "dsid"), entity=log_cfg.get("entity"), mode=mode,
            group=log_cfg.get("group"), tags=list(log_cfg.get("tags") or []),
            name=cfg.get("experiment_name"), save_dir=str(run_dir), config=cfg)
    raise ValueError(f"logger.kind={kind}: expected wandb or csv")


def train(cfg, run_dir: Optional[str] = None, callbacks: Optional[List[pl.Callback]] = None,
          ckpt_path: Optional[str] = None, logger=None) -> Dict[str, Any]:
    """Fit the model described by ``cfg`` and return the final metrics (also in metrics.json).

    ``callbacks`` are added to the trainer's; ``ckpt_path`` resumes a fit; ``logger`` replaces the
    configured one.
    """
    cfg = to_plain(cfg)
    run_dir = Path(run_dir or cfg.get("run_dir") or "runs/latest")
    run_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(int(cfg.get("seed", 0)), workers=True, verbose=False)
    dm = make_datamodule(cfg)
    dm.setup()
    module = SAEModule(cfg["model"], dm.info, cfg.get("train"))
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
    logger = logger if logger is not None else make_logger(cfg, run_dir)
    logger.log_hyperparams({"config": cfg})
    es = cfg.get("early_stopping") or {}
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), filename="best",
                                        monitor=es.get("monitor", "val/loss"), mode="min",
                                        save_last=True, enable_version_counter=False)
    callbacks = [ckpt, PlotCallback(run_dir / "figures", **(cfg.get("plots") or {})),
                 pl.callbacks.LearningRateMonitor(logging_interval="epoch"), *(callbacks or [])]
    if es.get("patience"):
        callbacks.append(pl.callbacks.EarlyStopping(monitor=es.get("monitor", "val/loss"),
                                                    patience=int(es["patience"]), mode="min"))
    trainer_kwargs = {k: v for k, v in (cfg.get("trainer") or {}).items() if v is not None}
    trainer = pl.Trainer(default_root_dir=str(run_dir), logger=logger, callbacks=callbacks,
                         **trainer_kwargs)
    trainer.fit(module, dm, ckpt_path=ckpt_path)
    from dsid.inference import final_metrics, infer_module

    best = SAEModule.load_from_checkpoint(ckpt.best_model_path, map_location="cpu") \
        if ckpt.best_model_path else module.cpu()
    outputs = infer_module(best, dm.data, n_samples=int((cfg.get("infer") or {}).get("n_samples", 20)),
                           batch_size=int((cfg.get("infer") or {}).get("batch_size", 256)),
                           out=run_dir / "inference.h5")
    metrics = final_metrics(dm.data, outputs, best.model)
    metrics["epochs"] = trainer.current_epoch
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if hasattr(logger, "log_metrics"):
        logger.log_metrics({f"final/{k}": v for k, v in metrics.items()
                            if isinstance(v, (int, float))})
    PlotCallback.log_final(logger, best, dm.data, outputs, run_dir / "figures")
    if isinstance(logger, pl.loggers.WandbLogger):
        import wandb

        wandb.finish()
    return metrics


def load_run_config(run_dir) -> Dict[str, Any]:
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir}: not a DSID run directory (no config.yaml)")
    return to_plain(OmegaConf.load(path))


def load_best(run_dir, map_location: str = "cpu") -> SAEModule:
    """The best checkpoint of a run directory, with a clear error when there is none."""
    path = Path(run_dir) / BEST_CKPT
    if not path.exists():
        last = Path(run_dir) / "checkpoints" / "last.ckpt"
        if not last.exists():
            raise FileNotFoundError(f"{run_dir}: no trained model ({BEST_CKPT} is missing)")
        path = last
    return SAEModule.load_from_checkpoint(str(path), map_location=map_location)


def device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device
