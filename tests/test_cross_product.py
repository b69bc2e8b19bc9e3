"""Every encoder x generator x observation model builds, runs and back-propagates on tiny shapes,
and so does the NDT model with every observation model."""

import pytest
import torch

from dsid.models import build_model
from dsid.registry import ENCODERS, GENERATORS, OBSERVATIONS
from tests.conftest import TINY_MODEL, tiny_info

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


SMALL = {
    "bigru": {"hidden_size": 6, "ci_size": 3},
    "transformer": {"d_model": 8, "n_heads": 2, "n_layers": 1, "ff_size": 8, "ci_size": 3},
    "lfads": {"hidden_size": 8, "controller_size": 4},
    "node": {"hidden_size": 4, "mlp_size": 8},
    "linear": {"hidden_size": 4, "controller_size": 4},
}


def targets(model, shape):
    """Data inside the observation model's support, drawn from the model itself."""
    params = 0.3 * torch.randn(*shape, model.observation.n_params)
    return model.observation.distribution(params).sample()


def check(model, n_forward=2, every_parameter=True):
    info = tiny_info()
    target = targets(model, (3, 10, info["n_neurons"]))
    x, mask = model.augment(target, "train", torch.Generator().manual_seed(0))
    out = model(x, n_forward=n_forward)
    assert out["rates"].shape == (3, 10 + n_forward, 7) and torch.isfinite(out["rates"]).all()
    forward = torch.cat(
        [target, targets(model, (3, n_forward, 7))], dim=1
    )  # forward bins scored too
    assert torch.isfinite(sum(model.loss_terms(out, forward, mask).values()))
    terms = model.loss_terms(out, target, mask)
    loss = sum(terms.values())
    assert torch.isfinite(loss), terms
    loss.backward()
    for name, p in model.named_parameters():
        if every_parameter or p.grad is not None:  # co_size=0: controller parts go unused
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    with torch.no_grad():
        model.eval()
        x, _ = model.augment(target, "predict")
        assert torch.isfinite(model(x, sample=False)["rates"]).all()


@pytest.mark.parametrize("obs", OBSERVATIONS.names())
@pytest.mark.parametrize("gen", GENERATORS.names())
@pytest.mark.parametrize("enc", ENCODERS.names())
@pytest.mark.parametrize("co_size", [0, 2])
def test_sae_cross_product(enc, gen, obs, co_size):
    torch.manual_seed(0)
    cfg = {
        **TINY_MODEL,
        "co_size": co_size,
        "encoder": {"name": enc, **SMALL.get(enc, {})},
        "generator": {"name": gen, **SMALL.get(gen, {})},
        "observation": {"name": obs},
    }
    check(build_model(cfg, tiny_info()), every_parameter=co_size > 0)


@pytest.mark.parametrize("obs", OBSERVATIONS.names())
def test_ndt_with_every_observation(obs):
    torch.manual_seed(0)
    cfg = {
        "name": "ndt",
        "factor_size": 4,
        "observation": {"name": obs},
        "transformer": {"d_model": 8, "n_heads": 2, "n_layers": 1, "ff_size": 8},
        "augmentations": [{"name": "coordinated_dropout", "rate": 0.3}],
    }
    check(build_model(cfg, tiny_info()))


def test_ndt_limited_context_and_clear_errors():
    cfg = {
        "name": "ndt",
        "factor_size": 4,
        "observation": {"name": "poisson"},
        "transformer": {
            "d_model": 8,
            "n_heads": 2,
            "n_layers": 1,
            "context_forward": 0,
            "context_backward": 3,
        },
    }
    model = build_model(cfg, tiny_info())
    model.eval()
    x = torch.poisson(torch.ones(1, 10, 5))
    base = model(x)["rates"]
    later = x.clone()
    later[:, 6:] += 4  # causal (context_forward=0): bins before 6 cannot see this change
    torch.testing.assert_close(model(later)["rates"][:, :6], base[:, :6])
    with pytest.raises(ValueError, match="needs a masking augmentation"):
        build_model({**cfg, "augmentations": []}, tiny_info())
    with pytest.raises(KeyError, match="does not take"):
        build_model({**cfg, "transformer": {"width": 3}}, tiny_info())


def test_transformer_encoder_cls_pooling_and_bad_pool():
    torch.manual_seed(0)
    cfg = {**TINY_MODEL, "encoder": {"name": "transformer", **SMALL["transformer"], "pool": "cls"}}
    check(build_model(cfg, tiny_info()))
    with pytest.raises(ValueError, match="pool must be 'mean' or 'cls'"):
        build_model({**cfg, "encoder": {"name": "transformer", "pool": "max"}}, tiny_info())
