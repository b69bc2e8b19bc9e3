"""The generator step protocol: what every generator implements and what unrolls it.

Every generator steps a *group* of G independent copies of itself at once (``grouped_step``): the
tensors its step uses (``step_params()``) carry a leading group dimension, and so do the state and
inputs. One area is the group of one (``step``, ``unroll``); a multi-area model stacks its areas'
parameters (:func:`stack_step_params`) and advances all areas with one batched matrix product per
weight, instead of one small product per area. :class:`StepGenerator` is the base class that gives
the initial state, the one-copy ``step`` and the unrolled ``forward``; :func:`unroll` is the
bin-by-bin unroll (autograd through every bin) the compiled scans are checked against.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Sequence

import torch
from torch import nn

State = Dict[str, torch.Tensor]


class GeneratorOutput(NamedTuple):
    factors: torch.Tensor  # (B, T, F)
    states: torch.Tensor  # (B, T, H)
    co_mean: Optional[torch.Tensor]  # (B, T, C)
    co_logvar: Optional[torch.Tensor]  # (B, T, C)
    co_sample: Optional[torch.Tensor]  # (B, T, C)


def sub_params(p: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    """The entries of ``p`` under ``prefix.``, without it."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in p.items() if k.startswith(prefix + ".")}


def stack_step_params(gens: Sequence[nn.Module]) -> Dict[str, torch.Tensor]:
    """The ``step_params()`` of generators with identical settings, stacked along a new group
    axis."""
    params = [g.step_params() for g in gens]
    return {k: torch.stack([p[k] for p in params]) for k in params[0]}


