"""``dsid train``, ``dsid demo``, ``dsid infer``, ``dsid perturb``, ``dsid analyze`` and
``dsid compare``."""

from __future__ import annotations

import time
from pathlib import Path

from dsid.runs.report import COLUMNS, format_table
from dsid.runs.status import RunDirError, require_finished


def cmd_train(args) -> int:
    from dsid.runs.hydra_train import hydra_train
    from dsid.runs.train import resume_run

    resume = [o for o in args.overrides if o.startswith("resume=")]
    if resume:  # `dsid train resume=RUN_DIR`: the run continues with its own config
        others = [o for o in args.overrides if not o.startswith("resume=")]
        if others or len(resume) > 1:
            raise SystemExit(
                f"dsid train resume=RUN_DIR continues a run with its own config; drop "
                f"{' '.join(others or resume[1:])}"
            )
        run_dir = resume[0].split("=", 1)[1]
        try:
            metrics = resume_run(run_dir)
        except (RunDirError, FileNotFoundError) as err:
            raise SystemExit(f"error: {err}") from err
        print(f"\nrun directory: {run_dir}")
        print(format_table(metrics))
        return 0
    return hydra_train(list(args.overrides))


def cmd_demo(args) -> int:
    """The main job: fit the Lorenz benchmark with the default experiment and print the targets."""
    from dsid.runs.hydra_train import hydra_train

    return hydra_train(["experiment=lorenz_lfads"] + list(args.overrides), demo=True)


