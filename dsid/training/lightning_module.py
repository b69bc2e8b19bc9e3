"""LightningModule: the ELBO (reconstruction + ramped KL + ramped L2) and the per-split metrics."""
from __future__ import annotations

import contextlib
from typing import Any, Dict, Mapping, Optional

import numpy as np
import pytorch_lightning as pl
import torch

from dsid.evaluation.metrics import bits_per_spike, latent_r2, rate_r2
from dsid.models import build_model
from dsid.modules.augmentations.coordinated_dropout import CoordinatedDropout

DEFAULT_TRAIN_CFG: Dict[str, Any] = {
    "lr": 3e-3, "weight_decay": 1e-4, "betas": (0.9, 0.99), "eps": 1e-8,
    "kl_start_epoch": 0, "kl_ramp_epochs": 50, "kl_min": 0.0,
    "l2_start_epoch": 0, "l2_ramp_epochs": 50, "l2_scale": 1e-3,
    "kl_scales": {"ic": 1.0, "co": 1.0},
    "lr_scheduler": "plateau", "lr_patience": 10, "lr_factor": 0.5, "lr_min": 1e-5,
    "metrics_every_n_epochs": 1,
    "val_cd_rate": None,  # None: validation masks use the training coordinated-dropout rate
}


def ramp(epoch_float: float, start: float, length: float, minimum: float = 0.0) -> float:
    """Linear ramp from ``minimum`` at ``start`` to 1 at ``start + length``."""
    if length <= 0:
        return 1.0 if epoch_float >= start else minimum
    return float(np.clip(minimum + (1 - minimum) * (epoch_float - start) / length, minimum, 1.0))


