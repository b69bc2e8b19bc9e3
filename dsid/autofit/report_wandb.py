"""A fit's report logged to W&B (``job_type="fit"``), beside the kept start's training run: the
settings with their reasons as the run's config and a table, the scores, the baseline and the
diagnostics as its summary, the report file as an artifact. Nothing is logged when the fit's
logger is CSV or W&B is disabled."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Mapping

from dsid.autofit.fit_state import REPORT_FILE
from dsid.runs.wandb_runs import wandb_run


def report_summary(result: Mapping[str, Any]) -> Dict[str, Any]:
    """The report's numbers and verdicts as flat ``fit/...`` summary values (finite numbers
    only): the validation scores as ``fit/<name>`` (``fit/co_bps``), the others under their own
    keys (``fit/train/co_bps``)."""
    out: Dict[str, Any] = {
        f"fit/{key.removeprefix('val/')}": value
        for key, value in result["metrics"].items()
        if isinstance(value, (int, float)) and math.isfinite(value)
    }
    out.update(
        {
            "fit/baseline_co_bps": result["baseline"]["co_bps"],
            "fit/steps": result["steps"],
            "fit/starts": len(result["starts"]),
            "fit/converged": bool(result["converged"]),
            "fit/ending": result["ending"],
            "fit/diagnostics": "\n".join(result["diagnostics"]),
            "fit/budget": result["budget"],
        }
    )
    if "train_seconds" in result:
        out["fit/train_seconds"] = result["train_seconds"]
    return out


def log_report(result: Mapping[str, Any], cfg: Mapping[str, Any], run_dir: Path) -> bool:
    """Log ``result`` (a :func:`dsid.autofit.fit.fit` report, already written to
    ``RUN_DIR/fit_report.json``) to a W&B run of its own when ``cfg``'s logger is W&B; returns
    whether it did."""
    log_cfg = cfg.get("logger") or {}
    if log_cfg.get("kind") != "wandb" or log_cfg.get("mode") == "disabled":
        return False
    import wandb

    settings = result["settings"]
    run = wandb_run(
        cfg,
        Path(run_dir),
        "fit",
        config={
            "fit": {
                "data": result["data"],
                "budget": result["budget"],
                "settings": {s["key"]: s["value"] for s in settings},
            }
        },
    )
    try:
        table = wandb.Table(
            columns=["key", "value", "reason"],
            data=[[s["key"], str(s["value"]), s["reason"]] for s in settings],
        )
        run.log({"fit/settings": table})
        run.summary.update(report_summary(result))
        artifact = wandb.Artifact(f"fit-report-{run.id}", type="fit-report")
        artifact.add_file(str(Path(run_dir) / REPORT_FILE))
        run.log_artifact(artifact)
    finally:
        run.finish()
    return True
