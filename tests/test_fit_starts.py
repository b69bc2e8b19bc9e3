"""Several starts inside one budget (``dsid.autofit.starts``): on a toy objective with a known
plateau, and the verdict's wording for scripted outcomes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsid.autofit.starts import AGREE, StartResult, agreeing_pair, run_starts, verdict

NOTHING = 4.0  # the toy objective where nothing is learnt (the mean rates' score)
BASELINE = 1.0  # a start is "above the baseline" below this objective


def toy_objective(x: float) -> float:
    """4 at a plateau (x << 0: no gradient), 0 at the optimum x = 2."""
    return NOTHING * (1.0 - math.exp(-0.5 * (x - 2.0) ** 2))


def toy_gradient(x: float) -> float:
    return NOTHING * (x - 2.0) * math.exp(-0.5 * (x - 2.0) ** 2)


def toy_trainer(initial_points, patience: int = 30, every: int = 5):
    """``train_start`` of gradient descent from ``initial_points[seed]``, validated every
    ``every`` steps and stopped early after ``patience`` steps without improvement of 1e-4; the
    clock counts steps."""
    used = [0]

    def train_start(seed: int, remaining: float) -> StartResult:
        x, best, best_step, step = initial_points[seed], math.inf, 0, 0
        while step < int(remaining):
            x -= 0.2 * toy_gradient(x)
            step += 1
            if step % every == 0:
                value = toy_objective(x)
                if value < best - 1e-4:
                    best, best_step = value, step
                elif step - best_step >= patience:
                    break
        used[0] += step
        return StartResult(
            seed=seed,
            select=best,
            best_at=best_step,
            seconds=step,
            steps=step,
            co_bps=NOTHING - best,
        )

    return train_start, (lambda: used[0])


def beats(start: StartResult) -> bool:
    return start.co_bps is not None and start.co_bps > NOTHING - BASELINE


def test_a_start_on_the_plateau_is_followed_by_others_until_two_agree_above_the_baseline():
    points = {0: -8.0, 1: 0.5, 2: 3.5, 3: -9.0}  # seed 0 starts on the plateau
    train_start, clock = toy_trainer(points)
    starts, kept, v = run_starts(train_start, 0, 2000, NOTHING, beats, clock)
    assert [s.seed for s in starts] == [0, 1, 2]
    assert toy_objective(points[0]) > NOTHING - 1e-3 and starts[0].select > 3.99  # stuck
    assert kept.seed in (1, 2) and kept.select < 1e-3 and v.stop and v.converged
    assert "seeds 1 and 2" in v.reason and "converged" in v.reason
    assert clock() < 2000  # the budget the check did not need is not spent


def test_starts_that_all_sit_on_the_plateau_spend_the_whole_budget():
    train_start, clock = toy_trainer({s: -8.0 - s for s in range(20)})
    starts, kept, v = run_starts(train_start, 0, 400, NOTHING, beats, clock)
    # they agree with each other, but below the baseline agreement does not end the fit
    assert agreeing_pair(starts, NOTHING) is not None and not beats(kept)
    assert v.stop and not v.converged and "budget ran out" in v.reason
    assert len(starts) > 8 and 400 - clock() < 0.5 * min(s.best_at for s in starts)


def test_a_start_that_uses_the_whole_budget_ends_the_fit_unchecked():
    train_start, clock = toy_trainer({0: -1.0}, patience=10_000)
    starts, kept, v = run_starts(train_start, 0, 300, NOTHING, beats, clock)
    assert len(starts) == 1 and clock() == 300 and not v.converged
    assert "one start: its convergence is not checked" in v.reason


def _start(seed, select, co=0.3, best_at=100.0):
    return StartResult(seed=seed, select=select, best_at=best_at, seconds=10, co_bps=co)


def test_agreement_is_measured_against_what_the_model_learnt_beyond_the_mean_rates():
    gain = 0.02  # mean rates score 0.30, the best start 0.28
    best = _start(0, 0.28)
    near = _start(1, 0.28 + 0.9 * AGREE * gain)
    far = _start(2, 0.28 + 1.5 * AGREE * gain)
    assert agreeing_pair([best, far], 0.30) is None
    pair = agreeing_pair([far, best, near], 0.30)
    assert pair is not None and pair[0] is best and pair[1] is near
    assert agreeing_pair([_start(0, float("nan")), _start(1, float("nan"))], 0.3) is None


def test_verdicts_in_words_for_scripted_outcomes():
    def above(s):
        return s.co_bps > 0.2

    # one start with budget left: another start
    assert not verdict([_start(0, 0.28)], 500.0, 0.30, above).stop
    # two agreeing starts above the baseline: converged, checked
    v = verdict([_start(0, 0.28), _start(1, 0.2801)], 500.0, 0.30, above)
    assert v.stop and v.converged and "seeds 0 and 1" in v.reason
    # agreeing but below the baseline: not a reason to stop while budget remains
    low = [_start(0, 0.28, co=0.1), _start(1, 0.2801, co=0.1)]
    assert not verdict(low, 500.0, 0.30, above).stop
    v = verdict(low, 10.0, 0.30, above)
    assert v.stop and not v.converged and "none above the smoothing baseline" in v.reason
    # different optima when the budget ends
    v = verdict([_start(0, 0.28), _start(1, 0.29)], 10.0, 0.30, above)
    assert v.stop and "different optima" in v.reason and "longer budget" in v.reason
    # another start needs at least half the time the quickest start took to reach its best
    assert not verdict([_start(0, 0.28, best_at=100.0)], 51.0, 0.30, above).stop
    assert verdict([_start(0, 0.28, best_at=100.0)], 49.0, 0.30, above).stop


def test_the_kept_start_is_the_best_validation_objective_never_the_best_held_out_score():
    train_start, clock = toy_trainer({0: 0.5, 1: 3.5, 2: 1.0})
    starts, kept, _ = run_starts(train_start, 0, 5000, NOTHING, beats, clock)
    assert kept.select == min(s.select for s in starts)
    assert np.isfinite(kept.select)


def test_start_directories_are_checked_kept_and_cleared(tmp_path):
    import pytest

    from dsid.autofit.start_dirs import keep_start, prepare_fit_dir, start_dir
    from dsid.runs.status import RunDirError

    out = tmp_path / "fit"
    for seed in (0, 1):
        start_dir(out, seed).mkdir(parents=True)
        (start_dir(out, seed) / "metrics.json").write_text(f"{seed}")
    keep_start(out, start_dir(out, 1))
    assert (out / "metrics.json").read_text() == "1" and not start_dir(out, 1).exists()
    assert (start_dir(out, 0) / "metrics.json").read_text() == "0"
    with pytest.raises(RunDirError, match="already holds a run"):
        prepare_fit_dir(out)  # a finished fit is never replaced silently
    (out / "metrics.json").unlink()
    with pytest.raises(RunDirError, match="starts of an earlier fit"):
        prepare_fit_dir(out)
    prepare_fit_dir(out, overwrite=True)
    assert not (out / "starts").exists()
    # the only start kept: no empty starts/ folder left behind
    start_dir(out, 3).mkdir(parents=True)
    (start_dir(out, 3) / "metrics.json").write_text("3")
    keep_start(out, start_dir(out, 3))
    assert (out / "metrics.json").exists() and not (out / "starts").exists()


def test_later_starts_keep_the_time_a_start_takes_beyond_training_out_of_their_limit(
    tmp_path, monkeypatch
):
    import time as clock

    import dsid.autofit.fit_run as fit_run
    from dsid.autofit.budget import Budget

    limits = []

    def fake_train(cfg, run_dir, callbacks):
        trace = callbacks[0]
        limits.append(cfg["limit"])
        trace.trace = [(10, 1.0, 0.05)]  # 0.05 s of training recorded ...
        trace.steps = 10
        clock.sleep(0.4)  # ... in a start that takes longer (setup, inference, figures)
        return {"val/co_bps": 0.1}

    monkeypatch.setattr(fit_run, "train", fake_train)
    state = {"starts": [], "used": 0.0}
    runner = fit_run.StartTrainer(
        tmp_path, Budget(seconds=60.0), lambda seed, limit: {"limit": limit}, lambda b: b, state
    )
    runner.train_start(0, 60.0)
    runner.train_start(1, 50.0)
    assert limits[0].seconds == 60.0
    assert 0.3 < runner.overhead < 2.0 and limits[1].seconds == pytest.approx(
        50.0 - runner.overhead, abs=0.5
    )
    assert [s["seed"] for s in state["starts"]] == [0, 1]
