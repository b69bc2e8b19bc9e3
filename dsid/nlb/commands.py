"""``dsid synth nlb`` and ``dsid nlb prepare | baseline | evaluate | submit``.

Other modules add commands to the ``dsid nlb`` group with ``nlb_subparsers(top).add_parser(...)``.
"""

from __future__ import annotations

import sys
import time
import warnings

from dsid.data.tensor_file import DataFileError
from dsid.nlb.specs import BIN_SIZES, DATASETS, PHASES, SYNTH_LIKES, require_nlb_tools
from dsid.runs.status import RunDirError, require_finished


def nlb_subparsers(top):
    """The sub-command action of ``dsid nlb`` (created on first use)."""
    parser = top.choices.get("nlb")
    if parser is None:
        parser = top.add_parser(
            "nlb", help="Neural Latents Benchmark: prepare data, baseline, scores"
        )
        parser.dsid_subcommands = parser.add_subparsers(dest="nlb_command", metavar="COMMAND")
        parser.set_defaults(func=lambda a: parser.print_help() or 2)
    return parser.dsid_subcommands


def _fail(err: Exception) -> int:
    print(f"error: {err}", file=sys.stderr)
    return 2


def _with_nlb_tools(handler):
    """``handler`` preceded by a check that nlb_tools is installed (an error saying how,
    otherwise)."""

    def run(args) -> int:
        try:
            require_nlb_tools()
        except ImportError as err:
            return _fail(err)
        return handler(args)

    return run


def _synth(args) -> int:
    from dsid.nlb.synth import write_synthetic_nlb

    t0 = time.time()
    print(f"writing synthetic {args.like}-like NWB files to {args.out} (seed {args.seed})")
    try:
        paths = write_synthetic_nlb(
            args.like, args.out, seed=args.seed, n_heldin=args.n_heldin, n_heldout=args.n_heldout
        )
    except ValueError as err:
        return _fail(err)
    for part, path in paths.items():
        print(f"  {part:<6} {path}")
    print(
        f"done in {time.time() - t0:.1f} s; next: dsid nlb prepare --dataset {args.like} "
        f"--nwb-dir {args.out} --bin 5 --phase val --out {args.like}_val.h5"
    )
    return 0


def _prepare(args) -> int:
    from dsid.nlb.prepare import prepare

    t0 = time.time()
    try:
        prepare(
            args.dataset,
            args.nwb_dir,
            args.bin,
            args.phase,
            args.out,
            seed=args.seed,
            valid_fraction=args.valid_fraction,
            log=lambda m: print(m, flush=True),
        )
    except (DataFileError, FileNotFoundError, ValueError) as err:
        return _fail(err)
    print(f"done in {time.time() - t0:.1f} s")
    return 0


def _baseline(args) -> int:
    from dsid.nlb.baseline import smoothing_baseline
    from dsid.nlb.scoring import (
        evaluate_submission,
        format_metrics,
        load_targets,
        read_nlb_info,
        save_submission_h5,
    )

    try:
        info = read_nlb_info(args.file)
        print(
            f"smoothing baseline on {args.file} ({info['key']}, phase {info['phase']})", flush=True
        )
        sub = smoothing_baseline(args.file, kern_sd=args.kern_sd, alpha=args.alpha)
        if args.save:
            print(f"wrote submission {save_submission_h5(sub, args.save)}")
        if info["heldout_unknown"]:
            print(
                "test phase: held-out spikes unknown, no local scores (submit the file to EvalAI)"
            )
            return 0
        print(
            format_metrics(
                evaluate_submission(sub, load_targets(args.file)), f"{info['key']} (val)"
            )
        )
    except (DataFileError, FileNotFoundError, ValueError) as err:
        return _fail(err)
    return 0


def _evaluate(args) -> int:
    from dsid.nlb.evaluate import METRICS_FILE, evaluate_run, format_result

    try:
        require_finished(args.run_dir, args.allow_unfinished)
        result = evaluate_run(
            args.run_dir,
            n_samples=args.samples,
            data_path=args.data,
            wandb_mode=args.wandb_mode,
            log_wandb=not args.no_wandb,
            log=lambda m: print(m, flush=True),
        )
    except (DataFileError, FileNotFoundError, ValueError, RunDirError) as err:
        return _fail(err)
    print(format_result(result))
    print(f"wrote {args.run_dir.rstrip('/')}/{METRICS_FILE}")
    return 0


