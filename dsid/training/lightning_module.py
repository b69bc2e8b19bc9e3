"""LightningModule: the loss (reconstruction + ramped KL + ramped L2), its optimisation, the
model-selection objective ``val/select`` and the weight average validated and checkpointed, for any
model registered in ``dsid.registry.MODELS``. Metrics, inference and figures are callbacks'."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import pytorch_lightning as pl
import torch

from dsid.data.multisession import session_of
from dsid.models import build_model
from dsid.training.compiled import CompiledForward, compile_mode
from dsid.training.defaults import training_config
from dsid.training.schedules import Smoothed, StepPlateau, loss_weights, total_loss
from dsid.training.weight_average import RAW_KEY, WeightAverage


class TrainingModule(pl.LightningModule):
    """Trains any DSID model built by :func:`dsid.models.build_model` (plain-dict configs, so a
    checkpoint alone rebuilds it). ``train_cfg`` overrides the ``train:`` defaults of
    ``configs/train.yaml``."""

    def __init__(
        self,
        model_cfg: Mapping[str, Any],
        data_info: Mapping[str, Any],
        train_cfg: Optional[Mapping[str, Any]] = None,
    ):
        super().__init__()
        train_cfg = training_config(train_cfg)
        self.save_hyperparameters(
            {"model_cfg": dict(model_cfg), "data_info": dict(data_info), "train_cfg": train_cfg}
        )
        self.train_cfg = train_cfg
        self.model = build_model(model_cfg, data_info)
        self._select = Smoothed(float(train_cfg["select_smoothing"]))
        self._select_sum, self._select_count = 0.0, 0
        steps = int(train_cfg["average_steps"])
        self._average = WeightAverage(self, steps) if steps > 0 else None
        self._averaged_step = -1
        self._raw_to_resume: Optional[Dict[str, torch.Tensor]] = None
        mode = compile_mode(train_cfg["compile"])  # (not a module: nothing registered twice)
        self._compiled = CompiledForward(self.model, mode) if mode else None

    def weights(self) -> Dict[str, float]:
        """The loss weights after the optimizer steps taken so far (full weights outside a fit)."""
        step = self.global_step if self._trainer is not None else 10**12
        return loss_weights(self.train_cfg, step)

    def l2_penalty(self) -> torch.Tensor:
        ws = self.model.recurrent_weights()
        if not ws:
            return torch.zeros((), device=self.device)
        return sum(0.5 * (w**2).sum() for w in ws)

    def compute_loss(self, batch: Dict[str, torch.Tensor], stage: str, batch_idx: int = 0):
        """The loss of one batch and the terms to log (``recon_heldin`` outside training)."""
        spikes, session = batch["spikes"], session_of(batch)
        gen = None
        if stage != "train":  # the same masks every validation epoch
            gen = torch.Generator().manual_seed(10_000 + batch_idx)
        x, mask = self.model.augment(spikes, stage, gen, session=session)
        fwd = batch.get("forward_spikes")
        n_fwd = 0 if fwd is None else fwd.shape[1]
        forward = self._compiled or self.model
        out = forward(x, session=session, sample=True, ext=batch.get("ext"), n_forward=n_fwd)
        # forward bins (never encoded) are scored like held-out data: the model learns to predict
        # them
        target = spikes if fwd is None else torch.cat([spikes, fwd], dim=1)
        terms = self.model.loss_terms(out, target, mask, session=session)
        l2 = self.l2_penalty()
        loss, kl_total = total_loss(terms, self.weights(), self.train_cfg, l2)
        logs = {"loss": loss, "kl": kl_total, "l2": l2, **terms}
        if stage != "train":
            logs["recon_heldin"] = self.model.heldin_recon(out, spikes, mask, session=session)
            if fwd is not None:
                logs["recon_forward"] = self._forward_recon(out, x, target, session)
        return loss, logs

    def _forward_recon(
        self, out, x: torch.Tensor, target: torch.Tensor, session: int
    ) -> torch.Tensor:
        """The mean NLL per held-in entry of the bins past the window (never encoded): how well the
        model predicts the future of the neurons it reads (``val/recon_forward``; not selected on).

        Shape:
            x: (B, T, N_in) the encoder's input; target: (B, T + T_forward, N)
        """
        B, T, n_in = x.shape
        future = torch.cat([x.new_zeros(B, T, n_in), x.new_ones(B, target.shape[1] - T, n_in)], 1)
        return self.model.heldin_recon(out, target, future, session=session)

    def training_step(self, batch, batch_idx):
        loss, logs = self.compute_loss(batch, "train", batch_idx)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite training loss at epoch {self.current_epoch}, "
                f"step {self.global_step}: {loss.item()}"
            )
        bs = batch["spikes"].shape[0]
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in logs.items()},
            on_step=False,
            on_epoch=True,
            batch_size=bs,
            sync_dist=True,
        )
        w = self.weights()
        self.log_dict(
            {"train/kl_weight": w["kl"], "train/l2_weight": w["l2"]},
            on_step=False,
            on_epoch=True,
            batch_size=bs,
        )
        return loss

    def on_train_start(self) -> None:
        if (
            self._average is not None and self._raw_to_resume is not None
        ):  # resumed: train the raw weights
            self._average.resume(self._raw_to_resume)
        self._raw_to_resume = None

    def on_train_batch_start(self, batch, batch_idx) -> None:
        if self._average is not None:
            self._average.use_raw()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if (
            self._average is not None and self.global_step != self._averaged_step
        ):  # once per optimizer step
            self._average.update(self.global_step)
            self._averaged_step = self.global_step

    def on_train_end(self) -> None:
        if self._average is not None:  # a fitted module is its average, like its checkpoints
            self._average.use_average()

    def on_validation_epoch_start(self) -> None:
        self._select_sum, self._select_count = 0.0, 0
        if self._average is not None:  # validation, selection and checkpoints see the average
            self._average.use_average()

    def validation_step(self, batch, batch_idx):
        loss, logs = self.compute_loss(batch, "val", batch_idx)
        bs = batch["spikes"].shape[0]
        # averaged over processes in multi-process training (a no-op in one process)
        self.log(
            "val/loss",
            logs.pop("loss"),
            on_epoch=True,
            prog_bar=True,
            batch_size=bs,
            sync_dist=True,
        )
        self.log_dict(
            {f"val/{k}": v for k, v in logs.items()},
            on_step=False,
            on_epoch=True,
            batch_size=bs,
            sync_dist=True,
        )
        self._select_sum += float(logs["recon_heldin"]) * bs
        self._select_count += bs

    def on_validation_epoch_end(self) -> None:
        """Log ``val/select``, the model-selection objective: the validation reconstruction of
        held-in entries hidden from the encoder (``val/recon_heldin``: no KL or L2 term, no held-out
        neuron), smoothed over evaluations (``train.select_smoothing``). Early stopping, the best
        checkpoint and the learning-rate plateau watch it, so a change of loss weights never moves
        it."""
        if self._select_count == 0 or (self._trainer is not None and self.trainer.sanity_checking):
            return
        value = self._select.update(self._select_sum / self._select_count)
        self.log("val/select", value, on_epoch=True, prog_bar=True, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        checkpoint["dsid_select"] = self._select.value
        if self._average is not None:
            self._average.to_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        self._select.value = checkpoint.get("dsid_select")
        self._raw_to_resume = checkpoint.get(RAW_KEY)  # used only if training resumes

    def configure_optimizers(self):
        c = self.train_cfg
        opt = torch.optim.AdamW(
            self.parameters(),
            lr=c["lr"],
            weight_decay=c["weight_decay"],
            betas=tuple(c["betas"]),
            eps=c["eps"],
        )
        if c.get("lr_scheduler") == "plateau":
            sched = StepPlateau(
                opt,
                patience_steps=c["lr_patience_steps"],
                factor=c["lr_factor"],
                min_lr=c["lr_min"],
            )
            # stepped after each validation (every check_val_every_n_epoch epochs)
            every = int(getattr(self._trainer, "check_val_every_n_epoch", None) or 1)
            return {
                "optimizer": opt,
                "lr_scheduler": {"scheduler": sched, "monitor": "val/select", "frequency": every},
            }
        return opt

    def lr_scheduler_step(self, scheduler, metric) -> None:
        if isinstance(scheduler, StepPlateau):
            scheduler.at_step = self.global_step
        if metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)
