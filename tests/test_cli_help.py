"""``dsid`` help: every option with a default shows it, once."""

from __future__ import annotations

import argparse

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


def test_version_answers_without_importing_the_commands():
    import subprocess
    import sys

    code = (
        "import sys; from dsid.cli import main\ntry: main(['--version'])\nexcept SystemExit: pass\n"
        "print('torch' in sys.modules, 'pytorch_lightning' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1000:]
    version, imported = done.stdout.splitlines()
    assert version.startswith("dsid ") and imported == "False False"
