"""The fitting rules, budgets and step-counted schedules (fast unit tests)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dsid.autofit.budget import parse_budget
from dsid.autofit.describe import DataDescription
from dsid.autofit.rules import (
    batch_size,
    choose,
    dropout,
    factor_size,
    generator_size,
    kl_scale,
    l2_scale,
    schedule,
)
from dsid.autofit.starts import Verdict

BASE = DataDescription(
    n_train=800,
    n_valid=200,
    n_time=100,
    n_forward=0,
    bin_ms=10.0,
    n_heldin=40,
    n_heldout=10,
    n_areas=1,
    mean_rate_hz=10.0,
    ext_input_size=0,
    integer_counts=True,
    has_truth=False,
    info_nats=150.0,
)


def desc(**kw) -> DataDescription:
    return dataclasses.replace(BASE, **kw)


def as_dict(choices):
    return {c.key: c.value for c in choices}


def test_regularisation_grows_as_data_shrink():
    sizes = [60, 75, 250, 1000, 2000, 10000]
    drops = [dropout(desc(n_train=n))[0] for n in sizes]
    l2s = [l2_scale(desc(n_train=n))[0] for n in sizes]
    assert drops == sorted(drops, reverse=True) and drops[-1] >= 0.05
    assert (
        l2s == sorted(l2s, reverse=True)
        and l2s[0] == pytest.approx(0.01)
        and l2s[-1] == pytest.approx(0.001)
    )
    assert dropout(desc(n_train=1000))[0] > dropout(desc(n_train=10000))[0] + 0.05
    # never more than 0.2, however few the trials (more drowns what the inferred inputs must track)
    assert drops[0] == drops[1] == pytest.approx(0.2) and drops[2] == pytest.approx(0.2)
    assert dropout(desc(n_train=1000))[0] == pytest.approx(0.05 + 0.25 * 0.1**0.5, abs=1e-3)


def test_batch_size_gives_several_steps_per_epoch_within_bounds():
    for n, want in (
        (20, 16),
        (75, 16),
        (250, 16),
        (800, 64),
        (1000, 64),
        (2000, 128),
        (50000, 128),
    ):
        assert batch_size(desc(n_train=n))[0] == want, n
    assert {batch_size(desc(n_train=n))[0] for n in range(10, 5000, 37)} <= {16, 32, 64, 128}


def test_model_sizes_follow_the_recorded_time_not_the_neurons():
    assert generator_size(desc(n_train=75, n_heldin=137))[0] == 64  # small data: small model
    assert generator_size(desc(n_train=1000, n_heldin=137))[0] == 128
    assert (
        generator_size(desc(n_train=1000, n_heldin=40))[0] == 128
    )  # few neurons, the same dynamics
    sizes = [
        generator_size(desc(n_train=n))[0] for n in (199, 200, 250, 350, 499, 500, 5000)
    ]  # 1 s trials
    assert sizes == [64, 64, 80, 96, 128, 128, 128] and all(s % 16 == 0 for s in sizes)
    # 250 trials of 0.7 s (175 s) are less data than 250 trials of 1 s; the bin width does not count
    assert generator_size(desc(n_train=250, n_time=35, bin_ms=20.0))[0] == 64
    assert generator_size(desc(n_train=250, n_time=140, bin_ms=5.0))[0] == 64
    assert generator_size(desc(n_train=250, n_time=240, bin_ms=5.0))[0] == 80  # 300 s
    assert factor_size(desc(n_heldin=8))[0] == 10 and factor_size(desc(n_heldin=40))[0] == 20
    assert factor_size(desc(n_heldin=300))[0] == 40


def test_one_or_several_areas_choose_the_model_kind_and_its_keys():
    one = as_dict(choose(desc()))
    assert one["model.name"] == "sae" and "model.generator.hidden_size" in one
    several = as_dict(choose(desc(n_areas=4, n_heldin=160)))
    assert several["model.name"] == "multiarea" and several["+coupling@model.coupling"] == "delay"
    assert {"model.generator.hidden_size", "model.factor_size"} <= set(several)  # per area


def test_schedules_in_steps_are_the_same_for_any_data_size():
    small, large = desc(n_train=75), desc(n_train=2000, n_valid=500)
    keys = (
        "train.kl_ramp_steps",
        "train.l2_ramp_steps",
        "train.lr_patience_steps",
        "early_stopping.patience_steps",
        "train.metrics_every_n_steps",
    )
    a, b = as_dict(choose(small, 3000)), as_dict(choose(large, 3000))
    assert [a[k] for k in keys] == [b[k] for k in keys]
    assert a["train.kl_ramp_steps"] == 250 and a["early_stopping.patience_steps"] == 750
    short = dict((k, v) for k, v, _ in schedule(200))
    assert short["train.kl_ramp_steps"] == 50 and short["early_stopping.patience_steps"] == 200
    assert dict((k, v) for k, v, _ in schedule(1)).get("train.kl_ramp_steps") == 20


def test_every_choice_has_a_reason_and_renders_as_an_override():
    for c in choose(desc(n_train=75, ext_input_size=2), 1000):
        assert c.reason and c.override().startswith(c.key + "=")
    assert [c.override() for c in choose(desc()) if c.key == "train.lr"] == ["train.lr=0.005"]


@pytest.mark.parametrize(
    "text,seconds,steps",
    [
        ("15m", 900.0, None),
        ("90s", 90.0, None),
        ("1.5h", 5400.0, None),
        ("10", 600.0, None),
        ("2000steps", None, 2000),
        ("1 step", None, 1),
    ],
)
def test_budget_formats(text, seconds, steps):
    b = parse_budget(text)
    assert (b.seconds, b.steps) == (seconds, steps)


def test_budget_reads_in_plain_words():
    assert [str(parse_budget(t)) for t in ("1m", "90s", "15m", "45s", "300steps")] == [
        "1 minute",
        "1.5 minutes",
        "15 minutes",
        "45 s",
        "300 optimizer steps",
    ]


def test_budget_trainer_limit():
    assert parse_budget("90m").trainer_limit() == "00:01:30:00"
    assert parse_budget("2h").trainer_limit() == "00:02:00:00"


@pytest.mark.parametrize("bad", ["15 minutes", "fast", "-3m", "0s", "2.5steps", ""])
def test_bad_budgets_say_what_is_expected(bad):
    with pytest.raises(ValueError, match="--budget"):
        parse_budget(bad)


def test_validation_interval_follows_epoch_length_and_budget():
    from dsid.autofit.rules import validation_interval

    assert validation_interval(desc(n_train=800), 64, 5000)[0] == 2  # 13 steps per epoch
    assert validation_interval(desc(n_train=75), 16, 5000)[0] == 5  # 5 steps per epoch
    assert validation_interval(desc(n_train=75), 16, 40)[0] == 2  # at least 4 validations
    assert validation_interval(desc(n_train=75), 16, 5)[0] == 1
    assert validation_interval(desc(n_train=5000), 128, 5000)[0] == 1


def test_diagnostics_in_plain_words():
    from dsid.autofit.report import diagnostics

    improving = [(100, 3.0), (200, 2.5), (300, 2.0)]
    flat = [(100, 3.0), (200, 2.0), (300, 2.2), (1000, 2.4)]
    notes = diagnostics({"val/co_bps": 0.1, "train/co_bps": 0.12}, 0.2, improving)
    assert any(n.startswith("below the smoothing baseline") for n in notes)
    assert any(n.startswith("still improving") for n in notes)
    assert "give it more time (--budget)" in notes[0]
    assert diagnostics({"val/co_bps": 0.3, "train/co_bps": 0.31}, 0.2, flat) == ["no problem found"]
    over = diagnostics({"val/co_bps": 0.25, "train/co_bps": 0.45}, 0.2, flat)
    assert len(over) == 1 and over[0].startswith("overfitting")
    # how the fit ended closes the list; convergence only when starts agreed
    v = Verdict(True, False, "the budget ran out; one start: its convergence is not checked")
    done = diagnostics({"val/co_bps": 0.3, "train/co_bps": 0.31}, 0.2, flat, v)
    assert done == ["no problem found", v.reason]
    assert not any("converged" in n or "will not improve" in n for n in done)


def test_a_fit_below_the_baseline_is_told_what_to_try_by_how_it_ended():
    from dsid.autofit.report import diagnostics

    plateau = [(240, 2.0), (600, 2.05), (1470, 2.06)]  # best early, then flat: a plateau
    ran_out = Verdict(
        True, False, "the budget ran out; 3 starts, none above the smoothing baseline"
    )
    notes = diagnostics({"val/co_bps": 0.102}, 0.167, plateau, ran_out)
    assert notes[0].startswith("below the smoothing baseline (co-bps 0.1020 < 0.1670)")
    assert "so that more starts can be tried" in notes[0]
    assert notes[-1] == ran_out.reason and not any("converged" in n for n in notes)
    # at the baseline, or with no finite co-bps: the same test as the report's warning
    flat = [(100, 3.0), (200, 2.0), (1000, 2.4)]
    at = diagnostics({"val/co_bps": 0.15}, 0.15, flat)
    assert at[0].startswith("below the smoothing baseline (co-bps 0.1500 vs 0.1500)")
    assert diagnostics({"val/co_bps": float("nan")}, 0.15, flat)[0].startswith(
        "below the smoothing"
    )


def test_the_report_warns_at_the_top_when_the_model_does_not_beat_smoothing():
    from dsid.autofit.report import report_lines

    def lines(co):
        result = {
            "data": "x.h5",
            "metrics": {"val/co_bps": co},
            "baseline": {"co_bps": 0.15, "kern_sd_ms": 50, "alpha": 0.1},
            "steps": 10,
            "train_seconds": 1.0,
            "diagnostics": ["no problem found"],
            "run_dir": "r",
        }
        return report_lines(result)

    below, equal, above = lines(0.10), lines(0.15), lines(0.20)
    assert below[3].startswith("  WARNING: this model is NOT better than smoothed spikes")
    assert equal[3].startswith("  WARNING") and "NOT above the smoothing baseline" in equal[4]
    assert not any("WARNING" in line for line in above)
    assert "above the smoothing baseline" in above[3]


def test_a_model_above_a_negative_baseline_is_still_no_better_than_the_mean_rates():
    from dsid.autofit.report import beats_baseline, diagnostics, report_lines

    # pure noise: the baseline falls below 0 and the model a little above it, still below 0
    assert not beats_baseline(-0.010, -0.030) and beats_baseline(0.01, -0.03)
    notes = diagnostics({"val/co_bps": -0.010}, -0.030, [(100, 2.0), (1000, 2.1)])
    assert notes[0].startswith("no better than the mean rates (co-bps -0.0100 <= 0")
    assert "no problem found" not in notes
    result = {
        "data": "noise.h5",
        "metrics": {"val/co_bps": -0.010},
        "baseline": {"co_bps": -0.030, "kern_sd_ms": 50, "alpha": 0.1},
        "steps": 10,
        "train_seconds": 1.0,
        "diagnostics": notes,
        "run_dir": "r",
    }
    lines = report_lines(result)
    assert lines[3].startswith("  WARNING") and "NOT above" in lines[4]


def test_a_used_up_budget_that_bought_few_steps_is_said():
    from dsid.autofit.report import diagnostics

    flat = [(100, 3.0), (200, 2.0), (1000, 2.4)]
    metrics = {"val/co_bps": 0.3, "train/co_bps": 0.31}
    few = diagnostics(metrics, 0.2, flat, steps=(31, 400))
    assert few == [
        "only 31 optimizer steps of the ~400 planned: the machine was busier or slower than when "
        "a step was timed; give it more time (--budget) or fewer other jobs"
    ]
    assert diagnostics(metrics, 0.2, flat, steps=(300, 400)) == ["no problem found"]
    assert diagnostics(metrics, 0.2, flat) == ["no problem found"]


def test_a_users_experiment_replaces_the_rules_experiment():
    from pathlib import Path

    from dsid.autofit.fit_config import kept_choices, start_overrides
    from dsid.autofit.rules import choose

    choices = choose(desc(n_areas=3, n_heldin=90))
    ours = start_overrides(Path("/d/x.h5"), kept_choices(choices, [], "multiarea"), [], 0, [])
    assert not any(o.startswith("experiment=") for o in ours)  # the rules' own complete config
    assert "model.name=multiarea" in ours and "+coupling@model.coupling=delay" in ours
    user = ["experiment=multiarea_gated", "data.batch_size=8"]
    theirs = start_overrides(Path("/d/x.h5"), kept_choices(choices, user, "multiarea"), user, 0, [])
    assert [o for o in theirs if o.startswith("experiment=")] == ["experiment=multiarea_gated"]
    assert [o for o in theirs if o.startswith("data.batch_size")] == ["data.batch_size=8"]
    assert not any(o.startswith("model.name=") for o in theirs)
    assert not any("coupling" in o for o in theirs)  # the experiment's coupling, not the rules'


@pytest.mark.parametrize(
    "budget,max_steps,max_time", [("3000steps", 3000, None), ("15m", None, "00:00:15:00")]
)
def test_a_budget_replaces_the_experiments_own_limits(budget, max_steps, max_time):
    """The multi-area experiment has its own 4-minute limit: a step budget must not inherit it."""
    from pathlib import Path

    from dsid.autofit.fit_config import budget_limits, start_overrides
    from dsid.runs.config import compose

    limits = budget_limits(parse_budget(budget))
    user = ["experiment=multiarea_delay"]
    cfg = compose(start_overrides(Path("/d/x.h5"), [], user, 0, limits))
    assert cfg.trainer.get("max_steps") == max_steps and cfg.trainer.max_time == max_time
    assert cfg.trainer.max_epochs == -1


def test_kl_weight_follows_the_information_per_trial():
    infos = [0.0, 1.0, 10.0, 50.0, 99.0, 100.0, 400.0]
    scales = [kl_scale(desc(info_nats=i))[0] for i in infos]
    assert scales == sorted(scales) and scales[0] == pytest.approx(0.01) and scales[-1] == 1.0
    assert kl_scale(desc(info_nats=10.0))[0] == pytest.approx(0.1)
    assert (
        kl_scale(desc(info_nats=100.0))[0] == 1.0
        and "collapse" not in kl_scale(desc(info_nats=100.0))[1]
    )
    assert "collapse" in kl_scale(desc(info_nats=20.0))[1]
    chosen = as_dict(choose(desc(info_nats=30.0)))
    assert chosen["train.kl_scales.ic"] == chosen["train.kl_scales.co"] == pytest.approx(0.3)
    # the weight does not depend on the data set's size, only on what a trial holds
    assert {kl_scale(desc(info_nats=30.0, n_train=n))[0] for n in (75, 1000, 5000)} == {0.3}


def test_a_flat_curve_whose_best_is_last_is_not_called_still_improving():
    from dsid.autofit.report import diagnostics, still_improving

    # mean rates score 2.0; the start learnt 0.5 below it, and its last quarter gained 0.002 (0.4%)
    flat = [(1000, 1.600), (2000, 1.510), (3000, 1.503), (3800, 1.502), (4000, 1.500)]
    rising = [(1000, 1.600), (2000, 1.560), (3000, 1.540), (3800, 1.510), (4000, 1.500)]
    assert still_improving(flat)  # without the mean rates' score: the best is in the last 10%
    assert not still_improving(flat, 2.0)
    assert still_improving(rising, 2.0)  # 0.04 in the last quarter: 8% of what it learnt
    assert not still_improving([(1000, 1.5), (4000, 1.6)], 2.0)  # best early
    assert not still_improving([], 2.0)
    v = Verdict(True, True, "converged: ... a longer budget is unlikely to improve this model")
    metrics = {"val/co_bps": 0.3, "train/co_bps": 0.31}
    assert diagnostics(metrics, 0.2, flat, v, 2.0) == ["no problem found", v.reason]
    # starts agreed, but the kept one was still gaining: no claim that more time will not help
    notes = diagnostics(metrics, 0.2, rising, v, 2.0)
    assert notes[0].startswith("still improving") and "may improve" in notes[-1]
    assert not any("unlikely to improve" in n for n in notes)


def test_the_report_shows_paths_under_the_working_directory_relative(tmp_path, monkeypatch):
    from dsid.autofit.report import shown_path

    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "runs" / "fit") == str(Path("runs") / "fit")
    assert shown_path("/elsewhere/data.h5") == "/elsewhere/data.h5"
