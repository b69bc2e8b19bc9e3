"""Changing tunable hyperparameters of a live training module (PBT explore after exploit), through
the small hooks components expose: an optimizer's param groups, ``nn.Dropout.p``, a coordinated
dropout's ``rate``, and the module's ``train_cfg``."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import torch

from dsid.modules.augmentations.coordinated_dropout import CoordinatedDropout


def set_hyperparameters(
    module,
    *,
    lr: Optional[float] = None,
    dropout: Optional[float] = None,
    cd_rate: Optional[float] = None,
    **train_values: Any,
) -> None:
    """Change ``lr`` (optimizer param groups and ``train_cfg``), ``dropout`` (every ``nn.Dropout``),
    ``cd_rate`` (every coordinated-dropout augmentation), and any other ``train_cfg`` entry
    (``kl_scales={'ic': ..}``, ``l2_scale``, ...) of a live
    :class:`~dsid.training.lightning_module.TrainingModule`. The saved hyperparameters follow, so
    later checkpoints rebuild the changed module."""
    train_cfg, model_cfg = module.hparams["train_cfg"], module.hparams["model_cfg"]
    for key, value in train_values.items():
        if isinstance(value, Mapping) and isinstance(module.train_cfg.get(key), Mapping):
            value = {**module.train_cfg[key], **value}
        module.train_cfg[key] = train_cfg[key] = value
    if lr is not None:
        module.train_cfg["lr"] = train_cfg["lr"] = float(lr)
        if module._trainer is not None:
            for opt in module.trainer.optimizers:
                for group in opt.param_groups:
                    group["lr"] = float(lr)
    if dropout is not None:
        for m in module.model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = float(dropout)
        for key, sub in list(model_cfg.items()):
            if isinstance(sub, Mapping) and "dropout" in sub:
                model_cfg[key] = {**sub, "dropout": float(dropout)}
    if cd_rate is not None:
        for m in module.model.modules():
            if isinstance(m, CoordinatedDropout):
                m.rate = float(cd_rate)
        model_cfg["augmentations"] = [
            {**aug, "rate": float(cd_rate)} if aug.get("name") == "coordinated_dropout" else aug
            for aug in model_cfg.get("augmentations") or []
        ]
