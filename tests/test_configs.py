"""Every config option and experiment file composes, and the model it describes builds."""
from pathlib import Path

import pytest

from dsid.models import build_model
from dsid.training.commands import compose, config_dir
from tests.conftest import tiny_info

CONFIGS = config_dir()
GROUP_TARGET = {"encoder": "encoder@model.encoder", "generator": "generator@model.generator",
                "readout": "readout@model.readout", "observation": "observation@model.observation",
                "prior": "prior@model.co_prior"}


def options():
    for group in sorted(p for p in CONFIGS.iterdir() if p.is_dir() and p.name != "experiment"):
        for f in sorted(group.glob("*.yaml")):
            yield group.name, f.stem


def experiments():
    return sorted(p.stem for p in (CONFIGS.parents[0] / "experiments").glob("*.yaml"))


def build_from(cfg):
    model_cfg = dict(cfg.model)
    info = tiny_info(n_neurons=9, n_heldout=3, n_areas=int(model_cfg.get("n_areas_hint", 1)))
    return build_model(__import__("omegaconf").OmegaConf.to_container(cfg.model, resolve=True), info)


@pytest.mark.parametrize("group,option", list(options()))
def test_option_composes_and_builds(group, option):
    override = f"{GROUP_TARGET.get(group, group)}={option}"
    cfg = compose([override, "data.path=unused.h5"])
    if group in ("data", "trainer", "logger", "coupling"):
        assert cfg[group] is not None or group == "coupling"
        return
    build_from(cfg)


@pytest.mark.parametrize("name", experiments())
def test_experiment_composes_and_builds(name):
    cfg = compose([f"experiment={name}"])
    assert cfg.experiment_name
    if cfg.model.get("kind", "sae") == "sae":
        build_from(cfg)


def test_experiments_exist():
    assert "lorenz_lfads" in experiments()
    assert Path(CONFIGS / "experiment").resolve() == (CONFIGS.parent / "experiments").resolve()
