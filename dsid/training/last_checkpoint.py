"""``checkpoints/last.ckpt``: everything a killed or interrupted fit needs to continue as if it had
never stopped, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import pytorch_lightning as pl
import torch


def _restart_counters(state: Dict[str, Any]) -> None:
    """Zero the ``current`` progress counters (and ``is_last_batch``) in a loop's saved state."""
    for key, value in state.items():
        if key == "current" and isinstance(value, dict):
            state[key] = {k: 0 for k in value}
        elif key == "is_last_batch":
            state[key] = False
        elif isinstance(value, dict):
            _restart_counters(value)


class LastCheckpoint(pl.callbacks.Checkpoint):
    """``checkpoints/last.ckpt`` at the start of every epoch after the first and at the end of
    training, written atomically by the run's checkpoint writer
    (:class:`~dsid.training.atomic_checkpoints.AtomicCheckpointIO`: a killed process leaves the
    previous checkpoint whole). It holds everything a resumed fit needs to continue as if
    it had never stopped: weights, optimizer, schedulers, loop and callback states (Lightning's),
    and the random number generator's state, put back when the resumed fit reaches the same
    point."""

    def __init__(self, path):
        self.path = Path(path)
        self._rng: Optional[torch.Tensor] = None
        self._at_epoch_start = False

    def state_dict(self) -> Dict[str, Any]:
        return {"torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self._rng = state_dict.get("torch_rng")

    def save(self, trainer) -> None:
        # the whole training state; atomic through the run's checkpoint writer (AtomicCheckpointIO)
        trainer.save_checkpoint(str(self.path), weights_only=False)

    def on_save_checkpoint(self, trainer, module, checkpoint: Dict[str, Any]) -> None:
        """Saved before anything of the new epoch happened: record it as the boundary it is (the
        previous epoch complete, the next not begun), so the resumed fit runs the new epoch whole,
        schedulers included, instead of treating it as an interrupted one."""
        if not self._at_epoch_start:
            return
        fit = checkpoint.get("loops", {}).get("fit_loop", {})
        for key, state in fit.items():
            if key.startswith("epoch_loop.") and isinstance(state, dict):
                _restart_counters(state)
        for counts in (fit.get("epoch_progress") or {}).values():
            if isinstance(counts, dict) and "started" in counts:
                counts["ready"] = counts["started"]

    def on_train_epoch_start(self, trainer, module) -> None:
        if self._rng is not None:  # resumed: continue the random draws where the saved fit was
            torch.set_rng_state(self._rng)
            self._rng = None
        elif trainer.current_epoch > 0:
            self._at_epoch_start = True
            try:
                self.save(trainer)
            finally:
                self._at_epoch_start = False

    def on_train_end(self, trainer, module) -> None:
        self.save(trainer)
