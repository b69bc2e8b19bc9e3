"""``train(cfg)``: one training run from a composed config: data and model (``build_run``), logger,
callbacks, fit, then inference and metrics with the best checkpoint (``FinalInference``)."""

from __future__ import annotations

import inspect
import os
import socket
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from dsid.data.atomic import atomic_path
from dsid.nlb.callback import NLBEvalCallback
from dsid.runs.assemble import absolute_data_paths, build_run, check_settings
from dsid.runs.config import to_plain
from dsid.runs.load import LAST_CKPT, load_run_config
from dsid.runs.loggers import logger_settings, make_logger
from dsid.runs.progress import progress_callback
from dsid.runs.quiet import quiet_third_party
from dsid.runs.status import (
    RunDirError,
    check_new_run,
    clear_run,
    read_status,
    remove_temporaries,
    run_lock,
    write_status,
)
from dsid.training.atomic_checkpoints import AtomicCheckpointIO
from dsid.training.callbacks import EpochTimer, MetricsCallback, PlotCallback
from dsid.training.early_stopping import StepEarlyStopping
from dsid.training.final_inference import FinalInference
from dsid.training.last_checkpoint import LastCheckpoint
from dsid.training.schedules import check_renamed, ramps_end


def train(
    cfg,
    run_dir: Optional[str] = None,
    callbacks: Optional[List[pl.Callback]] = None,
    ckpt_path: Optional[str] = None,
    logger=None,
    resume: bool = False,
) -> Dict[str, Any]:
    """Fit the model described by ``cfg`` and return the final metrics (also in metrics.json).

    The run directory belongs to this run: it is locked while training, records the run's status
    (``status.json``: running, finished, or failed with the error), and must not already hold a run
    (``overwrite=true`` in the config replaces one, but only once data, model and settings passed
    their checks). ``resume`` continues the run in ``run_dir`` from its last checkpoint instead
    (see :func:`resume_run`). ``callbacks`` are added to the trainer's; ``logger`` replaces the
    configured one.
    """
    quiet_third_party()
    cfg = to_plain(cfg)
    check_settings(cfg)
    check_trainer(cfg.get("trainer") or {})
    logger_settings(cfg)
    cfg = absolute_data_paths(cfg)
    run_dir = Path(run_dir or cfg.get("run_dir") or "runs/latest")
    if launched_process():  # another process of a multi-process run: the first one owns the dir
        built = _prepare(cfg, run_dir, callbacks)
        logger = make_logger(cfg, run_dir) if logger is None else logger
        return _fit(
            cfg, run_dir, built, logger, resume_checkpoint(run_dir) if resume else ckpt_path
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        ckpt_path = ckpt_path or str(resume_checkpoint(run_dir))
    else:
        check_new_run(run_dir, overwrite=bool(cfg.get("overwrite")))
    with run_lock(run_dir):
        built = _prepare(cfg, run_dir, callbacks)
        # data, model and settings passed their checks: only now is the earlier run removed
        if resume:
            remove_temporaries(run_dir)  # what the killed process was writing
        else:
            clear_run(run_dir)
            with atomic_path(run_dir / "config.yaml") as tmp:
                tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
        return _train_locked(cfg, run_dir, built, logger, ckpt_path, resume)


def _train_locked(cfg, run_dir: Path, built, logger, ckpt_path, resume: bool) -> Dict[str, Any]:
    """Make the logger, record the run's status around the fit (the run directory locked)."""
    before = read_status(run_dir) or {}
    own_logger = logger is None
    if own_logger:
        logger = make_logger(cfg, run_dir, before.get("wandb_id") if resume else None)
    wandb_id = logger.experiment.id if isinstance(logger, pl.loggers.WandbLogger) else None
    write_status(
        run_dir,
        status="running",
        error=None,
        pid=os.getpid(),
        host=socket.gethostname(),
        started=before.get("started") or time.strftime("%Y-%m-%dT%H:%M:%S"),
        resumed=int(before.get("resumed", 0)) + int(resume),
        wandb_id=wandb_id,
    )
    try:
        metrics = _fit(cfg, run_dir, built, logger, ckpt_path)
    except BaseException as err:
        try:  # (on a full disk even this fails: the error that stopped the run is the one raised)
            write_status(run_dir, status="failed", error=f"{type(err).__name__}: {err}"[:2000])
        except OSError:
            pass
        raise
    finally:  # a failed fit must not leave its W&B run open for the next one to reuse
        if own_logger and isinstance(logger, pl.loggers.WandbLogger):
            import wandb

            wandb.finish()
    write_status(run_dir, status="finished", epochs=metrics.get("epochs"))
    return metrics


def launched_process() -> bool:
    """True in every process of a multi-process (DDP) run but the first: Lightning's own launcher,
    torchrun and SLURM name a process's rank in these variables."""
    names = ("LOCAL_RANK", "NODE_RANK", "RANK", "GROUP_RANK", "SLURM_PROCID")
    return any(int(os.environ.get(name, "0") or 0) > 0 for name in names)


def check_trainer(trainer_cfg: Dict[str, Any]) -> None:
    """Trainer settings that are no Trainer argument, would run nothing, or need hardware that is
    not there, as clear errors."""
    unknown = sorted(set(trainer_cfg) - set(inspect.signature(pl.Trainer).parameters))
    if unknown:
        raise KeyError(f"trainer.{unknown[0]}: not a pytorch_lightning.Trainer argument")
    epochs = trainer_cfg.get("max_epochs")
    if epochs is not None and epochs != -1 and epochs < 1:
        raise ValueError(
            f"trainer.max_epochs={epochs}: expected at least 1 (or -1 with trainer.max_time)"
        )
    if str(trainer_cfg.get("accelerator", "")).lower() in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"trainer.accelerator={trainer_cfg['accelerator']}: no CUDA GPU is visible to "
                "torch (torch.cuda.is_available() is False); use trainer=cpu"
            )