class SAEModule(pl.LightningModule):
    """Trains any DSID model built by :func:`dsid.models.build_model` (plain-dict configs, so a
    checkpoint alone rebuilds it)."""

    def __init__(self, model_cfg: Mapping[str, Any], data_info: Mapping[str, Any],
                 train_cfg: Optional[Mapping[str, Any]] = None):
        super().__init__()
        train_cfg = {**DEFAULT_TRAIN_CFG, **dict(train_cfg or {})}
        self.save_hyperparameters({"model_cfg": dict(model_cfg), "data_info": dict(data_info),
                                   "train_cfg": train_cfg})
        self.train_cfg = train_cfg
        self.model = build_model(model_cfg, data_info)
        self._val_store: Dict[str, list] = {}

    # ----- loss -------------------------------------------------------------------------------
    def _epoch_float(self) -> float:
        trainer = self._trainer
        if trainer is None:
            return 1e9
        n = max(int(trainer.num_training_batches or 1), 1) if np.isfinite(
            trainer.num_training_batches or 1) else 1
        return self.current_epoch + (trainer.fit_loop.epoch_loop.batch_progress.current.ready % n) / n

    def weights(self) -> Dict[str, float]:
        c, e = self.train_cfg, self._epoch_float()
        return {"kl": ramp(e, c["kl_start_epoch"], c["kl_ramp_epochs"], c["kl_min"]),
                "l2": ramp(e, c["l2_start_epoch"], c["l2_ramp_epochs"])}

    def l2_penalty(self) -> torch.Tensor:
        ws = self.model.recurrent_weights()
        if not ws:
            return torch.zeros((), device=self.device)
        return sum(0.5 * (w ** 2).sum() for w in ws)

    def compute_loss(self, batch: Dict[str, torch.Tensor], stage: str, batch_idx: int = 0):
        spikes = batch["spikes"]
        gen = None
        if stage != "train":  # the same masks every validation epoch
            gen = torch.Generator().manual_seed(10_000 + batch_idx)
        with self._validation_cd_rate(stage):
            x, mask = self.model.augment(spikes, stage, gen)
        fwd = batch.get("forward_spikes")
        n_fwd = 0 if fwd is None else fwd.shape[1]
        out = self.model(x, sample=True, ext=batch.get("ext"), n_forward=n_fwd)
        # forward bins (never encoded) are scored like held-out data: the model learns to predict them
        target = spikes if fwd is None else torch.cat([spikes, fwd], dim=1)
        terms = self.model.loss_terms(out, target, mask)
        w = self.weights()
        kl_total = sum(self.train_cfg["kl_scales"].get(k[3:], 1.0) * v
                       for k, v in terms.items() if k.startswith("kl_"))
        l2 = self.l2_penalty()
        # model-owned regularisers (``reg_*``, already scaled by their own settings) ramp in with L2
        reg = sum((v for k, v in terms.items() if k.startswith("reg_")), torch.zeros((), device=l2.device))
        loss = terms["recon"] + w["kl"] * kl_total + w["l2"] * (self.train_cfg["l2_scale"] * l2 + reg)
        logs = {"loss": loss, "kl": kl_total, "l2": l2, **terms}
        if stage != "train":
            heldin = self.heldin_recon(out, spikes, mask)
            if heldin is not None:
                logs["recon_heldin"] = heldin
        return loss, logs

    def heldin_recon(self, out: Dict[str, torch.Tensor], spikes: torch.Tensor,
                     mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """Mean NLL per held-in entry hidden from the encoder by coordinated dropout (every held-in
        entry when nothing is masked). It never looks at held-out neurons, so model selection (PBT)
        on ``val/recon_heldin`` cannot leak them. None for models without ``observation`` and
        ``heldin_idx``.

        Shape:
            spikes: (B, T, N); mask: (B, T, N_in) or None
        """
        obs, idx = getattr(self.model, "observation", None), getattr(self.model, "heldin_idx", None)
        if obs is None or idx is None or "params" not in out:
            return None
        T = spikes.shape[1]
        nll = obs(out["params"][:, :T], spikes)[..., idx]
        if mask is None:
            return nll.mean()
        return (nll * mask).sum() / mask.sum().clamp_min(1.0)

    @contextlib.contextmanager
    def _validation_cd_rate(self, stage: str):
        """With ``train_cfg['val_cd_rate']`` set, validation masks use that coordinated-dropout rate
        whatever the training rate (PBT: one prediction task for every member of the population)."""
        rate = self.train_cfg.get("val_cd_rate")
        mods = [m for m in self.model.modules() if isinstance(m, CoordinatedDropout)] \
            if stage == "val" and rate is not None else []
        saved = [m.rate for m in mods]
        for m in mods:
            m.rate = float(rate)
        try:
            yield
        finally:
            for m, r in zip(mods, saved):
                m.rate = r

    def set_hyperparameters(self, *, lr: Optional[float] = None, dropout: Optional[float] = None,
                            cd_rate: Optional[float] = None, **train_values: Any) -> None:
        """Change tunable hyperparameters of a live module, e.g. after loading another PBT member's
        weights and optimizer state: ``lr`` (optimizer param groups and ``train_cfg``), ``dropout``
        (every ``nn.Dropout``), ``cd_rate`` (every coordinated-dropout augmentation), and any other
        ``train_cfg`` entry (``kl_scales={'ic': ..}``, ``l2_scale``, ...). The saved hyperparameters
        follow, so later checkpoints rebuild the changed module."""
        train_cfg, model_cfg = self.hparams["train_cfg"], self.hparams["model_cfg"]
        for key, value in train_values.items():
            if isinstance(value, Mapping) and isinstance(self.train_cfg.get(key), Mapping):
                value = {**self.train_cfg[key], **value}
            self.train_cfg[key] = train_cfg[key] = value
        if lr is not None:
            self.train_cfg["lr"] = train_cfg["lr"] = float(lr)
            if self._trainer is not None:
                for opt in self.trainer.optimizers:
                    for group in opt.param_groups:
                        group["lr"] = float(lr)
        if dropout is not None:
            for m in self.model.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.p = float(dropout)
            for key, sub in list(model_cfg.items()):
                if isinstance(sub, Mapping) and "dropout" in sub:
                    model_cfg[key] = {**sub, "dropout": float(dropout)}
        if cd_rate is not None:
            for m in self.model.modules():
                if isinstance(m, CoordinatedDropout):
                    m.rate = float(cd_rate)
            model_cfg["augmentations"] = [
                {**aug, "rate": float(cd_rate)} if aug.get("name") == "coordinated_dropout" else aug
                for aug in model_cfg.get("augmentations") or []]

    def training_step(self, batch, batch_idx):
        loss, logs = self.compute_loss(batch, "train", batch_idx)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss at epoch {self.current_epoch}, "
                                     f"step {self.global_step}: {loss.item()}")
        bs = batch["spikes"].shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in logs.items()}, on_step=False,
                      on_epoch=True, batch_size=bs)
        w = self.weights()
        self.log_dict({"train/kl_weight": w["kl"], "train/l2_weight": w["l2"]}, on_step=False,
                      on_epoch=True, batch_size=bs)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, logs = self.compute_loss(batch, "val", batch_idx)
        bs = batch["spikes"].shape[0]
        self.log("val/loss", logs.pop("loss"), on_epoch=True, prog_bar=True, batch_size=bs)
        self.log_dict({f"val/{k}": v for k, v in logs.items()}, on_step=False, on_epoch=True,
                      batch_size=bs)

    # ----- metrics ----------------------------------------------------------------------------
    def posterior_mean_outputs(self, split: str) -> Dict[str, np.ndarray]:
        """Posterior-mean outputs (no sampling, no augmentation) for a whole split."""
        from dsid.inference import infer_split

        was_training = self.training
        out = infer_split(self, self.trainer.datamodule.data.splits[split].spikes, n_samples=0)
        self.train(was_training)
        return out

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or self.trainer.datamodule is None:
            return
        every = int(self.train_cfg.get("metrics_every_n_epochs", 1) or 0)
        last = self.current_epoch + 1 >= (self.trainer.max_epochs or 0)
        if every <= 0 or (self.current_epoch % every and not last):
            return
        from dsid.inference import final_metrics

        outputs = {s: self.posterior_mean_outputs(s) for s in ("train", "valid")}
        self.log_dict(final_metrics(self.trainer.datamodule.data, outputs, self.model), on_epoch=True)

    def configure_optimizers(self):
        c = self.train_cfg
        opt = torch.optim.AdamW(self.parameters(), lr=c["lr"], weight_decay=c["weight_decay"],
                                betas=tuple(c["betas"]), eps=c["eps"])
        if c.get("lr_scheduler") == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=c["lr_factor"], patience=c["lr_patience"], min_lr=c["lr_min"])
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/loss"}}
        return opt


