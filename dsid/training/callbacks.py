"""Training callbacks: metrics while training, figures, epoch timing, and the end-of-training
inference with the best checkpoint (``inference.h5``, ``metrics.json``, figures)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import matplotlib.pyplot as plt
import pytorch_lightning as pl
import torch

from dsid.data.atomic import write_json
from dsid.evaluation.figures.diagnostics import diagnostic_figures, save_figures
from dsid.evaluation.inference import infer_data, infer_split, inference_file, read_forward_weight
from dsid.evaluation.scores import run_metrics

HISTORY_FILE = "metrics_history.json"


def posterior_mean_outputs(model, sessions, splits=("train", "valid")) -> List[Dict[str, Any]]:
    """Posterior-mean outputs (no sampling, no augmentation) of ``splits`` of every session."""
    return [
        {
            s: infer_split(
                model,
                data.splits[s].spikes,
                n_samples=0,
                session=i,
                ext=_window(data.splits[s].ext_inputs, data.n_time),
            )
            for s in splits
        }
        for i, data in enumerate(sessions)
    ]


def _window(ext, n_time: int):
    """External inputs of the observed bins only (posterior-mean outputs are not run forward)."""
    return None if ext is None else ext[:, :n_time]


def log_figures(logger, figs, fig_dir: Path, suffix: str = "") -> None:
    """Save figures as PNG and log them to W&B when the logger is W&B's."""
    save_figures(figs, fig_dir, suffix)
    if isinstance(logger, pl.loggers.WandbLogger):
        import wandb

        logger.experiment.log(
            {f"figures/{k}": wandb.Image(v) for k, v in figs.items()}, commit=False
        )
    for fig in figs.values():
        plt.close(fig)


def due_every(trainer, every: int, last_step: int, at_end: bool = True) -> bool:
    """Whether a job run at validation time every ``every`` optimizer steps is due: a multiple of
    ``every`` was passed since it last ran at ``last_step``, or (``at_end``) this is the last epoch
    or the last step of the fit. ``every <= 0``: never."""
    if every <= 0:
        return False
    if at_end and (
        trainer.current_epoch + 1 >= (trainer.max_epochs or 0) > 0
        or trainer.global_step >= (trainer.max_steps or 0) > 0
    ):
        return True
    return trainer.global_step // every > last_step // every


class MetricsCallback(pl.Callback):
    """At the first validation after every ``every_n_steps`` optimizer steps (and at the last epoch
    or step), log the posterior-mean metrics of train and valid (``val/co_bps``, ``val/rate_r2``,
    ...; per session for stitched models). ``history`` keeps each evaluation with its epoch, step
    and the training seconds until then (carried over by a resumed fit)."""

    def __init__(self, every_n_steps: int = 1):
        self.every = int(every_n_steps or 0)
        self.history: List[Dict[str, float]] = []
        self._offset, self._start = 0.0, None

    def state_dict(self) -> Dict[str, Any]:
        return {"history": self.history, "seconds": self._elapsed()}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self._offset = float(state_dict.get("seconds", 0.0))

    def _elapsed(self) -> float:
        return self._offset + (
            time.perf_counter() - self._start if self._start is not None else 0.0
        )

    def on_train_start(self, trainer, module) -> None:
        self._start = time.perf_counter()

    def _due(self, trainer) -> bool:
        if not self.history:  # the first validation
            return self.every > 0
        return due_every(trainer, self.every, self.history[-1].get("step", -1))

    def on_validation_epoch_end(self, trainer, module) -> None:
        if trainer.sanity_checking or trainer.datamodule is None or not self._due(trainer):
            return
        sessions = trainer.datamodule.sessions
        outputs = posterior_mean_outputs(module.model, sessions)
        metrics = run_metrics(module.model, sessions, outputs)
        self.history.append(
            {
                "epoch": trainer.current_epoch,
                "step": trainer.global_step,
                "seconds": round(self._elapsed(), 3),
                **metrics,
            }
        )
        module.log_dict(metrics, on_epoch=True)


