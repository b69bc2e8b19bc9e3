"""PBT decisions on fake scores (exploit: who copies whom; explore: perturbed values), the config
plumbing of tuned hyperparameters, and the held-in objective that selection uses."""

import math
import random

import numpy as np
import pytest
import torch

from dsid.runs.config import compose, to_plain
from dsid.tuning import pbt_logic
from dsid.tuning.hparams import apply_hparams, module_settings, read_hparams
from dsid.tuning.live import set_hyperparameters
from dsid.tuning.pbt_logic import HyperParam, explore, initial_population, parse_space, quantiles
from tests.conftest import TINY_MODEL, tiny_info

SPACE = parse_space(
    {
        "lr": {"low": 1e-4, "high": 1e-2, "scale": "log"},
        "dropout": {"low": 0.0, "high": 0.5, "scale": "linear"},
    }
)


def test_quantiles_pick_bottom_and_top_by_objective():
    scores = {f"t{i}": float(s) for i, s in enumerate([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4])}
    bottom, top = quantiles(scores, 0.25, mode="min")
    assert top == ["t1", "t5"] and sorted(bottom) == ["t2", "t6"]
    bottom, top = quantiles(scores, 0.25, mode="max")
    assert top == ["t2", "t6"] and sorted(bottom) == ["t1", "t5"]
    # at most half the population; a population of one does nothing
    bottom, top = quantiles({"a": 1.0, "b": 2.0, "c": 3.0}, 0.5)
    assert top == ["a"] and bottom == ["c"]
    assert quantiles({"a": 1.0}, 0.5) == ([], [])


def test_crashed_members_are_always_replaced():
    scores = {"a": 0.3, "b": math.inf, "c": 0.1, "d": math.nan}
    bottom, top = quantiles(scores, 0.25)
    assert top == ["c"]
    assert sorted(bottom) == ["b", "d"]  # both crashed members, beyond the quantile's one
    plan = pbt_logic.plan_exploits(scores, 0.25, rng=random.Random(0))
    assert plan == {"b": "c", "d": "c"}
    # nobody healthy: nothing to copy
    assert quantiles({"a": math.inf, "b": math.nan}, 0.25) == ([], [])


def test_donors_are_drawn_from_the_top_quantile():
    scores = {f"t{i}": float(i) for i in range(8)}
    rng = random.Random(1)
    donors = [pbt_logic.plan_exploits(scores, 0.25, rng=rng) for _ in range(200)]
    assert all(set(p) == {"t6", "t7"} for p in donors)
    seen = {d for p in donors for d in p.values()}
    assert seen == {"t0", "t1"}


def test_explore_perturbs_within_ranges():
    rng = random.Random(0)
    hp = {"lr": 1e-3, "dropout": 0.2, "other": 7.0}
    for _ in range(200):
        new, ops = explore(hp, SPACE, rng, resample_probability=0.0, factors=(0.8, 1.25))
        assert new["other"] == 7.0
        assert new["lr"] in (pytest.approx(8e-4), pytest.approx(1.25e-3))
        assert new["dropout"] in (pytest.approx(0.1), pytest.approx(0.325))
        assert set(ops) == {"lr", "dropout"}
    # clipped into the range
    new, _ = explore({"lr": 1e-2, "dropout": 0.0}, SPACE, random.Random(0), 0.0, factors=(1.25,))
    assert new["lr"] == 1e-2 and new["dropout"] == pytest.approx(0.125)
    new, _ = explore({"lr": 1e-4, "dropout": 0.0}, SPACE, random.Random(0), 0.0, factors=(0.8,))
    assert new["lr"] == 1e-4 and new["dropout"] == 0.0
    # resampling draws from the range (log-uniform for log scales)
    draws = [explore(hp, SPACE, rng, resample_probability=1.0)[0]["lr"] for _ in range(2000)]
    assert min(draws) >= 1e-4 and max(draws) <= 1e-2
    assert 0.4 < np.mean(np.array(draws) < 1e-3) < 0.6
    # the same seed gives the same decisions
    a = explore(hp, SPACE, random.Random(5))
    b = explore(hp, SPACE, random.Random(5))
    assert a == b


