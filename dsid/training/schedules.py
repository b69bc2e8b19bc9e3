"""Schedules of the loss weights during training."""
from __future__ import annotations

from typing import Any, Dict, Mapping

import numpy as np


def ramp(epoch_float: float, start: float, length: float, minimum: float = 0.0) -> float:
    """Linear ramp from ``minimum`` at ``start`` to 1 at ``start + length``."""
    if length <= 0:
        return 1.0 if epoch_float >= start else minimum
    return float(np.clip(minimum + (1 - minimum) * (epoch_float - start) / length, minimum, 1.0))


def loss_weights(train_cfg: Mapping[str, Any], epoch_float: float) -> Dict[str, float]:
    """The KL and L2 weights at ``epoch_float`` (epochs, fractional within an epoch)."""
    c = train_cfg
    return {"kl": ramp(epoch_float, c["kl_start_epoch"], c["kl_ramp_epochs"], c["kl_min"]),
            "l2": ramp(epoch_float, c["l2_start_epoch"], c["l2_ramp_epochs"])}


def total_loss(terms: Mapping[str, Any], weights: Mapping[str, float], train_cfg: Mapping[str, Any], l2):
    """The training objective from a model's loss terms: ``recon + w_kl * sum_k scale_k * kl_k +
    w_l2 * (l2_scale * l2 + sum reg_*)`` (``kl_<k>`` scaled by ``train.kl_scales[k]``, default 1).
    Returns (loss, summed scaled KL)."""
    kl_total = sum(train_cfg["kl_scales"].get(k[3:], 1.0) * v for k, v in terms.items() if k.startswith("kl_"))
    reg = sum(v for k, v in terms.items() if k.startswith("reg_"))
    loss = terms["recon"] + weights["kl"] * kl_total + weights["l2"] * (train_cfg["l2_scale"] * l2 + reg)
    return loss, kl_total
