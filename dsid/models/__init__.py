"""Model assemblies, registered in ``dsid.registry.MODELS`` under their ``model.kind``:
``sae`` (one session or several stitched), ``multiarea`` and ``ndt``. Every model satisfies
:class:`dsid.models.protocol.DSIDModel`."""
from __future__ import annotations

from typing import Any, Mapping

from dsid.models.multiarea.model import MultiAreaSAE
from dsid.models.ndt import NDT
from dsid.models.sae import SequentialAutoencoder
from dsid.registry import MODELS

__all__ = ["MultiAreaSAE", "NDT", "SequentialAutoencoder", "build_model"]


def build_model(model_cfg: Mapping[str, Any], data_info: Mapping[str, Any]):
    """The model ``model_cfg['kind']`` (default ``sae``) from its config and the data's facts."""
    return MODELS.get(dict(model_cfg).get("kind", "sae")).from_config(model_cfg, data_info)
