"""NDT: a stand-alone Neural Data Transformer trained by masked-bin reconstruction."""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch
from torch import nn

import dsid.modules  # noqa: F401  (registers the built-in components)
from dsid.models.sae import apply_augmentations, build_augmentations
from dsid.modules.encoders._attention import AttentionStack, context_mask
from dsid.registry import OBSERVATIONS, READOUTS

DEFAULT_TRANSFORMER = {"d_model": 64, "n_heads": 4, "n_layers": 2, "ff_size": 128, "dropout": 0.1,
                       "context_forward": -1, "context_backward": -1}
DEFAULT_MASKING = [{"name": "coordinated_dropout", "rate": 0.25}]


def masked_nll(observation: nn.Module, params: torch.Tensor, target: torch.Tensor,
               heldin_idx: torch.Tensor, heldin_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Per-batch mean of the summed NLL; with ``heldin_mask`` only the masked held-in entries of the
    observed window are scored (rescaled by 1 / mask rate so the magnitude does not depend on it);
    held-out neurons, and bins past the window (forward prediction: ``target`` longer than the
    mask), are always scored.

    Shape:
        params: (B, T'', N, P) with T'' >= T'; target: (B, T', N) with T' >= T;
        heldin_mask: (B, T, N_in) or None
        returns: scalar
    """
    nll = observation(params[:, :target.shape[1]], target)
    if heldin_mask is not None:
        T = heldin_mask.shape[1]
        frac = heldin_mask.mean().clamp_min(1e-3)
        weight = torch.ones_like(nll[:, :T])
        weight[..., heldin_idx] = heldin_mask / frac
        nll = torch.cat([nll[:, :T] * weight, nll[:, T:]], dim=1)
    return nll.sum((1, 2)).mean()


class NDT(nn.Module):
    """Held-in bins -> linear embedding + positions -> self-attention over time (bidirectional, or
    limited to ``context_forward``/``context_backward`` bins) -> per-bin factors (a linear
    bottleneck of ``factor_size``) -> readout -> observation parameters of every neuron.

    Trained by masked-bin reconstruction: the augmentations (default: coordinated dropout at rate
    0.25) hide input entries and the loss scores the hidden held-in entries and all held-out
    neurons. Deterministic (no latent sampling, no KL terms). Forward-prediction bins are appended
    as empty (masked) tokens.

    Config (``model``): ``kind: ndt``, ``factor_size``, ``observation``, ``readout``,
    ``augmentations``, ``transformer: {d_model, n_heads, n_layers, ff_size, dropout,
    context_forward, context_backward}`` (negative context: unlimited).
    """

    def __init__(self, model_cfg: Mapping[str, Any], data_info: Mapping[str, Any]):
        super().__init__()
        cfg = dict(model_cfg)
        tcfg = {**DEFAULT_TRANSFORMER, **dict(cfg.get("transformer") or {})}
        unknown = sorted(set(tcfg) - set(DEFAULT_TRANSFORMER))
        if unknown:
            raise KeyError(f"ndt model: model.transformer does not take {unknown}; it takes "
                           f"{sorted(DEFAULT_TRANSFORMER)}")
        self.heldout = torch.as_tensor(np.asarray(data_info["heldout"], bool))
        self.register_buffer("heldin_idx", torch.nonzero(~self.heldout).flatten(), persistent=False)
        self.n_neurons, self.n_heldin = int(self.heldout.numel()), int((~self.heldout).sum())
        factor_size, d_model = int(cfg["factor_size"]), int(tcfg["d_model"])
        self.context = (int(tcfg["context_forward"]), int(tcfg["context_backward"]))
        self.observation = OBSERVATIONS.build(cfg["observation"])
        self.embed = nn.Linear(self.n_heldin, d_model)
        self.stack = AttentionStack(d_model=d_model, n_heads=int(tcfg["n_heads"]),
                                    n_layers=int(tcfg["n_layers"]), ff_size=int(tcfg["ff_size"]),
                                    dropout=float(tcfg["dropout"]))
        self.to_factors = nn.Linear(d_model, factor_size)
        init_bias = None
        if data_info.get("mean_counts") is not None and hasattr(self.observation, "init_params"):
            init_bias = self.observation.init_params(np.asarray(data_info["mean_counts"], float))
        self.readout = READOUTS.build(cfg.get("readout") or {"name": "linear"}, factor_size=factor_size,
                                      n_neurons=self.n_neurons, n_params=self.observation.n_params,
                                      init_bias=init_bias)
        augs = cfg.get("augmentations")
        self.augmentations = build_augmentations(DEFAULT_MASKING if augs is None else augs)
        if not any(getattr(a, "changes_loss", False) for a in self.augmentations):
            raise ValueError("ndt model: masked-bin reconstruction needs a masking augmentation "
                             "(e.g. coordinated_dropout) in model.augmentations; without one the "
                             "model learns the identity map")

    def augment(self, spikes: torch.Tensor, stage: str, generator: Optional[torch.Generator] = None):
        """Select held-in neurons and apply the augmentations (the masking) for ``stage``.

        Shape:
            spikes: (B, T, N) -> x: (B, T, N_in), loss_mask: (B, T, N_in) or None
        """
        return apply_augmentations(self.augmentations, spikes[..., self.heldin_idx], stage, generator)

    def recurrent_weights(self) -> List[torch.Tensor]:
        return []  # no recurrence; weight decay regularises the transformer

    def forward(self, x: torch.Tensor, n_forward: int = 0, sample: bool = True,
                ext: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Infer rates for all neurons from held-in input (``sample`` is ignored: deterministic).

        Shape:
            x: (B, T, N_in) held-in input
            returns dict: params (B, T+n_forward, N, P), rates (B, T+n_forward, N),
            factors (B, T+n_forward, F), states (B, T+n_forward, d_model); n_observed = T
        """
        if ext is not None:
            raise ValueError("ndt model: external inputs are not supported")
        n_observed = x.shape[1]
        if n_forward:
            x = torch.cat([x, x.new_zeros(x.shape[0], n_forward, x.shape[2])], dim=1)
        mask = context_mask(x.shape[1], *self.context, device=x.device)
        h = self.stack(self.embed(x), mask=mask)
        factors = self.to_factors(h)
        params = self.readout(factors)
        return {"params": params, "rates": self.observation.mean(params), "factors": factors,
                "states": h, "n_observed": n_observed}

    def loss_terms(self, out: Dict[str, torch.Tensor], target: torch.Tensor,
                   heldin_mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Masked reconstruction NLL (``recon``); the KL terms are zero (no latent variables).

        Shape:
            target: (B, T', N) with T' >= T (forward bins last); heldin_mask: (B, T, N_in) or None
        """
        recon = masked_nll(self.observation, out["params"], target, self.heldin_idx, heldin_mask)
        zero = target.new_zeros(())
        return {"recon": recon, "kl_ic": zero, "kl_co": zero}
