"""``dsid compare RUN_DIR...``: a table and a plot comparing trained runs (architectures,
observation models, ...), both also logged to an offline W&B run of their own."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from dsid.evaluation.figures.style import subplots
from dsid.models import model_name
from dsid.runs.load import Run, load_run
from dsid.runs.report import COLUMNS


def find_runs(paths: Sequence) -> List[Path]:
    """Run directories (holding ``metrics.json``): each path itself, or, for a sweep (multirun)
    directory, the runs in its subfolders (two levels deep)."""
    runs: List[Path] = []
    for p in map(Path, paths):
        if (p / "metrics.json").exists():
            runs.append(p)
            continue
        found = (
            sorted(
                {
                    m.parent
                    for pattern in ("*/metrics.json", "*/*/metrics.json")
                    for m in p.glob(pattern)
                }
            )
            if p.is_dir()
            else []
        )
        if not found:
            raise FileNotFoundError(
                f"{p}: not a DSID run directory (no metrics.json) and no runs in its subfolders"
            )
        runs.extend(found)
    return runs


def describe_model(cfg: Dict[str, Any]) -> str:
    """Short architecture label from a run's config: ``encoder+generator/observation``."""
    model = cfg.get("model") or {}
    name = lambda key: (model.get(key) or {}).get("name", "?")  # noqa: E731
    kind = model_name(model)
    obs = name("observation")
    if kind == "ndt":
        return f"ndt/{obs}"
    label = f"{name('encoder')}+{name('generator')}/{obs}"
    return label if kind == "sae" else f"{kind}:{label}"


def run_row(run_dir) -> Dict[str, Any]:
    """One table row: run name, model label, and the compared metrics (NaN when absent)."""
    run_dir = Path(run_dir)
    run = load_run(run_dir) if (run_dir / "config.yaml").exists() else Run(run_dir, {})
    metrics, cfg = run.metrics, run.config
    row = {
        "run": run_dir.name,
        "path": str(run_dir),
        "model": describe_model(cfg) if cfg else "?",
        "experiment": cfg.get("experiment_name", ""),
    }
    for col, (key, _, _) in COLUMNS.items():
        value = metrics.get(key)
        row[col] = float(value) if isinstance(value, (int, float)) else float("nan")
    return row


def _fmt(value: float, fmt: str) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else fmt.format(value)
    )


def format_table(rows: Sequence[Dict[str, Any]]) -> str:
    """Plain-text table, one row per run."""
    headers = ["run", "model"] + [h for _, h, _ in COLUMNS.values()]
    body = [
        [r["run"], r["model"]] + [_fmt(r[c], f) for c, (_, _, f) in COLUMNS.items()] for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *body)]
    line = lambda cells: "  ".join(  # noqa: E731
        str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
    )
    return "\n".join(
        [line(headers), "-" * (sum(widths) + 2 * (len(widths) - 1))] + [line(b) for b in body]
    )


def plot_comparison(rows: Sequence[Dict[str, Any]]):
    """One horizontal bar panel per metric (co-bps, rate R2, latent R2, seconds/epoch), and
    co-bps against parameter count."""
    labels = [f"{r['model']}\n{r['run']}" if len(rows) < 12 else r["model"] for r in rows]
    panels = ["co_bps", "rate_r2", "latent_r2", "seconds_per_epoch"]
    fig, axes = subplots(1, len(panels) + 1, figsize=(4.2 * (len(panels) + 1), 0.5 * len(rows) + 2))
    y = list(range(len(rows)))
    for ax, col in zip(axes, panels):
        vals = [0.0 if math.isnan(r[col]) else r[col] for r in rows]
        ax.barh(y, vals, color=[f"C{i % 10}" for i in y])
        ax.set_title(COLUMNS[col][1])
        ax.set_yticks(y)
        ax.set_yticklabels(labels if ax is axes[0] else [], fontsize=7)
        ax.invert_yaxis()
    ax = axes[-1]
    for i, r in enumerate(rows):
        ax.scatter(r["n_parameters"], r["co_bps"], color=f"C{i % 10}")
        ax.annotate(r["model"], (r["n_parameters"], r["co_bps"]), fontsize=6)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("co-bps")
    fig.suptitle("architecture comparison (validation split)")
    fig.tight_layout()
    return fig


def log_to_wandb(
    rows: Sequence[Dict[str, Any]], fig, out_dir: Path, project: str = "dsid", mode: str = "offline"
) -> None:
    """Log the table and the figure to a W&B run of their own (offline by default)."""
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    columns = ["run", "model", "experiment", "path"] + list(COLUMNS)
    run = wandb.init(
        project=project,
        mode=mode,
        dir=str(out_dir),
        job_type="compare",
        name=f"compare-{len(rows)}-runs",
        config={"runs": [r["path"] for r in rows]},
        reinit=True,
    )
    try:
        table = wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in rows])
        run.log({"compare/table": table, "compare/plot": wandb.Image(fig)})
    finally:
        run.finish()


def compare(
    paths: Sequence,
    out_dir,
    use_wandb: bool = True,
    project: str = "dsid",
    sort_by: Optional[str] = None,
) -> List[Dict[str, Any]]:
    """Load the runs, print the table, write ``compare.{txt,csv,png}`` to ``out_dir`` and log
    them."""
    rows = [run_row(p) for p in find_runs(paths)]
    if sort_by:
        if sort_by not in COLUMNS:
            raise ValueError(f"--sort {sort_by}: expected one of {', '.join(COLUMNS)}")
        rows.sort(
            key=lambda r: (
                math.isnan(r[sort_by]),
                -r[sort_by] if sort_by not in ("n_parameters", "seconds_per_epoch") else r[sort_by],
            )
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = format_table(rows)
    print(table)
    (out_dir / "compare.txt").write_text(table + "\n")
    with open(out_dir / "compare.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["run", "model", "experiment", "path", *COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    fig = plot_comparison(rows)
    fig.savefig(out_dir / "compare.png", dpi=90)
    if use_wandb:
        log_to_wandb(rows, fig, out_dir, project=project)
    print(
        f"\nwrote {out_dir / 'compare.png'}, compare.csv and compare.txt"
        + (f"; W&B run (offline) in {out_dir / 'wandb'}" if use_wandb else "")
    )
    return rows
