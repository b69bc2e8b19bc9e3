"""Pieces shared by the step-API generators: output type, clipped GRU cell, norm-constrained
factor map, the LFADS-style controller, grouped stepping and the unroll loop.

Every generator steps a *group* of G independent copies of itself at once (``grouped_step``): the
tensors its step uses (``step_params()``) carry a leading group dimension, and so do the state and
inputs. One area is the group of one (``step``, ``unroll``); a multi-area model stacks its areas'
parameters (``stack_step_params``) and advances all areas with one batched matrix product per
weight, instead of one small product per area.
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


class ClippedGRUCell(nn.GRUCell):
    """The weights of a GRU cell whose hidden state is clipped to [-clip, clip] (LFADS' stabiliser);
    the update itself is :func:`gru_update` on :meth:`step_params`."""

    def __init__(self, input_size: int, hidden_size: int, clip: float = 5.0):
        super().__init__(input_size, hidden_size)
        self.clip = clip

    def step_params(self) -> Dict[str, torch.Tensor]:
        return {"w_ih": self.weight_ih, "w_hh": self.weight_hh, "b_ih": self.bias_ih, "b_hh": self.bias_hh}


class NormalizedLinear(nn.Linear):
    """Linear map whose weight rows (one per output) have unit norm: factors cannot grow by scale."""

    def normalized_weight(self) -> torch.Tensor:
        return nn.functional.normalize(self.weight, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: x (B, ..., in_features) -> (B, ..., out_features)."""
        return nn.functional.linear(x, self.normalized_weight(), self.bias)


def affine(x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``x w^T + b`` for every member of a group at once (one batched matrix product).

    Shape:
        x: (G, B, I); w: (G, O, I); b: (G, O) or None -> (G, B, O)
    """
    wt = w.transpose(-1, -2)
    return torch.bmm(x, wt) if b is None else torch.baddbmm(b.unsqueeze(-2), x, wt)


def gru_update(x: torch.Tensor, h: torch.Tensor, p: Dict[str, torch.Tensor], clip: float) -> torch.Tensor:
    """``nn.GRUCell``'s update (gates r, z, n) with grouped weights ``p`` (``w_ih``, ``w_hh``, ``b_ih``,
    ``b_hh``), the new state clipped to [-clip, clip].

    Shape:
        x: (G, B, I); h: (G, B, H); p["w_ih"]: (G, 3H, I), p["w_hh"]: (G, 3H, H) -> (G, B, H)
    """
    i_r, i_z, i_n = affine(x, p["w_ih"], p["b_ih"]).chunk(3, dim=-1)
    h_r, h_z, h_n = affine(h, p["w_hh"], p["b_hh"]).chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (n + z * (h - n)).clamp(-clip, clip)


def sub_params(p: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    """The entries of ``p`` under ``prefix.``, without it."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in p.items() if k.startswith(prefix + ".")}


def stack_step_params(gens: Sequence[nn.Module]) -> Dict[str, torch.Tensor]:
    """The ``step_params()`` of generators with identical settings, stacked along a new group axis."""
    params = [g.step_params() for g in gens]
    return {k: torch.stack([p[k] for p in params]) for k in params[0]}


class Controller(nn.Module):
    """GRU that reads the encoder's per-step encoding and the previous factors and emits the
    posterior (mean, log-variance) of the inferred input, and a sample of it."""

    def __init__(self, *, ci_input_size: int, factor_size: int, controller_size: int, co_size: int,
                 clip: float = 5.0, dropout: float = 0.0):
        super().__init__()
        self.co_size, self.hidden_size = co_size, controller_size
        self.cell = ClippedGRUCell(ci_input_size + factor_size, controller_size, clip)
        self.head = nn.Linear(controller_size, 2 * co_size)
        self.dropout = nn.Dropout(dropout)

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(batch, self.hidden_size)

    def step_params(self) -> Dict[str, torch.Tensor]:
        return {**{f"cell.{k}": v for k, v in self.cell.step_params().items()},
                "head.w": self.head.weight, "head.b": self.head.bias}

    def grouped_step(self, p: Dict[str, torch.Tensor], c: torch.Tensor, ci_t: Optional[torch.Tensor],
                     f: torch.Tensor, sample: bool):
        """One step for a group (``p`` from :meth:`step_params`, stacked). Without an encoding
        (``ci_t`` None, e.g. forward prediction) the inferred input falls back to the prior mean, zero.

        Shape:
            c: (G, B, controller_size); ci_t: (G, B, ci_input_size) or None; f: (G, B, F)
            returns c, co_mean, co_logvar, co: (G, B, controller_size), (G, B, C) x 3
        """
        if ci_t is None:
            co = f.new_zeros(*f.shape[:-1], self.co_size)
            return c, co, torch.zeros_like(co), co
        c = gru_update(torch.cat([ci_t, f], dim=-1), c, sub_params(p, "cell"), self.cell.clip)
        mean, logvar = affine(self.dropout(c), p["head.w"], p["head.b"]).chunk(2, dim=-1)
        co = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
        return c, mean, logvar, co


def step_inputs(gen: nn.Module, p: Dict[str, torch.Tensor], state: State, ci_t, ext_t, sample: bool):
    """The controller step plus external input shared by every generator: returns the input vector
    u_t (G, B, co_size + ext_input_size, or None when there is none), the new controller state (or
    None) and the output entries co_mean/co_logvar/co."""
    g, f = state["g"], state["f"]
    inputs, out, c = [], {}, None
    if gen.use_controller:
        c, mean, logvar, co = gen.controller.grouped_step(sub_params(p, "controller"), state["c"], ci_t, f,
                                                          sample)
        out.update(co_mean=mean, co_logvar=logvar, co=co)
        inputs.append(co)
    if gen.ext_input_size:
        inputs.append(ext_t if ext_t is not None else g.new_zeros(*g.shape[:-1], gen.ext_input_size))
    return (torch.cat(inputs, dim=-1) if inputs else None), c, out


def finish_step(gen: nn.Module, p: Dict[str, torch.Tensor], g: torch.Tensor, c: Optional[torch.Tensor],
                out: Dict[str, torch.Tensor]):
    """The end of every generator step: factors from the new state (``p["factors"]``, the
    normalized factor map), the new state dict and the step's outputs. Returns ``(new state, out)``
    with ``out`` holding f (G, B, F) and g (G, B, H)."""
    f = affine(gen.dropout(g), p["factors"])
    new_state = {"g": g, "f": f}
    if gen.use_controller:
        new_state["c"] = c
    out.update(f=f, g=g)
    return new_state, out


def base_step_params(gen: nn.Module) -> Dict[str, torch.Tensor]:
    """The step parameters every generator shares: the normalized factor map and the controller's."""
    p = {"factors": gen.to_factors.normalized_weight()}
    if gen.use_controller:
        p.update({f"controller.{k}": v for k, v in gen.controller.step_params().items()})
    return p


def group_of_one(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return None if x is None else x.unsqueeze(0)


def bins(x: Optional[torch.Tensor], dim: int = 2) -> Sequence[torch.Tensor]:
    """The per-bin slices of ``x`` along ``dim`` (empty for None).

    Shape:
        x: (G, B, T, .) -> T tensors of (G, B, .)
    """
    return () if x is None else x.unbind(dim)


def resolve_steps(gen: nn.Module, ci: Optional[torch.Tensor], ext: Optional[torch.Tensor],
                  n_steps: Optional[int]) -> int:
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
    when it has one per trial and the batch holds k posterior samples of each (trial-major); an error
    naming both counts when its rows do not divide the batch."""
    if ci is None or ci.shape[0] == batch:
        return 1
    if ci.shape[0] == 0 or batch % ci.shape[0]:
        name = getattr(gen, "registry_name", type(gen).__name__)
        raise ValueError(f"{name} generator: ci has {ci.shape[0]} rows for {batch} initial conditions; expected "
                         "as many, or one per trial with the same number of samples each")
    return batch // ci.shape[0]


def unroll(gen: nn.Module, ic: torch.Tensor, ci: Optional[torch.Tensor], ext: Optional[torch.Tensor],
           n_steps: Optional[int], sample: bool) -> GeneratorOutput:
    """Run ``gen.initial_state`` then ``gen.grouped_step`` (a group of one) for ``n_steps`` bins; bins
    past the end of ``ci``/``ext`` get no input. Every generator's reference unroll (autograd through
    every bin); the LFADS generator runs on a compiled scan instead where it can.

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
        return GeneratorOutput(stack("f"), stack("g"), stack("co_mean"), stack("co_logvar"), stack("co"))
    return GeneratorOutput(stack("f"), stack("g"), None, None, None)


class StepGenerator(nn.Module):
    """Base of the generators: subclasses set ``ic_to_state``, ``to_factors`` (a
    :class:`NormalizedLinear`), ``dropout``, ``use_controller`` (and ``controller``), ``co_size`` and
    ``ext_input_size``, and implement ``step_params`` and ``grouped_step``; this class gives the
    initial state, the one-copy ``step`` and the unrolled ``forward``."""

    def step_params(self) -> Dict[str, torch.Tensor]:
        """The tensors a step uses (stacked by :func:`stack_step_params` to step a group)."""
        raise NotImplementedError

    def grouped_step(self, p: Dict[str, torch.Tensor], state: State, ci_t: Optional[torch.Tensor] = None,
                     ext_t: Optional[torch.Tensor] = None, sample: bool = True):
        """Advance a group of G copies (``p``: :meth:`step_params` stacked) by one bin.

        Shape:
            state: dict of (G, B, .) tensors; ci_t: (G, B, ci_input_size) or None (no encoding: e.g.
            beyond the observed window); ext_t: (G, B, ext_input_size) or None
            returns (new state, dict with f (G, B, F), g (G, B, H) and co_mean/co_logvar/co (G, B, C))
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

    def step(self, state: State, ci_t: Optional[torch.Tensor] = None, ext_t: Optional[torch.Tensor] = None,
             sample: bool = True):
        """Advance one copy by one bin (:meth:`grouped_step` for a group of one).

        Shape:
            state: dict of (B, .) tensors; ci_t: (B, ci_input_size) or None; ext_t: (B, E) or None
            returns (new state, dict with f (B, F), g (B, H) and co_mean/co_logvar/co (B, C))
        """
        p = {k: v.unsqueeze(0) for k, v in self.step_params().items()}
        new, out = self.grouped_step(p, {k: v.unsqueeze(0) for k, v in state.items()}, group_of_one(ci_t),
                                     group_of_one(ext_t), sample)
        return {k: v[0] for k, v in new.items()}, {k: v[0] for k, v in out.items()}

    def forward(self, ic: torch.Tensor, ci: Optional[torch.Tensor] = None, ext: Optional[torch.Tensor] = None,
                n_steps: Optional[int] = None, sample: bool = True) -> GeneratorOutput:
        """Unroll the dynamics for ``n_steps`` bins (default: the length of ``ci``/``ext``); bins past
        the end of ``ci``/``ext`` run with no inferred or external input (forward prediction).

        Shape:
            ic: (B, I) sampled initial condition; ci: (B, T, ci_input_size) or None, or one row per
            trial when ``ic`` holds k posterior samples of each (B / k rows, :func:`ci_repeat`);
            ext: (B, T, ext_input_size) or None
            returns factors (B, T', F), states (B, T', H), co_* (B, T', C) or None; T' = n_steps
        """
        return unroll(self, ic, ci, ext, n_steps, sample)
