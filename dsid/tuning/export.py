"""The end of a PBT search: the winner exported as an ordinary DSID run directory
(``RUN_DIR/best``), the summary (``summary.json``, a W&B summary run, the population figure) and
its printed form."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List

from omegaconf import OmegaConf

from dsid.runs.assemble import make_datamodule
from dsid.runs.load import BEST_CKPT, load_module
from dsid.training.final_inference import finish_run
from dsid.tuning.callbacks import read_history
from dsid.tuning.plots import plot_population
from dsid.tuning.trainable import CKPT_FILE, META_FILE, trial_config

EXPERIMENT = "pbt"  # Ray Tune's experiment folder under RUN_DIR/ray
SELECTED = "selected_checkpoint"  # the copy of the best member checkpoint the driver keeps


def find_checkpoints(exp_path) -> List[Dict[str, Any]]:
    """Every retained member checkpoint under a Ray Tune experiment: its folder and metadata."""
    out = []
    for meta in sorted(Path(str(exp_path)).rglob(META_FILE)):
        if not (meta.parent / CKPT_FILE).exists():
            continue
        info = json.loads(meta.read_text())
        info["dir"] = str(meta.parent)
        out.append(info)
    return out


def export_best(
    exp_path, base: Dict[str, Any], opts: Dict[str, Any], out_dir, selected=None
) -> Dict[str, Any]:
    """Export the member checkpoint with the best objective (``selected``: the copy the driver kept;
    else the best of those Ray retained under ``exp_path``) to ``out_dir`` as an ordinary DSID run
    directory (config.yaml with the winning hyperparameters, checkpoints/best.ckpt, inference.h5,
    metrics.json, figures/). Returns the chosen checkpoint's metadata plus ``metrics``."""
    found = [
        c
        for c in (find_checkpoints(selected) if selected else []) + find_checkpoints(exp_path)
        if c.get("objective") is not None and math.isfinite(c["objective"])
    ]
    if not found:
        raise RuntimeError(
            f"{exp_path}: no member left a usable checkpoint (every member crashed?"
            " see the errors above and history.jsonl)"
        )
    late = [c for c in found if c["epoch"] >= opts.get("select_after", 0)]
    best = min(late or found, key=lambda c: (c["objective"], -c["epoch"]))
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(Path(best["dir"]) / CKPT_FILE, out_dir / BEST_CKPT)
    cfg = trial_config(base, best["hp"], best["member"], opts)
    cfg["run_dir"] = str(out_dir)
    cfg["tuned"] = {
        "by": "pbt",
        "objective": opts["objective"],
        "value": best["objective"],
        "epoch": best["epoch"],
        "member": best["member"],
        "hyperparameters": best["hp"],
    }
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
    module = load_module(out_dir / BEST_CKPT)
    dm = make_datamodule(cfg)
    dm.setup()
    infer = cfg.get("infer") or {}
    metrics = finish_run(
        module,
        dm.sessions,
        out_dir,
        n_samples=int(infer.get("n_samples", 20)),
        batch_size=int(infer.get("batch_size", 256)),
        extra={"epochs": best["epoch"], f"pbt/{opts['objective']}": best["objective"]},
    )
    return {**best, "metrics": metrics}


def finish(
    run_dir: Path,
    cfg,
    base,
    opts,
    results,
    wb,
    tune_s: float,
    export: bool = True,
    interrupted: bool = False,
) -> Dict[str, Any]:
    """After the search: trajectories plot, export of the best member, W&B summary, summary.json."""
    history = read_history(run_dir / "history.jsonl")
    decisions = read_history(run_dir / "decisions.jsonl")
    png = run_dir / "pbt_trajectories.png"
    fig = plot_population(
        history,
        opts["space"],
        png,
        decisions,
        objective=opts["objective"],
        title=f"PBT {run_dir.name}: {opts['objective']} and hyperparameters",
    )
    storage = opts["storage_path"] or str((run_dir / "ray").resolve())
    exp_path = f"{storage}/{EXPERIMENT}"
    t1 = time.time()
    crashes = sorted({r["error"] for r in history if r.get("error")})
    try:
        best = (
            export_best(exp_path, base, opts, run_dir / "best", run_dir / SELECTED)
            if export
            else None
        )
    except RuntimeError as err:
        raise RuntimeError(f"{err}; members' errors: {'; '.join(crashes[:3]) or 'none'}") from err
    members = {}
    for row in history:
        members[row["trial"]] = {
            "member": row["member"],
            "epoch": row["epoch"],
            "objective": row["objective"],
            "failed": row["failed"],
            "hp": row["hp"],
        }
    errors = (
        [str(r.error) for r in results if getattr(r, "error", None)] if results is not None else []
    )
    summary = {
        "run_dir": str(run_dir),
        "objective": opts["objective"],
        "best_dir": str(run_dir / "best") if best else None,
        "best": {k: v for k, v in (best or {}).items() if k != "dir"},
        "members_last": members,
        "n_exploits": len(decisions),
        "trial_errors": errors,
        "member_crashes": crashes,
        "interrupted": interrupted,
        "tune_seconds": tune_s,
        "export_seconds": time.time() - t1,
        "trajectories_png": str(png),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if wb and not interrupted:
        _wandb_summary(run_dir, wb, fig, summary)
    return summary


def _wandb_summary(run_dir: Path, wb: Dict[str, Any], fig, summary: Dict[str, Any]) -> None:
    import wandb

    run = wandb.init(
        project=wb["project"],
        entity=wb["entity"],
        group=wb["group"],
        name="pbt-summary",
        job_type="pbt-summary",
        dir=str(run_dir),
        mode=wb["mode"],
        tags=wb["tags"],
        reinit="create_new",
        config={
            "best_hp": (summary.get("best") or {}).get("hp"),
            "best_member": (summary.get("best") or {}).get("member"),
        },
    )
    log = {"pbt/trajectories": wandb.Image(fig), "pbt/n_exploits": summary["n_exploits"]}
    for k, v in ((summary.get("best") or {}).get("metrics") or {}).items():
        if isinstance(v, (int, float)):
            log[f"best/{k}"] = v
    run.log(log)
    run.finish()


def format_summary(summary: Dict[str, Any]) -> str:
    lines = [f"{'member':>6}  {'epoch':>5}  {'objective':>10}  hyperparameters", "-" * 72]
    for trial, m in sorted(summary["members_last"].items(), key=lambda kv: kv[1]["member"] or 0):
        obj = m["objective"]
        obj_s = f"{obj:10.4f}" if obj is not None and math.isfinite(obj) else f"{'crashed':>10}"
        hp = ", ".join(f"{k}={v:.3g}" for k, v in (m["hp"] or {}).items())
        lines.append(f"{m['member']:>6}  {int(m['epoch'] or 0):>5}  {obj_s}  {hp}")
    best = summary.get("best") or {}
    if summary.get("interrupted"):
        lines.append("\ninterrupted: nothing exported yet (resume with tune.resume=true)")
    if best:
        lines.append(
            f"\nbest: member {best['member']} at epoch {best['epoch']}, "
            f"{summary['objective']}={best['objective']:.4f}; exported to "
            f"{summary['best_dir']}"
        )
    lines.append(
        f"exploits: {summary['n_exploits']}; search {summary['tune_seconds']:.0f} s, "
        f"export {summary['export_seconds']:.0f} s"
    )
    return "\n".join(lines)