def group_of_one(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return None if x is None else x.unsqueeze(0)


def bins(x: Optional[torch.Tensor], dim: int = 2) -> Sequence[torch.Tensor]:
    """The per-bin slices of ``x`` along ``dim`` (empty for None).

    Shape:
        x: (G, B, T, .) -> T tensors of (G, B, .)
    """
    return () if x is None else x.unbind(dim)


def resolve_steps(
    gen: nn.Module, ci: Optional[torch.Tensor], ext: Optional[torch.Tensor], n_steps: Optional[int]
) -> int:
    """The number of bins to unroll (default: the length of ``ci``/``ext``), with clear errors for
    a missing length or a controller without encodings."""
    name = getattr(gen, "registry_name", type(gen).__name__)
    if n_steps is None:
        if ci is None and ext is None:
            raise ValueError(f"{name} generator: give n_steps when there is no ci or ext input")
        n_steps = (ci if ci is not None else ext).shape[1]
    if gen.use_controller and ci is None:
        raise ValueError(f"{name} generator: the controller needs encoder ci (encoder ci_size > 0)")
    return int(n_steps)


def ci_repeat(gen: nn.Module, ci: Optional[torch.Tensor], batch: int) -> int:
    """How many consecutive batch entries share each row of ``ci``: 1 when it has a row per entry, k
    when it has one per trial and the batch holds k posterior samples of each (trial-major); an
    error naming both counts when its rows do not divide the batch."""
    if ci is None or ci.shape[0] == batch:
        return 1
    if ci.shape[0] == 0 or batch % ci.shape[0]:
        name = getattr(gen, "registry_name", type(gen).__name__)
        raise ValueError(
            f"{name} generator: ci has {ci.shape[0]} rows for {batch} initial conditions; expected "
            "as many, or one per trial with the same number of samples each"
        )
    return batch // ci.shape[0]


def unroll(
    gen: nn.Module,
    ic: torch.Tensor,
    ci: Optional[torch.Tensor],
    ext: Optional[torch.Tensor],
    n_steps: Optional[int],
    sample: bool,
) -> GeneratorOutput:
    """Run ``gen.initial_state`` then ``gen.grouped_step`` (a group of one) for ``n_steps`` bins;
    bins past the end of ``ci``/``ext`` get no input. Every generator's step-by-step unroll
    (autograd through every bin); the LFADS generator runs on a compiled scan instead where it can.

    Shape:
        ic: (B, I); ci: (B or B / k, T, ci_input_size) or None (see :func:`ci_repeat`);
        ext: (B, T, ext_input_size) or None
        returns factors (B, T', F), states (B, T', H), co_* (B, T', C) or None; T' = n_steps
    """
    n_steps = resolve_steps(gen, ci, ext, n_steps)
    k = ci_repeat(gen, ci, ic.shape[0])
    if k > 1:  # one encoding per trial, shared by its samples
        ci = ci.repeat_interleave(k, dim=0)
    p = {k: v.unsqueeze(0) for k, v in gen.step_params().items()}  # once per unroll, not per step
    state = {k: v.unsqueeze(0) for k, v in gen.initial_state(ic).items()}
    # per-bin views made once: the backward of ``unbind`` is one ``stack``, whereas indexing a bin
    # every step would allocate and accumulate a full-size gradient per bin (quadratic in T)
    ci_steps = bins(group_of_one(ci))
    ext_steps = bins(group_of_one(ext))
    outs: List[Dict[str, torch.Tensor]] = []
    for t in range(n_steps):
        ci_t = ci_steps[t] if t < len(ci_steps) else None
        ext_t = ext_steps[t] if t < len(ext_steps) else None
        state, out = gen.grouped_step(p, state, ci_t, ext_t, sample)
        outs.append(out)
    stack = lambda k: torch.stack([o[k] for o in outs], dim=2)[0]  # noqa: E731
    if gen.use_controller:
        return GeneratorOutput(
            stack("f"), stack("g"), stack("co_mean"), stack("co_logvar"), stack("co")
        )
    return GeneratorOutput(stack("f"), stack("g"), None, None, None)


class StepGenerator(nn.Module):
    """Base of the generators: subclasses set ``ic_to_state``, ``to_factors`` (a
    :class:`NormalizedLinear`), ``dropout``, ``use_controller`` (and ``controller``), ``co_size``
    and ``ext_input_size``, and implement ``step_params`` and ``grouped_step``; this class gives the
    initial state, the one-copy ``step`` and the unrolled ``forward``."""

    def step_params(self) -> Dict[str, torch.Tensor]:
        """The tensors a step uses (stacked by :func:`stack_step_params` to step a group)."""
        raise NotImplementedError

    def grouped_step(
        self,
        p: Dict[str, torch.Tensor],
        state: State,
        ci_t: Optional[torch.Tensor] = None,
        ext_t: Optional[torch.Tensor] = None,
        sample: bool = True,
    ):
        """Advance a group of G copies (``p``: :meth:`step_params` stacked) by one bin.

        Shape:
            state: dict of (G, B, .) tensors; ci_t: (G, B, ci_input_size) or None (no encoding: e.g.
            beyond the observed window); ext_t: (G, B, ext_input_size) or None
            returns (new state, dict with f (G, B, F), g (G, B, H)
            and co_mean/co_logvar/co (G, B, C))
        """
        raise NotImplementedError

    def initial_state(self, ic: torch.Tensor) -> State:
        """``g = ic_to_state(ic)``, its factors, a zero controller state.

        Shape: ic (B, I) -> state dict of (B, H) / (B, F) / (B, controller) tensors.
        """
        g = self.ic_to_state(ic)
        state = {"g": g, "f": self.to_factors(self.dropout(g))}
        if self.use_controller:
            state["c"] = self.controller.initial_state(g.shape[0], g)
        return state

    def step(
        self,
        state: State,
        ci_t: Optional[torch.Tensor] = None,
        ext_t: Optional[torch.Tensor] = None,
        sample: bool = True,
    ):
        """Advance one copy by one bin (:meth:`grouped_step` for a group of one).

        Shape:
            state: dict of (B, .) tensors; ci_t: (B, ci_input_size) or None; ext_t: (B, E) or None
            returns (new state, dict with f (B, F), g (B, H) and co_mean/co_logvar/co (B, C))
        """
        p = {k: v.unsqueeze(0) for k, v in self.step_params().items()}
        new, out = self.grouped_step(
            p,
            {k: v.unsqueeze(0) for k, v in state.items()},
            group_of_one(ci_t),
            group_of_one(ext_t),
            sample,
        )
        return {k: v[0] for k, v in new.items()}, {k: v[0] for k, v in out.items()}

    def forward(
        self,
        ic: torch.Tensor,
        ci: Optional[torch.Tensor] = None,
        ext: Optional[torch.Tensor] = None,
        n_steps: Optional[int] = None,
        sample: bool = True,
    ) -> GeneratorOutput:
        """Unroll the dynamics for ``n_steps`` bins (default: the length of ``ci``/``ext``); bins
        past the end of ``ci``/``ext`` run with no inferred or external input (forward prediction).

        Shape:
            ic: (B, I) sampled initial condition; ci: (B, T, ci_input_size) or None, or one row per
            trial when ``ic`` holds k posterior samples of each (B / k rows, :func:`ci_repeat`);
            ext: (B, T, ext_input_size) or None
            returns factors (B, T', F), states (B, T', H), co_* (B, T', C) or None; T' = n_steps
        """
        return unroll(self, ic, ci, ext, n_steps, sample)
