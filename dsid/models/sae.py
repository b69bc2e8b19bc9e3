"""SequentialAutoencoder: one area's LFADS-style model assembled from registered components."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch
from torch import nn

import dsid.modules  # noqa: F401  (registers the built-in components)
from dsid.registry import AUGMENTATIONS, ENCODERS, GENERATORS, OBSERVATIONS, PRIORS, READOUTS


def build_augmentations(cfgs) -> nn.ModuleList:
    """A list of augmentation configs (``[{name: ..., **kwargs}, ...]``) -> modules applied in order."""
    return nn.ModuleList(AUGMENTATIONS.build(c) for c in (cfgs or []))


def apply_augmentations(augs: nn.ModuleList, x: torch.Tensor, stage: str,
                        generator: Optional[torch.Generator] = None):
    """Apply augmentations in order; loss masks multiply. Returns (x, loss_mask or None).

    Shape:
        x: (B, T, N); loss_mask: (B, T, N) or None
    """
    mask = None
    for aug in augs:
        x, m = aug(x, stage=stage, generator=generator)
        if m is not None:
            mask = m if mask is None else mask * m
    return x, mask


class SequentialAutoencoder(nn.Module):
    """Encoder -> (initial condition, controller encodings) -> generator -> factors -> readout ->
    observation model, for one area's neurons (held-out neurons are predicted, never encoded)."""

    def __init__(self, model_cfg: Mapping[str, Any], data_info: Mapping[str, Any]):
        super().__init__()
        cfg = dict(model_cfg)
        self.heldout = torch.as_tensor(np.asarray(data_info["heldout"], bool))
        self.register_buffer("heldin_idx", torch.nonzero(~self.heldout).flatten(), persistent=False)
        self.n_neurons = int(self.heldout.numel())
        self.n_heldin = int(self.heldin_idx.numel())
        ic_size, co_size = int(cfg["ic_size"]), int(cfg["co_size"])
        factor_size = int(cfg["factor_size"])
        self.observation = OBSERVATIONS.build(cfg["observation"])
        self.encoder = ENCODERS.build(cfg["encoder"], input_size=self.n_heldin, ic_size=ic_size)
        ci_out = getattr(self.encoder, "ci_output_size", 0) if co_size else 0
        self.generator = GENERATORS.build(
            cfg["generator"], ic_size=ic_size, co_size=co_size, factor_size=factor_size,
            ci_input_size=ci_out, ext_input_size=int(data_info.get("ext_input_size", 0)))
        init_bias = None
        if data_info.get("mean_counts") is not None and hasattr(self.observation, "init_params"):
            init_bias = self.observation.init_params(np.asarray(data_info["mean_counts"], float))
        self.readout = READOUTS.build(cfg.get("readout") or {"name": "linear"}, factor_size=factor_size,
                                      n_neurons=self.n_neurons, n_params=self.observation.n_params,
                                      init_bias=init_bias)
        self.ic_prior = PRIORS.build(cfg.get("ic_prior") or {"name": "gaussian"}, size=ic_size)
        self.co_prior = PRIORS.build(cfg.get("co_prior") or {"name": "ar1"}, size=max(co_size, 1))
        self.augmentations = build_augmentations(cfg.get("augmentations"))

    def augment(self, spikes: torch.Tensor, stage: str, generator: Optional[torch.Generator] = None):
        """Select held-in neurons and apply the augmentations for ``stage`` (train/val/predict).

        Shape:
            spikes: (B, T, N) -> x: (B, T, N_in), loss_mask: (B, T, N_in) or None
        """
        return apply_augmentations(self.augmentations, spikes[..., self.heldin_idx], stage, generator)

    def recurrent_weights(self) -> List[torch.Tensor]:
        fn = getattr(self.generator, "recurrent_weights", None)
        return list(fn()) if fn else []

    def forward(self, x: torch.Tensor, n_forward: int = 0, sample: bool = True,
                ext: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Infer rates for all neurons from held-in input.

        Shape:
            x: (B, T, N_in) held-in input; ext: (B, T, E) external input or None
            returns dict: params (B, T+n_forward, N, P), rates (B, T+n_forward, N),
            factors (B, T+n_forward, F), ic_mean/ic_logvar/ic_sample (B, I),
            co_mean/co_logvar/co_sample (B, T+n_forward, C) or absent; n_observed = T
        """
        enc = self.encoder(x)
        ic = enc.ic_mean + torch.exp(0.5 * enc.ic_logvar) * torch.randn_like(enc.ic_mean) \
            if sample else enc.ic_mean
        gen = self.generator(ic, ci=enc.ci, ext=ext, n_steps=x.shape[1] + n_forward, sample=sample)
        params = self.readout(gen.factors)
        out = {"params": params, "rates": self.observation.mean(params), "factors": gen.factors,
               "states": gen.states, "ic_mean": enc.ic_mean, "ic_logvar": enc.ic_logvar, "ic_sample": ic,
               "n_observed": x.shape[1]}
        if gen.co_mean is not None:
            out.update(co_mean=gen.co_mean, co_logvar=gen.co_logvar, co_sample=gen.co_sample)
        return out

    def loss_terms(self, out: Dict[str, torch.Tensor], target: torch.Tensor,
                   heldin_mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Per-batch means of the summed reconstruction NLL and KL terms.

        ``heldin_mask`` (from augmentations) selects which held-in entries of the observed window are
        scored; held-out neurons, and bins past the window (forward prediction, when ``target`` is
        longer than the mask), are always scored.

        Shape:
            target: (B, T', N) with T' >= T; heldin_mask: (B, T, N_in) or None
        """
        T_all = target.shape[1]
        nll = self.observation(out["params"][:, :T_all], target)
        T = int(out.get("n_observed", T_all))
        if heldin_mask is not None:
            # rescale so the expected loss magnitude does not depend on the mask rate
            frac = heldin_mask.mean().clamp_min(1e-3)
            weight = torch.ones_like(nll[:, :T])
            weight[..., self.heldin_idx] = heldin_mask / frac
            nll = torch.cat([nll[:, :T] * weight, nll[:, T:]], dim=1)
        terms = {"recon": nll.sum((1, 2)).mean(),
                 "kl_ic": self.ic_prior(out["ic_mean"], out["ic_logvar"], out["ic_sample"]).mean()}
        if "co_mean" in out:
            sl = slice(0, T)  # inferred inputs exist only where there is data
            terms["kl_co"] = self.co_prior(out["co_mean"][:, sl], out["co_logvar"][:, sl],
                                           out["co_sample"][:, sl]).mean()
        else:
            terms["kl_co"] = target.new_zeros(())
        return terms
