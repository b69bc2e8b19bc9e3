"""What a ``dsid fit`` needs to continue after its process died: ``RUN_DIR/fit_state.json``.

Written when the fit begins and after every start (atomically): the data file, budget, settings
given, first seed and the number of optimizer steps the schedules were sized for (so a resumed fit
composes the same config without timing steps again), the budget used so far and every finished
start. ``dsid fit --resume RUN_DIR`` reads it, continues the start that was running from its last
checkpoint, goes on with further starts while budget remains, and writes the report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

from dsid.autofit.starts import StartResult
from dsid.data.atomic import write_json
from dsid.runs.status import RunDirError

STATE_FILE = "fit_state.json"
REPORT_FILE = "fit_report.json"


def save_state(run_dir: Path, state: Dict[str, Any]) -> None:
    """Write the fit's state (atomically: a kill leaves the previous one)."""
    write_json(Path(run_dir) / STATE_FILE, state)


def load_state(run_dir: Path) -> Dict[str, Any]:
    """The state of the unfinished fit in ``run_dir``, with clear errors otherwise."""
    run_dir = Path(run_dir)
    if (run_dir / REPORT_FILE).exists():
        raise RunDirError(
            f"{run_dir}: the fit finished ({REPORT_FILE}); there is nothing to resume"
        )
    path = run_dir / STATE_FILE
    if not path.exists():
        raise RunDirError(
            f"{run_dir}: not the directory of a dsid fit ({STATE_FILE} missing); a run of "
            "dsid train resumes with `dsid train resume=DIR`"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RunDirError(f"{path}: not readable as JSON ({err})") from err


def start_to_json(start: StartResult) -> Dict[str, Any]:
    """A finished start as plain JSON (its metrics and validation trace included)."""
    d = start.as_dict()
    d["extra"] = {
        "metrics": {k: float(v) for k, v in d["extra"].get("metrics", {}).items() if _number(v)},
        "trace": [list(r) for r in d["extra"].get("trace", [])],
    }
    return d


def start_from_json(d: Dict[str, Any]) -> StartResult:
    """The :class:`StartResult` written by :func:`start_to_json`."""
    extra = dict(d.get("extra") or {})
    extra["trace"] = [tuple(r) for r in extra.get("trace", [])]
    return StartResult(**{**d, "extra": extra})


def finished_starts(state: Dict[str, Any]) -> List[StartResult]:
    return [start_from_json(d) for d in state.get("starts", [])]


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
