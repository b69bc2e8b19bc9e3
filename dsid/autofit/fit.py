"""``dsid fit DATA``: a model of a DSID tensor file without tuning anything.

The data are described (:mod:`dsid.autofit.describe`), the rules choose the model and its training
(:mod:`dsid.autofit.rules`), a few timed steps say how many optimizer steps the budget holds (the
schedules follow from that), the model trains with ``dsid train``'s machinery (selection on the
KL-free ``val/select``) in one or several starts (:mod:`dsid.autofit.starts`), and the report
compares the kept start with the smoothing baseline on the same split. Settings given as overrides
always win over the rules; ``--resume`` continues a fit whose process died
(:mod:`dsid.autofit.fit_state`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from dsid.autofit.all_neurons import train_all_neurons
from dsid.autofit.area_report import area_results
from dsid.autofit.budget import parse_budget
from dsid.autofit.describe import describe_data
from dsid.autofit.fit_config import budget_limits, kept_choices, setting_key, start_overrides
from dsid.autofit.fit_run import StartTrainer
from dsid.autofit.fit_state import REPORT_FILE, STATE_FILE, finished_starts, load_state, save_state
from dsid.autofit.information import mean_rate_nll
from dsid.autofit.probe import seconds_per_step, steps_in
from dsid.autofit.report import beats_baseline, diagnostics, report_lines, still_improving
from dsid.autofit.report_wandb import log_report
from dsid.autofit.rules import choose
from dsid.autofit.start_dirs import keep_start, prepare_fit_dir
from dsid.autofit.starts import run_starts
from dsid.data.atomic import write_json
from dsid.data.tensor_file import load_tensor_file
from dsid.data.validation import check_counts
from dsid.evaluation.multiarea.summary import communication
from dsid.evaluation.smoothing_baseline import smoothing_baseline
from dsid.runs.assemble import check_settings
from dsid.runs.config import compose, to_plain
from dsid.runs.load import load_run
from dsid.runs.quiet import lightning_info_silenced
from dsid.runs.status import remove_temporaries

#: the trainer settings of ``fit(verbose=False)`` (the user's own settings win)
SILENT = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def _fittable(path: Path, loaded, desc) -> None:
    """Refuse what ``dsid fit`` cannot fit, before anything is written: counts in every split."""
    if not desc.integer_counts:
        raise ValueError(
            f"{path}: field 'train/spikes': dsid fit models spike counts; for other "
            "observations (calcium, ...) use dsid train with observation=..."
        )
    for name, split in loaded.splits.items():
        for field, arr in (("spikes", split.spikes), ("forward_spikes", split.forward_spikes)):
            if arr is not None:
                check_counts(path, f"{name}/{field}", arr, arr.shape[-1])
    if desc.n_heldout == 0:
        raise ValueError(
            f"{path}: field 'neurons/heldout': dsid fit needs held-out neurons to score the "
            "model against the smoothing baseline (co-smoothing); mark some neurons held out"
        )


def _seed_setting(user: List[str], seed: int) -> int:
    """A ``seed=N`` setting is the first start's seed (each start has its own): taken out of
    ``user``; ``seed`` otherwise."""
    for o in [o for o in user if setting_key(o) == "seed"]:
        value = o.split("=", 1)[1]
        if not value.lstrip("-").isdigit():
            raise ValueError(f"{o}: the seed must be a whole number")
        seed = int(value)
        user.remove(o)
    return seed


def _describe_line(path: Path, desc) -> str:
    return (
        f"data: {path.name}: {desc.n_train} training / {desc.n_valid} validation trials of "
        f"{desc.n_time} bins ({desc.bin_ms:g} ms), {desc.n_heldin} held-in + {desc.n_heldout} "
        f"held-out neurons in {desc.n_areas} area(s), {desc.mean_rate_hz:.1f} spikes/s"
        + (
            f", {desc.ext_input_size} external input channels (fed to the generator)"
            if desc.ext_input_size
            else ""
        )
    )


def fit(
    data=None,
    *,
    budget="15m",
    out: Optional[str] = None,
    overrides: Sequence[str] = (),
    seed: int = 0,
    verbose: bool = True,
    resume: Optional[str] = None,
    all_neurons: bool = False,
) -> Dict[str, Any]:
    """Fit a model to the DSID tensor file ``data`` within ``budget`` (``"15m"``, ``"90s"``,
    ``"2000steps"``); returns the report (also written to ``RUN_DIR/fit_report.json``).

    ``overrides`` are ``dsid train`` settings (``key=value``) that win over the rules; ``out`` is
    the run directory (default ``runs/fit/<time>_<file name>``). ``resume=RUN_DIR`` continues a
    fit whose process died, with its own data, budget and settings (the others are not given).
    ``verbose=False`` prints nothing but warnings and errors: no settings, progress, model summary
    or report. ``all_neurons=True`` then trains one more model that reads every neuron, the held-out
    ones included (:mod:`dsid.autofit.all_neurons`; about as long as the kept start took, beyond
    the budget), reported under ``all_neurons``."""
    kw = dict(
        budget=budget,
        out=out,
        overrides=overrides,
        seed=seed,
        resume=resume,
        all_neurons=all_neurons,
    )
    if verbose:
        return _fit(data, say=print, quiet=[], **kw)
    with lightning_info_silenced():
        return _fit(data, say=lambda *a, **k: None, quiet=SILENT, **kw)


def _fit(
    data, *, budget, out, overrides, seed, resume, all_neurons, say, quiet: List[str]
) -> Dict[str, Any]:
    """:func:`fit`'s work; ``say`` prints, ``quiet`` are the settings of a silent fit."""
    state = load_state(Path(resume)) if resume is not None else None
    if state is not None:
        if data is not None or tuple(overrides):
            raise ValueError(
                f"--resume {resume}: the fit continues with its own data and settings; give "
                "no data file or settings"
            )
        data, budget, overrides, seed, out = (
            state["data"],
            state["budget"],
            state["overrides"],
            state["seed"],
            resume,
        )
        all_neurons = bool(state.get("all_neurons")) or all_neurons
    if data is None:
        raise ValueError("dsid fit: a DSID tensor file (DATA), or --resume RUN_DIR")
    path = Path(data).resolve()
    loaded = load_tensor_file(path, require_splits=("train", "valid"), counts=False)
    desc = describe_data(loaded)
    _fittable(path, loaded, desc)
    plan = parse_budget(budget)
    user = list(overrides)
    seed = _seed_setting(user, seed)
    choices = choose(desc)
    kind = next((c.value for c in choices if c.key == "model.name"), "sae")
    kind = next((o.split("=", 1)[1] for o in user if setting_key(o) == "model.name"), kind)
    say(_describe_line(path, desc))
    if plan.steps is not None:
        steps = plan.steps
    elif state is not None:
        steps = int(state["schedule_steps"])
    else:
        probe_cfg = compose(
            start_overrides(path, kept_choices(choices, user, kind), user, seed, [])
        )
        step_s = seconds_per_step(probe_cfg)
        steps = steps_in(plan.seconds, step_s)
        say(f"budget: {plan}; a training step takes {step_s:.3f} s here: about {steps} steps")
    choices = kept_choices(choose(desc, steps), user, kind)
    say("settings (the rules' choices; yours win):")
    for c in choices:
        say(f"  {c.override():<40} {c.reason}")
    for o in user:
        say(f"  {o:<40} set by you")

    def config(start_seed: int, start_limit: List[str]) -> Dict[str, Any]:
        return to_plain(
            compose(start_overrides(path, choices, [*quiet, *user], start_seed, start_limit))
        )

    first = config(seed, budget_limits(plan))
    run_dir = Path(
        out or first.get("run_dir") or f"runs/fit/{time.strftime('%Y-%m-%d_%H-%M-%S')}_{path.stem}"
    )
    check_settings(first)  # bad settings refused before the run directory is touched
    if state is not None:
        remove_temporaries(run_dir)  # what the killed fit was writing (its state, its report)
    else:
        prepare_fit_dir(run_dir, overwrite=bool(first.get("overwrite")))
        run_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "data": str(path),
            "budget": str(budget),
            "overrides": list(overrides),
            "seed": seed,
            "all_neurons": bool(all_neurons),
            "schedule_steps": steps,
            "used": 0.0,
            "starts": [],
        }
        save_state(run_dir, state)
    say("smoothing baseline on the same split ...")
    base = smoothing_baseline(loaded, "valid")
    heldin = {s: loaded.splits[s].spikes[..., loaded.heldin] for s in ("train", "valid")}
    zero = mean_rate_nll(heldin["train"], heldin["valid"])
    runner = StartTrainer(run_dir, plan, config, budget_limits, state)
    starts, kept, verdict = run_starts(
        runner.train_start,
        seed,
        plan.steps if plan.steps is not None else plan.seconds,
        zero,
        lambda s: beats_baseline(s.co_bps, base["co_bps"]),
        runner.clock,
        say,
        done=finished_starts(state),
    )
    if Path(kept.run_dir).exists():  # (absent when a resumed fit had moved it all already)
        keep_start(run_dir, Path(kept.run_dir))
    # steps planned for a wall-clock budget the fit used up (not one it ended early)
    spent = plan.seconds is not None and runner.seconds_so_far() >= 0.9 * plan.seconds
    result = fit_result(
        path,
        run_dir,
        plan,
        desc,
        choices,
        user,
        starts,
        kept,
        verdict,
        base,
        zero,
        steps if spent else None,
    )
    result.update(train_seconds=round(runner.seconds_so_far(), 1))
    if loaded.n_areas > 1:
        result["areas"] = area_results(loaded, result["metrics"], base["rates"])
        result["communication"] = communication(load_run(run_dir).model, loaded)
    write_json(run_dir / REPORT_FILE, result)
    (run_dir / STATE_FILE).unlink()
    if all_neurons:

        def config_on(file: Path, limits: List[str]) -> Dict[str, Any]:
            return to_plain(
                compose(start_overrides(file, choices, [*quiet, *user], kept.seed, limits))
            )

        result["all_neurons"] = train_all_neurons(path, run_dir, kept.steps, config_on, say)
        write_json(run_dir / REPORT_FILE, result)
    log_report(result, first, run_dir)
    for line in report_lines(result):
        say(line)
    return result


