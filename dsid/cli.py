"""The ``dsid`` command line.

Commands are contributed by each package's ``commands`` module (:func:`command_modules`); each
defines ``register_cli(top, synth)`` where ``top`` is the top-level ``add_subparsers`` action and
``synth`` the one under ``dsid synth``. A handler is attached with
``parser.set_defaults(func=handler)`` and is called with the parsed ``argparse.Namespace``; it
returns an exit code (or ``None`` for 0).

From the command line an error is one line (:mod:`dsid.runs.errors`: exit 2 for bad input, 1
otherwise; the traceback with ``--debug``); from Python (``main([...])``) errors propagate.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import List, Optional

from dsid import __version__
from dsid.runs.errors import debugging, report

VERSION = f"dsid {__version__}"  # what `dsid --version` prints


def command_modules() -> tuple:
    """Each package's commands.py, in the order of `dsid --help`. Imported when a command line is
    parsed, not with this module: they bring in PyTorch and Lightning, which `dsid --version`
    does without."""
    from dsid.autofit import commands as autofit_commands
    from dsid.data import commands as data_commands
    from dsid.nlb import commands as nlb_commands
    from dsid.runs import commands as run_commands
    from dsid.tuning import commands as tuning_commands
    from dsid.zoo import commands as zoo_commands

    return (
        run_commands,
        data_commands,
        nlb_commands,
        tuning_commands,
        zoo_commands,
        autofit_commands,
    )


class HelpWithDefaults(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every option's help ends with its default unless the help already
    names it (or there is none to name: no default, a flag, a positional argument)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if not _names_a_default(action) or "default" in text.lower():
            return text
        return f"{text} (default: %(default)s)"


def _names_a_default(action: argparse.Action) -> bool:
    d = action.default  # (0 is a default to show; False, a flag's, is not)
    nothing = d is None or isinstance(d, bool) or d is argparse.SUPPRESS or d in ([], "")
    return bool(action.option_strings) and not nothing


class Parser(argparse.ArgumentParser):
    """``dsid``'s parsers, subcommands' included: help with defaults (an option without help
    still shows its default)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpWithDefaults)
        super().__init__(*args, **kwargs)

    def _add_action(self, action):
        if action.help is None and _names_a_default(action):
            action.help = "default: %(default)s"
        return super()._add_action(action)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="dsid",
        description="DSID: sequential autoencoders for neural population dynamics.",
        epilog="`dsid components` lists the registered encoders, generators, couplings, ... "
        "that configs name",
    )
    parser.add_argument("--version", action="version", version=VERSION)
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error (also: HYDRA_FULL_ERROR=1)",
    )
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    synth_parser = top.add_parser("synth", help="write synthetic data with known ground truth")
    synth = synth_parser.add_subparsers(dest="synth_kind", metavar="KIND")
    synth_parser.set_defaults(func=lambda a: synth_parser.print_help() or 2)
    for module in command_modules():
        module.register_cli(top, synth)
    return parser


_NEGATIVE_VALUES = re.compile(r"-\d[\d.]*(,-?\d[\d.]*)+")  # "-200,600": not an option


def joined_negative_values(argv: List[str]) -> List[str]:
    """``--window -200,600`` as ``--window=-200,600``: argparse takes a value that begins with a
    dash for an option unless it is a single number, so a list of numbers starting below zero is
    glued to its option."""
    out: List[str] = []
    for token in argv:
        if (
            out
            and out[-1].startswith("--")
            and "=" not in out[-1]
            and _NEGATIVE_VALUES.fullmatch(token)
        ):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command in ``argv`` (default: the command line, whose errors are reported as one
    line and an exit code)."""
    console = argv is None
    argv = joined_negative_values(list(sys.argv[1:] if argv is None else argv))
    if argv == ["--version"]:  # as argparse's version action, without importing every command
        print(VERSION)
        raise SystemExit(0)
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
    if not console:
        return int(args.func(args) or 0)
    try:
        return int(args.func(args) or 0)
    except SystemExit as err:
        if not isinstance(err.code, str):  # argparse's and --help's exits keep their code
            raise
        return report(err, debugging(args))
    except Exception as err:  # noqa: BLE001  (every failure becomes the one line)
        return report(err, debugging(args))


if __name__ == "__main__":
    sys.exit(main())
