"""Model assemblies: ``build_model(model_cfg, data_info)`` picks one by ``model_cfg['kind']``."""
from __future__ import annotations

import importlib
from typing import Any, Mapping

# kind -> "module:Class"; each class takes (model_cfg, data_info)
MODEL_KINDS = {
    "sae": "dsid.models.sae:SequentialAutoencoder",
    "multiarea": "dsid.models.multiarea:MultiAreaSAE",
    "ndt": "dsid.models.ndt:NDT",
    "stitched": "dsid.models.stitched:StitchedSAE",
}


def build_model(model_cfg: Mapping[str, Any], data_info: Mapping[str, Any]):
    kind = dict(model_cfg).get("kind", "sae")
    if kind not in MODEL_KINDS:
        raise KeyError(f"unknown model kind '{kind}'; known kinds: {', '.join(sorted(MODEL_KINDS))}")
    module, cls = MODEL_KINDS[kind].split(":")
    return getattr(importlib.import_module(module), cls)(model_cfg, data_info)
