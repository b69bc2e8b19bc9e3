"""NDT: a stand-alone Neural Data Transformer trained by masked-bin reconstruction."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch
from torch import nn

from dsid.models.core import (
    ConfigurableModel,
    apply_augmentations,
    build_augmentations,
    build_readout,
    check_session,
    heldin_nll,
    masked_nll,
    repeat_samples,
)
from dsid.models.protocol import STANDARD_OUTPUTS
from dsid.modules.encoders.attention import AttentionStack, context_mask
from dsid.registry import MODELS, OBSERVATIONS

DEFAULT_TRANSFORMER = {
    "d_model": 64,
    "n_heads": 4,
    "n_layers": 2,
    "ff_size": 128,
    "dropout": 0.1,
    "context_forward": -1,
    "context_backward": -1,
}
DEFAULT_MASKING = [{"name": "coordinated_dropout", "rate": 0.25}]


@MODELS.register("ndt")
class NDT(ConfigurableModel):
    """Held-in bins -> linear embedding + positions -> self-attention over time (bidirectional, or
    limited to ``context_forward``/``context_backward`` bins) -> per-bin factors (a linear
    bottleneck of ``factor_size``) -> readout -> observation parameters of every neuron.

    Trained by masked-bin reconstruction: the augmentations (default: coordinated dropout at rate
    0.25) hide input entries and the loss scores the hidden held-in entries and all held-out
    neurons. Deterministic (no latent sampling, no KL terms). Forward-prediction bins are appended
    as empty (masked) tokens.

    Config (``model``): ``kind: ndt``, ``factor_size``, ``observation``, ``readout``,
    ``augmentations``, ``transformer: {d_model, n_heads, n_layers, ff_size, dropout,
    context_forward, context_backward}`` (negative context: unlimited). The base config's
    ``ic_size``, ``co_size``, ``encoder``, ``generator`` and priors are not used by this kind.
    """

    output_keys = STANDARD_OUTPUTS
    n_sessions = 1
    unused_base_keys = ("ic_size", "co_size", "encoder", "generator", "ic_prior", "co_prior")

    def __init__(
        self,
        *,
        data_info: Mapping[str, Any],
        factor_size: int,
        observation: Mapping[str, Any],
        readout: Optional[Mapping[str, Any]] = None,
        augmentations: Optional[list] = None,
        transformer: Optional[Mapping[str, Any]] = None,
    ):
        super().__init__()
        tcfg = {**DEFAULT_TRANSFORMER, **dict(transformer or {})}
        unknown = sorted(set(tcfg) - set(DEFAULT_TRANSFORMER))
        if unknown:
            raise KeyError(
                f"ndt model: model.transformer does not take {unknown}; it takes "
                f"{sorted(DEFAULT_TRANSFORMER)}"
            )
        if int(data_info.get("ext_input_size", 0)):
            raise ValueError(
                "ndt model: the data has external inputs ({split}/ext_inputs), which this "
                "model cannot take; use model.name=sae or a file without them"
            )
        self.heldout = torch.as_tensor(np.asarray(data_info["heldout"], bool))
        self.register_buffer("heldin_idx", torch.nonzero(~self.heldout).flatten(), persistent=False)
        self.n_neurons, self.n_heldin = int(self.heldout.numel()), int((~self.heldout).sum())
        factor_size, d_model = int(factor_size), int(tcfg["d_model"])
        self.context = (int(tcfg["context_forward"]), int(tcfg["context_backward"]))
        self.observation = OBSERVATIONS.build(observation)
        self.embed = nn.Linear(self.n_heldin, d_model)
        self.stack = AttentionStack(
            d_model=d_model,
            n_heads=int(tcfg["n_heads"]),
            n_layers=int(tcfg["n_layers"]),
            ff_size=int(tcfg["ff_size"]),
            dropout=float(tcfg["dropout"]),
        )
        self.to_factors = nn.Linear(d_model, factor_size)
        self.readout = build_readout(
            readout, self.observation, factor_size, self.n_neurons, data_info.get("mean_counts")
        )
        self.augmentations = build_augmentations(
            DEFAULT_MASKING if augmentations is None else augmentations
        )
        if not any(getattr(a, "changes_loss", False) for a in self.augmentations):
            raise ValueError(
                "ndt model: masked-bin reconstruction needs a masking augmentation "
                "(e.g. coordinated_dropout) in model.augmentations; without one the "
                "model learns the identity map"
            )

    def init_from_data(self, sessions) -> None:
        """Nothing to initialise from data."""

    def augment(
        self,
        spikes: torch.Tensor,
        stage: str,
        generator: Optional[torch.Generator] = None,
        *,
        session: int = 0,
    ):
        """Select held-in neurons and apply the augmentations (the masking) for ``stage``.

        Shape:
            spikes: (B, T, N) -> x: (B, T, N_in), loss_mask: (B, T, N_in) or None
        """
        check_session(session, 1, "ndt")
        return apply_augmentations(
            self.augmentations, spikes[..., self.heldin_idx], stage, generator
        )

    def recurrent_weights(self) -> List[torch.Tensor]:
        return []  # no recurrence; weight decay regularises the transformer

    def forward(
        self,
        x: torch.Tensor,
        *,
        session: int = 0,
        n_forward: int = 0,
        sample: bool = True,
        ext: Optional[torch.Tensor] = None,
        n_samples: int = 1,
    ) -> Dict[str, torch.Tensor]:
        """Infer rates for all neurons from held-in input (``sample`` is ignored: deterministic;
        with ``n_samples`` > 1 each trial's outputs are repeated, B' = B * n_samples, trial-major).

        Shape:
            x: (B, T, N_in) held-in input
            returns dict: params (B', T+n_forward, N, P), rates (B', T+n_forward, N),
            factors (B', T+n_forward, F), states (B', T+n_forward, d_model); n_observed = T
        """
        check_session(session, 1, "ndt")
        if ext is not None:
            raise ValueError("ndt model: external inputs are not supported")
        n_observed = x.shape[1]
        if n_forward:
            x = torch.cat([x, x.new_zeros(x.shape[0], n_forward, x.shape[2])], dim=1)
        mask = context_mask(x.shape[1], *self.context, device=x.device)
        h = self.stack(self.embed(x), mask=mask)
        factors = self.to_factors(h)
        params = self.readout(factors)
        out = {
            "params": params,
            "rates": self.observation.mean(params),
            "factors": factors,
            "states": h,
        }
        return {
            **{k: repeat_samples(v, n_samples) for k, v in out.items()},
            "n_observed": n_observed,
        }

    def loss_terms(
        self,
        out: Dict[str, torch.Tensor],
        target: torch.Tensor,
        heldin_mask: Optional[torch.Tensor] = None,
        *,
        session: int = 0,
    ) -> Dict[str, torch.Tensor]:
        """Masked reconstruction NLL (``recon``); the KL terms are zero (no latent variables).

        Shape:
            target: (B, T', N) with T' >= T (forward bins last); heldin_mask: (B, T, N_in) or None
        """
        recon = masked_nll(self.observation, out["params"], target, self.heldin_idx, heldin_mask)
        zero = target.new_zeros(())
        return {"recon": recon, "kl_ic": zero, "kl_co": zero}

    def heldin_recon(
        self,
        out: Dict[str, torch.Tensor],
        spikes: torch.Tensor,
        heldin_mask: Optional[torch.Tensor],
        *,
        session: int = 0,
    ) -> torch.Tensor:
        """Mean NLL of the masked held-in entries (:func:`~dsid.models.core.heldin_nll`).

        Shape:
            spikes: (B, T, N); heldin_mask: (B, T, N_in) or None
        """
        return heldin_nll(self.observation, out["params"], spikes, self.heldin_idx, heldin_mask)
