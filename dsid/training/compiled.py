"""``train.compile``: the model's forward through ``torch.compile``, with a fallback to the plain
forward.

``train.compile`` is ``false`` (the default), ``true`` (``torch.compile``'s default mode) or one of
its modes by name: ``reduce-overhead`` (CUDA graphs on a GPU: the launches of a whole step replayed
at once), ``max-autotune``, ``max-autotune-no-cudagraphs``. Compiling happens at the first training
or validation batch and takes from seconds to minutes. When it fails (no compiler for the backend,
an operation the backend does not support, a PyTorch build without ``torch.compile``), one warning
names the cause and the run continues on the plain forward: the same maths, without the speed-up.
DSID's own compiled recurrent core (``dsid.modules.recurrent``) is opaque to ``torch.compile``,
which compiles the code around it.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Optional, Union

import torch
from torch import nn

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(value: Union[bool, str, None]) -> Optional[str]:
    """The ``torch.compile`` mode that ``train.compile`` asks for, or None for no compiling."""
    if value is None or value is False:
        return None
    if value is True:
        return "default"
    if isinstance(value, str) and value in MODES:
        return value
    raise ValueError(f"train.compile={value!r}: expected true, false or one of {', '.join(MODES)}")


class CompiledForward:
    """Calls ``model`` through ``torch.compile(model, mode=mode)``; if compiling or the compiled
    call fails, warns once and calls ``model`` itself from then on (a genuine error in the model
    then surfaces from the plain call). Not a module, so the compiled copy adds nothing to a state
    dict."""

    def __init__(self, model: nn.Module, mode: str):
        self.model, self.mode = model, compile_mode(mode) or "default"
        self.failure: Optional[str] = None  # why it fell back, once it has
        self._compiled: Optional[Callable[..., Any]] = None

    @property
    def active(self) -> bool:
        """Whether calls still go through the compiled forward."""
        return self.failure is None

    def __call__(self, *args, **kwargs):
        if self.failure is None:
            try:
                if self._compiled is None:
                    self._compiled = torch.compile(self.model, mode=self.mode)
                with (
                    warnings.catch_warnings()
                ):  # (dynamo notes every call into DSID's compiled core)
                    warnings.filterwarnings(
                        "ignore", message=r"Dynamo does not know how to trace the builtin `dsid_"
                    )
                    return self._compiled(*args, **kwargs)
            except Exception as exc:  # any failure of the backend: run the plain forward
                text = str(exc).strip().splitlines()
                self.failure = f"{type(exc).__name__}: {text[0] if text else ''}"
                self._compiled = None
                warnings.warn(
                    f"train.compile={self.mode}: torch.compile failed ({self.failure}); training "
                    "continues without it (same results, no speed-up)",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return self.model(*args, **kwargs)

    def __getstate__(self):  # a compiled function does not pickle: it is rebuilt at the next call
        return {**self.__dict__, "_compiled": None}