def test_initial_population():
    base = {"lr": 0.05, "dropout": 0.1}  # outside the lr range: member 0 keeps it
    pop = initial_population(base, SPACE, 4, "sample", random.Random(0))
    assert pop[0] == base and len(pop) == 4
    assert all(1e-4 <= m["lr"] <= 1e-2 and 0 <= m["dropout"] <= 0.5 for m in pop[1:])
    assert initial_population(base, SPACE, 3, "base") == [base] * 3
    pop = initial_population(base, SPACE, 3, "perturb", random.Random(0), members=[{}, {"lr": 1e3}])
    assert pop[1]["lr"] == 1e3 and pop[2]["lr"] == 1e-2  # 0.05 * factor, clipped
    with pytest.raises(ValueError, match="not tuned"):
        initial_population(base, SPACE, 2, members=[{"wd": 1.0}])
    with pytest.raises(ValueError, match="init must be"):
        initial_population(base, SPACE, 2, "grid")


def test_space_errors_are_clear():
    with pytest.raises(ValueError, match="low > 0"):
        HyperParam("lr", 0.0, 1.0, "log")
    with pytest.raises(ValueError, match="scale"):
        HyperParam("lr", 0.1, 1.0, "cubic")
    with pytest.raises(ValueError, match="low < high"):
        HyperParam("lr", 1.0, 0.1)
    with pytest.raises(ValueError, match="unknown keys"):
        parse_space({"lr": {"low": 1, "high": 2, "step": 3}})
    with pytest.raises(ValueError, match="at least one"):
        parse_space({})


def test_tune_group_composes_and_maps_onto_the_config():
    """configs/tune/pbt.yaml composes (as `dsid tune` does it), every tuned hyperparameter maps onto
    the train config, and `dsid train` configs carry no tune section."""
    from dsid.tuning.commands import tune_overrides
    from dsid.tuning.pbt import tune_options

    assert "tune" not in to_plain(compose(["data.path=x.h5"]))
    assert tune_overrides(["seed=1"]) == ["seed=1", "tune=pbt"]
    assert tune_overrides(["tune=pbt", "seed=1"]) == ["tune=pbt", "seed=1"]
    cfg = to_plain(compose(tune_overrides(["data.path=x.h5", "tune.population=3"])))
    opts = tune_options(cfg)
    assert opts["population"] == 3 and opts["objective"] == "val/recon_heldin"
    assert opts["total_epochs"] == cfg["trainer"]["max_epochs"]
    space = opts["space"]
    assert set(space) == {"lr", "dropout", "cd_rate", "kl_ic_scale", "kl_co_scale", "l2_scale"}
    hp = read_hparams(cfg, space)
    assert hp["lr"] == cfg["train"]["lr"] and hp["cd_rate"] == 0.3
    new = {
        "lr": 1e-3,
        "dropout": 0.25,
        "cd_rate": 0.4,
        "kl_ic_scale": 2.0,
        "kl_co_scale": 0.5,
        "l2_scale": 1e-4,
    }
    out = apply_hparams(cfg, new, space)
    assert read_hparams(out, space) == new
    assert out["model"]["encoder"]["dropout"] == out["model"]["generator"]["dropout"] == 0.25
    assert out["train"]["kl_scales"] == {"ic": 2.0, "co": 0.5}
    assert read_hparams(cfg, space) == hp  # the input is not modified
    assert module_settings(new, space) == {
        "lr": 1e-3,
        "dropout": 0.25,
        "cd_rate": 0.4,
        "kl_scales": {"ic": 2.0, "co": 0.5},
        "l2_scale": 1e-4,
    }
    generic = parse_space({"wd": {"low": 1e-6, "high": 1e-2, "path": "train.weight_decay"}})
    assert apply_hparams(cfg, {"wd": 1e-5}, generic)["train"]["weight_decay"] == 1e-5
    with pytest.raises(KeyError, match="not a built-in"):
        read_hparams(cfg, parse_space({"momentum": {"low": 0.1, "high": 0.9}}))
    with pytest.raises(ValueError, match="burn_in"):
        tune_options({**cfg, "tune": {**cfg["tune"], "burn_in": 3, "perturbation_interval": 2}})


