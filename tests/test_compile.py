"""``train.compile``: the model's forward through torch.compile, equal to the plain forward, with a
fallback (one warning, same results) when compiling fails."""

import pickle
import warnings

import pytest
import torch

from dsid.models import build_model
from dsid.training.compiled import CompiledForward, compile_mode
from dsid.training.lightning_module import TrainingModule
from tests.conftest import TINY_MODEL, tiny_info


def tiny():
    torch.manual_seed(0)
    return build_model(dict(TINY_MODEL), tiny_info()), torch.poisson(torch.full((4, 10, 5), 0.5))


def test_compile_setting_values():
    assert compile_mode(False) is None and compile_mode(None) is None
    assert compile_mode(True) == "default"
    assert compile_mode("reduce-overhead") == "reduce-overhead"
    with pytest.raises(ValueError, match="train.compile='fast'"):
        compile_mode("fast")
    with pytest.raises(ValueError, match="train.compile"):
        TrainingModule(dict(TINY_MODEL), tiny_info(), {"compile": "yes"})


def failing_compile(model, mode=None):
    def call(*args, **kwargs):
        raise RuntimeError("backend exploded\nsecond line")

    return call


def test_a_failed_compile_warns_once_and_runs_the_plain_forward(monkeypatch):
    monkeypatch.setattr(torch, "compile", failing_compile)
    model, x = tiny()
    forward = CompiledForward(model, "default")
    with pytest.warns(
        RuntimeWarning,
        match=r"train.compile=default: torch.compile failed \(RuntimeError: backend "
        r"exploded\); training continues without it",
    ):
        out = forward(x, sample=False)
    assert not forward.active and forward.failure == "RuntimeError: backend exploded"
    torch.testing.assert_close(out["params"], model(x, sample=False)["params"], rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        forward(x, sample=False)


def test_a_genuine_error_still_surfaces_from_the_plain_forward(monkeypatch):
    monkeypatch.setattr(torch, "compile", failing_compile)
    model, x = tiny()
    with pytest.warns(RuntimeWarning), pytest.raises(Exception):
        CompiledForward(model, "default")(x[..., :2], sample=False)  # wrong neuron count


def test_the_training_module_routes_its_forward_through_it(monkeypatch):
    calls = []

    def recording_compile(model, mode=None):
        calls.append(mode)
        return model

    monkeypatch.setattr(torch, "compile", recording_compile)
    module = TrainingModule(dict(TINY_MODEL), tiny_info(), {"compile": "reduce-overhead"})
    default = TrainingModule(dict(TINY_MODEL), tiny_info())
    assert isinstance(module._compiled, CompiledForward) and default._compiled is None
    # checkpoints hold the model's weights once, the same keys with and without compiling
    assert list(module.state_dict()) == list(default.state_dict())
    assert all(k.startswith("model.") for k in default.state_dict())
    spikes = torch.poisson(torch.full((4, 10, 7), 0.5))
    loss, _ = module.compute_loss({"spikes": spikes}, "valid")
    assert calls == ["reduce-overhead"] and torch.isfinite(loss)
    clone = pickle.loads(
        pickle.dumps(module._compiled)
    )  # the compiled function is rebuilt, not pickled
    assert clone._compiled is None and clone.mode == "reduce-overhead"


@pytest.mark.slow
def test_torch_compile_equals_the_plain_forward():
    """A real torch.compile (inductor on this machine's compiler; ~30 s): outputs and gradients
    equal."""
    model, x = tiny()
    ref = model(x, sample=False)
    ref_grads = torch.autograd.grad(
        ref["params"].sum(), list(model.parameters()), allow_unused=True
    )
    forward = CompiledForward(model, "default")
    out = forward(x, sample=False)
    assert forward.active, forward.failure
    for key in ("params", "factors"):
        torch.testing.assert_close(out[key], ref[key], rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(out["params"].sum(), list(model.parameters()), allow_unused=True)
    for g, r in zip(grads, ref_grads):
        if r is not None:
            torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5)
