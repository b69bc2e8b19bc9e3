"""Interventions on a multi-area model's messages (silence, clamp, scale from a bin), the rollout
that predicts them, their scores, and ``dsid perturb`` on a trained run."""

import copy

import numpy as np
import pytest
import torch

from dsid.evaluation.multiarea.perturbation import area_effect, effect_scores
from dsid.models import build_model
from dsid.models.multiarea.intervention import build_intervention, perturbed_rollout
from dsid.models.multiarea.loop import step_areas
from tests.conftest import TINY_MODEL, tiny_info

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

B, T, T0 = 3, 12, 5
EDGES = [[0, 1, 1], [0, 0, 0], [0, 1, 0]]  # 0->1, 0->2, 2->1: area 0 receives nothing


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = copy.deepcopy(TINY_MODEL)
    cfg.update(name="multiarea", coupling={"name": "lowrank", "rank": 2}, allowed_edges=EDGES)
    info = tiny_info(n_neurons=9, n_heldout=3, n_areas=3)
    info["area_names"] = ["V1", "PFC", "M1"]
    return build_model(cfg, info).eval()


@pytest.fixture(scope="module")
def spikes():
    return torch.poisson(torch.full((B, T, 9), 0.5), generator=torch.Generator().manual_seed(1))


def area_rates(model, rates, a):
    return rates[..., torch.as_tensor(model.area_idx[a])]


def rollouts(model, spikes, iv):
    """Both rollouts with their messages and inferred inputs (as perturbed_rollout runs them)."""
    x, _ = model.augment(spikes, "predict")
    encs = [ar.encoder(model.area_input(x, a)) for a, ar in enumerate(model.areas)]
    ics, ci = [e.ic_mean for e in encs], [e.ci for e in encs]
    with torch.no_grad():
        base = step_areas(model, ics, ci, None, T, T, False, None)
        given = base["co"].view(B, T, 3, -1).permute(1, 2, 0, 3)
        return base, step_areas(model, ics, ci, None, T, T, False, None, iv, given)


def test_an_identity_intervention_changes_nothing(model, spikes):
    out = perturbed_rollout(model, spikes, build_intervention(model, "scale", area=0, factor=1.0))
    assert torch.equal(out["rates_base"], out["rates_perturbed"])
    x, _ = model.augment(spikes, "predict")
    torch.testing.assert_close(out["rates_base"], model(x, sample=False)["rates"])


def test_known_inputs_reach_both_rollouts(spikes):
    """With external inputs the rollout as inferred is the model's own forward pass, and an
    identity intervention changes nothing."""
    torch.manual_seed(0)
    cfg = copy.deepcopy(TINY_MODEL)
    cfg.update(name="multiarea", coupling={"name": "lowrank", "rank": 2}, allowed_edges=EDGES)
    info = dict(tiny_info(n_neurons=9, n_heldout=3, n_areas=3), ext_input_size=2)
    ext_model = build_model(cfg, info).eval()
    ext = torch.randn(B, T, 2, generator=torch.Generator().manual_seed(2))
    out = perturbed_rollout(
        ext_model, spikes, build_intervention(ext_model, "scale", area=0, factor=1.0), ext
    )
    x, _ = ext_model.augment(spikes, "predict")
    torch.testing.assert_close(out["rates_base"], ext_model(x, sample=False, ext=ext)["rates"])
    assert torch.equal(out["rates_base"], out["rates_perturbed"])
    without = perturbed_rollout(
        ext_model, spikes, build_intervention(ext_model, "scale", area=0, factor=1.0), 0 * ext
    )
    assert not torch.allclose(without["rates_base"], out["rates_base"])  # the inputs were read


