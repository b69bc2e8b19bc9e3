"""Training callbacks: metrics while training, figures, epoch timing, and the end-of-training
inference with the best checkpoint (``inference.h5``, ``metrics.json``, figures)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List

import pytorch_lightning as pl

from dsid.evaluation.figures.diagnostics import diagnostic_figures, save_figures
from dsid.evaluation.inference import infer_split
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
    training; the final figures come from
    :class:`~dsid.training.final_inference.FinalInference`) save and log figures."""

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
    """Wall-clock seconds of every training epoch (its validation and metrics included), kept in
    the checkpoints: a resumed fit times the epochs of the processes before it too."""

    def __init__(self):
        self.seconds: List[float] = []
        self._start = None

    def state_dict(self) -> Dict[str, Any]:
        return {"seconds": list(self.seconds)}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.seconds = [float(s) for s in state_dict.get("seconds", [])]

    def on_train_epoch_start(self, trainer, module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module) -> None:
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    @property
    def seconds_per_epoch(self) -> float:
        """The mean over the timed epochs (NaN before the first one)."""
        return float(sum(self.seconds) / len(self.seconds)) if self.seconds else float("nan")
