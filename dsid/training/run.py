"""One training run from a composed config: data, model, loggers, callbacks, fit, inference, metrics."""
from __future__ import annotations

import json
import os
import re
import time
import warnings
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
                                "existing file, or data.synth=lorenz|multiarea to write a synthetic one)")
    if synth == "multiarea":
        from dsid.data.synth_multiarea import synth_multiarea

        print(f"writing the synthetic multi-area system to {path} (seed {data_cfg.get('synth_seed', 0)})")
        return synth_multiarea(path, seed=int(data_cfg.get("synth_seed", 0)))
    if synth != "lorenz":
        raise ValueError(f"data.synth={synth}: only 'lorenz' and 'multiarea' can be written on the fly; "
                         f"use `dsid synth {synth} --out {path}` first")
    from dsid.data.synth_lorenz import write_lorenz_benchmark

    observation = data_cfg.get("synth_observation", "spikes")
    print(f"writing the Lorenz benchmark ({observation}) to {path} (seed {data_cfg.get('synth_seed', 0)})")
    return write_lorenz_benchmark(path, seed=int(data_cfg.get("synth_seed", 0)), observation=observation)


def make_datamodule(cfg: Dict[str, Any]):
    """A DSIDDataModule over ``data.path``, or a MultiSessionDataModule when ``data.files`` lists
    several sessions (trained with the stitched model)."""
    data_cfg = cfg["data"]
    obs_cls = OBSERVATIONS.get(cfg["model"]["observation"]["name"]) if "observation" in cfg["model"] \
        else None
    if data_cfg.get("files"):
        from dsid.data.multisession import MultiSessionDataModule

        return MultiSessionDataModule(list(data_cfg["files"]), batch_size=int(data_cfg.get("batch_size", 64)),
                                      num_workers=int(data_cfg.get("num_workers", 0)),
                                      seed=int(cfg.get("seed", 0)), observation_check=obs_cls)
    path = ensure_data(data_cfg)
    return DSIDDataModule(str(path), batch_size=int(data_cfg.get("batch_size", 64)),
                          num_workers=int(data_cfg.get("num_workers", 0)), seed=int(cfg.get("seed", 0)),
                          observation_check=obs_cls)


