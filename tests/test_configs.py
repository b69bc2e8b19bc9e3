"""Every config option and experiment file composes, and the model it describes builds."""

from pathlib import Path

import pytest

from dsid.models import build_model
from dsid.models.protocol import DSIDModel
from dsid.runs.config import compose, config_dir
from tests.conftest import tiny_info

CONFIGS = config_dir()
GROUP_TARGET = {
    "encoder": "encoder@model.encoder",
    "generator": "generator@model.generator",
    "readout": "readout@model.readout",
    "observation": "observation@model.observation",
    "prior": "prior@model.co_prior",
    "coupling": "coupling@model.coupling",
}


def options():
    for group in sorted(p for p in CONFIGS.iterdir() if p.is_dir() and p.name != "experiment"):
        for f in sorted(group.glob("*.yaml")):
            yield group.name, f.stem


def experiments():
    return sorted(p.stem for p in (CONFIGS.parents[0] / "experiments").glob("*.yaml"))


def build_from(cfg):
    """Build the model the config describes on tiny data: 3 areas for multi-area models (each with
    held-in and held-out neurons, or as many areas as ``model.allowed_edges`` has rows), two
    sessions of different neurons when the config lists several files, 1 area otherwise."""
    model_cfg = __import__("omegaconf").OmegaConf.to_container(cfg.model, resolve=True)
    if cfg.data.get("files"):
        return build_model(
            model_cfg, {"n_sessions": 2, "sessions": [tiny_info(7, 2), tiny_info(5, 1)]}
        )
    n_areas = 1
    if model_cfg.get("name", "sae") == "multiarea":
        n_areas = len(model_cfg.get("allowed_edges") or [0, 0, 0])
    info = tiny_info(n_neurons=3 * max(n_areas, 3), n_heldout=max(n_areas, 3), n_areas=n_areas)
    return build_model(model_cfg, info)


@pytest.mark.parametrize("group,option", list(options()))
def test_option_composes_and_builds(group, option):
    override = f"{GROUP_TARGET.get(group, group)}={option}"
    if group == "coupling":  # couplings live in multi-area models: build one with this option
        cfg = compose(["experiment=multiarea_none", override, "data.path=unused.h5"])
        assert cfg.model.coupling.name == option
        model = build_from(cfg)
        assert model.coupling.registry_name == option
        return
    if group == "tune":  # PBT settings (`dsid tune`): they must make a valid search of this config
        from dsid.tuning.hparams import read_hparams
        from dsid.tuning.pbt import tune_options

        cfg = __import__("omegaconf").OmegaConf.to_container(
            compose([override, "data.path=unused.h5"]), resolve=True
        )
        opts = tune_options(cfg)
        assert opts["population"] >= 1 and set(read_hparams(cfg, opts["space"])) == set(
            opts["space"]
        )
        return
    cfg = compose([override, "data.path=unused.h5"])
    if group in ("data", "trainer", "logger"):
        assert cfg[group] is not None
        return
    build_from(cfg)


@pytest.mark.parametrize("name", experiments())
def test_experiment_composes_and_builds(name):
    cfg = compose([f"experiment={name}"])
    assert cfg.experiment_name
    model = build_from(cfg)
    assert model.registry_name == cfg.model.get("name", "sae")
    assert isinstance(model, DSIDModel)
    assert model.n_sessions == (len(cfg.data.files) if cfg.data.get("files") else 1)
    if model.registry_name == "multiarea":
        assert model.coupling.registry_name == cfg.model.coupling.name


def test_experiments_exist():
    assert "lorenz_lfads" in experiments()
    assert Path(CONFIGS / "experiment").resolve() == (CONFIGS.parent / "experiments").resolve()


def test_a_users_config_folder_adds_experiments(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "my_exp.yaml").write_text(
        "# @package _global_\nexperiment_name: mine\nmodel:\n  factor_size: 7\n"
    )
    cfg = compose([f"hydra.searchpath=[file://{tmp_path}]", "experiment=my_exp"])
    assert cfg.experiment_name == "mine" and cfg.model.factor_size == 7
    assert cfg.model.generator.name == "lfads"  # DSID's own options still compose around it
