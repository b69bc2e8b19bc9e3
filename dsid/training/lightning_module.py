"""LightningModule: the loss (reconstruction + ramped KL + ramped L2) and its optimisation, for any
model registered in ``dsid.registry.MODELS``. Metrics, inference and figures are callbacks'."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import numpy as np
import pytorch_lightning as pl
import torch

from dsid.data.multisession import session_of
from dsid.models import build_model
from dsid.training.defaults import training_config
from dsid.training.schedules import loss_weights, total_loss


class SAEModule(pl.LightningModule):
    """Trains any DSID model built by :func:`dsid.models.build_model` (plain-dict configs, so a
    checkpoint alone rebuilds it). ``train_cfg`` overrides the ``train:`` defaults of
    ``configs/train.yaml``."""

    def __init__(self, model_cfg: Mapping[str, Any], data_info: Mapping[str, Any],
                 train_cfg: Optional[Mapping[str, Any]] = None):
        super().__init__()
        train_cfg = training_config(train_cfg)
        self.save_hyperparameters({"model_cfg": dict(model_cfg), "data_info": dict(data_info),
                                   "train_cfg": train_cfg})
        self.train_cfg = train_cfg
        self.model = build_model(model_cfg, data_info)

    def _epoch_float(self) -> float:
        trainer = self._trainer
        if trainer is None:
            return 1e9
        n = max(int(trainer.num_training_batches or 1), 1) if np.isfinite(
            trainer.num_training_batches or 1) else 1
        return self.current_epoch + (trainer.fit_loop.epoch_loop.batch_progress.current.ready % n) / n

    def weights(self) -> Dict[str, float]:
        return loss_weights(self.train_cfg, self._epoch_float())

    def l2_penalty(self) -> torch.Tensor:
        ws = self.model.recurrent_weights()
        if not ws:
            return torch.zeros((), device=self.device)
        return sum(0.5 * (w ** 2).sum() for w in ws)

    def compute_loss(self, batch: Dict[str, torch.Tensor], stage: str, batch_idx: int = 0):
        """The loss of one batch and the terms to log (``recon_heldin`` outside training)."""
        spikes, session = batch["spikes"], session_of(batch)
        gen = None
        if stage != "train":  # the same masks every validation epoch
            gen = torch.Generator().manual_seed(10_000 + batch_idx)
        x, mask = self.model.augment(spikes, stage, gen, session=session)
        fwd = batch.get("forward_spikes")
        n_fwd = 0 if fwd is None else fwd.shape[1]
        out = self.model(x, session=session, sample=True, ext=batch.get("ext"), n_forward=n_fwd)
        # forward bins (never encoded) are scored like held-out data: the model learns to predict them
        target = spikes if fwd is None else torch.cat([spikes, fwd], dim=1)
        terms = self.model.loss_terms(out, target, mask, session=session)
        l2 = self.l2_penalty()
        loss, kl_total = total_loss(terms, self.weights(), self.train_cfg, l2)
        logs = {"loss": loss, "kl": kl_total, "l2": l2, **terms}
        if stage != "train":
            logs["recon_heldin"] = self.model.heldin_recon(out, spikes, mask, session=session)
        return loss, logs

    def training_step(self, batch, batch_idx):
        loss, logs = self.compute_loss(batch, "train", batch_idx)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss at epoch {self.current_epoch}, "
                                     f"step {self.global_step}: {loss.item()}")
        bs = batch["spikes"].shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in logs.items()}, on_step=False,
                      on_epoch=True, batch_size=bs, sync_dist=True)
        w = self.weights()
        self.log_dict({"train/kl_weight": w["kl"], "train/l2_weight": w["l2"]}, on_step=False,
                      on_epoch=True, batch_size=bs)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, logs = self.compute_loss(batch, "val", batch_idx)
        bs = batch["spikes"].shape[0]
        # averaged over processes in multi-process training (a no-op in one process)
        self.log("val/loss", logs.pop("loss"), on_epoch=True, prog_bar=True, batch_size=bs, sync_dist=True)
        self.log_dict({f"val/{k}": v for k, v in logs.items()}, on_step=False, on_epoch=True,
                      batch_size=bs, sync_dist=True)

    def configure_optimizers(self):
        c = self.train_cfg
        opt = torch.optim.AdamW(self.parameters(), lr=c["lr"], weight_decay=c["weight_decay"],
                                betas=tuple(c["betas"]), eps=c["eps"])
        if c.get("lr_scheduler") == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=c["lr_factor"], patience=c["lr_patience"], min_lr=c["lr_min"])
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/loss"}}
        return opt
