"""The ``dsid`` command line.

Commands are contributed by each package's ``commands`` module, listed in ``COMMAND_MODULES``; each
defines ``register_cli(top, synth)`` where ``top`` is the top-level ``add_subparsers`` action and
``synth`` the one under ``dsid synth``. A handler is attached with
``parser.set_defaults(func=handler)`` and is called with the parsed ``argparse.Namespace``; it
returns an exit code (or ``None`` for 0).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from dsid import __version__
from dsid.autofit import commands as autofit_commands
from dsid.data import commands as data_commands
from dsid.nlb import commands as nlb_commands
from dsid.registry import ALL_REGISTRIES  # its first look-up registers the built-in entries
from dsid.runs import commands as run_commands
from dsid.tuning import commands as tuning_commands
from dsid.zoo import commands as zoo_commands

COMMAND_MODULES = (  # each package's commands.py, in the order of `dsid --help`
    run_commands,
    data_commands,
    nlb_commands,
    tuning_commands,
    zoo_commands,
    autofit_commands,
)


def _component_listing() -> str:
    lines = ["registered components:"]
    for kind, reg in ALL_REGISTRIES.items():
        lines.append(f"  {kind:<13} {', '.join(reg.names()) or '-'}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dsid",
        description="DSID: sequential autoencoders for neural population dynamics.",
        epilog=_component_listing(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dsid {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    synth_parser = top.add_parser("synth", help="write synthetic data with known ground truth")
    synth = synth_parser.add_subparsers(dest="synth_kind", metavar="KIND")
    synth_parser.set_defaults(func=lambda a: synth_parser.print_help() or 2)
    for module in COMMAND_MODULES:
        module.register_cli(top, synth)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if not argv else 2
    if rest and getattr(args, "collects_rest", False):  # key=value settings between options
        args.overrides = list(args.overrides) + rest
        rest = [r for r in rest if r.startswith("-")]
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
    elif rest and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if getattr(args, "accepts_overrides", False):
        # everything after the command name goes to Hydra unchanged (keeps -m/--multirun in place)
        args.overrides = argv[argv.index(args.command) + 1 :]
    code = args.func(args)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