def _tiny_module(train_cfg=None, val_rate=None):
    from dsid.training.lightning_module import TrainingModule

    torch.manual_seed(0)
    info = tiny_info(n_neurons=7, n_heldout=2)
    model_cfg = TINY_MODEL
    if val_rate is not None:
        model_cfg = {
            **TINY_MODEL,
            "augmentations": [{**a, "val_rate": val_rate} for a in TINY_MODEL["augmentations"]],
        }
    return TrainingModule(model_cfg, info, train_cfg), info


def test_heldin_objective_never_sees_heldout_neurons():
    module, info = _tiny_module(val_rate=0.5)
    module.eval()
    spikes = torch.poisson(torch.full((4, 10, 7), 0.5))
    torch.manual_seed(1)
    _, logs = module.compute_loss({"spikes": spikes}, "val")
    assert "recon_heldin" in logs and torch.isfinite(logs["recon_heldin"])
    changed = spikes.clone()
    changed[..., np.asarray(info["heldout"])] += 5  # held-out neurons only
    torch.manual_seed(1)
    _, logs2 = module.compute_loss({"spikes": changed}, "val")
    assert logs2["recon_heldin"] == logs["recon_heldin"]
    assert logs2["recon"] != logs["recon"]  # while the ELBO's reconstruction does see them
    # the validation mask rate follows val_rate, training keeps the module's rate
    cd = module.model.augmentations[0]
    _, mask_val = module.model.augment(torch.ones(64, 10, 7), "val")
    _, mask_train = module.model.augment(torch.ones(64, 10, 7), "train")
    assert cd.rate == 0.3 and abs(mask_val.mean().item() - 0.5) < 0.05
    assert abs(mask_train.mean().item() - 0.3) < 0.05


def test_set_hyperparameters_on_a_live_module():
    module, _ = _tiny_module()
    set_hyperparameters(
        module, lr=1e-4, dropout=0.4, cd_rate=0.5, kl_scales={"ic": 3.0}, l2_scale=0.1
    )
    dropouts = [m.p for m in module.model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(p == 0.4 for p in dropouts)
    assert module.model.augmentations[0].rate == 0.5
    assert module.train_cfg["kl_scales"] == {"ic": 3.0, "co": 1.0}
    assert module.train_cfg["l2_scale"] == 0.1 and module.train_cfg["lr"] == 1e-4
    hp = module.hparams
    assert hp["train_cfg"]["lr"] == 1e-4
    assert hp["model_cfg"]["encoder"]["dropout"] == 0.4
    assert hp["model_cfg"]["augmentations"][0]["rate"] == 0.5
    assert TINY_MODEL["encoder"]["dropout"] == 0.0  # the caller's config is not modified
    opt = module.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    assert opt.param_groups[0]["lr"] == 1e-4


def test_scheduler_uses_pbt_logic():
    """The Ray scheduler's quantiles come from pbt_logic (crashed members always at the bottom)."""
    from dsid.tuning.scheduler import DSIDPopulationBasedTraining

    class FakeTrial:
        def __init__(self, tid, finished=False):
            self.trial_id, self._finished, self.config = tid, finished, {"hp": {"lr": 1e-3}}

        def is_finished(self):
            return self._finished

    class State:
        def __init__(self, score):
            self.last_score = score

    sched = DSIDPopulationBasedTraining(space=SPACE, perturbation_interval=2, quantile=0.25)
    trials = [FakeTrial(f"t{i}") for i in range(5)] + [FakeTrial("done", finished=True)]
    # Ray stores -objective (higher is better); t3 crashed (objective inf)
    objectives = [0.5, 0.1, 0.3, math.inf, 0.2, 0.0]
    sched._trial_state = {t: State(-o) for t, o in zip(trials, objectives)}
    lower, upper = sched._quantiles()
    assert [t.trial_id for t in upper] == ["t1", "t4"]
    assert [t.trial_id for t in lower] == ["t3", "t0"]
    new_config, ops = sched._get_new_config(trials[0], trials[1])
    assert set(ops["hp"]) == {"lr", "dropout"} and 1e-4 <= new_config["hp"]["lr"] <= 1e-2
