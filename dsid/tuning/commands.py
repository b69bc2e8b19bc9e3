"""``dsid tune``: population-based training (Ray Tune) of the model a train config describes."""

from __future__ import annotations

from typing import List

from dsid.runs.report import format_table


def tune_overrides(overrides: List[str]) -> List[str]:
    """The Hydra overrides of ``dsid tune``: ``tune=pbt`` unless a ``tune`` option is chosen."""
    if any(o.lstrip("+~").split("=", 1)[0] == "tune" for o in overrides):
        return list(overrides)
    return [*overrides, "tune=pbt"]


def cmd_tune(args) -> int:
    try:
        import ray.tune  # noqa: F401
    except ImportError as err:
        raise SystemExit(
            f"dsid tune needs Ray Tune ({err}); install it with "
            "pip install 'ray[tune]' (scripts/setup.sh installs the tested version)"
        )
    # needs Ray: imported once it is known present
    from dsid.runs.config import compose
    from dsid.tuning.export import format_summary
    from dsid.tuning.pbt import run_pbt

    overrides = list(args.overrides)
    if any(o in ("-m", "--multirun") for o in overrides):
        raise SystemExit(
            "dsid tune: -m/--multirun is not supported (PBT is itself the search); "
            "use dsid train -m for sweeps"
        )
    cfg = compose(tune_overrides(overrides))
    summary = run_pbt(cfg, run_dir=cfg.get("run_dir"))
    print(f"\ntune directory: {summary['run_dir']}")
    print(format_summary(summary))
    best = summary.get("best") or {}
    if best.get("metrics"):
        print(format_table(best["metrics"]))
    return 0


def register_cli(top, synth) -> None:
    p = top.add_parser(
        "tune",
        help="population-based training (Ray Tune): dsid tune experiment=NAME "
        "[tune.population=8 tune.address=auto key=value ...]",
        description="Hydra overrides follow, as for dsid train; tune=pbt is added unless another "
        "tune option is given. tune.resume=true [run_dir=DIR] continues an interrupted "
        "search; tune.address=auto or ray://HOST:10001 runs it on a Ray cluster.",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides")
    p.set_defaults(func=cmd_tune, accepts_overrides=True)
