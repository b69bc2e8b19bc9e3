"""MultiAreaSAE: one sequential autoencoder per area, coupled by messages between the areas.

Each area ``a`` (from ``data_info["area"]``) has its own encoder (initial condition and controller
encodings from the area's held-in neurons only), generator, factors, readout and priors: exactly a
:class:`~dsid.models.sae.SequentialAutoencoder` on the area's neurons, whose generator additionally
receives the messages of its incoming edges as external input. A coupling module (registry
``COUPLINGS``, config ``model.coupling``) computes the messages from the source areas' past signals;
the areas advance together: on the compiled scan where it applies
(:mod:`dsid.models.multiarea.scan`: LFADS areas, messages linear in the lagged factors or states),
else one bin at a time, stepped as one group (stacked parameters, one batched product per weight:
the generators' ``step_params``/``grouped_step``). Each area keeps its
controller, so drive that no recorded area explains still has a route in.

Timing: the message of edge ``src->dst`` recorded at bin ``t`` is computed from the source's signal
at bins ``<= t`` and enters the destination's step that produces bin ``t + 1`` (as in the synthetic
ground truth, where ``m_t = U^T x_src(t - delay)`` acts on ``x_dst(t + 1)``).

Outputs add ``messages`` (B, T, M): every edge's message concatenated in ``coupling.edges`` order;
``message_index()`` maps ``"src_dst"`` to its slice of the last axis. Effectome and delays:
:class:`~dsid.models.multiarea.readouts.MultiAreaReadouts`; recovery metrics and figures:
``dsid.evaluation.multiarea.communication``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch
from torch import nn

from dsid.models.core import (
    ConfigurableModel,
    apply_augmentations,
    build_augmentations,
    check_session,
    heldin_nll,
    masked_nll,
    repeat_samples,
    sample_ic,
    sample_means,
)
from dsid.models.multiarea.layout import check_areas, contiguous_or_index
from dsid.models.multiarea.loop import step_areas
from dsid.models.multiarea.readouts import MultiAreaReadouts
from dsid.models.multiarea.scan import scan_areas, scan_covers
from dsid.models.protocol import STANDARD_OUTPUTS
from dsid.models.sae import SequentialAutoencoder
from dsid.modules.coupling.base import edge_mask
from dsid.registry import COUPLINGS, MODELS


@MODELS.register("multiarea")
class MultiAreaSAE(MultiAreaReadouts, ConfigurableModel):
    """Per-area sequential autoencoders coupled by inter-area messages (see the module docstring).

    Takes the keyword arguments of :class:`~dsid.models.sae.SequentialAutoencoder` (one session) for
    every area, plus ``coupling`` (``{name: ..., **kwargs}``; default ``none``) and
    ``allowed_edges`` (A x A of 0/1, row source, column destination; default all).
    """

    output_keys = STANDARD_OUTPUTS + (("messages", "messages"),)
    n_sessions = 1

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
        coupling: Optional[Mapping[str, Any]] = None,
        allowed_edges: Optional[list] = None,
    ):
        super().__init__()
        cfg = {
            "ic_size": ic_size,
            "co_size": co_size,
            "factor_size": factor_size,
            "encoder": encoder,
            "generator": generator,
            "observation": observation,
            "readout": readout,
            "ic_prior": ic_prior,
            "co_prior": co_prior,
        }
        area, heldout, A = check_areas(data_info)
        self.n_areas, self.n_neurons = A, int(area.shape[0])
        self.area_names = list(data_info.get("area_names") or [f"A{a}" for a in range(A)])
        mask = edge_mask(A, allowed_edges, field="model.allowed_edges")
        coupling_cfg = dict(coupling or {"name": "none"})
        # message sizes depend only on the coupling's arguments: a probe sizes the generators' input
        probe = COUPLINGS.build(
            coupling_cfg,
            n_areas=A,
            source_sizes=[1] * A,
            target_sizes=[1] * A,
            allowed_edges=mask.astype(int).tolist(),
        )
        ext = int(data_info.get("ext_input_size", 0))
        area_cfg = {
            **cfg,
            "augmentations": [],
        }  # applied once to all held-in neurons, before the split
        mean_counts = data_info.get("mean_counts")
        # every generator takes the same input width (the areas are stepped as one group): its
        # incoming messages, zeros up to the widest area's messages, then the external input
        self.msg_width = max(probe.in_size(a) for a in range(A))
        self.areas = nn.ModuleList()
        for a in range(A):
            idx = np.flatnonzero(area == a)
            self.areas.append(
                SequentialAutoencoder(
                    **area_cfg,
                    data_info={
                        "heldout": heldout[idx].tolist(),
                        "ext_input_size": self.msg_width + ext,
                        "mean_counts": None
                        if mean_counts is None
                        else np.asarray(mean_counts)[idx].tolist(),
                    },
                )
            )
        missing = [
            n for n in ("step_params", "grouped_step") if not hasattr(self.areas[0].generator, n)
        ]
        if missing:
            raise TypeError(
                f"model.generator {generator.get('name')!r}: a multi-area model steps its "
                f"areas as one group and needs the generator methods {', '.join(missing)} "
                "(see dsid/modules/recurrent/step_protocol.py)"
            )
        self.observation = self.areas[0].observation
        self.ext_input_size = ext
        self.source = probe.source
        with torch.no_grad():  # the signal sizes, from a dry run of each initial state
            init = [
                ar.generator.initial_state(torch.zeros(1, int(cfg["ic_size"]))) for ar in self.areas
            ]
        sizes = [self._signal(a, s).shape[-1] for a, s in enumerate(init)]
        self.factor_sizes = [int(s["f"].shape[-1]) for s in init]
        self.coupling = COUPLINGS.build(
            coupling_cfg,
            n_areas=A,
            source_sizes=sizes,
            target_sizes=[s["g"].shape[-1] for s in init],
            allowed_edges=mask.astype(int).tolist(),
        )
        self.augmentations = build_augmentations(augmentations)
        hin = np.flatnonzero(~heldout)
        self.register_buffer("heldin_idx", torch.as_tensor(hin), persistent=False)
        # each area's held-in columns of the input: a slice (a view, no copy) where they are
        # contiguous
        self.area_in_pos = [contiguous_or_index(np.flatnonzero(area[hin] == a)) for a in range(A)]
        self.area_idx = [np.flatnonzero(area == a) for a in range(A)]
        order = np.argsort(np.concatenate(self.area_idx))
        self.areas_in_file_order = bool(
            (order == np.arange(order.size)).all()
        )  # no reordering needed
        self.register_buffer("neuron_order", torch.as_tensor(order), persistent=False)
        # where each edge's message sits in its destination generator's external input, and for
        # every area and input column the column of [all messages, external input, 0] that feeds it
        offsets, M = [0] * A, self.coupling.message_size
        self.edge_columns: List[slice] = []
        gather = np.full((A, self.msg_width + ext), M + ext, dtype=np.int64)
        gather[:, self.msg_width :] = M + np.arange(ext)
        for e, ((_, d), sl) in enumerate(
            zip(self.coupling.edges, self.coupling.message_index().values())
        ):
            k = self.coupling.edge_sizes[e]
            self.edge_columns.append(slice(offsets[d], offsets[d] + k))
            gather[d, offsets[d] : offsets[d] + k] = np.arange(sl.start, sl.stop)
            offsets[d] += k
        self.register_buffer("input_gather", torch.as_tensor(gather).flatten(), persistent=False)
        # the same as one-hot (A, msg_width, M): message column m feeds area a's input column j
        columns = np.arange(M)[None, None, :] == gather[:, : self.msg_width, None]
        self.register_buffer(
            "message_columns", torch.as_tensor(columns, dtype=torch.float32), persistent=False
        )
        self.ic_size, self.co_size = int(ic_size), int(co_size)

    # ----- helpers ------------------------------------------------------------------------------
    def _signal(self, a: int, out: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Area ``a``'s source signal from a generator step's outputs. Shape: (B, S_a)."""
        if self.source == "factors":
            return out["f"]
        if self.source == "state":
            return out["g"]
        return self.areas[a].readout(out["f"].unsqueeze(1))[:, 0].flatten(1)

    def _to_global(self, parts: List[torch.Tensor], dim: int = 2) -> torch.Tensor:
        """Per-area neuron blocks (area order) -> all neurons in file order along ``dim``."""
        joined = torch.cat(parts, dim=dim)
        return joined if self.areas_in_file_order else joined.index_select(dim, self.neuron_order)

    def area_input(self, x: torch.Tensor, a: int) -> torch.Tensor:
        """Area ``a``'s held-in neurons of the held-in input.
        Shape: (B, T, N_in) -> (B, T, N_in_a)."""
        pos = self.area_in_pos[a]
        return x[..., pos] if isinstance(pos, slice) else x.index_select(-1, pos.to(x.device))

    def message_index(self) -> Dict[str, slice]:
        """``"src_dst"`` -> slice of the ``messages`` output's last axis."""
        return self.coupling.message_index()

    @property
    def edges(self) -> List[tuple]:
        """The directed (src, dst) edges of the coupling."""
        return list(self.coupling.edges)

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
        """Select held-in neurons (all areas) and apply the augmentations for ``stage``.

        Shape:
            spikes: (B, T, N) -> x: (B, T, N_in), loss_mask: (B, T, N_in) or None
        """
        check_session(session, 1, "multiarea")
        return apply_augmentations(
            self.augmentations, spikes[..., self.heldin_idx], stage, generator
        )

    def edge_gains(self) -> torch.Tensor:
        """Per-edge gain: the Frobenius norm of the edge's end-to-end linear map, the destination
        generator's weights on the edge's message times the coupling's projection of the source
        signal (lag mixing and gates only weight it). Unlike either factor alone it cannot be moved
        from one side to the other, so a penalty on it prunes edges. Shape: (E,)."""
        maps = self.coupling.edge_maps()
        if not maps:
            return self.heldin_idx.new_zeros(0, dtype=torch.float32)
        return torch.stack(
            [
                torch.linalg.matrix_norm(
                    self.areas[d].generator.ext_input_weight()[:, self.edge_columns[e]] @ m
                )
                for e, ((_, d), m) in enumerate(zip(self.coupling.edges, maps))
            ]
        )

    def recurrent_weights(self) -> List[torch.Tensor]:
        """Every area's recurrent weights plus the coupling's weights (L2-penalised together)."""
        return [
            w for ar in self.areas for w in ar.recurrent_weights()
        ] + self.coupling.penalized_weights()

    # ----- forward ------------------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        *,
        session: int = 0,
        n_forward: int = 0,
        sample: bool = True,
        ext: Optional[torch.Tensor] = None,
        n_samples: int = 1,
        probe: Optional[dict] = None,
    ) -> Dict[str, torch.Tensor]:
        """Infer rates of all neurons from the held-in input of all areas, unrolling the areas
        together.

        ``probe`` (a dict, for :meth:`measure_effects`) collects each edge's one-step effect on its
        destination's factors. With ``n_samples`` > 1 every trial is encoded once and its posterior
        samples follow each other on the batch axis (B below is then trials * n_samples,
        trial-major).

        Shape:
            x: (B, T, N_in) held-in input (file order); ext: (B, T, E) external input or None
            returns dict: params (B, T', N, P), rates (B, T', N), factors (B, T', A*F),
            states (B, T', A*H), ic_mean/ic_logvar/ic_sample (B, A*I), co_mean/co_logvar/co_sample
            (B, T', A*C) when the areas have controllers, messages (B, T', M) when there are edges,
            msg_kl (B,) for stochastic messages (KL of the messages fed to the T observed bins);
            T' = T + n_forward; area blocks in area order
        """
        return self._forward(x, session, n_forward, sample, ext, n_samples, probe, compiled=True)

    def stepwise_forward(
        self,
        x: torch.Tensor,
        *,
        session: int = 0,
        n_forward: int = 0,
        sample: bool = True,
        ext: Optional[torch.Tensor] = None,
        n_samples: int = 1,
        probe: Optional[dict] = None,
    ) -> Dict[str, torch.Tensor]:
        """:meth:`forward` on the step-by-step loop even where the compiled scan would run (tests,
        benchmarks). Shape: as :meth:`forward`."""
        return self._forward(x, session, n_forward, sample, ext, n_samples, probe, compiled=False)

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
            x: (B, T, N_in); returns rates (B, T', N), factors (B, T', A*F), inferred_inputs
            (B, T', A*C) with controllers, messages (B, T', M) with edges; T' = T + n_forward
        """
        out = self._forward(
            x, session, n_forward, sample, ext, n_samples, None, compiled=True, readout=False
        )
        return sample_means(out, self.output_keys, n_samples, self._rates)

    def _rates(self, factors: torch.Tensor) -> torch.Tensor:
        """All neurons' rates (file order) from every area's factors.
        Shape: (B, T, A*F) -> (B, T, N)."""
        parts = factors.split(self.factor_sizes, -1)
        return self._to_global(
            [ar.observation.mean(ar.readout(f)) for ar, f in zip(self.areas, parts)]
        )

    def _forward(
        self,
        x,
        session,
        n_forward,
        sample,
        ext,
        n_samples,
        probe,
        *,
        compiled: bool,
        readout: bool = True,
    ):
        check_session(session, 1, "multiarea")
        T, n_steps = x.shape[1], x.shape[1] + n_forward
        cpl = self.coupling
        encs = [ar.encoder(self.area_input(x, a)) for a, ar in enumerate(self.areas)]
        ic_mean = repeat_samples(torch.cat([e.ic_mean for e in encs], -1), n_samples)
        ic_logvar = repeat_samples(torch.cat([e.ic_logvar for e in encs], -1), n_samples)
        ic = sample_ic(ic_mean, ic_logvar, sample)
        ics, ci = list(ic.split(self.ic_size, -1)), [e.ci for e in encs]
        ext = repeat_samples(ext, n_samples) if self.ext_input_size else None
        if compiled and scan_covers(
            self, x, ext, probe
        ):  # each trial's encodings read by all its samples
            seq = scan_areas(self, ics, ci, ext, T, n_steps, sample)
        else:
            seq = step_areas(
                self,
                ics,
                [repeat_samples(c, n_samples) for c in ci],
                ext,
                T,
                n_steps,
                sample,
                probe,
            )
        out = {
            "factors": seq["f"],
            "states": seq["g"],
            "n_observed": T,
            "ic_mean": ic_mean,
            "ic_logvar": ic_logvar,
            "ic_sample": ic,
        }
        if readout:
            factors = list(seq["f"].split(self.factor_sizes, -1))
            area_params = [ar.readout(f) for ar, f in zip(self.areas, factors)]
            out["params"] = self._to_global(area_params)
            out["rates"] = self._to_global(
                [ar.observation.mean(p) for ar, p in zip(self.areas, area_params)]
            )
        if "co" in seq:
            out.update(co_mean=seq["co_mean"], co_logvar=seq["co_logvar"], co_sample=seq["co"])
        if cpl.edges:
            out["messages"] = seq["messages"]
            kl = cpl.kl(seq["fed"])
            if kl is not None:
                out["msg_kl"] = kl
            if self.training:
                fed = seq["fed"]
                cpl.update_stats(fed.means if fed.means is not None else fed.messages)
        return out

    def _signals(self, outs: List[Dict[str, torch.Tensor]]) -> List[torch.Tensor]:
        """Every area's source signal from its generator outputs (``f``, ``g``).
        Shape: list of (B, S_a)."""
        return [self._signal(a, o) for a, o in enumerate(outs)]

    # ----- loss ---------------------------------------------------------------------------------
    def loss_terms(
        self,
        out: Dict[str, torch.Tensor],
        target: torch.Tensor,
        heldin_mask: Optional[torch.Tensor] = None,
        *,
        session: int = 0,
    ) -> Dict[str, torch.Tensor]:
        """Reconstruction NLL (all areas, :func:`~dsid.models.core.masked_nll`), ``kl_ic``/``kl_co``
        summed over areas, and the coupling's terms (``kl_msg`` for stochastic messages, ``reg_*``
        regularisers; ``reg_sparsity``, the coupling's ``sparsity`` times the summed
        :meth:`edge_gains`). Per-batch means of per-trial sums. (Every area's observation model is
        built from the one ``model.observation`` config and has no parameters: one scores them all.)

        Shape:
            target: (B, T', N) with T' >= T (forward bins last); heldin_mask: (B, T, N_in) or None
        """
        check_session(session, 1, "multiarea")
        T = int(out.get("n_observed", target.shape[1]))
        I, C = self.ic_size, self.co_size
        kl_ic = sum(
            ar.ic_prior(
                out["ic_mean"][:, a * I : (a + 1) * I],
                out["ic_logvar"][:, a * I : (a + 1) * I],
                out["ic_sample"][:, a * I : (a + 1) * I],
            )
            for a, ar in enumerate(self.areas)
        )
        terms = {
            "recon": masked_nll(
                self.observation, out["params"], target, self.heldin_idx, heldin_mask
            ),
            "kl_ic": kl_ic.mean(),
        }
        if "co_mean" in out:
            co = {k: out[k][:, :T] for k in ("co_mean", "co_logvar", "co_sample")}
            terms["kl_co"] = sum(
                ar.co_prior(*(co[k][..., a * C : (a + 1) * C] for k in co))
                for a, ar in enumerate(self.areas)
            ).mean()
        else:
            terms["kl_co"] = target.new_zeros(())
        terms.update(self.coupling.loss_terms(out.get("msg_kl")))
        if self.coupling.sparsity > 0 and self.coupling.edges:  # group lasso: prunes unneeded edges
            terms["reg_sparsity"] = self.coupling.sparsity * self.edge_gains().sum()
        return terms

    def heldin_recon(
        self,
        out: Dict[str, torch.Tensor],
        spikes: torch.Tensor,
        heldin_mask: Optional[torch.Tensor],
        *,
        session: int = 0,
    ) -> torch.Tensor:
        """Mean NLL of the held-in entries hidden from the encoders (all areas).

        Shape:
            spikes: (B, T, N); heldin_mask: (B, T, N_in) or None
        """
        return heldin_nll(self.observation, out["params"], spikes, self.heldin_idx, heldin_mask)