def cmd_infer(args) -> int:
    from dsid.runs.infer import infer_run

    require_finished(args.run_dir, args.allow_unfinished)
    written = infer_run(
        args.run_dir,
        n_samples=args.samples,
        data_path=args.data,
        out=args.out,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    for out in written:
        print(f"wrote {out}")
    return 0


def register_cli(top, synth) -> None:
    p = top.add_parser(
        "train",
        help="train a model: dsid train experiment=NAME [key=value ...] [-m]; "
        "dsid train resume=RUN_DIR continues a killed run",
        description="Hydra overrides follow, e.g. experiment=lorenz_lfads "
        "model.generator.hidden_size=64 trainer.max_epochs=5; "
        "-m runs a sweep (multirun). resume=RUN_DIR (alone) continues a run "
        "that was killed or failed, from its last checkpoint.",
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides")
    p.set_defaults(func=cmd_train, accepts_overrides=True)
    p = top.add_parser(
        "demo",
        help="fit the Lorenz benchmark (experiment=lorenz_lfads) and print "
        "its metrics against the targets",
    )
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    p.set_defaults(func=cmd_demo, accepts_overrides=True)
    p = top.add_parser(
        "infer",
        help="write posterior-averaged rates, factors and inferred inputs "
        "of every split to RUN_DIR/inference.h5",
        description="The posterior samples are drawn from --seed (default 0, as in the inference "
        "at the end of training): the same checkpoint and data give the same file.",
    )
    p.add_argument("run_dir")
    p.add_argument(
        "--samples", type=int, default=None, help="posterior samples (default: the run's)"
    )
    p.add_argument(
        "--data",
        default=None,
        help="another DSID tensor file with the same neurons (checked); "
        "written to RUN_DIR/inference_<file name>.h5 (the file records its data file)",
    )
    p.add_argument("--out", default=None, help="with --data: the output file instead")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="with --data: replace RUN_DIR/inference_<file name>.h5 even when it holds the "
        "inference of another data file of that name",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the posterior samples (default 0): the same checkpoint and data give the "
        "same file; the caller's random state is left as it was",
    )
    p.add_argument(
        "--allow-unfinished",
        action="store_true",
        help="infer from a run that is still training, failed or was killed",
    )
    p.set_defaults(func=cmd_infer)
    _register_perturb(top)
    _register_analyze(top)
    _register_compare(top)
    p = top.add_parser("components", help="list the registered components configs can name")
    p.set_defaults(func=cmd_components)


def cmd_components(args) -> int:
    from dsid.registry import ALL_REGISTRIES  # its first look-up registers the built-in entries

    print("registered components (a config names them, e.g. model.coupling=delay):")
    for kind, reg in ALL_REGISTRIES.items():
        print(f"  {kind:<13} {', '.join(reg.names()) or '-'}")
    return 0


def cmd_compare(args) -> int:
    from dsid.runs.compare import compare

    out = args.out or Path("runs") / "compare" / time.strftime("%Y-%m-%d_%H-%M-%S")
    compare(
        args.run_dirs, out, use_wandb=not args.no_wandb, project=args.project, sort_by=args.sort
    )
    return 0


def _register_compare(top) -> None:
    """``dsid compare``."""
    p = top.add_parser(
        "compare",
        help="compare trained runs: table (co-bps, rate R2, latent R2, "
        "parameters, seconds/epoch) and plot, logged to W&B",
        description="RUN_DIR may be a run directory or a sweep (multirun) directory.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument(
        "--out",
        default=None,
        help="folder for compare.{png,csv,txt} and the W&B run "
        "(default: runs/compare/<date>_<time>)",
    )
    p.add_argument("--sort", default=None, choices=sorted(COLUMNS), help="sort rows by this column")
    p.add_argument("--project", default="dsid", help="W&B project")
    p.add_argument("--no-wandb", action="store_true", help="do not log to W&B")
    p.set_defaults(func=cmd_compare)


def cmd_perturb(args) -> int:
    from dsid.runs.load import load_run
    from dsid.runs.perturb import default_path, write_perturbation

    require_finished(args.run_dir, args.allow_unfinished)
    run = load_run(args.run_dir)
    try:
        result = run.perturb(
            args.mode,
            area=args.area,
            edge=args.edge,
            factor=args.factor,
            from_bin=args.from_bin,
            split=args.split,
        )
    except ValueError as err:
        raise SystemExit(f"error: {err}") from err
    path = write_perturbation(result, args.out or default_path(args.run_dir, result))
    a = result["attrs"]
    print(f"{a['description']} ({a['split']} trials; bins of {a['bin_ms']:g} ms)")
    print("predicted change of rate from bin " + f"{a['first_bin_affected']} on (spikes/s):")
    print(f"  {'area':<12} {'RMS':>8} {'mean':>8}")
    after = slice(a["first_bin_affected"], None)
    for name, rms, mean in zip(
        a["area_names"], result["area_effect_rms"], result["area_effect_mean"]
    ):
        rms_after = float((rms[after] ** 2).mean() ** 0.5)
        print(f"  {name:<12} {rms_after:8.3f} {float(mean[after].mean()):8.3f}")
    print(f"wrote {path} and its figure {path.with_suffix('.png')}")
    return 0


def _register_perturb(top) -> None:
    """``dsid perturb``."""
    p = top.add_parser(
        "perturb",
        help="predict what silencing, holding or scaling an area's (or edge's) messages does to "
        "every area's rates (multi-area runs)",
        description="From bin --from-bin on, the messages of every edge leaving --area (or of "
        "--edge alone) are silenced (0), clamped (held at their value of the bin before) or "
        "scaled by --factor; the change first shows in the next bin. Every trial of the split is "
        "rolled out twice from the same posterior means, as inferred and perturbed. The silenced "
        "area's own neurons change only through feedback (the model cannot tell what silencing "
        "does to them). Writes RUN_DIR/perturbations/<name>.h5 (rates as inferred and perturbed, "
        "their difference, each area's effect over time) and a figure beside it.",
    )
    _multiarea_run_arguments(
        p,
        0,
        "first bin whose messages change (default 0)",
        "output HDF5 file instead of the default",
    )
    p.add_argument("--mode", required=True, choices=("silence", "clamp", "scale"))
    p.add_argument("--area", default=None, help="area name or index: every edge leaving it")
    p.add_argument("--edge", default=None, help="one edge, SRC->DST (area names or indices)")
    p.add_argument("--factor", type=float, default=None, help="with --mode scale: the multiplier")
    p.set_defaults(func=cmd_perturb)


def _multiarea_run_arguments(p, from_bin, from_bin_help: str, out_help: str) -> None:
    """RUN_DIR, --from-bin, --split, --out and --allow-unfinished (``dsid perturb``, ``dsid
    analyze``)."""
    p.add_argument("run_dir")
    p.add_argument("--from-bin", type=int, default=from_bin, help=from_bin_help)
    p.add_argument("--split", default="valid", help="trials to roll out (default valid)")
    p.add_argument("--out", default=None, help=out_help)
    p.add_argument(
        "--allow-unfinished", action="store_true", help="use a run still training or killed"
    )


def cmd_analyze(args) -> int:
    from dsid.runs.analyze import analysis_lines, analyze_run
    from dsid.runs.load import load_run

    for run_dir in [args.run_dir, *args.others]:
        require_finished(run_dir, args.allow_unfinished)
    try:
        result = analyze_run(
            load_run(args.run_dir),
            split=args.split,
            from_bin=args.from_bin,
            out=args.out,
            others=[load_run(d) for d in args.others],
        )
    except ValueError as err:
        raise SystemExit(f"error: {err}") from err
    print("\n".join(analysis_lines(result)))
    return 0


def _register_analyze(top) -> None:
    """``dsid analyze``."""
    p = top.add_parser(
        "analyze",
        help="a multi-area run's communication: edges (strength, delay, lag range, rank) beside "
        "a linear baseline, predicted silencing effects, scores against truth, figures",
        description="Works with or without ground truth. Writes RUN_DIR/analysis/analysis.json "
        "and figures (effectome, silencing matrix, delays with truth). The silencing matrix's "
        "entry (s, d): the predicted RMS change of area d's rates when every message leaving "
        "area s is silenced from --from-bin on, relative to the SD of d's rates.",
    )
    _multiarea_run_arguments(
        p, None, "silencing start (default: mid-trial)", "folder instead of RUN_DIR/analysis"
    )
    p.add_argument(
        "--with",
        dest="others",
        nargs="+",
        default=[],
        metavar="RUN_DIR",
        help="other fits of the same data (other seeds, e.g. dsid fit --seed 1): every edge's "
        "strength, delay and rank across all the fits, and in how many each edge is used",
    )
    p.set_defaults(func=cmd_analyze)
