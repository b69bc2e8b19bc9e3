"""Model assemblies, registered in ``dsid.registry.MODELS`` under their ``model.name``:
``sae`` (one session or several stitched), ``multiarea`` and ``ndt``. Every model satisfies
:class:`dsid.models.protocol.DSIDModel`."""

from __future__ import annotations

from typing import Any, Mapping

from dsid.models.multiarea.model import MultiAreaSAE
from dsid.models.ndt import NDT
from dsid.models.sae import SequentialAutoencoder
from dsid.registry import MODELS

__all__ = ["MultiAreaSAE", "NDT", "SequentialAutoencoder", "build_model", "model_name"]


def build_model(model_cfg: Mapping[str, Any], data_info: Mapping[str, Any]):
    """The model ``model_cfg['name']`` (default ``sae``) from its config and the data's facts."""
    return MODELS.get(model_name(model_cfg)).from_config(model_cfg, data_info)


def model_name(model_cfg: Mapping[str, Any]) -> str:
    """The registered name of the model ``model_cfg`` describes (default ``sae``); configs saved
    before models were selected by ``name``, like every component, call it ``kind``."""
    cfg = dict(model_cfg)
    return str(cfg.get("name", cfg.get("kind", "sae")))
