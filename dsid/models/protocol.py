"""What every DSID model provides (:class:`DSIDModel`) and the optional hooks some declare.

Training, inference and evaluation talk to models only through these members. A model is registered
in ``dsid.registry.MODELS`` under its ``model.name`` and built by
``from_config(model_cfg, data_info)``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np
import torch
from torch import nn


@runtime_checkable
class DSIDModel(Protocol):
    """The interface of every model.

    - ``n_sessions``: recording sessions the model reads (1 unless it stitches several).
    - ``observation``: the observation model (``integer_counts`` tells which data it reads).
    - ``output_keys``: ``(name, key)`` pairs: the forward output ``key`` that inference averages
      and writes as ``name`` (``rates``, ``factors``, ``inferred_inputs``, ``messages``, ...).
    - ``augment(spikes, stage, generator=None, *, session=0)`` -> (held-in input, loss mask or
      None).
    - ``forward(x, *, session=0, n_forward=0, sample=True, ext=None, n_samples=1)`` -> dict with at
      least ``params``, ``rates``, ``factors``; ``n_samples`` posterior samples of every trial, one
      after the other on the batch axis (the encoder runs once per trial).
    - ``loss_terms(out, target, heldin_mask=None, *, session=0)`` -> ``recon``, ``kl_*`` (weighted
      by the KL ramp), ``reg_*`` (weighted by the L2 ramp).
    - ``heldin_recon(out, spikes, heldin_mask, *, session=0)``: the mean NLL of the held-in entries
      hidden from the encoder (a selection objective that never sees held-out neurons).
    - ``recurrent_weights()``: the weights the L2 penalty applies to.
    - ``init_from_data(sessions)``: data-dependent initialisation of a freshly built model (a
      no-op for most models); never called on a model restored from a checkpoint.

    Optional: ``sample_means(x, *, session=0, n_forward=0, sample=True, ext=None, n_samples=1)`` ->
    each trial's ``output_keys`` (by name) averaged over its samples, equal to averaging
    ``forward``'s outputs; inference uses it when present (it may save time and memory, e.g. rates
    of a few trials at a time).
    """

    n_sessions: int
    observation: nn.Module
    output_keys: Tuple[Tuple[str, str], ...]

    def augment(
        self,
        spikes: torch.Tensor,
        stage: str,
        generator: Optional[torch.Generator] = None,
        *,
        session: int = 0,
    ): ...

    def forward(
        self,
        x: torch.Tensor,
        *,
        session: int = 0,
        n_forward: int = 0,
        sample: bool = True,
        ext: Optional[torch.Tensor] = None,
        n_samples: int = 1,
    ) -> Dict[str, torch.Tensor]: ...

    def loss_terms(
        self,
        out: Dict[str, torch.Tensor],
        target: torch.Tensor,
        heldin_mask: Optional[torch.Tensor] = None,
        *,
        session: int = 0,
    ) -> Dict[str, torch.Tensor]: ...

    def heldin_recon(
        self,
        out: Dict[str, torch.Tensor],
        spikes: torch.Tensor,
        heldin_mask: Optional[torch.Tensor],
        *,
        session: int = 0,
    ) -> torch.Tensor: ...

    def recurrent_weights(self) -> List[torch.Tensor]: ...

    def init_from_data(self, sessions: Sequence[Any]) -> None: ...


@runtime_checkable
class CommunicationModel(Protocol):
    """Optional hook of models of interacting areas: their inferred communication.

    - ``edges``: the directed (src, dst) edges the model has; ``area_names``.
    - ``effectome(spikes=None)``: (A, A) edge strengths, row source, column destination, measured on
      ``spikes`` when given (the model is not changed by measuring).
    - ``delays()``: (A, A) inferred delays in bins, -1 where no edge.
    - ``message_index()``: ``"src_dst"`` -> slice of the ``messages`` output's last axis.
    """

    edges: List[Tuple[int, int]]
    area_names: List[str]

    def effectome(self, spikes: Optional[np.ndarray] = None) -> np.ndarray: ...

    def delays(self) -> np.ndarray: ...

    def message_index(self) -> Mapping[str, slice]: ...


STANDARD_OUTPUTS = (("rates", "rates"), ("factors", "factors"), ("inferred_inputs", "co_sample"))
