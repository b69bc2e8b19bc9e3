"""How every ``dsid`` command reports an error: one line ``error: ...``, exit code 2 for bad input
(a file, a setting, a path) and 1 for any other failure; the traceback only with ``dsid --debug``
or ``HYDRA_FULL_ERROR=1``."""

from __future__ import annotations

import difflib
import os
import sys
import traceback
from typing import Optional, TextIO

from hydra.errors import HydraException
from omegaconf.errors import ConfigAttributeError, OmegaConfBaseException

from dsid.runs.status import RunDirError

# errors that mean the input was wrong (DataFileError and RegistryError among them)
BAD_INPUT = (
    ValueError,
    KeyError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    RunDirError,
    HydraException,
    OmegaConfBaseException,
)


def debugging(args=None) -> bool:
    """Whether errors show their traceback: ``dsid --debug`` or ``HYDRA_FULL_ERROR=1``."""
    return bool(getattr(args, "debug", False)) or os.environ.get("HYDRA_FULL_ERROR") == "1"


def cause(err: BaseException) -> BaseException:
    """The error behind a ``SystemExit`` raised from it (``raise SystemExit(...) from err``)."""
    return err.__cause__ if isinstance(err, SystemExit) and err.__cause__ else err


def unknown_key(err: BaseException) -> Optional[str]:
    """For a setting the config does not have (``model.ic_sise=3``): the message naming it, its
    closest spellings among the keys beside it and how to add a new key; None for other errors."""
    inner = err.__cause__ if isinstance(err, HydraException) else err
    parent = getattr(inner, "parent_node", None)
    full_key = getattr(inner, "full_key", None)
    if not isinstance(inner, ConfigAttributeError) or parent is None or not full_key:
        return None
    try:
        keys = [str(k) for k in parent.keys()]
    except Exception:  # noqa: BLE001  (a node without keys: no suggestion)
        keys = []
    prefix = full_key.rsplit(".", 1)[0] + "." if "." in full_key else ""
    close = difflib.get_close_matches(str(getattr(inner, "key", "")), keys, n=3, cutoff=0.6)
    hint = (
        f"did you mean {' or '.join(prefix + k for k in close)}?"
        if close
        else f"{prefix.rstrip('.') or 'the config'} has {', '.join(sorted(keys))}"
    )
    return f"{full_key}: no such setting; {hint} (a new key is added with +{full_key}=...)"


def one_line(err: BaseException) -> str:
    """``error: <message>`` on one line: a KeyError's message unquoted, Hydra's with its cause's,
    the type named for an error that is not bad input."""
    if isinstance(err, SystemExit):
        text = str(err.code)
    elif isinstance(err, KeyError) and len(err.args) == 1:
        text = str(err.args[0])
    else:
        text = str(err) or type(err).__name__
    misspelt = unknown_key(err)
    if misspelt is not None:
        text = misspelt
    elif isinstance(err, HydraException) and isinstance(err.__cause__, OmegaConfBaseException):
        text += f" ({err.__cause__})"
    if not isinstance(err, BAD_INPUT + (SystemExit,)):
        text = f"{type(err).__name__}: {text}"
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return line if line.startswith("error:") else f"error: {line}"


def exit_code(err: BaseException) -> int:
    """2 for bad input (a ``SystemExit`` with a message counts as one), 1 otherwise."""
    err = cause(err)
    return 2 if isinstance(err, BAD_INPUT) or isinstance(err, SystemExit) else 1


def report(err: BaseException, debug: bool, stream: Optional[TextIO] = None) -> int:
    """Write ``err`` as one line (after its traceback when ``debug``); return the exit code."""
    stream = stream or sys.stderr
    if debug:
        shown = cause(err)
        traceback.print_exception(type(shown), shown, shown.__traceback__, file=sys.stderr)
    print(one_line(err), file=stream, flush=True)
    return exit_code(err)
