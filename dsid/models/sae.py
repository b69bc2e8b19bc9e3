"""SequentialAutoencoder: LFADS-style dynamics assembled from registered components, for one
recording session or several stitched together."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

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
    kl_terms,
    masked_nll,
    repeat_samples,
    sample_ic,
    sample_means,
)
from dsid.models.protocol import STANDARD_OUTPUTS
from dsid.models.readin import readin_maps
from dsid.registry import ENCODERS, GENERATORS, MODELS, OBSERVATIONS, PRIORS


@MODELS.register("sae")
class SequentialAutoencoder(ConfigurableModel):
    """Encoder -> (initial condition, controller encodings) -> generator -> factors -> readout ->
    observation model (held-out neurons are predicted, never encoded).

    With several sessions (``data_info["sessions"]``, from ``data.files``) every session ``s`` has
    its own affine read-in (held-in neurons -> ``readin_size``, started from :func:`readin_maps` by
    :meth:`init_from_data`; fixed when ``train_readin`` is false) and its own readout, around shared
    encoder and dynamics (stitching, Pandarinath et al., 2018). One session has no read-in.
    """

    output_keys = STANDARD_OUTPUTS
    supports_sessions = True

    def __init__(
        self,
        *,
        data_info: Mapping[str, Any],
        ic_size: int,
        co_size: int,
        factor_size: int,
        encoder: Mapping[str, Any],
        generator: Mapping[str, Any],
        observation: Mapping[str, Any],
        readout: Optional[Mapping[str, Any]] = None,
        ic_prior: Optional[Mapping[str, Any]] = None,
        co_prior: Optional[Mapping[str, Any]] = None,
        augmentations: Optional[list] = None,
        readin_size: int = 16,
        train_readin: bool = True,
    ):
        super().__init__()
        sessions = list(data_info.get("sessions") or [data_info])
        self.n_sessions, self.readin_size = len(sessions), int(readin_size)
        ic_size, co_size, factor_size = int(ic_size), int(co_size), int(factor_size)
        self.observation = OBSERVATIONS.build(observation)
        self.readins, self.readouts = nn.ModuleList(), nn.ModuleList()
        n_heldin = []
        for s, info in enumerate(sessions):
            heldout = np.asarray(info["heldout"], bool)
            self.register_buffer(
                f"heldin_idx_{s}", torch.as_tensor(np.flatnonzero(~heldout)), persistent=False
            )
            n_heldin.append(int((~heldout).sum()))
            if self.n_sessions > 1:
                self.readins.append(nn.Linear(n_heldin[-1], self.readin_size))
        if not train_readin:
            self.readins.requires_grad_(False)
        in_size = self.readin_size if self.n_sessions > 1 else n_heldin[0]
        self.encoder = ENCODERS.build(encoder, input_size=in_size, ic_size=ic_size)
        ci_out = getattr(self.encoder, "ci_output_size", 0) if co_size else 0
        ext = 0 if self.n_sessions > 1 else int(data_info.get("ext_input_size", 0))
        self.generator = GENERATORS.build(
            generator,
            ic_size=ic_size,
            co_size=co_size,
            factor_size=factor_size,
            ci_input_size=ci_out,
            ext_input_size=ext,
        )
        for (
            info
        ) in sessions:  # built last: a seed draws the same initial weights as in earlier versions
            self.readouts.append(
                build_readout(
                    readout,
                    self.observation,
                    factor_size,
                    len(info["heldout"]),
                    info.get("mean_counts"),
                )
            )
        self.ic_prior = PRIORS.build(ic_prior or {"name": "gaussian"}, size=ic_size)
        self.co_prior = PRIORS.build(co_prior or {"name": "ar1"}, size=max(co_size, 1))
        self.augmentations = build_augmentations(augmentations)

    @property
    def readout(self) -> nn.Module:
        """The readout of session 0 (the only one of a single-session model)."""
        return self.readouts[0]

    @property
    def heldin_idx(self) -> torch.Tensor:
        """Held-in neuron indices of session 0."""
        return self.heldin_idx_of(0)

    def heldin_idx_of(self, session: int) -> torch.Tensor:
        return getattr(self, f"heldin_idx_{check_session(session, self.n_sessions, 'sae')}")

    @torch.no_grad()
    def init_from_data(self, sessions: Sequence) -> None:
        """With several sessions, set the read-ins from the sessions' training data
        (:func:`readin_maps`)."""
        if self.n_sessions == 1:
            return
        if len(sessions) != self.n_sessions:
            raise ValueError(
                f"sae model: built for {self.n_sessions} sessions, given {len(sessions)}"
            )
        for lin, (w, b) in zip(self.readins, readin_maps(sessions, self.readin_size)):
            k = w.shape[1]
            lin.weight[:k] = torch.as_tensor(w.T, dtype=lin.weight.dtype)
            lin.bias[:k] = torch.as_tensor(b, dtype=lin.bias.dtype)

    def augment(
        self,
        spikes: torch.Tensor,
        stage: str,
        generator: Optional[torch.Generator] = None,
        *,
        session: int = 0,
    ):
        """Select the session's held-in neurons and apply the augmentations for ``stage``.

        Shape:
            spikes: (B, T, N_s) -> x: (B, T, N_in_s), loss_mask: (B, T, N_in_s) or None
        """
        return apply_augmentations(
            self.augmentations, spikes[..., self.heldin_idx_of(session)], stage, generator
        )

    def recurrent_weights(self) -> List[torch.Tensor]:
        fn = getattr(self.generator, "recurrent_weights", None)
        return list(fn()) if fn else []

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
        """Infer rates for all of the session's neurons from its held-in input; with
        ``n_samples`` > 1 every trial is encoded once and its ``n_samples`` posterior samples follow
        each other on the batch axis (B' = B * n_samples, trial-major).

        Shape:
            x: (B, T, N_in_s) held-in input; ext: (B, T, E) external input or None
            returns dict: params (B', T+n_forward, N_s, P), rates (B', T+n_forward, N_s),
            factors (B', T+n_forward, F), states (B', T+n_forward, H), ic_mean/ic_logvar/ic_sample
            (B', I), co_mean/co_logvar/co_sample (B', T+n_forward, C) or absent; n_observed = T
        """
        session = check_session(session, self.n_sessions, "sae")
        out = self._trajectories(x, session, n_forward, sample, ext, n_samples)
        out["params"] = self.readouts[session](out["factors"])
        out["rates"] = self.observation.mean(out["params"])
        return out

    def sample_means(
        self,
        x: torch.Tensor,
        *,
        session: int = 0,
        n_forward: int = 0,
        sample: bool = True,
        ext: Optional[torch.Tensor] = None,
        n_samples: int = 1,
    ) -> Dict[str, torch.Tensor]:
        """Each trial's ``output_keys`` averaged over its ``n_samples`` posterior samples
        (:func:`~dsid.models.core.sample_means`: rates a few trials at a time); what inference
        writes.

        Shape:
            x: (B, T, N_in_s); returns rates (B, T+n_forward, N_s), factors (B, T+n_forward, F),
            inferred_inputs (B, T+n_forward, C) when there is a controller
        """
        session = check_session(session, self.n_sessions, "sae")
        out = self._trajectories(x, session, n_forward, sample, ext, n_samples)
        readout = self.readouts[session]
        return sample_means(
            out, self.output_keys, n_samples, lambda f: self.observation.mean(readout(f))
        )

    def _trajectories(self, x, session, n_forward, sample, ext, n_samples) -> Dict[str, Any]:
        """Everything :meth:`forward` returns but the readout's ``params`` and ``rates``
        (``session`` checked by the caller)."""
        enc = self.encoder(self.readins[session](x) if self.n_sessions > 1 else x)
        # the samples of a trial share its ci (generators read one row per trial; see ci_repeat)
        enc = repeat_samples(enc._replace(ci=None), n_samples)._replace(ci=enc.ci)
        ext = repeat_samples(ext, n_samples)
        ic = sample_ic(enc.ic_mean, enc.ic_logvar, sample)
        gen = self.generator(ic, ci=enc.ci, ext=ext, n_steps=x.shape[1] + n_forward, sample=sample)
        out = {
            "factors": gen.factors,
            "states": gen.states,
            "ic_mean": enc.ic_mean,
            "ic_logvar": enc.ic_logvar,
            "ic_sample": ic,
            "n_observed": x.shape[1],
        }
        if gen.co_mean is not None:
            out.update(co_mean=gen.co_mean, co_logvar=gen.co_logvar, co_sample=gen.co_sample)
        return out

    def loss_terms(
        self,
        out: Dict[str, torch.Tensor],
        target: torch.Tensor,
        heldin_mask: Optional[torch.Tensor] = None,
        *,
        session: int = 0,
    ) -> Dict[str, torch.Tensor]:
        """Per-batch means of the summed reconstruction NLL (:func:`masked_nll`) and the KL terms.

        Shape:
            target: (B, T', N_s) with T' >= T (forward bins last);
            heldin_mask: (B, T, N_in_s) or None
        """
        T = int(out.get("n_observed", target.shape[1]))
        return {
            "recon": masked_nll(
                self.observation, out["params"], target, self.heldin_idx_of(session), heldin_mask
            ),
            **kl_terms(self.ic_prior, self.co_prior, out, T),
        }

    def heldin_recon(
        self,
        out: Dict[str, torch.Tensor],
        spikes: torch.Tensor,
        heldin_mask: Optional[torch.Tensor],
        *,
        session: int = 0,
    ) -> torch.Tensor:
        """Mean NLL of the held-in entries hidden from the encoder (:func:`heldin_nll`).

        Shape:
            spikes: (B, T, N_s); heldin_mask: (B, T, N_in_s) or None
        """
        return heldin_nll(
            self.observation, out["params"], spikes, self.heldin_idx_of(session), heldin_mask
        )
