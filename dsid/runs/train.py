"""``train(cfg)``: one training run from a composed config: data and model (``build_run``), logger,
callbacks, fit, then inference and metrics with the best checkpoint (``FinalInference``)."""

from __future__ import annotations

import os
import re
import socket
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from dsid.models import model_name
from dsid.nlb.callback import NLBEvalCallback
from dsid.runs.assemble import absolute_data_paths, build_run
from dsid.runs.config import to_plain
from dsid.runs.load import LAST_CKPT, load_run_config
from dsid.runs.quiet import quiet_third_party
from dsid.runs.status import RunDirError, prepare_new_run, read_status, run_lock, write_status
from dsid.training.callbacks import EpochTimer, MetricsCallback, PlotCallback
from dsid.training.early_stopping import StepEarlyStopping
from dsid.training.final_inference import FinalInference
from dsid.training.last_checkpoint import LastCheckpoint
from dsid.training.schedules import check_renamed, ramps_end


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
    raise ValueError(f"logger.kind={kind}: expected wandb or csv")


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
    (``overwrite=true`` in the config replaces one). ``resume`` continues the run in ``run_dir``
    from its last checkpoint instead (see :func:`resume_run`). ``callbacks`` are added to the
    trainer's; ``logger`` replaces the configured one.
    """
    quiet_third_party()
    cfg = to_plain(cfg)
    check_trainer(cfg.get("trainer") or {})
    cfg = absolute_data_paths(cfg)
    run_dir = Path(run_dir or cfg.get("run_dir") or "runs/latest")
    if (
        launched_process()
    ):  # another process of a multi-process run: the first one owns the directory
        pl.seed_everything(int(cfg.get("seed", 0)), workers=True, verbose=False)
        dm, module = build_run(cfg)
        logger = make_logger(cfg, run_dir) if logger is None else logger
        return _fit(
            cfg,
            run_dir,
            dm,
            module,
            logger,
            callbacks,
            str(resume_checkpoint(run_dir)) if resume else ckpt_path,
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        ckpt_path = ckpt_path or str(resume_checkpoint(run_dir))
    else:
        prepare_new_run(run_dir, overwrite=bool(cfg.get("overwrite")))
    with run_lock(run_dir):
        pl.seed_everything(int(cfg.get("seed", 0)), workers=True, verbose=False)
        dm, module = build_run(cfg)
        if not resume:
            (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
        before = read_status(run_dir) or {}
        own_logger = logger is None
        logger = (
            make_logger(cfg, run_dir, before.get("wandb_id") if resume else None)
            if own_logger
            else logger
        )
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
            metrics = _fit(cfg, run_dir, dm, module, logger, callbacks, ckpt_path)
        except BaseException as err:
            write_status(run_dir, status="failed", error=f"{type(err).__name__}: {err}"[:2000])
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
    """Trainer settings that would run nothing, or on hardware that is not there, as clear
    errors."""
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


def _fit(cfg, run_dir: Path, dm, module, logger, callbacks, ckpt_path) -> Dict[str, Any]:
    """The body of :func:`train` once data, model and logger exist."""
    if not isinstance(logger, pl.loggers.WandbLogger):  # W&B got the config when its run was made
        logger.log_hyperparams({"config": cfg})
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
        *(callbacks or []),
    ]
    nlb = NLBEvalCallback.from_config(cfg.get("nlb"))
    if nlb is not None:  # NLB scores while training
        callbacks.append(nlb)
    if es["patience_steps"]:
        callbacks.append(
            StepEarlyStopping(es["monitor"], es["patience_steps"], ramps_end(module.train_cfg))
        )
    callbacks += [
        LastCheckpoint(run_dir / LAST_CKPT),
        final,
    ]  # last: they see every other callback's state
    trainer_kwargs = {k: v for k, v in (cfg.get("trainer") or {}).items() if v is not None}
    if trainer_kwargs.get("enable_progress_bar", True):  # tqdm, like inference's bars (not Rich's)
        callbacks.append(pl.callbacks.TQDMProgressBar())
    trainer = pl.Trainer(
        default_root_dir=str(run_dir), logger=logger, callbacks=callbacks, **trainer_kwargs
    )
    trainer.fit(module, dm, ckpt_path=ckpt_path)
    return final.metrics or {}