def sweep_context() -> Optional[Dict[str, str]]:
    """Under a Hydra multirun (``dsid train -m``): ``group``, the sweep directory's name (with its date
    folder: ``2025-01-31_12-00-00_lorenz_lfads``), shared by every job of the sweep, and ``job``, this
    job's number and overrides (``#3 model.coupling=delay,seed=1``). None otherwise."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
            return None
        hc = HydraConfig.get()
        depth = max(len(Path(str(hc.sweep.subdir)).parts), 1)
        sweep_dir = Path(str(hc.runtime.output_dir)).parents[depth - 1]
        dated = re.fullmatch(r"\d{4}-\d{2}-\d{2}", sweep_dir.parent.name)
        return {"group": f"{sweep_dir.parent.name}_{sweep_dir.name}" if dated else sweep_dir.name,
                "job": f"#{hc.job.num} {hc.job.override_dirname}".strip()[:120]}
    except Exception:  # noqa: BLE001  (no Hydra context: not a sweep)
        return None


def make_logger(cfg: Dict[str, Any], run_dir: Path):
    """The configured logger; under ``dsid train -m`` W&B runs are grouped by sweep
    (``logger.group`` still wins when set)."""
    log_cfg = dict(cfg.get("logger") or {"kind": "csv"})
    kind = log_cfg.pop("kind", "csv")
    if kind == "csv":
        return pl.loggers.CSVLogger(str(run_dir), name="csv", version="")
    if kind == "wandb":
        mode = log_cfg.get("mode", "offline")
        if mode not in ("offline", "online", "disabled"):
            raise ValueError(f"logger.mode={mode}: expected offline, online or disabled")
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        if wandb.run is not None:  # WandbLogger would silently log into that run instead
            warnings.warn(f"finishing the W&B run {wandb.run.name!r} left open; each DSID run logs "
                          "to a run of its own")
            wandb.finish()
        sweep = sweep_context() or {}
        name = cfg.get("experiment_name")
        return pl.loggers.WandbLogger(
            project=log_cfg.get("project", "dsid"), entity=log_cfg.get("entity"), mode=mode,
            group=log_cfg.get("group") or sweep.get("group"), tags=list(log_cfg.get("tags") or []),
            name=f"{name}{sweep['job']}" if sweep else name, save_dir=str(run_dir),
            config={**cfg, "sweep": sweep} if sweep else cfg)
    raise ValueError(f"logger.kind={kind}: expected wandb or csv")


class EpochTimer(pl.Callback):
    """Wall-clock seconds of every training epoch (its validation and metrics included)."""

    def __init__(self):
        self.seconds: List[float] = []
        self._start = None

    def on_train_epoch_start(self, trainer, module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)

    @property
    def seconds_per_epoch(self) -> float:
        return float(sum(self.seconds) / len(self.seconds)) if self.seconds else float("nan")


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
    module_cls, stitched = SAEModule, hasattr(dm, "sessions")
    if stitched:  # several sessions: per-session read-in/read-out around shared dynamics
        from dsid.models.stitched import StitchedModule, stitched_model_cfg

        cfg["model"], module_cls = stitched_model_cfg(cfg["model"]), StitchedModule
    module = module_cls(cfg["model"], dm.info, cfg.get("train"))
    if stitched:
        module.model.init_from_data(dm.sessions)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
    own_logger = logger is None
    logger = make_logger(cfg, run_dir) if own_logger else logger
    try:
        return _fit_and_score(cfg, run_dir, dm, module, module_cls, stitched, logger, callbacks,
                              ckpt_path)
    finally:  # a failed fit must not leave its W&B run open for the next one to reuse
        if own_logger and isinstance(logger, pl.loggers.WandbLogger):
            import wandb

            wandb.finish()


def _fit_and_score(cfg, run_dir: Path, dm, module, module_cls, stitched: bool, logger, callbacks,
                   ckpt_path) -> Dict[str, Any]:
    """The body of :func:`train` once data, model and logger exist."""
    logger.log_hyperparams({"config": cfg})
    es = cfg.get("early_stopping") or {}
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=str(run_dir / "checkpoints"), filename="best",
                                        monitor=es.get("monitor", "val/loss"), mode="min",
                                        save_last=True, enable_version_counter=False)
    timer = EpochTimer()
    callbacks = [ckpt, PlotCallback(run_dir / "figures", **(cfg.get("plots") or {})),
                 pl.callbacks.LearningRateMonitor(logging_interval="epoch"), timer, *(callbacks or [])]
    if int((cfg.get("nlb") or {}).get("eval_every_n_epochs") or 0) > 0:  # NLB scores while training
        from dsid.nlb.callback import NLBEvalCallback

        callbacks.append(NLBEvalCallback.from_config(cfg["nlb"]))
    if es.get("patience"):
        callbacks.append(pl.callbacks.EarlyStopping(monitor=es.get("monitor", "val/loss"),
                                                    patience=int(es["patience"]), mode="min"))
    trainer_kwargs = {k: v for k, v in (cfg.get("trainer") or {}).items() if v is not None}
    trainer = pl.Trainer(default_root_dir=str(run_dir), logger=logger, callbacks=callbacks,
                         **trainer_kwargs)
    trainer.fit(module, dm, ckpt_path=ckpt_path)
    from dsid.inference import final_metrics, infer_module

    best = module_cls.load_from_checkpoint(ckpt.best_model_path, map_location="cpu") \
        if ckpt.best_model_path else module.cpu()
    n_samples = int((cfg.get("infer") or {}).get("n_samples", 20))
    batch_size = int((cfg.get("infer") or {}).get("batch_size", 256))
    if stitched:
        from dsid.models.stitched import infer_and_score

        all_outputs, metrics = infer_and_score(best, dm.sessions, n_samples, batch_size, run_dir)
        plot_data, outputs = dm.sessions[0], all_outputs[0]
    else:
        outputs = infer_module(best, dm.data, n_samples=n_samples, batch_size=batch_size,
                               out=run_dir / "inference.h5")
        metrics = final_metrics(dm.data, outputs, best.model)
        plot_data = dm.data
    metrics["epochs"] = trainer.current_epoch
    metrics["seconds_per_epoch"] = timer.seconds_per_epoch
    metrics["n_parameters"] = int(sum(p.numel() for p in module.model.parameters()))
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if hasattr(logger, "log_metrics"):
        logger.log_metrics({f"final/{k}": v for k, v in metrics.items()
                            if isinstance(v, (int, float))})
    PlotCallback.log_final(logger, best, plot_data, outputs, run_dir / "figures")
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
