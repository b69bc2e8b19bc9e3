"""The model registry and its config checks, the protocol every model satisfies, the training
defaults and the exact loss weighting."""

import numpy as np
import pytest
import torch

from dsid.models import MultiAreaSAE, SequentialAutoencoder, build_model, model_name
from dsid.models.protocol import CommunicationModel, DSIDModel
from dsid.registry import MODELS, RegistryError
from dsid.training.defaults import train_defaults, training_config
from dsid.training.lightning_module import TrainingModule
from dsid.training.schedules import loss_weights, ramp, ramps_end, total_loss
from tests.conftest import TINY_MODEL, tiny_info


def test_models_are_registered_and_unknown_kinds_list_them():
    assert MODELS.names() == ["multiarea", "ndt", "sae"]
    with pytest.raises(
        RegistryError, match="unknown model 'stitched'; known model names: multiarea, ndt, sae"
    ):
        build_model({**TINY_MODEL, "name": "stitched"}, tiny_info())


def test_models_are_selected_by_name_like_components():
    assert model_name({"name": "ndt"}) == "ndt" and model_name({}) == "sae"
    assert model_name({"kind": "multiarea"}) == "multiarea"  # configs saved before the rename
    assert model_name({"name": "ndt", "kind": "multiarea"}) == "ndt"
    ndt = build_model(
        {"name": "ndt", "factor_size": 4, "observation": {"name": "poisson"}}, tiny_info()
    )
    assert ndt.registry_name == "ndt"


def test_misspelt_and_missing_model_keys_are_refused_with_their_path():
    with pytest.raises(
        RegistryError, match=r"model\.ic_sise: the 'sae' model does not take model\.ic_sise"
    ):
        build_model({**TINY_MODEL, "ic_sise": 4}, tiny_info())
    cfg = {k: v for k, v in TINY_MODEL.items() if k != "factor_size"}
    with pytest.raises(
        RegistryError, match=r"model\.factor_size: the 'sae' model needs model\.factor_size"
    ):
        build_model(cfg, tiny_info())
    with pytest.raises(TypeError):  # keyword-only: no positional configs
        SequentialAutoencoder(TINY_MODEL, tiny_info())


def test_every_model_satisfies_the_protocol():
    ma_cfg = {
        **TINY_MODEL,
        "name": "multiarea",
        "coupling": {"name": "lowrank", "rank": 1, "lag": 1},
    }
    ndt_cfg = {"name": "ndt", "factor_size": 4, "observation": {"name": "poisson"}}
    for cfg, info in (
        (TINY_MODEL, tiny_info()),
        (ma_cfg, tiny_info(9, 3, n_areas=3)),
        (ndt_cfg, tiny_info()),
    ):
        model = build_model(cfg, info)
        assert isinstance(model, DSIDModel), cfg["name"]
        assert isinstance(model, CommunicationModel) == isinstance(model, MultiAreaSAE)
        spikes = torch.poisson(torch.full((2, 10, info["n_neurons"]), 0.5))
        x, mask = model.augment(spikes, "train")
        out = model(x, session=0, sample=True)
        terms = model.loss_terms(out, spikes, mask, session=0)
        assert {"recon", "kl_ic", "kl_co"} <= set(terms) and all(
            torch.isfinite(v) for v in terms.values()
        )
        assert torch.isfinite(model.heldin_recon(out, spikes, mask, session=0))
        with pytest.raises(IndexError, match="session 1 out of range"):
            model(x, session=1)


def test_one_source_of_training_defaults():
    defaults = train_defaults()
    assert defaults["lr"] == 0.005 and defaults["kl_ramp_steps"] == 250  # configs/train.yaml
    module = TrainingModule(TINY_MODEL, tiny_info())
    assert module.train_cfg == defaults
    merged = training_config({"kl_scales": {"ic": 3.0}})
    assert merged["kl_scales"] == {**defaults["kl_scales"], "ic": 3.0}
    with pytest.raises(KeyError, match="train.lr_typo: not a training setting"):
        TrainingModule(TINY_MODEL, tiny_info(), {"lr_typo": 1.0})
    with pytest.raises(
        KeyError, match="train.kl_ramp_epochs: schedules count optimizer steps.*kl_ramp_steps"
    ):
        training_config({"kl_ramp_epochs": 20})


def test_ramp_values():
    assert ramp(0.0, 0, 10) == 0.0 and ramp(5.0, 0, 10) == 0.5 and ramp(10.0, 0, 10) == 1.0
    assert ramp(20.0, 0, 10) == 1.0 and ramp(-1.0, 0, 10) == 0.0
    assert ramp(2.0, 2, 4, minimum=0.2) == pytest.approx(0.2) and ramp(
        4.0, 2, 4, 0.2
    ) == pytest.approx(0.6)
    assert ramp(0.5, 1, 0) == 0.0 and ramp(1.0, 1, 0) == 1.0  # no ramp: a step at the start
    cfg = {
        "kl_start_step": 2,
        "kl_ramp_steps": 4,
        "kl_min": 0.0,
        "l2_start_step": 0,
        "l2_ramp_steps": 8,
    }
    assert loss_weights(cfg, 4.0) == {"kl": 0.5, "l2": 0.5}
    assert ramps_end(cfg) == 8


def test_loss_terms_are_weighted_exactly():
    terms = {
        "recon": torch.tensor(1.0),
        "kl_ic": torch.tensor(2.0),
        "kl_co": torch.tensor(3.0),
        "kl_msg": torch.tensor(5.0),
        "reg_sparsity": torch.tensor(4.0),
    }
    cfg = {"kl_scales": {"ic": 2.0, "co": 1.0}, "l2_scale": 0.1}
    loss, kl = total_loss(terms, {"kl": 0.5, "l2": 0.25}, cfg, torch.tensor(10.0))
    # kl: 2*2 + 1*3 + 1*5 (no scale given: 1); l2: 0.1*10 + reg 4
    assert kl.item() == pytest.approx(12.0) and loss.item() == pytest.approx(
        1 + 0.5 * 12 + 0.25 * 5
    )


def test_training_module_loss_is_the_weighted_sum_of_its_logged_terms():
    torch.manual_seed(0)
    module = TrainingModule(
        TINY_MODEL, tiny_info(), {"kl_scales": {"ic": 2.0, "co": 0.5}, "l2_scale": 0.01}
    )
    spikes = torch.poisson(torch.full((4, 10, 7), 0.5))
    loss, logs = module.compute_loss({"spikes": spikes}, "train")
    w = module.weights()  # no trainer: the ramps are over
    assert w == {"kl": 1.0, "l2": 1.0}
    expect = logs["recon"] + 2.0 * logs["kl_ic"] + 0.5 * logs["kl_co"] + 0.01 * logs["l2"]
    torch.testing.assert_close(loss, expect)
    torch.testing.assert_close(logs["kl"], 2.0 * logs["kl_ic"] + 0.5 * logs["kl_co"])
    ws = module.model.recurrent_weights()
    torch.testing.assert_close(logs["l2"], sum(0.5 * (p**2).sum() for p in ws))
    assert np.isfinite(loss.item())
