"""Posterior-averaged inference: every sample of a trial in one pass, the same estimate as one pass
per sample, passes bounded in size, the model's mode restored."""

import numpy as np
import pytest
import torch

from dsid.evaluation import inference
from dsid.evaluation.inference import infer_split, pass_plan
from dsid.models import build_model, core
from tests.conftest import TINY_MODEL, tiny_info

MULTIAREA = {
    **TINY_MODEL,
    "name": "multiarea",
    "coupling": {"name": "lowrank", "rank": 1, "lag": 1},
}


@pytest.mark.parametrize(
    "cfg,info",
    [(TINY_MODEL, tiny_info()), (MULTIAREA, tiny_info(9, 3, n_areas=3))],
    ids=["sae", "multiarea"],
)
def test_samples_of_a_trial_sit_side_by_side(cfg, info):
    torch.manual_seed(0)
    model = build_model(cfg, info).eval()
    x = torch.poisson(torch.full((4, 10, info["n_neurons"]), 0.5))
    xin, _ = model.augment(x, "predict")
    with torch.no_grad():
        one = model(xin, sample=False, n_forward=2)
        many = model(xin, sample=False, n_forward=2, n_samples=3)
    for key in ("rates", "factors"):
        assert many[key].shape[0] == 12
        torch.testing.assert_close(many[key], one[key].repeat_interleave(3, dim=0))


@pytest.mark.parametrize(
    "cfg,info",
    [(TINY_MODEL, tiny_info()), (MULTIAREA, tiny_info(9, 3, n_areas=3))],
    ids=["sae", "multiarea"],
)
def test_sample_means_equal_averaged_forward_outputs(cfg, info, monkeypatch):
    """The same draws averaged two ways: rates of a few trials at a time (several chunks, the last
    one short) against the forward pass's outputs averaged at once."""
    model = build_model(cfg, info).eval()
    x = torch.poisson(torch.full((6, 10, info["n_neurons"]), 0.5))
    xin, _ = model.augment(x, "predict")
    monkeypatch.setattr(
        core, "SAMPLE_MEAN_CHUNK_ENTRIES", 2 * 4 * 12 * info["n_neurons"]
    )  # 1, 2, 2, 1 trials
    with torch.no_grad():
        torch.manual_seed(3)
        means = model.sample_means(xin, n_forward=2, n_samples=4)
        torch.manual_seed(3)
        out = model(xin, n_forward=2, n_samples=4)
    assert {name for name, src in model.output_keys if src in out} == set(means)
    for name, src in model.output_keys:
        ref = out[src].reshape(6, 4, *out[src].shape[1:]).mean(1)
        torch.testing.assert_close(means[name], ref, rtol=1e-6, atol=1e-7)
    assert out["rates"][0::4].sub(out["rates"][1::4]).abs().max() > 1e-3  # the samples differ


def test_batched_samples_estimate_the_same_posterior_average():
    torch.manual_seed(0)
    model = build_model(TINY_MODEL, tiny_info()).eval()
    with torch.no_grad():  # a wide posterior, so that samples differ visibly
        model.encoder.ic_head.bias[TINY_MODEL["ic_size"] :] = 1.0
    spikes = torch.poisson(torch.full((3, 10, 7), 0.5))
    n = 300
    batched = infer_split(model, spikes.numpy(), n_samples=n)["rates"]
    xin, _ = model.augment(spikes, "predict")
    with torch.no_grad():
        draws = torch.stack([model(xin, sample=True)["rates"] for _ in range(n)]).numpy()
    mean_rates = infer_split(model, spikes.numpy(), n_samples=0)["rates"]
    se = draws.std(0) / np.sqrt(n)
    assert np.abs(draws.mean(0) - mean_rates).max() > 10 * se.mean()  # sampling matters here
    assert np.all(np.abs(batched - draws.mean(0)) < 5 * np.sqrt(2) * se + 1e-6)


def test_passes_are_bounded_and_cover_every_trial(monkeypatch):
    assert pass_plan(1000, 20, 256, 140, 182) == inference.MAX_PASS_ENTRIES // (20 * 140 * 182)
    assert pass_plan(10, 20, 256, 10, 7) == 10 and pass_plan(10, 0, 4, 10, 7) == 4
    monkeypatch.setattr(
        inference, "MAX_PASS_ENTRIES", 2 * 3 * 12 * 7
    )  # 2 trials of 3 samples a pass
    torch.manual_seed(0)
    model = build_model(TINY_MODEL, tiny_info()).train()
    spikes = np.random.default_rng(0).poisson(0.5, (5, 10, 7))
    out = infer_split(model, spikes, n_samples=3, n_forward=2)
    assert out["rates"].shape == (5, 12, 7) and out["inferred_inputs"].shape == (5, 12, 2)
    assert model.training  # the mode is restored
    means = infer_split(model, spikes, n_samples=0)
    with torch.no_grad():
        ref = model.eval()(
            model.augment(torch.as_tensor(spikes, dtype=torch.float32), "predict")[0], sample=False
        )["rates"].numpy()
    np.testing.assert_allclose(means["rates"], ref, rtol=1e-6)