def fit_result(
    path, run_dir, plan, desc, choices, user, starts, kept, verdict, base, mean_rate_select, planned
) -> dict:
    """The report's content (see :func:`fit`) but the training time and per-area parts. A verdict
    of convergence stands only when the kept start had stopped improving; ``planned``: the steps
    a used-up wall-clock budget was planned for (if it bought far fewer, the report says so)."""
    metrics = kept.extra["metrics"]
    trace = kept.extra["trace"]
    result = {
        "data": str(path),
        "run_dir": str(run_dir),
        "budget": str(plan),
        "description": desc.as_dict(),
        "settings": [{"key": c.key, "value": c.value, "reason": c.reason} for c in choices]
        + [
            {"key": setting_key(o), "value": o.split("=", 1)[-1], "reason": "set by you"}
            for o in user
        ],
        "steps": sum(s.steps for s in starts),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        "baseline": {k: base[k] for k in ("co_bps", "kern_sd_ms", "alpha")},
        "starts": [
            {
                **{k: v for k, v in s.as_dict().items() if k != "extra"},
                "kept": s is kept,
                "run_dir": str(run_dir) if s is kept else s.run_dir,
            }
            for s in starts
        ],
        "converged": verdict.converged and not still_improving(trace, mean_rate_select),
        "ending": verdict.reason,
        "mean_rate_select": mean_rate_select,
    }
    taken = None if planned is None else (result["steps"], planned)
    result["diagnostics"] = diagnostics(
        result["metrics"], base["co_bps"], trace, verdict, mean_rate_select, taken
    )
    return result