def resume_checkpoint(run_dir) -> Path:
    """The checkpoint a run that did not finish continues from, with clear errors otherwise."""
    status = (read_status(run_dir) or {}).get("status")
    if status == "finished":
        raise RunDirError(f"{run_dir}: the run finished; there is nothing to resume")
    path = Path(run_dir) / LAST_CKPT
    if not path.exists():
        raise RunDirError(
            f"{run_dir}: no {LAST_CKPT} to resume from (it is written from the second epoch "
            "on); start the run again with overwrite=true"
        )
    return path


def resume_run(run_dir, callbacks: Optional[List[pl.Callback]] = None) -> Dict[str, Any]:
    """Continue the run in ``run_dir`` (killed or failed) from its last checkpoint, with its own
    config: the same optimizer, schedules, early-stopping state, random draws and W&B run."""
    ckpt = resume_checkpoint(
        run_dir
    )  # first: a run with nothing to resume says so, whatever its data
    return train(
        load_run_config(run_dir),
        run_dir=str(run_dir),
        callbacks=callbacks,
        ckpt_path=str(ckpt),
        resume=True,
    )


def early_stopping_config(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """The ``early_stopping`` section checked: ``monitor`` (default ``val/select``) and
    ``patience_steps`` (optimizer steps; 0 never stops early)."""
    es = dict(cfg.get("early_stopping") or {})
    check_renamed("early_stopping", es)
    for key in es:
        if key not in ("monitor", "patience_steps"):
            raise KeyError(
                f"early_stopping.{key}: not an early-stopping setting "
                "(known: monitor, patience_steps)"
            )
    patience = int(es.get("patience_steps") or 0)
    if patience < 0:
        raise ValueError(f"early_stopping.patience_steps={patience}: expected >= 0")
    return {"monitor": str(es.get("monitor") or "val/select"), "patience_steps": patience}


def _prepare(cfg, run_dir: Path, extra: Optional[List[pl.Callback]]) -> Tuple:
    """Seed, data, model and callbacks (each setting they read checked): ``(dm, module,
    callbacks, final)``, where ``final`` is the :class:`FinalInference` callback."""
    pl.seed_everything(int(cfg.get("seed", 0)), workers=True, verbose=False)
    dm, module = build_run(cfg)
    callbacks, final = make_callbacks(cfg, run_dir, module, extra)
    return dm, module, callbacks, final


def make_callbacks(cfg, run_dir: Path, module, extra=None) -> Tuple[List[pl.Callback], Any]:
    """The trainer's callbacks (``extra`` among them) and the :class:`FinalInference` one."""
    es = early_stopping_config(cfg)
    plots, infer = dict(cfg.get("plots") or {}), cfg.get("infer") or {}
    check_renamed("plots", plots)
    ckpt = pl.callbacks.ModelCheckpoint(
        dirpath=str(run_dir / "checkpoints"),
        filename="best",
        monitor=es["monitor"],
        mode="min",
        enable_version_counter=False,
    )
    final = FinalInference(
        run_dir,
        n_samples=int(infer.get("n_samples", 20)),
        batch_size=int(infer.get("batch_size", 256)),
        n_neurons=int(plots.get("n_neurons", 4)),
    )
    every = int(module.train_cfg["metrics_every_n_steps"] or 0)
    callbacks = [
        ckpt,
        MetricsCallback(every),
        PlotCallback(run_dir / "figures", **plots),
        pl.callbacks.LearningRateMonitor(logging_interval="epoch"),
        EpochTimer(),
        *(extra or []),
    ]
    nlb = NLBEvalCallback.from_config(cfg.get("nlb"))
    if nlb is not None:  # NLB scores while training
        callbacks.append(nlb)
    if es["patience_steps"]:
        callbacks.append(
            StepEarlyStopping(es["monitor"], es["patience_steps"], ramps_end(module.train_cfg))
        )
    callbacks += [LastCheckpoint(run_dir / LAST_CKPT), final]  # last: they see the others' state
    if trainer_settings(cfg).get("enable_progress_bar", True):
        callbacks.append(progress_callback())  # a bar on a terminal, plain lines in a log file
    return callbacks, final


def trainer_settings(cfg) -> Dict[str, Any]:
    """The ``trainer`` section's settings that are set (not null): the Trainer's arguments."""
    return {k: v for k, v in (cfg.get("trainer") or {}).items() if v is not None}


def _fit(cfg, run_dir: Path, built, logger, ckpt_path) -> Dict[str, Any]:
    """The body of :func:`train` once data, model, callbacks and logger exist."""
    dm, module, callbacks, final = built
    if not isinstance(logger, pl.loggers.WandbLogger):  # W&B got the config when its run was made
        logger.log_hyperparams({"config": cfg})
    settings = trainer_settings(cfg)
    settings["plugins"] = [*(settings.get("plugins") or []), AtomicCheckpointIO()]
    # without a bar among the callbacks (plain progress lines), Lightning must not add its own
    settings["enable_progress_bar"] = any(
        isinstance(c, pl.callbacks.ProgressBar) for c in callbacks
    )
    trainer = pl.Trainer(
        default_root_dir=str(run_dir), logger=logger, callbacks=callbacks, **settings
    )
    trainer.fit(module, dm, ckpt_path=None if ckpt_path is None else str(ckpt_path))
    return final.metrics or {}
