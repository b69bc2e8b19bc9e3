"""The end of a fit: the best checkpoint reloaded, posterior-averaged inference of every split
written, the final metrics and figures computed and logged (``finish_run``, ``FinalInference``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import pytorch_lightning as pl

from dsid.data.atomic import write_json
from dsid.evaluation.figures.diagnostics import diagnostic_figures
from dsid.evaluation.inference import (
    DEFAULT_SEED,
    infer_data,
    inference_file,
    read_forward_weight,
)
from dsid.evaluation.scores import run_metrics
from dsid.training.callbacks import HISTORY_FILE, EpochTimer, MetricsCallback, log_figures


def finish_run(
    module,
    sessions,
    run_dir: Path,
    n_samples: int = 20,
    batch_size: int = 256,
    n_neurons: int = 4,
    logger=None,
    extra: Optional[Dict[str, Any]] = None,
    history: Optional[List[Dict[str, Any]]] = None,
    seed: int = DEFAULT_SEED,
) -> Dict[str, Any]:
    """Posterior-averaged inference of every session (``RUN_DIR/inference.h5``, or
    ``inference_session{i}.h5`` for several; samples drawn from ``seed``, like ``dsid infer``'s, so
    a resumed run ends with the same files and metrics), the run's metrics (``metrics.json``, also
    logged as ``final/...``) and its figures (``RUN_DIR/figures``, session 0; ``history``: the
    metrics while training, for the training curves). Returns the metrics."""
    run_dir = Path(run_dir)
    model = module.model.cpu()
    n = model.n_sessions
    outputs = [
        infer_data(
            model,
            data,
            session=s,
            n_samples=n_samples,
            batch_size=batch_size,
            out=run_dir / inference_file(s, n),
            seed=seed,
        )
        for s, data in enumerate(sessions)
    ]
    metrics: Dict[str, Any] = {**run_metrics(model, sessions, outputs), **(extra or {})}
    metrics["n_parameters"] = int(sum(p.numel() for p in model.parameters()))
    for s in range(n):  # the mix of forward predictions and mean rates the validation trials chose
        w = read_forward_weight(run_dir / inference_file(s, n))
        if w is not None:
            metrics["forward_weight" if n == 1 else f"s{s}/forward_weight"] = w
    write_json(run_dir / "metrics.json", metrics)
    if logger is not None and hasattr(logger, "log_metrics"):
        logger.log_metrics(
            {f"final/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))}
        )
    if "valid" in outputs[0]:
        log_figures(
            logger,
            diagnostic_figures(sessions[0], outputs[0], n_neurons, model=model, history=history),
            run_dir / "figures",
        )
    if isinstance(logger, pl.loggers.WandbLogger):  # the written rates, factors and inputs
        import wandb

        art = wandb.Artifact(
            f"inference-{logger.experiment.id}",
            type="inference",
            metadata={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        )
        for s in range(n):
            art.add_file(str(run_dir / inference_file(s, n)))
        logger.experiment.log_artifact(art)
    return metrics


class FinalInference(pl.Callback):
    """When fitting ends, reload the best checkpoint and :func:`finish_run` with it (global rank 0;
    posterior samples from the default seed, whatever the random state the fit left); the metrics
    are kept in ``self.metrics``."""

    def __init__(self, run_dir, n_samples: int = 20, batch_size: int = 256, n_neurons: int = 4):
        self.run_dir, self.n_samples, self.batch_size = (
            Path(run_dir),
            int(n_samples),
            int(batch_size),
        )
        self.n_neurons = n_neurons
        self.metrics: Optional[Dict[str, Any]] = None

    def on_fit_end(self, trainer, module) -> None:
        if not trainer.is_global_zero:
            return
        ckpt = trainer.checkpoint_callback
        best = ckpt.best_model_path if ckpt is not None else ""
        if best:
            module = type(module).load_from_checkpoint(best, map_location="cpu")
        timers = [c for c in trainer.callbacks if isinstance(c, EpochTimer)]
        extra = {
            "epochs": trainer.current_epoch,
            "seconds_per_epoch": timers[0].seconds_per_epoch if timers else float("nan"),
        }
        history = None
        for cb in trainer.callbacks:  # the metrics while training, with their training time
            if isinstance(cb, MetricsCallback) and cb.history:
                history = cb.history
                write_json(self.run_dir / HISTORY_FILE, cb.history, indent=1)
        self.metrics = finish_run(
            module,
            trainer.datamodule.sessions,
            self.run_dir,
            self.n_samples,
            self.batch_size,
            self.n_neurons,
            trainer.logger,
            extra,
            history,
        )
