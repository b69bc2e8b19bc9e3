"""``dsid train``, ``dsid infer`` and ``dsid demo``."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import List

from dsid.runs.config import config_dir
from dsid.runs.infer import infer_run
from dsid.runs.status import RunDirError, require_finished
from dsid.runs.train import resume_run, train

# The Lorenz demo's quality targets (issue: core toolkit): metric -> (target, kind)
LORENZ_TARGETS = {
    "val/latent_r2": (0.90, "absolute"),
    "val/rate_r2": (0.85, "absolute"),
    "val/co_bps": (0.90, "fraction of val/oracle_co_bps"),
}


def format_table(metrics, targets=LORENZ_TARGETS) -> str:
    """Metric table with targets and a PASS/MISS column."""
    rows = [f"{'metric':<22}{'value':>10}{'target':>16}  status", "-" * 56]
    for key, (target, kind) in targets.items():
        value = metrics.get(key, float("nan"))
        if kind.startswith("fraction of "):
            ref = metrics.get(kind[len("fraction of "):], float("nan"))
            goal = target * ref
            tstr = f">={target:.2f}x{ref:.3f}"
        else:
            goal, tstr = target, f">={target:.2f}"
        ok = value >= goal
        rows.append(f"{key:<22}{value:>10.4f}{tstr:>16}  {'PASS' if ok else 'MISS'}")
    shown = set(targets)
    for key in sorted(metrics):
        if key not in shown and isinstance(metrics[key], float):
            rows.append(f"{key:<22}{metrics[key]:>10.4f}")
    return "\n".join(rows)


def _hydra_train(overrides: List[str]) -> int:
    """Run ``train`` under Hydra's own entry point so that multirun (-m) and sweeps work."""
    import hydra
    from hydra.core.hydra_config import HydraConfig

    @hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")
    def _main(cfg) -> float:
        run_dir = cfg.get("run_dir") or HydraConfig.get().runtime.output_dir
        try:
            metrics = train(cfg, run_dir=run_dir)
        except BaseException:
            remove_if_empty(HydraConfig.get().runtime.output_dir)
            raise
        print(f"\nrun directory: {run_dir}")
        print(format_table(metrics))
        return float(metrics.get("val/co_bps", float("nan")))

    multirun = any(o in ("-m", "--multirun") for o in overrides)
    given = [o.split("=", 1)[1] for o in overrides if o.startswith("run_dir=")]
    if given and not multirun:  # Hydra's own files go into the run directory, not a dated folder
        overrides = [*overrides, f"hydra.run.dir={given[-1]}"]
    argv = sys.argv
    sys.argv = ["dsid train"] + overrides
    try:
        _main()
    finally:
        sys.argv = argv
    return 0


def remove_if_empty(run_dir) -> None:
    """Remove a run directory a failed launch left with nothing but Hydra's own ``.hydra`` folder."""
    path = Path(run_dir)
    if path.is_dir() and {p.name for p in path.iterdir()} <= {".hydra"}:
        shutil.rmtree(path)
        for parent in (path.parent, path.parent.parent):  # runs/<date>/ and runs/, when now empty
            try:
                parent.rmdir()
            except OSError:
                break


def cmd_train(args) -> int:
    resume = [o for o in args.overrides if o.startswith("resume=")]
    if resume:  # `dsid train resume=RUN_DIR`: the run continues with its own config
        others = [o for o in args.overrides if not o.startswith("resume=")]
        if others or len(resume) > 1:
            raise SystemExit(f"dsid train resume=RUN_DIR continues a run with its own config; drop "
                             f"{' '.join(others or resume[1:])}")
        run_dir = resume[0].split("=", 1)[1]
        try:
            metrics = resume_run(run_dir)
        except (RunDirError, FileNotFoundError) as err:
            raise SystemExit(f"error: {err}") from None
        print(f"\nrun directory: {run_dir}")
        print(format_table(metrics))
        return 0
    return _hydra_train(list(args.overrides))


def cmd_demo(args) -> int:
    """The main job: fit the Lorenz benchmark with the default experiment and print the targets."""
    return _hydra_train(["experiment=lorenz_lfads"] + list(args.overrides))


def cmd_infer(args) -> int:
    require_finished(args.run_dir, args.allow_unfinished)
    for out in infer_run(args.run_dir, n_samples=args.samples, data_path=args.data, out=args.out):
        print(f"wrote {out}")
    return 0


def register_cli(top, synth) -> None:
    p = top.add_parser("train", help="train a model: dsid train experiment=NAME [key=value ...] [-m]; "
                                     "dsid train resume=RUN_DIR continues a killed run",
                       description="Hydra overrides follow, e.g. experiment=lorenz_lfads "
                                   "model.generator.hidden_size=64 trainer.max_epochs=5; "
                                   "-m runs a sweep (multirun). resume=RUN_DIR (alone) continues a run "
                                   "that was killed or failed, from its last checkpoint.")
    p.add_argument("overrides", nargs="*", help="Hydra overrides")
    p.set_defaults(func=cmd_train, accepts_overrides=True)
    p = top.add_parser("demo", help="fit the Lorenz benchmark (experiment=lorenz_lfads) and print "
                                    "its metrics against the targets")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    p.set_defaults(func=cmd_demo, accepts_overrides=True)
    p = top.add_parser("infer", help="write posterior-averaged rates, factors and inferred inputs "
                                     "of every split to RUN_DIR/inference.h5")
    p.add_argument("run_dir")
    p.add_argument("--samples", type=int, default=None, help="posterior samples (default: the run's)")
    p.add_argument("--data", default=None, help="another DSID tensor file with the same neurons (checked); "
                                                "written to RUN_DIR/inference_<file name>.h5")
    p.add_argument("--out", default=None, help="with --data: the output file instead")
    p.add_argument("--allow-unfinished", action="store_true",
                   help="infer from a run that is still training, failed or was killed")
    p.set_defaults(func=cmd_infer)
