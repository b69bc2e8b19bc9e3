"""Read-outs of a trained multi-area model: effectome and delays.

A mixin of :class:`~dsid.models.multiarea.model.MultiAreaSAE` (it uses the model's areas, coupling
and forward pass). The effectome (``effectome(spikes)``, (A, A), row source, column destination) is
the strength of each edge's one-step effect on its destination: the standard deviation (root total
variance over trials and bins) of the change of the destination's factors caused by that edge's
message in one generator step, relative to the destination factors' own standard deviation,
measured on ``spikes`` by ``measure_effects``. Without data it is the coupling's own per-edge
strength (the messages' running standard deviation). Measuring never changes the model.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch


class MultiAreaReadouts:
    """Effectome and delays of a multi-area model."""

    def _probe(
        self,
        probe: dict,
        state: Dict[str, torch.Tensor],
        ci_t: Optional[torch.Tensor],
        ext_t: Optional[torch.Tensor],
    ) -> None:
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
                acc[0], acc[1], acc[2] = (
                    acc[0] + diff.sum(0),
                    acc[1] + (diff**2).sum(0),
                    acc[2] + diff.shape[0],
                )

    @torch.no_grad()
    def measure_effects(self, spikes, batch_size: int = 256) -> np.ndarray:
        """Measure each edge's one-step effect on its destination on ``spikes`` (trials, T, N),
        counts of all neurons. Returns the (A, A) effectome; the model is left as it was."""
        was_training = self.training
        self.eval()
        device = self.heldin_idx.device
        x_all = torch.as_tensor(np.asarray(spikes, np.float32))
        probe, fsum, fsq, count = {}, 0.0, 0.0, 0
        for start in range(0, x_all.shape[0], batch_size):
            xin, _ = self.augment(x_all[start : start + batch_size].to(device), "predict")
            f = self(xin, sample=False, probe=probe)["factors"].double()
            fsum, fsq = fsum + f.sum((0, 1)), fsq + (f**2).sum((0, 1))
            count += f.shape[0] * f.shape[1]
        self.train(was_training)
        off = np.concatenate([[0], np.cumsum(self.factor_sizes)])
        fvar = (fsq / count - (fsum / count) ** 2).clamp_min(0)
        eff = np.zeros((self.n_areas, self.n_areas))
        for e, (s, d) in enumerate(self.coupling.edges):
            if e in probe:
                dsum, dsq, n = probe[e]
                dvar = float((dsq / n - (dsum / n) ** 2).clamp_min(0).sum())
                ref = float(fvar[off[d] : off[d + 1]].sum())
                eff[s, d] = np.sqrt(dvar / ref) if ref > 0 else 0.0
        return eff

    def effectome(self, spikes=None) -> np.ndarray:
        """(A, A) inferred per-edge strength, row source, column destination (0 where no edge):
        measured on ``spikes`` (:meth:`measure_effects`) when given and the model has edges, else
        the coupling's message standard deviations."""
        if spikes is not None and self.coupling.edges:
            return self.measure_effects(spikes)
        return self.coupling.strength()

    def delays(self) -> np.ndarray:
        """(A, A) inferred delay of each edge in bins, -1 where there is no edge."""
        return self.coupling.delays()
