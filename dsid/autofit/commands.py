"""``dsid fit DATA`` and ``dsid synth zoo``."""

from __future__ import annotations

import time

from dsid.runs.errors import BAD_INPUT, debugging, one_line
from dsid.zoo.members import members


def _fit(args) -> int:
    """Bad input is one line on stdout, like the report (other errors: :mod:`dsid.runs.errors`)."""
    from dsid.autofit.fit import fit

    try:
        fit(
            args.data,
            budget=args.budget,
            out=args.out,
            overrides=args.overrides,
            seed=args.seed,
            resume=args.resume,
            all_neurons=args.all_neurons,
        )
    except BAD_INPUT as err:
        if debugging(args):
            raise
        print(one_line(err), flush=True)
        return 2
    return 0


def _zoo(args) -> int:
    from dsid.zoo.catalog import write_member

    names = list(members()) if not args.only else args.only.split(",")
    unknown = [n for n in names if n not in members()]
    if unknown:
        raise SystemExit(f"--only: unknown member(s) {unknown}; the zoo has {', '.join(members())}")
    for name in names:
        t0 = time.time()
        path = write_member(name, args.out, seed=args.seed)
        print(f"wrote {name:<20} {path} ({time.time() - t0:.1f} s)", flush=True)
    return 0


def register_cli(top, synth) -> None:
    p = top.add_parser(
        "fit",
        help="fit a model to a DSID tensor file without tuning anything: settings "
        "from rules of the data, a time budget, a report against baselines",
        description="Settings chosen by rules of the data are printed with their reasons; "
        "key=value overrides (as for dsid train) win over them.",
    )
    p.add_argument(
        "data", nargs="?", default=None, help="DSID tensor file (.h5) with train and valid splits"
    )
    p.add_argument(
        "--budget",
        default="15m",
        help="training time (90s, 15m, 1.5h) or optimizer steps (2000steps); default 15m",
    )
    p.add_argument(
        "--out", default=None, help="run directory (default runs/fit/<time>_<file name>)"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="the first start's seed (then seed + 1, ...); default 0"
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue the fit in RUN_DIR whose process died (killed, out of time): the start "
        "that was training continues from its last checkpoint, then the fit goes on as it would "
        "have, with its own data, budget and settings",
    )
    p.add_argument(
        "--all-neurons",
        action="store_true",
        help="after the fit, train one more model with the kept start's settings and seed that "
        "reads every neuron, the held-out ones included, in RUN_DIR/all_neurons (about as long "
        "as the kept start took, beyond the budget); the report's scores stay the kept start's",
    )
    p.add_argument(
        "overrides", nargs="*", help="dsid train settings that win over the rules (key=value)"
    )
    p.set_defaults(func=_fit, collects_rest=True)
    p = synth.add_parser("zoo", help="write every ground-truth zoo member: " + ", ".join(members()))
    p.add_argument("--out", required=True, help="folder for <member>.h5 files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default="", help="comma-separated members (default: all)")
    p.set_defaults(func=_zoo)
