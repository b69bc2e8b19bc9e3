"""``dsid fit DATA``: a model of a DSID tensor file without tuning anything.

The data are described (:mod:`dsid.autofit.describe`), the rules choose the model and its training
(:mod:`dsid.autofit.rules`), a few timed steps say how many optimizer steps the budget holds (the
schedules follow from that), the model trains with ``dsid train``'s machinery (selection on the
KL-free ``val/select``), and the report compares it with the smoothing baseline on the same split.
Settings given as overrides always win over the rules.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from dsid.autofit.budget import parse_budget
from dsid.autofit.describe import describe_data
from dsid.autofit.probe import seconds_per_step, steps_in
from dsid.autofit.report import SelectTrace, diagnostics, report_lines
from dsid.autofit.rules import Choice, choose
from dsid.data.atomic import write_json
from dsid.data.tensor_file import load_tensor_file
from dsid.evaluation.smoothing_baseline import smoothing_baseline
from dsid.runs.config import compose, to_plain
from dsid.runs.train import train

REPORT_FILE = "fit_report.json"
MULTIAREA_EXPERIMENT = "multiarea_delay"


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _overrides(
    path: Path,
    kind: str,
    choices: Sequence[Choice],
    user: Sequence[str],
    seed: int,
    limit: List[str],
) -> List[str]:
    own_experiment = any(_key(o) == "experiment" for o in user)
    base = (
        [f"experiment={MULTIAREA_EXPERIMENT}"] if kind == "multiarea" and not own_experiment else []
    )
    base += [
        "data=file",
        f"data.path={path}",
        "data.synth=null",
        f"seed={seed}",
        f"experiment_name=fit_{path.stem}",
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


def _kept(choices: Sequence[Choice], user: Sequence[str]) -> List[Choice]:
    """The rules' choices the user did not set (``experiment=`` sets the model kind)."""
    given = {_key(o) for o in user}
    if "experiment" in given:
        given.add("model.name")
    return [c for c in choices if c.key not in given]


def fit(
    data,
    *,
    budget="15m",
    out: Optional[str] = None,
    overrides: Sequence[str] = (),
    seed: int = 0,
    verbose: bool = True,
) -> Dict[str, Any]:
    """Fit a model to the DSID tensor file ``data`` within ``budget`` (``"15m"``, ``"90s"``,
    ``"2000steps"``); returns the report (also written to ``RUN_DIR/fit_report.json``).

    ``overrides`` are ``dsid train`` settings (``key=value``) that win over the rules; ``out`` is
    the run directory (default ``runs/fit/<time>_<file name>``)."""
    say = print if verbose else (lambda *a, **k: None)
    path = Path(data).resolve()
    loaded = load_tensor_file(path, require_splits=("train", "valid"), counts=False)
    desc = describe_data(loaded)
    if not desc.integer_counts:
        raise ValueError(
            f"{path}: field 'train/spikes': dsid fit models spike counts; for other "
            "observations (calcium, ...) use dsid train with observation=..."
        )
    if desc.n_heldout == 0:
        raise ValueError(
            f"{path}: field 'neurons/heldout': dsid fit needs held-out neurons to score the "
            "model against the smoothing baseline (co-smoothing); mark some neurons held out"
        )
    plan = parse_budget(budget)
    user = list(overrides)
    choices = choose(desc)
    kind = next((c.value for c in choices if c.key == "model.name"), "sae")
    kind = next((o.split("=", 1)[1] for o in user if _key(o) == "model.name"), kind)
    say(
        f"data: {path.name}: {desc.n_train} training / {desc.n_valid} validation trials of "
        f"{desc.n_time} bins "
        f"({desc.bin_ms:g} ms), {desc.n_heldin} held-in + {desc.n_heldout} held-out neurons in "
        f"{desc.n_areas} "
        f"area(s), {desc.mean_rate_hz:.1f} spikes/s"
        + (
            f", {desc.ext_input_size} external input channels (fed to the generator)"
            if desc.ext_input_size
            else ""
        )
    )
    limit = budget_limits(plan)
    if plan.steps is not None:
        steps = plan.steps
    else:
        probe_cfg = compose(_overrides(path, kind, _kept(choices, user), user, seed, []))
        step_s = seconds_per_step(probe_cfg)
        steps = steps_in(plan.seconds, step_s)
        say(f"budget: {plan}; a training step takes {step_s:.3f} s here: about {steps} steps")
    choices = _kept(choose(desc, steps), user)
    say("settings (the rules' choices; yours win):")
    for c in choices:
        say(f"  {c.override():<40} {c.reason}")
    for o in user:
        say(f"  {o:<40} set by you")
    cfg = to_plain(compose(_overrides(path, kind, choices, user, seed, limit)))
    run_dir = Path(
        out or cfg.get("run_dir") or f"runs/fit/{time.strftime('%Y-%m-%d_%H-%M-%S')}_{path.stem}"
    )
    trace = SelectTrace()
    start = time.perf_counter()
    metrics = train(cfg, run_dir=str(run_dir), callbacks=[trace])
    seconds = time.perf_counter() - start
    say("smoothing baseline on the same split ...")
    base = smoothing_baseline(loaded, "valid")
    result = {
        "data": str(path),
        "run_dir": str(run_dir),
        "budget": str(plan),
        "description": desc.as_dict(),
        "settings": [{"key": c.key, "value": c.value, "reason": c.reason} for c in choices]
        + [{"key": _key(o), "value": o.split("=", 1)[-1], "reason": "set by you"} for o in user],
        "steps": trace.steps,
        "train_seconds": round(seconds, 1),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        "baseline": {k: base[k] for k in ("co_bps", "kern_sd_ms", "alpha")},
    }
    result["diagnostics"] = diagnostics(
        result["metrics"], base["co_bps"], trace.trace, seconds, plan.seconds
    )
    write_json(run_dir / REPORT_FILE, result)
    for line in report_lines(result):
        say(line)
    return result
