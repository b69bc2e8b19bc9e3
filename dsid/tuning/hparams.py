"""Where each tuned hyperparameter lives in a DSID config, and how it is changed on a live module.

Built-in names:

| name | config entry |
| --- | --- |
| ``lr`` | ``train.lr`` |
| ``dropout`` | every ``model.<component>.dropout`` (encoder, generator, ...) |
| ``cd_rate`` | ``rate`` of every ``coordinated_dropout`` entry in ``model.augmentations`` |
| ``kl_ic_scale`` / ``kl_co_scale`` | ``train.kl_scales.ic`` / ``train.kl_scales.co`` |
| ``l2_scale`` | ``train.l2_scale`` |

Any other name needs ``path:`` (a dotted config path, e.g. ``train.weight_decay``); it must not
change parameter shapes, since a member continues from another member's weights.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Mapping

from dsid.tuning.pbt_logic import HyperParam

BUILTIN = {
    "lr": "train.lr",
    "dropout": "model.*.dropout",
    "cd_rate": "model.augmentations[coordinated_dropout].rate",
    "kl_ic_scale": "train.kl_scales.ic",
    "kl_co_scale": "train.kl_scales.co",
    "l2_scale": "train.l2_scale",
}


def _path(spec: HyperParam) -> str:
    if spec.path:
        return spec.path
    if spec.name not in BUILTIN:
        raise KeyError(
            f"tune.hyperparameters.{spec.name}: not a built-in hyperparameter "
            f"({', '.join(BUILTIN)}); give its config entry as path: (e.g. "
            "path: train.weight_decay)"
        )
    return BUILTIN[spec.name]


def _get(cfg: Mapping[str, Any], dotted: str):
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"config has no entry {dotted}")
        node = node[part]
    return node


def _set(cfg: Dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = cfg
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _dropout_components(cfg) -> list:
    return [
        k for k, v in (cfg.get("model") or {}).items() if isinstance(v, Mapping) and "dropout" in v
    ]


def _cd_entries(cfg) -> list:
    return [
        a
        for a in (cfg.get("model") or {}).get("augmentations") or []
        if isinstance(a, Mapping) and a.get("name") == "coordinated_dropout"
    ]


def read_hparams(cfg: Mapping[str, Any], space: Mapping[str, HyperParam]) -> Dict[str, float]:
    """The values the composed config gives to the tuned hyperparameters."""
    out = {}
    for name, spec in space.items():
        path = _path(spec)
        if path == BUILTIN["dropout"] and not spec.path:
            comps = _dropout_components(cfg)
            if not comps:
                raise KeyError("dropout is tuned but no model component has a dropout setting")
            out[name] = float(cfg["model"][comps[0]]["dropout"])
        elif path == BUILTIN["cd_rate"] and not spec.path:
            entries = _cd_entries(cfg)
            if not entries:
                raise KeyError(
                    "cd_rate is tuned but model.augmentations has no coordinated_dropout "
                    "(use augmentation=coordinated_dropout or drop cd_rate from "
                    "tune.hyperparameters)"
                )
            out[name] = float(entries[0].get("rate", 0.3))
        else:
            out[name] = float(_get(cfg, path))
    return out


def apply_hparams(
    cfg: Mapping[str, Any], hp: Mapping[str, float], space: Mapping[str, HyperParam]
) -> Dict[str, Any]:
    """A deep copy of ``cfg`` with the hyperparameters ``hp`` written in."""
    cfg = copy.deepcopy(dict(cfg))
    for name, value in hp.items():
        if name not in space:
            continue
        spec, value = space[name], float(value)
        path = _path(spec)
        if path == BUILTIN["dropout"] and not spec.path:
            for comp in _dropout_components(cfg):
                cfg["model"][comp]["dropout"] = value
        elif path == BUILTIN["cd_rate"] and not spec.path:
            for entry in _cd_entries(cfg):
                entry["rate"] = value
        else:
            _set(cfg, path, value)
    return cfg


def module_settings(hp: Mapping[str, float], space: Mapping[str, HyperParam]) -> Dict[str, Any]:
    """Keyword arguments of :func:`dsid.tuning.live.set_hyperparameters` for ``hp`` (entries under
    ``model.`` other than the built-in ones take effect when the module is rebuilt)."""
    out: Dict[str, Any] = {}
    for name, value in hp.items():
        if name not in space:
            continue
        path, value = _path(space[name]), float(value)
        if path in (BUILTIN["dropout"], BUILTIN["cd_rate"]) and not space[name].path:
            out[name] = value
        elif path.startswith("train."):
            parts = path.split(".")[1:]
            if len(parts) == 1:
                out[parts[0]] = value
            else:
                out.setdefault(parts[0], {})[parts[1]] = value
    return out