def test_silencing_an_area_from_a_bin(model, spikes):
    iv = build_intervention(model, "silence", area="M1", from_bin=T0)
    out = perturbed_rollout(model, spikes, iv)
    base, pert = out["rates_base"], out["rates_perturbed"]
    assert torch.equal(base[:, : T0 + 1], pert[:, : T0 + 1])  # acts on bin T0 + 1 first
    for a in (0, 2):  # upstream of M1's only edge (M1->PFC), and M1 itself: nothing reaches them
        assert torch.equal(area_rates(model, base, a), area_rates(model, pert, a))
    assert (area_rates(model, base, 1) - area_rates(model, pert, 1))[:, T0 + 1 :].abs().min() > 0
    assert iv.description == "area M1: messages silenced from bin 5"


def test_messages_are_cut_held_or_scaled_and_inputs_replayed(model, spikes):
    index = model.message_index()
    for mode, kw in (("silence", {}), ("clamp", {}), ("scale", {"factor": 2.5})):
        iv = build_intervention(model, mode, edge="V1->M1", from_bin=T0, **kw)
        base, pert = rollouts(model, spikes, iv)
        edge, other = pert["messages"][..., index["0_2"]], pert["messages"][..., index["0_1"]]
        torch.testing.assert_close(edge[:, :T0], base["messages"][..., index["0_2"]][:, :T0])
        after = edge[:, T0:]
        if mode == "silence":
            assert torch.equal(after, torch.zeros_like(after))
        elif mode == "clamp":
            assert torch.equal(after, edge[:, T0 - 1 : T0].expand_as(after))
        else:  # the edge's own messages doubled and a half: those of the source's state
            ref = base["messages"][..., index["0_2"]]
            torch.testing.assert_close(after, 2.5 * ref[:, T0:])
        torch.testing.assert_close(other, base["messages"][..., index["0_1"]])  # untouched
        # the inferred inputs are the unperturbed rollout's, though the factors changed
        assert torch.equal(pert["co"], base["co"]) and not torch.equal(pert["f"], base["f"])


@pytest.mark.parametrize(
    "args, match",
    [
        (dict(mode="mute", area=0), "mode"),
        (dict(mode="silence", area="S1"), "area: 'S1' is not an area.*0 = V1"),
        (dict(mode="silence", area=3), "not an area"),
        (dict(mode="silence", edge="PFC->V1"), "not an edge.*V1->PFC"),
        (dict(mode="silence", edge="V1"), "SRC->DST"),
        (dict(mode="silence", area="PFC"), "sends no messages"),
        (dict(mode="silence", area="M1", edge="V1->PFC"), "must leave the area"),
        (dict(mode="scale", area=0), "factor: required"),
        (dict(mode="silence", area=0, factor=2.0), "factor"),
        (dict(mode="scale", area=0, factor=float("nan")), "finite"),
        (dict(mode="silence", area=0, from_bin=-1), "from_bin"),
        (dict(mode="silence"), "give the area"),
    ],
)
def test_bad_interventions_are_explained(model, args, match):
    args = dict(args)
    with pytest.raises(ValueError, match=match):
        build_intervention(model, args.pop("mode"), **args)


def test_effect_scores():
    rng = np.random.default_rng(0)
    true = np.zeros((4, 10, 6))
    true[:, 6:] = rng.normal(size=(4, 4, 6))
    s = effect_scores(true, true, 5, np.ones(6, bool))
    assert s["effect_r2"] == pytest.approx(1) and s["effect_r2_trials"] == pytest.approx(1)
    zero = effect_scores(np.zeros_like(true), true, 5, np.ones(6, bool))
    assert zero["effect_r2_trials"] <= 0 and zero["effect_rms_pred"] == 0
    # the bins before the intervention acts and the left-out neurons are not scored
    wrong = true.copy()
    wrong[:, :6] = 5.0
    wrong[..., 0] = 9.0
    assert effect_scores(wrong, true, 5, np.arange(1, 6))["effect_r2"] == pytest.approx(1)
    with pytest.raises(ValueError, match="same"):
        effect_scores(true[:, :5], true, 5, np.ones(6, bool))
    rms = area_effect(true, np.array([0, 0, 0, 1, 1, 1]), 2)
    assert rms.shape == (2, 10) and np.all(rms[:, :6] == 0) and np.all(rms[:, 6:] > 0)
