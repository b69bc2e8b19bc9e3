"""Checkpoints written atomically: a checkpoint file is the old one or the complete new one, never a
part (a full disk or a kill while writing leaves no truncated ``best.ckpt`` and no temporary
file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from pytorch_lightning.plugins.io import TorchCheckpointIO

from dsid.data.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, through a temporary file renamed over the checkpoint only
    once it is complete (:func:`~dsid.data.atomic.atomic_path`)."""

    def save_checkpoint(
        self, checkpoint: Dict[str, Any], path, storage_options: Optional[Any] = None
    ) -> None:
        with atomic_path(Path(path)) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)
