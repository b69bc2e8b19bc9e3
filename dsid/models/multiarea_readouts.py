"""Read-outs of a trained multi-area model: effectome, delays, recovery metrics and figures.

A mixin of :class:`~dsid.models.multiarea.MultiAreaSAE` (it uses the model's areas, coupling and
forward pass). The effectome (``effectome()``, (A, A), row source, column destination) is the
strength of each edge's one-step effect on its destination: the standard deviation (root total
variance over trials and bins) of the change of the destination's factors caused by that edge's
message in one generator step, relative to the destination factors' own standard deviation; it is
measured on data by ``measure_effects`` (``extra_metrics`` does so on the validation split). Before
any measurement it falls back to the coupling's own per-edge strength (the messages' running
standard deviation).
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, Optional

import numpy as np
import torch

from dsid.evaluation import multiarea_metrics as mam
from dsid.evaluation.multiarea_plots import plot_delays, plot_effectomes, plot_messages


class MultiAreaReadouts:
    """Effectome, delays, ground-truth recovery metrics and figures of a multi-area model."""

    def _probe(self, probe: dict, state: Dict[str, torch.Tensor], ci_t: Optional[torch.Tensor],
               ext_t: Optional[torch.Tensor]) -> None:
        """Accumulate each edge's one-step effect on its destination's factors: the step with all
        inputs minus the step with that edge's message zeroed (no sampling).

        Shape:
            state: dict of (A, B, .) tensors; ci_t: (A, B, C) or None; ext_t: (A, B, W) or None
        """
        for d, gen in enumerate(self.areas):
            incoming = self.coupling.incoming(d)
            if not incoming:
                continue
            st = {k: v[d] for k, v in state.items()}
            ci_d = None if ci_t is None else ci_t[d]
            _, full = gen.generator.step(st, ci_d, ext_t[d], sample=False)
            for e in incoming:
                cut = ext_t[d].clone()
                cut[:, self.edge_columns[e]] = 0.0
                _, alt = gen.generator.step(st, ci_d, cut, sample=False)
                diff = (full["f"] - alt["f"]).double()
                acc = probe.setdefault(e, [0.0, 0.0, 0])
                acc[0], acc[1], acc[2] = acc[0] + diff.sum(0), acc[1] + (diff ** 2).sum(0), acc[2] + diff.shape[0]

    @torch.no_grad()
    def measure_effects(self, spikes, batch_size: int = 256) -> np.ndarray:
        """Measure (and keep, for :meth:`effectome`) each edge's one-step effect on its destination.

        ``spikes`` (trials, T, N) counts of all neurons. Returns the (A, A) effectome.
        """
        was_training = self.training
        self.eval()
        device = self.heldin_idx.device
        x_all = torch.as_tensor(np.asarray(spikes, np.float32))
        probe, fsum, fsq, count = {}, 0.0, 0.0, 0
        for start in range(0, x_all.shape[0], batch_size):
            xin, _ = self.augment(x_all[start:start + batch_size].to(device), "predict")
            f = self(xin, sample=False, probe=probe)["factors"].double()
            fsum, fsq = fsum + f.sum((0, 1)), fsq + (f ** 2).sum((0, 1))
            count += f.shape[0] * f.shape[1]
        self.train(was_training)
        off = np.concatenate([[0], np.cumsum(self.factor_sizes)])
        fvar = (fsq / count - (fsum / count) ** 2).clamp_min(0)
        eff = np.zeros((self.n_areas, self.n_areas))
        for e, (s, d) in enumerate(self.coupling.edges):
            if e in probe:
                dsum, dsq, n = probe[e]
                dvar = float((dsq / n - (dsum / n) ** 2).clamp_min(0).sum())
                ref = float(fvar[off[d]:off[d + 1]].sum())
                eff[s, d] = np.sqrt(dvar / ref) if ref > 0 else 0.0
        self.effect_strength.copy_(torch.as_tensor(eff))
        return eff

    def effectome(self) -> np.ndarray:
        """(A, A) inferred per-edge strength, row source, column destination (0 where no edge): the
        last :meth:`measure_effects` result, else the coupling's message standard deviations."""
        eff = self.effect_strength.detach().cpu().numpy().astype(np.float64)
        return eff if np.isfinite(eff).all() else self.coupling.strength()

    def delays(self) -> np.ndarray:
        """(A, A) inferred delay of each edge in bins, -1 where there is no edge."""
        return self.coupling.delays()

    def extra_metrics(self, data, outputs: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, float]:
        """Per-area ``val/rate_r2_area{a}`` and ``val/co_bps_area{a}``; with the data's ground truth
        ``val/effectome_cosine`` and ``val/edge_auroc`` (effectome measured on the validation spikes),
        ``val/delay_error`` with the inferred delay of every true edge ``val/delay_{src}_{dst}``,
        ``val/delay_cycle_error`` (total delays around the true graph's cycles, nan without cycles),
        ``val/message_r2`` (mean over true edges; 0 for an edge the model lacks) and
        ``val/message_r2_{src}_{dst}``. ``outputs[split]`` has rates, factors and messages."""
        metrics: Dict[str, float] = {}
        va = data.splits.get("valid")
        if va is None or "valid" not in outputs:
            return metrics
        rates = outputs["valid"]["rates"][:, :va.spikes.shape[1]]
        area, heldout = np.asarray(data.area), np.asarray(data.heldout, bool)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if va.truth_rates is not None:
                for a, v in enumerate(mam.per_area_rate_r2(rates, va.truth_rates, area)):
                    metrics[f"val/rate_r2_area{a}"] = v
            if heldout.any():
                for a, v in enumerate(mam.per_area_co_bps(rates, va.spikes, heldout, area)):
                    metrics[f"val/co_bps_area{a}"] = v
            edges = self.coupling.edges
            if data.effectome is not None:
                eff = self.measure_effects(va.spikes) if edges else self.effectome()
                metrics["val/effectome_cosine"] = mam.effectome_cosine(eff, data.effectome)
                metrics["val/edge_auroc"] = mam.edge_auroc(eff, data.effectome)
            if data.delay_bins is not None and edges:
                inferred = self.delays()
                metrics["val/delay_error"] = mam.delay_error(inferred, data.delay_bins)
                metrics["val/delay_cycle_error"] = mam.cycle_delay_error(inferred, data.delay_bins)
                for s, d in zip(*np.nonzero(data.delay_bins >= 0)):
                    if s != d:
                        metrics[f"val/delay_{s}_{d}"] = float(inferred[s, d])
            tr = data.splits.get("train")
            if edges and tr is not None and va.truth_messages and "messages" in outputs.get("train", {}):
                index, r2s = self.message_index(), []
                for key in sorted(va.truth_messages):
                    r2 = 0.0
                    if key in index and key in tr.truth_messages:
                        sl = index[key]
                        r2 = mam.message_r2(outputs["train"]["messages"][..., sl], tr.truth_messages[key],
                                            outputs["valid"]["messages"][..., sl], va.truth_messages[key])
                    metrics[f"val/message_r2_{key}"] = r2
                    r2s.append(r2)
                metrics["val/message_r2"] = float(np.mean(r2s))
        return metrics

    def figures(self, data, outputs: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, Any]:
        """``{name: Figure}``: true vs inferred effectome, delays and per-edge message traces (validation
        trial 0) for what the data has ground truth of; the inferred effectome alone otherwise."""
        names = data.area_names or self.area_names
        figs = {}
        eff = self.effectome()
        truth = data.effectome if data.effectome is not None else np.full_like(eff, np.nan)
        figs["effectome"] = plot_effectomes(truth, eff, names)
        edges = self.coupling.edges
        if data.delay_bins is not None and edges:
            figs["delays"] = plot_delays(self.delays(), data.delay_bins, names)
        va = data.splits.get("valid")
        msgs = outputs.get("valid", {}).get("messages")
        if edges and va is not None and msgs is not None:
            index = self.message_index()
            keys = [k for k in sorted(va.truth_messages) if k in index]
            if keys:
                figs["messages"] = plot_messages([va.truth_messages[k] for k in keys],
                                                 [msgs[..., index[k]] for k in keys], keys)
        return figs
