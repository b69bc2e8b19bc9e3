"""Pieces every model shares: augmentation, read-out building, IC sampling, the masked NLL, the KL
terms, and ``from_config`` (a model config checked against the keyword-only constructor)."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

import dsid.modules  # noqa: F401  (registers the built-in components)
from dsid.registry import AUGMENTATIONS, READOUTS, RegistryError


def build_augmentations(cfgs) -> nn.ModuleList:
    """A list of augmentation configs (``[{name: ..., **kwargs}, ...]``) -> modules applied in
    order."""
    return nn.ModuleList(AUGMENTATIONS.build(c) for c in (cfgs or []))


def apply_augmentations(
    augs: nn.ModuleList, x: torch.Tensor, stage: str, generator: Optional[torch.Generator] = None
):
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


def build_readout(
    cfg: Optional[Mapping[str, Any]],
    observation: nn.Module,
    factor_size: int,
    n_neurons: int,
    mean_counts=None,
) -> nn.Module:
    """The readout from factors to ``observation``'s parameters of ``n_neurons`` neurons, its bias
    started at the observation model's parameters for each neuron's mean count (when known)."""
    init_bias = None
    if mean_counts is not None and hasattr(observation, "init_params"):
        init_bias = observation.init_params(np.asarray(mean_counts, float))
    return READOUTS.build(
        cfg or {"name": "linear"},
        factor_size=factor_size,
        n_neurons=n_neurons,
        n_params=observation.n_params,
        init_bias=init_bias,
    )


def sample_ic(ic_mean: torch.Tensor, ic_logvar: torch.Tensor, sample: bool) -> torch.Tensor:
    """A posterior sample of the initial condition (its mean when ``sample`` is false).

    Shape:
        ic_mean, ic_logvar: (B, I) -> (B, I)
    """
    return ic_mean + torch.exp(0.5 * ic_logvar) * torch.randn_like(ic_mean) if sample else ic_mean


def repeat_samples(x, n_samples: int):
    """Each trial repeated ``n_samples`` times along the batch axis (trial-major), for a tensor,
    None, or a tuple of them (e.g. an encoder's output). Shape: (B, ...) -> (B * n_samples, ...)."""
    if n_samples == 1 or x is None:
        return x
    if isinstance(x, tuple):
        return type(x)(*(repeat_samples(v, n_samples) for v in x))
    return x.repeat_interleave(n_samples, dim=0)


# the most rate entries (rows x bins x neurons) computed at once when averaging over samples: a
# few MB, so the readout's product, the exponential and the sum stay in cache
SAMPLE_MEAN_CHUNK_ENTRIES = 2**19


def sample_means(
    out: Mapping[str, torch.Tensor],
    keys: Sequence[Tuple[str, str]],
    n_samples: int,
    to_rates: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
) -> Dict[str, torch.Tensor]:
    """Each trial's outputs averaged over its ``n_samples`` consecutive rows (trial-major), by
    output name (``keys``: a model's ``output_keys``). With ``to_rates``, ``rates`` come from it
    applied to the factors of a few trials at a time and averaged as rates, so the rates of all
    samples (the largest array of a pass) never exist at once; every other output present in
    ``out`` (``rates`` too without ``to_rates``) is averaged directly.

    Shape:
        out[key]: (B * n_samples, ...) -> (B, ...);
        to_rates: (b * n_samples, T, F) -> (b * n_samples, T, N)
    """
    res = {}
    for name, src in keys:
        if src == "rates" and to_rates is not None:
            res[name] = _chunked_mean(to_rates, out["factors"], n_samples)
        elif src in out:
            v = out[src]
            res[name] = v.reshape(v.shape[0] // n_samples, n_samples, *v.shape[1:]).mean(1)
    return res


def _chunked_mean(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, n_samples: int
) -> torch.Tensor:
    def mean_of(rows: torch.Tensor) -> torch.Tensor:
        y = fn(rows)
        return y.reshape(-1, n_samples, *y.shape[1:]).mean(1)

    n_trials = x.shape[0] // n_samples
    first = mean_of(
        x[:n_samples]
    )  # one trial, which sets the chunk: about SAMPLE_MEAN_CHUNK_ENTRIES rates
    result = first.new_empty((n_trials, *first.shape[1:]))
    result[:1] = first
    step = max(SAMPLE_MEAN_CHUNK_ENTRIES // max(n_samples * first.numel(), 1), 1)
    for i in range(1, n_trials, step):
        result[i : i + step] = mean_of(x[i * n_samples : (i + step) * n_samples])
    return result


def masked_nll(
    observation: nn.Module,
    params: torch.Tensor,
    target: torch.Tensor,
    heldin_idx: torch.Tensor,
    heldin_mask: Optional[torch.Tensor],
) -> torch.Tensor:
    """Per-batch mean of the summed NLL; with ``heldin_mask`` only the masked held-in entries of the
    observed window are scored (rescaled by 1 / mask rate so the magnitude does not depend on it);
    held-out neurons, and bins past the window (forward prediction: ``target`` longer than the
    mask), are always scored.

    Shape:
        params: (B, T'', N, P) with T'' >= T'; target: (B, T', N) with T' >= T;
        heldin_mask: (B, T, N_in) or None
        returns: scalar
    """
    nll = observation(params[:, : target.shape[1]], target)
    if heldin_mask is not None:
        T = heldin_mask.shape[1]
        frac = heldin_mask.mean().clamp_min(1e-3)
        weight = torch.ones_like(nll[:, :T])
        weight[..., heldin_idx] = heldin_mask / frac
        nll = torch.cat([nll[:, :T] * weight, nll[:, T:]], dim=1)
    return nll.sum((1, 2)).mean()


def heldin_nll(
    observation: nn.Module,
    params: torch.Tensor,
    spikes: torch.Tensor,
    heldin_idx: torch.Tensor,
    mask: Optional[torch.Tensor],
) -> torch.Tensor:
    """Mean NLL per held-in entry hidden from the encoder by ``mask`` (every held-in entry when
    nothing is masked); never looks at held-out neurons.

    Shape:
        params: (B, T', N, P) with T' >= T; spikes: (B, T, N); mask: (B, T, N_in) or None
    """
    nll = observation(params[:, : spikes.shape[1]], spikes)[..., heldin_idx]
    if mask is None:
        return nll.mean()
    return (nll * mask).sum() / mask.sum().clamp_min(1.0)


def kl_terms(
    ic_prior: nn.Module, co_prior: nn.Module, out: Mapping[str, torch.Tensor], n_observed: int
) -> Dict[str, torch.Tensor]:
    """``kl_ic`` and ``kl_co`` (zero without a controller; inferred inputs are scored only on the
    ``n_observed`` bins where there is data), per-batch means of per-trial sums."""
    terms = {"kl_ic": ic_prior(out["ic_mean"], out["ic_logvar"], out["ic_sample"]).mean()}
    if "co_mean" in out:
        sl = slice(0, n_observed)
        terms["kl_co"] = co_prior(
            out["co_mean"][:, sl], out["co_logvar"][:, sl], out["co_sample"][:, sl]
        ).mean()
    else:
        terms["kl_co"] = out["ic_mean"].new_zeros(())
    return terms


def check_session(session: int, n_sessions: int, model: str) -> int:
    session = int(session)
    if not 0 <= session < n_sessions:
        raise IndexError(f"{model} model: session {session} out of range 0..{n_sessions - 1}")
    return session


class ConfigurableModel(nn.Module):
    """Base of every registered model: ``from_config(model_cfg, data_info)`` checks the config's
    keys against the keyword-only constructor (an unknown key is an error naming
    ``model.<key>``)."""

    registry_name = "?"
    # keys the base config (configs/train.yaml) composes for every kind that this kind does not use;
    # they are dropped, any other unknown key is an error
    unused_base_keys: tuple = ()
    supports_sessions = False  # reads several recording sessions (``data_info["sessions"]``)

    @classmethod
    def config_keys(cls) -> list:
        params = inspect.signature(cls.__init__).parameters
        return sorted(
            k
            for k, p in params.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and k != "data_info"
        )

    @classmethod
    def from_config(cls, model_cfg: Mapping[str, Any], data_info: Mapping[str, Any]):
        if data_info.get("sessions") and not cls.supports_sessions:
            raise ValueError(
                f"the '{cls.registry_name}' model reads one session; stitch several sessions "
                "(data.files) with model.name=sae"
            )
        cfg = {
            k: v
            for k, v in dict(model_cfg).items()
            if k not in ("name", "kind") and k not in cls.unused_base_keys
        }
        params = inspect.signature(cls.__init__).parameters
        accepted = cls.config_keys()
        unknown = sorted(k for k in cfg if k not in accepted)
        if unknown:
            raise RegistryError(
                f"model.{unknown[0]}: the '{cls.registry_name}' model does not take "
                f"{', '.join('model.' + k for k in unknown)}; it takes "
                f"{', '.join(accepted)}"
            )
        missing = sorted(
            k for k in accepted if params[k].default is inspect.Parameter.empty and k not in cfg
        )
        if missing:
            raise RegistryError(
                f"model.{missing[0]}: the '{cls.registry_name}' model needs "
                f"{', '.join('model.' + k for k in missing)}"
            )
        for key in ("ic_size", "factor_size", "co_size", "readin_size"):
            value = cfg.get(key)
            least = 0 if key == "co_size" else 1
            if isinstance(value, int) and value < least:
                raise RegistryError(f"model.{key}={value}: expected an integer >= {least}")
        return cls(data_info=dict(data_info), **cfg)