class PlotCallback(pl.Callback):
    """At the first validation after every ``every_n_steps`` optimizer steps (0: never during
    training; the final figures come from :class:`FinalInference`) save and log figures."""

    def __init__(self, fig_dir, every_n_steps: int = 0, n_neurons: int = 4):
        self.fig_dir, self.every, self.n_neurons = Path(fig_dir), int(every_n_steps), n_neurons
        self.last_step = 0

    def on_validation_epoch_end(self, trainer, module) -> None:
        if trainer.sanity_checking or not due_every(
            trainer, self.every, self.last_step, at_end=False
        ):
            return
        self.last_step = trainer.global_step
        data = trainer.datamodule.sessions[0]
        outputs = posterior_mean_outputs(module.model, [data])[0]
        figs = diagnostic_figures(data, outputs, self.n_neurons, model=module.model)
        log_figures(trainer.logger, figs, self.fig_dir, suffix=f"_step{trainer.global_step:06d}")


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


def _restart_counters(state: Dict[str, Any]) -> None:
    """Zero the ``current`` progress counters (and ``is_last_batch``) in a loop's saved state."""
    for key, value in state.items():
        if key == "current" and isinstance(value, dict):
            state[key] = {k: 0 for k in value}
        elif key == "is_last_batch":
            state[key] = False
        elif isinstance(value, dict):
            _restart_counters(value)


class LastCheckpoint(pl.callbacks.Checkpoint):
    """``checkpoints/last.ckpt`` at the start of every epoch after the first and at the end of
    training, written atomically (a temporary file renamed over the old one, so a killed process
    leaves the previous checkpoint whole). It holds everything a resumed fit needs to continue as if
    it had never stopped: weights, optimizer, schedulers, loop and callback states (Lightning's),
    and the random number generator's state, put back when the resumed fit reaches the same
    point."""

    def __init__(self, path):
        self.path = Path(path)
        self._rng: Optional[torch.Tensor] = None
        self._at_epoch_start = False

    def state_dict(self) -> Dict[str, Any]:
        return {"torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self._rng = state_dict.get("torch_rng")

    def save(self, trainer) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        trainer.save_checkpoint(str(tmp), weights_only=False)  # the whole training state
        if trainer.is_global_zero:
            os.replace(tmp, self.path)

    def on_save_checkpoint(self, trainer, module, checkpoint: Dict[str, Any]) -> None:
        """Saved before anything of the new epoch happened: record it as the boundary it is (the
        previous epoch complete, the next not begun), so the resumed fit runs the new epoch whole,
        schedulers included, instead of treating it as an interrupted one."""
        if not self._at_epoch_start:
            return
        fit = checkpoint.get("loops", {}).get("fit_loop", {})
        for key, state in fit.items():
            if key.startswith("epoch_loop.") and isinstance(state, dict):
                _restart_counters(state)
        for counts in (fit.get("epoch_progress") or {}).values():
            if isinstance(counts, dict) and "started" in counts:
                counts["ready"] = counts["started"]

    def on_train_epoch_start(self, trainer, module) -> None:
        if self._rng is not None:  # resumed: continue the random draws where the saved fit was
            torch.set_rng_state(self._rng)
            self._rng = None
        elif trainer.current_epoch > 0:
            self._at_epoch_start = True
            try:
                self.save(trainer)
            finally:
                self._at_epoch_start = False

    def on_train_end(self, trainer, module) -> None:
        self.save(trainer)


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
) -> Dict[str, Any]:
    """Posterior-averaged inference of every session (``RUN_DIR/inference.h5``, or
    ``inference_session{i}.h5`` for several), the run's metrics (``metrics.json``, also logged as
    ``final/...``) and its figures (``RUN_DIR/figures``, session 0; ``history``: the metrics while
    training, for the training curves). Returns the metrics."""
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
    """When fitting ends, reload the best checkpoint and :func:`finish_run` with it (global rank 0);
    the metrics are kept in ``self.metrics``."""

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
