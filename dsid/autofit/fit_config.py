"""How ``dsid fit`` composes a start's config: the file, the rules' choices the user did not set,
the budget's trainer limits, then the user's settings, which win."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

from dsid.autofit.rules import Choice
from dsid.runs.config import hydra_quoted


def setting_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def start_overrides(
    path: Path,
    choices: Sequence[Choice],
    user: Sequence[str],
    seed: int,
    limit: List[str],
) -> List[str]:
    """The file, the rules' choices (a multi-area model's complete config among them: the model,
    its coupling group and every size), the budget's limits, then the user's overrides, which
    win. The path and the name made from it are quoted (spaces, accents, quotes in a path)."""
    base = [
        "data=file",
        f"data.path={hydra_quoted(path)}",
        "data.synth=null",
        f"seed={seed}",
        f"experiment_name={hydra_quoted('fit_' + path.stem)}",
    ]
    return base + [c.override() for c in choices] + limit + list(user)


def budget_limits(plan) -> List[str]:
    """The trainer overrides of a budget: a wall-clock limit, or a number of optimizer steps with no
    wall-clock limit (an experiment's own ``trainer.max_time`` must not cut a step budget short)."""
    if plan.steps is not None:
        return [
            f"+trainer.max_steps={plan.steps}",
            "trainer.max_epochs=-1",
            "trainer.max_time=null",
        ]
    return [f"trainer.max_time={plan.trainer_limit()}", "trainer.max_epochs=-1"]


def is_coupling(key: str) -> bool:
    return setting_key(key) == "coupling@model.coupling" or key.startswith("model.coupling.")


def kept_choices(choices: Sequence[Choice], user: Sequence[str], kind: str) -> List[Choice]:
    """The rules' choices the user did not set (``experiment=`` sets the model kind); the rules'
    coupling settings are left out too when the user picks the coupling (``experiment=`` or the
    coupling group) or another model kind."""
    given = {setting_key(o) for o in user}
    if "experiment" in given:
        given.add("model.name")
    theirs = kind != "multiarea" or bool(given & {"experiment", "coupling@model.coupling"})
    return [
        c
        for c in choices
        if setting_key(c.key) not in given and not (theirs and is_coupling(c.key))
    ]
