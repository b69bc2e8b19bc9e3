"""The population's hyperparameter trajectories and objective over training epochs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Optional, Sequence

from dsid.evaluation.figures.style import subplots
from dsid.tuning.pbt_logic import HyperParam


def _series(history: Sequence[Mapping], trial: str):
    """(epoch, row) of one trial, the last report per epoch (a resumed member repeats epochs)."""
    rows = {}
    for row in history:
        if row.get("trial") == trial and row.get("epoch") is not None:
            rows[int(row["epoch"])] = row
    return sorted(rows.items())


def plot_population(
    history: Sequence[Mapping],
    space: Mapping[str, HyperParam],
    out,
    decisions: Sequence[Mapping] = (),
    objective: str = "objective",
    title: Optional[str] = None,
):
    """One panel for the objective and one per hyperparameter; one line per member. Crashed reports
    are marked with x on the top edge of the objective panel; exploits with a dot where the member
    jumps. Saves ``out`` (PNG) and returns the figure."""
    trials = sorted(
        {r["trial"] for r in history},
        key=lambda t: min((r.get("member") or 0) for r in history if r["trial"] == t),
    )
    names = list(space)
    fig, axes = subplots(
        len(names) + 1, 1, figsize=(8, 1.9 * (len(names) + 1)), sharex=True, squeeze=False
    )
    axes = axes[:, 0]
    finite = [
        r["objective"]
        for r in history
        if r.get("objective") is not None and math.isfinite(r["objective"])
    ]
    top = max(finite) if finite else 1.0
    for i, trial in enumerate(trials):
        series = _series(history, trial)
        if not series:
            continue
        color = f"C{i % 10}"
        member = series[0][1].get("member")
        ep = [e for e, _ in series]
        obj = [
            r["objective"]
            if r.get("objective") is not None and math.isfinite(r["objective"])
            else math.nan
            for _, r in series
        ]
        axes[0].plot(ep, obj, color=color, lw=1.2, label=f"member {member}")
        crashed = [e for e, r in series if r.get("failed")]
        if crashed:
            axes[0].plot(crashed, [top] * len(crashed), "x", color=color, ms=5)
        for ax, name in zip(axes[1:], names):
            ax.plot(
                ep,
                [(r.get("hp") or {}).get(name, math.nan) for _, r in series],
                color=color,
                lw=1.2,
                drawstyle="steps-post",
            )
    for d in decisions:
        if d.get("epoch") is None:
            continue
        i = trials.index(d["trial"]) if d.get("trial") in trials else 0
        for ax, name in zip(axes[1:], names):
            value = (d.get("new_hp") or {}).get(name)
            if value is not None:
                ax.plot([d["epoch"]], [value], "o", color=f"C{i % 10}", ms=3)
    axes[0].set_ylabel(objective.replace("/", "/\n"), fontsize=8)
    if finite:
        lo = min(finite)
        axes[0].set_ylim(lo - 0.05 * (top - lo + 1e-9), top + 0.05 * (top - lo + 1e-9))
    axes[0].legend(fontsize=7, ncol=4, loc="upper right")
    for ax, name in zip(axes[1:], names):
        ax.set_ylabel(name, fontsize=8)
        if space[name].scale == "log":
            ax.set_yscale("log")
        ax.axhspan(space[name].low, space[name].high, color="0.93", zorder=0)
    axes[-1].set_xlabel("epoch")
    fig.suptitle(title or "PBT: objective and hyperparameters of the population", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    return fig
