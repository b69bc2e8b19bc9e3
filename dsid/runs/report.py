"""The metric table printed at the end of a run (with the Lorenz demo's targets for
``dsid demo``)."""

from __future__ import annotations

# The Lorenz demo's quality targets (issue: core toolkit): metric -> (target, kind)
LORENZ_TARGETS = {
    "val/latent_r2": (0.90, "absolute"),
    "val/rate_r2": (0.85, "absolute"),
    "val/co_bps": (0.90, "fraction of val/oracle_co_bps"),
}


# column -> (metrics.json key, header, format)
COLUMNS = {
    "co_bps": ("val/co_bps", "co-bps", "{:.4f}"),
    "rate_r2": ("val/rate_r2", "rate R2", "{:.4f}"),
    "latent_r2": ("val/latent_r2", "latent R2", "{:.4f}"),
    "n_parameters": ("n_parameters", "params", "{:,.0f}"),
    "seconds_per_epoch": ("seconds_per_epoch", "s/epoch", "{:.2f}"),
}


def goal_of(metrics, target: float, kind: str) -> tuple:
    """``(value to reach, its label)`` of one target: ``target`` itself, or for a
    ``fraction of KEY`` target that fraction of ``metrics[KEY]`` (nan when absent)."""
    if kind.startswith("fraction of "):
        ref = metrics.get(kind[len("fraction of ") :], float("nan"))
        return target * ref, f">={target:.2f}x{ref:.3f}"
    return target, f">={target:.2f}"


def targets_met(metrics, targets=LORENZ_TARGETS) -> bool:
    """Whether every target is met by ``metrics``."""
    return all(
        metrics.get(key, float("nan")) >= goal_of(metrics, target, kind)[0]
        for key, (target, kind) in targets.items()
    )


def first_time_targets_met(history, targets=LORENZ_TARGETS):
    """``(seconds, epoch)`` of the first evaluation while training that met every target, else
    None."""
    for row in history:
        if targets_met(row, targets):
            return float(row["seconds"]), int(row["epoch"])
    return None


def format_table(metrics, targets=None) -> str:
    """This run's metrics, one per line; with ``targets`` (the demo's :data:`LORENZ_TARGETS`) those
    first, each with its target and PASS/MISS."""
    targets = targets or {}
    head = f"{'metric':<22}{'value':>10}" + (f"{'target':>16}  status" if targets else "")
    rows = [head, "-" * len(head)]
    for key, (target, kind) in targets.items():
        value = metrics.get(key, float("nan"))
        goal, tstr = goal_of(metrics, target, kind)
        ok = bool(value >= goal)
        rows.append(f"{key:<22}{value:>10.4f}{tstr:>16}  {'PASS' if ok else 'MISS'}")
    for key in sorted(metrics):
        if key not in targets and isinstance(metrics[key], float):
            rows.append(f"{key:<22}{metrics[key]:>10.4f}")
    return "\n".join(rows)