def split_metrics(data, outputs: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, float]:
    """bps (held-in), co_bps (held-out), and with ground truth rate_r2, latent_r2, oracle co_bps."""
    heldout = np.asarray(data.heldout, bool)
    metrics: Dict[str, float] = {}
    for split, prefix in (("train", "train"), ("valid", "val")):
        if split not in outputs:
            continue
        sd, rates = data.splits[split], outputs[split]["rates"][:, : data.n_time]
        metrics[f"{prefix}/bps"] = bits_per_spike(rates[..., ~heldout], sd.spikes[..., ~heldout])
        if heldout.any():
            metrics[f"{prefix}/co_bps"] = bits_per_spike(rates[..., heldout], sd.spikes[..., heldout])
            if sd.truth_rates is not None:
                metrics[f"{prefix}/oracle_co_bps"] = bits_per_spike(sd.truth_rates[..., heldout],
                                                                    sd.spikes[..., heldout])
        if sd.truth_rates is not None:
            metrics[f"{prefix}/rate_r2"] = rate_r2(rates, sd.truth_rates)
    tr, va = data.splits.get("train"), data.splits.get("valid")
    if tr is not None and va is not None and tr.truth_latents is not None and "valid" in outputs:
        f_tr = outputs["train"]["factors"][:, : data.n_time]
        f_va = outputs["valid"]["factors"][:, : data.n_time]
        metrics["val/latent_r2"] = latent_r2(f_tr, tr.truth_latents, f_va, va.truth_latents)
    return metrics
