"""``dsid`` help: every option with a default shows it, once."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from dsid.cli import build_parser


def _subparsers(parser: argparse.ArgumentParser, path=()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subparsers(sub, (*path, name))


def test_every_option_with_a_default_names_it_once():
    checked = 0
    for path, parser in _subparsers(build_parser()):
        for action in parser._actions:
            default = action.default
            if not action.option_strings or default is None or isinstance(default, bool):
                continue
            if default is argparse.SUPPRESS or default in ([], ""):
                continue
            shown = " ".join(parser._get_formatter()._format_action(action).split()).lower()
            assert shown.count("default") == 1, (path, shown)
            checked += 1
    assert checked > 30  # the commands' options, not an empty walk
    seed = next(p for path, p in _subparsers(build_parser()) if path == ("synth", "lorenz"))
    assert "--seed SEED default: 0" in " ".join(seed.format_help().split())


@pytest.mark.parametrize(
    "argv", [["--version"], ["--help"], ["fit", "--help"], ["nlb", "submit", "--help"]]
)
def test_version_and_help_answer_without_pytorch(argv):
    """`--version` and every command's help import neither PyTorch nor Lightning (seconds each)."""
    code = (
        f"import sys; from dsid.cli import main\ntry: main({argv!r})\nexcept SystemExit: pass\n"
        "print('torch' in sys.modules, 'pytorch_lightning' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1000:]
    lines = done.stdout.splitlines()
    assert lines[-1] == "False False", lines[-1]
    assert lines[0].startswith("dsid " if argv == ["--version"] else "usage: dsid")


def test_components_lists_every_registry(capsys):
    from dsid.cli import main
    from dsid.registry import ALL_REGISTRIES

    assert main(["components"]) == 0
    out = capsys.readouterr().out
    for kind, reg in ALL_REGISTRIES.items():
        line = next(x for x in out.splitlines() if x.split()[:1] == [kind])
        assert line.split(None, 1)[1] == ", ".join(reg.names())
    assert "delay" in out and "poisson" in out
