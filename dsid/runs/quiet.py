"""Third-party noise silenced at the source: known warnings and log lines that tell a DSID user
nothing (a deprecation inside Lightning, an advertisement, "GPU available: False")."""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Iterator

WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*",  # inside Lightning
    r"The number of training batches \(\d+\) is smaller than the logging interval.*",
)
RANK_ZERO_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
)


class _Drop(logging.Filter):
    """Drops Lightning's advertisement and its accelerator lines when that accelerator is absent."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if "Tip:" in msg and "install" in msg:
            return False
        return not (
            msg.startswith(("GPU available: False", "TPU available: False", "HPU available: False"))
        )


_FILTER = _Drop()


def quiet_third_party() -> None:
    """Install the warning filters and log filters (idempotent)."""
    for pattern in WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


@contextlib.contextmanager
def lightning_info_silenced() -> Iterator[None]:
    """Lightning's information lines (a run's start and end, checkpoint restores) dropped while
    the block runs; its warnings and errors still show."""
    loggers = [logging.getLogger(name) for name in RANK_ZERO_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
