"""The multi-area fitting rules (dsid/autofit/multiarea_rules.py): monotone in the data, dependent
on the description only, composing a complete config that builds; single-area choices unchanged."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import pytest
import torch

from dsid.autofit.describe import DataDescription, describe_file
from dsid.autofit.fit_config import kept_choices, start_overrides
from dsid.autofit.multiarea_rules import (
    CI_SIZE,
    CO_SIZE,
    CONTROLLER_SIZE,
    ENCODER_SIZE,
    edge_sparsity,
    lag_scale,
    max_delay,
    warmup_steps,
)
from dsid.autofit.rules import choose, schedule
from dsid.runs.assemble import build_run
from dsid.runs.config import compose, to_plain
from tests.test_fit_rules import BASE

MULTI = dataclasses.replace(  # the single-area tests' description, in 3 areas of 32 held-in
    BASE,
    n_train=600,
    n_valid=150,
    n_heldin=96,
    n_heldout=24,
    n_areas=3,
    info_nats=65.6,
    area_heldin=(32, 32, 32),
)
AREAS = (2, 3, 5, 8)
TRIALS = (30, 60, 150, 300, 600, 1200, 5000)
INFOS = (0.0, 2.0, 20.0, 65.6, 200.0, 800.0)


def desc(**kw) -> DataDescription:
    if "n_areas" in kw and "area_heldin" not in kw:  # 32 held-in neurons per area unless said
        kw["area_heldin"] = (kw.get("n_heldin", 32 * kw["n_areas"]) // kw["n_areas"],) * kw[
            "n_areas"
        ]
        kw.setdefault("n_heldin", sum(kw["area_heldin"]))
    return dataclasses.replace(MULTI, **kw)


def as_dict(choices):
    return {c.key: c.value for c in choices}


def size(d, key, budget_steps=None):
    return as_dict(choose(d, budget_steps))[key]


def grid():
    """Descriptions of 2-8 areas, few to many trials, short to long trials, low to high rates."""
    for a, n, t, info, rate in itertools.product(
        AREAS, TRIALS, (30, 100, 300), (2.0, 65.6, 400.0), (1.0, 30.0)
    ):
        yield desc(n_areas=a, n_train=n, n_time=t, info_nats=info, mean_rate_hz=rate)


SIZES = (
    "model.generator.hidden_size",
    "model.ic_size",
    "model.factor_size",
    "model.encoder.hidden_size",
    "model.encoder.ci_size",
    "model.generator.controller_size",
    "model.co_size",
)


def test_more_data_never_gives_smaller_models_or_more_regularisation():
    for a, t, info in itertools.product(AREAS, (30, 100, 300), INFOS):
        rows = [
            as_dict(choose(desc(n_areas=a, n_train=n, n_time=t, info_nats=info))) for n in TRIALS
        ]
        for small, large in zip(rows, rows[1:]):
            assert all(large[k] >= small[k] for k in SIZES), (a, t, info)
            assert large["model.generator.dropout"] <= small["model.generator.dropout"]
            assert large["train.l2_scale"] <= small["train.l2_scale"]
        # longer trials are more recorded time too
        longer = [
            size(desc(n_areas=a, n_train=300, n_time=t), "model.generator.hidden_size")
            for t in (30, 100, 300)
        ]
        assert longer == sorted(longer)
    # more neurons per area: not fewer factors
    factors = [
        size(desc(n_areas=3, n_heldin=3 * n), "model.factor_size") for n in (4, 20, 40, 80, 200)
    ]
    assert factors == sorted(factors) and factors[0] == 10 and factors[-1] == 40


def test_every_area_has_the_single_area_models_sizes():
    """Each area's dynamics are learnt from the recorded time one area's would be: every area gets
    the single-area generator of that time and the single-area encoder and controller sizes."""
    for d in grid():
        c = as_dict(choose(d))
        one = as_dict(choose(dataclasses.replace(d, n_areas=1, area_heldin=())))
        h = c["model.generator.hidden_size"]
        assert h == one["model.generator.hidden_size"] and c["model.ic_size"] == h
        assert 10 <= c["model.factor_size"] <= 40
        expected = [ENCODER_SIZE, CI_SIZE, CONTROLLER_SIZE, CO_SIZE]  # the configs' defaults
        assert [c[k] for k in SIZES[3:]] == expected
    # 600 s of data: the large generator in each of 3 areas; 60 trials: the small one in each of 8
    demo = as_dict(choose(MULTI))
    assert [demo[k] for k in SIZES] == [128, 128, 16, 64, 32, 32, 4]
    eight = as_dict(choose(desc(n_areas=8, n_train=60)))
    assert [eight[k] for k in SIZES] == [64, 64, 16, 64, 32, 32, 4]


def test_the_shared_sizes_are_the_single_area_defaults():
    cfg = compose(["data.path=unused.h5"])
    assert (cfg.model.encoder.hidden_size, cfg.model.encoder.ci_size) == (ENCODER_SIZE, CI_SIZE)
    assert (cfg.model.generator.controller_size, cfg.model.co_size) == (CONTROLLER_SIZE, CO_SIZE)


def test_factors_follow_the_median_area():
    uneven = desc(n_areas=3, area_heldin=(8, 40, 200), n_heldin=248)
    assert size(uneven, "model.factor_size") == 20
    # a description without per-area counts splits the held-in neurons evenly
    assert size(dataclasses.replace(MULTI, area_heldin=()), "model.factor_size") == 16


def test_sparsity_is_in_proportion_to_the_information_per_trial_and_area():
    assert edge_sparsity(desc(info_nats=196.7))[0] == pytest.approx(10.0)  # the demo's data
    for a in AREAS:
        base = edge_sparsity(desc(n_areas=a, info_nats=50.0))[0]
        for k in (0.0, 0.5, 2.0, 8.0):
            assert edge_sparsity(desc(n_areas=a, info_nats=50.0 * k))[0] == pytest.approx(
                k * base, rel=1e-2, abs=1e-3
            )
        # the data set's size does not change what a unit of gain costs
        assert {edge_sparsity(desc(n_areas=a, info_nats=50.0, n_train=n))[0] for n in TRIALS} == {
            base
        }
    # twice the areas sharing the same information: half the weight per edge
    assert edge_sparsity(desc(n_areas=4, info_nats=80.0))[0] == pytest.approx(
        edge_sparsity(desc(n_areas=2, info_nats=40.0))[0], rel=1e-3
    )


def test_kl_weights_follow_the_single_area_rule():
    for info in INFOS:
        c = as_dict(choose(desc(info_nats=info)))
        single = as_dict(choose(dataclasses.replace(desc(info_nats=info), n_areas=1)))
        assert c["train.kl_scales.ic"] == c["train.kl_scales.co"] == single["train.kl_scales.ic"]
        assert c["++train.kl_scales.msg"] == pytest.approx(0.5 * c["train.kl_scales.co"], abs=1e-3)


def test_lag_window_follows_bin_width_and_trial_length():
    assert max_delay(desc(bin_ms=10.0, n_time=100))[0] == 10  # 100 ms
    assert max_delay(desc(bin_ms=5.0, n_time=400))[0] == 20
    assert max_delay(desc(bin_ms=5.0, n_time=100))[0] == 10  # a tenth of the trial
    assert max_delay(desc(bin_ms=20.0, n_time=50))[0] == 5
    assert max_delay(desc(bin_ms=50.0, n_time=8))[0] == 1  # at least one lag
    for d in grid():
        k = max_delay(d)[0]
        assert 1 <= k and (k == 1 or (k * d.bin_ms <= 100.0 and k <= d.n_time / 10))


def test_the_budget_sets_the_warm_up_and_the_delays_speed_up():
    steps = [10, 100, 500, 1000, 2000, 5000, 10000, 50000]
    warm = [
        warmup_steps(dict((k, v) for k, v, _ in schedule(s))["train.kl_ramp_steps"])[0]
        for s in steps
    ]
    assert warm == [size(MULTI, "train.kl_start_step", s) for s in steps]
    lags = [lag_scale(s)[0] for s in steps]
    assert warm == sorted(warm) and warm[-1] == 50 and warm[0] >= 1
    assert lags == sorted(lags, reverse=True) and lags[0] == 5.0 and lags[-1] == 1.0
    assert lag_scale(2000)[0] == 5.0
    keys = {"train.kl_start_step", "train.l2_start_step", "model.coupling.lag_scale"}
    assert not keys & set(as_dict(choose(MULTI)))
    assert keys <= set(as_dict(choose(MULTI, 3000)))


def test_the_rules_depend_only_on_the_description():
    for d in itertools.islice(grid(), 0, None, 7):
        again = DataDescription(**d.as_dict())
        for budget in (None, 40, 3000):
            first = [(c.key, c.value, c.reason) for c in choose(d, budget)]
            assert first == [(c.key, c.value, c.reason) for c in choose(again, budget)]
            assert all(c.reason and c.override().startswith(c.key + "=") for c in choose(d, budget))
            assert math.isfinite(as_dict(choose(d, budget))["model.coupling.sparsity"])


SINGLE = dataclasses.replace(
    MULTI, n_train=800, n_heldin=40, n_heldout=10, n_areas=1, info_nats=150.0
)


def test_single_area_choices_are_unchanged():
    """What rules.choose gave one area before the multi-area rules (exact overrides)."""
    assert [c.override() for c in choose(SINGLE, 300)] == [
        "model.name=sae",
        "data.batch_size=64",
        "train.lr=0.005",
        "model.generator.hidden_size=128",
        "model.ic_size=128",
        "model.factor_size=20",
        "model.encoder.dropout=0.138",
        "model.generator.dropout=0.138",
        "train.l2_scale=0.00125",
        "train.kl_scales.ic=1",
        "train.kl_scales.co=1",
        "train.kl_ramp_steps=75",
        "train.l2_ramp_steps=75",
        "train.lr_patience_steps=75",
        "early_stopping.patience_steps=225",
        "train.metrics_every_n_steps=50",
        "trainer.check_val_every_n_epoch=2",
    ]
    small = dataclasses.replace(SINGLE, n_train=60, info_nats=3.0, bin_ms=20.0, n_time=35)
    assert [c.override() for c in choose(small)] == [
        "model.name=sae",
        "data.batch_size=16",
        "train.lr=0.0025",
        "model.generator.hidden_size=64",
        "model.ic_size=64",
        "model.factor_size=20",
        "model.encoder.dropout=0.2",
        "model.generator.dropout=0.2",
        "train.l2_scale=0.01",
        "train.kl_scales.ic=0.03",
        "train.kl_scales.co=0.03",
    ]
    # and the area counts do not reach a single-area choice
    assert choose(SINGLE, 300) == choose(dataclasses.replace(SINGLE, area_heldin=(40,)), 300)
    path = Path("/d/one.h5")
    assert start_overrides(path, choose(SINGLE), ["seed=3"], 0, ["x=1"])[:6] == [
        "data=file",
        f"data.path={path}",
        "data.synth=null",
        "seed=0",
        "experiment_name=fit_one",
        "model.name=sae",
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from dsid.zoo.members.multiarea_feedback import write_multiarea_feedback

    return write_multiarea_feedback(
        tmp_path_factory.mktemp("mar") / "tiny.h5",
        seed=0,
        n_trials=(24, 8, 8),
        n_time=20,
        neurons_per_area=10,
    )


def _get(cfg, key):
    for part in key.lstrip("+").split("."):
        cfg = cfg[part]
    return cfg


def test_the_composed_config_is_complete_and_builds_a_model(tiny):
    d = describe_file(tiny)
    assert d.n_areas == 3 and d.area_heldin == (8, 8, 8)
    choices = choose(d, 40)
    cfg = to_plain(compose(start_overrides(Path(tiny), choices, ["logger=csv"], 0, [])))
    assert "experiment" not in str(cfg.get("defaults", "")) and cfg["model"]["name"] == "multiarea"
    for c in choices:  # every choice reached the config
        if c.key == "+coupling@model.coupling":
            assert cfg["model"]["coupling"]["name"] == c.value
        else:
            assert _get(cfg, c.key) == pytest.approx(c.value), c.key
    dm, module = build_run(cfg)
    model = module.model
    assert type(model).__name__ == "MultiAreaSAE" and model.n_areas == 3
    assert model.coupling.sparsity == as_dict(choices)["model.coupling.sparsity"]
    assert all(
        ar.generator.hidden_size == cfg["model"]["generator"]["hidden_size"] for ar in model.areas
    )
    batch = next(iter(dm.train_dataloader()))
    loss, _ = module.compute_loss(batch, "train")
    loss.backward()
    assert torch.isfinite(loss)


def test_a_users_experiment_still_wins(tiny):
    choices = choose(describe_file(tiny), 40)
    user = ["experiment=multiarea_gated", "logger=csv"]
    kept = kept_choices(choices, user, "multiarea")
    assert not any(c.key == "model.name" or "coupling" in c.key for c in kept)
    cfg = compose(start_overrides(Path(tiny), kept, user, 0, []))
    assert cfg.model.coupling.name == "gated" and cfg.model.coupling.sparsity == 10.0