def _submit(args) -> int:
    from dsid.nlb.submit import submit_run

    out = error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            require_finished(args.run_dir, args.allow_unfinished)
            out = submit_run(
                args.run_dir,
                args.out,
                n_samples=args.samples,
                data_path=args.data,
                wandb_mode=args.wandb_mode,
                log_wandb=not args.no_wandb,
                log=lambda m: print(m, flush=True),
            )
        except (DataFileError, FileNotFoundError, ValueError, RunDirError) as err:
            error = err
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if error is not None:
        return _fail(error)
    print(f"submission ready: {out} (upload it to NLB's EvalAI challenge)")
    return 0


def register_cli(top, synth) -> None:
    p = synth.add_parser("nlb", help="NWB files shaped like an NLB dataset, with true rates")
    p.add_argument("--like", required=True, choices=SYNTH_LIKES, help="the NLB dataset to imitate")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-heldin", type=int, default=40)
    p.add_argument("--n-heldout", type=int, default=15)
    p.set_defaults(func=_synth)

    sub = nlb_subparsers(top)
    p = sub.add_parser("prepare", help="NLB NWB files -> DSID tensor file (with NLB targets)")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument(
        "--nwb-dir", required=True, help="folder holding (or above) the dataset's DANDI NWB files"
    )
    p.add_argument("--bin", required=True, type=int, choices=BIN_SIZES, help="bin width, ms")
    p.add_argument(
        "--phase", required=True, choices=PHASES, help="val: score locally; test: for EvalAI"
    )
    p.add_argument("--out", required=True, help="DSID tensor file to write")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the train/valid split and of nlb_tools' jitter (dmfc_rsg)",
    )
    p.add_argument(
        "--valid-fraction",
        type=float,
        default=0.2,
        help="share of NLB's training trials held back as DSID 'valid' (model selection)",
    )
    p.set_defaults(func=_with_nlb_tools(_prepare))

    p = sub.add_parser(
        "baseline", help="NLB's spike-smoothing baseline on a prepared file, with scores"
    )
    p.add_argument("file", help="DSID tensor file written by `dsid nlb prepare`")
    p.add_argument(
        "--kern-sd", type=float, default=None, help="Gaussian kernel SD, ms (default per dataset)"
    )
    p.add_argument("--alpha", type=float, default=None, help="GLM L2 penalty (default per dataset)")
    p.add_argument("--save", default=None, help="also write the submission .h5 here")
    p.set_defaults(func=_with_nlb_tools(_baseline))

    for name, help_text in (
        ("evaluate", "score a trained run on NLB's val phase (co-bps, vel R2, psth R2, fp-bps)"),
        ("submit", "write a trained run's EvalAI submission (.h5) for NLB's test phase"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "run_dir", help="a run directory of `dsid train` (config.yaml, checkpoints/)"
        )
        if name == "submit":
            p.add_argument(
                "--out", required=True, help="submission file to write (.h5; always a fresh file)"
            )
        p.add_argument(
            "--data",
            default=None,
            help="another prepared NLB file of the same dataset to infer "
            "(default: the run's data.path)",
        )
        p.add_argument(
            "--samples",
            type=int,
            default=None,
            help="posterior samples: infer again with this many (default: the run's inference.h5)",
        )
        p.add_argument(
            "--wandb-mode",
            default=None,
            choices=("offline", "online", "disabled"),
            help="W&B mode (default: the run's logger mode, else offline)",
        )
        p.add_argument("--no-wandb", action="store_true", help="do not log to W&B")
        p.add_argument(
            "--allow-unfinished",
            action="store_true",
            help="use a run that is still training, failed or was killed",
        )
        p.set_defaults(func=_with_nlb_tools(_evaluate if name == "evaluate" else _submit))
