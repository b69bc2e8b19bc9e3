"""temporal_shift and spike_jitter: count invariants, declared effects, and composition from
config."""

import pytest
import torch

from dsid.models.sae import SequentialAutoencoder
from dsid.registry import AUGMENTATIONS
from dsid.runs.config import compose
from tests.conftest import tiny_info


def counts(B=6, T=30, N=5, rate=1.5, seed=0):
    return torch.poisson(torch.full((B, T, N), rate), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("temporal_shift", {"max_shift": 3}),
        ("temporal_shift", {"max_shift": 3, "wrap": True}),
        ("spike_jitter", {"max_jitter": 2}),
    ],
)
def test_counts_per_neuron_and_trial_are_kept(name, kwargs):
    aug = AUGMENTATIONS.build({"name": name, **kwargs})
    x = counts()
    out, mask = aug(x, stage="train", generator=torch.Generator().manual_seed(1))
    assert mask is None
    torch.testing.assert_close(out.sum(1), x.sum(1))
    assert not torch.equal(out, x)
    assert torch.equal(out, out.round()) and out.min() >= 0


def test_declared_effects():
    for name in ("temporal_shift", "spike_jitter"):
        cls = AUGMENTATIONS.get(name)
        assert cls.changes_input is True and cls.changes_loss is False
    assert AUGMENTATIONS.get("coordinated_dropout").changes_loss is True


@pytest.mark.parametrize("name", ["temporal_shift", "spike_jitter"])
@pytest.mark.parametrize("stage", ["val", "predict"])
def test_only_active_in_training(name, stage):
    x = counts()
    out, mask = AUGMENTATIONS.build({"name": name})(x, stage=stage)
    assert out is x and mask is None


def test_temporal_shift_moves_whole_trials():
    aug = AUGMENTATIONS.build({"name": "temporal_shift", "max_shift": 2, "wrap": True})
    x = counts(B=20)
    out, _ = aug(x, stage="train", generator=torch.Generator().manual_seed(3))
    shifts = []
    for b in range(x.shape[0]):  # each trial is one roll of all neurons together
        match = [s for s in range(-2, 3) if torch.equal(torch.roll(x[b], s, dims=0), out[b])]
        assert match, f"trial {b} is not a whole-trial shift"
        shifts.append(match[0])
    assert len(set(shifts)) > 1  # shifts differ between trials


def test_temporal_shift_piles_edge_spikes_without_wrap():
    aug = AUGMENTATIONS.build({"name": "temporal_shift", "max_shift": 3})
    x = torch.zeros(1, 8, 1)
    x[0, 7, 0] = 2.0
    x[0, 0, 0] = 1.0
    for seed in range(10):
        out, _ = aug(x, stage="train", generator=torch.Generator().manual_seed(seed))
        assert out.sum() == 3.0 and out[0, :, 0].nonzero().numel() <= 2


def test_spike_jitter_moves_each_spike_at_most_max_jitter_bins():
    aug = AUGMENTATIONS.build({"name": "spike_jitter", "max_jitter": 2})
    x = torch.zeros(500, 21, 1)
    x[:, 10, 0] = 1.0
    out, _ = aug(x, stage="train", generator=torch.Generator().manual_seed(0))
    where = out[..., 0].argmax(1)
    assert set(where.tolist()) == set(
        range(8, 13)
    )  # every offset in [-2, 2] occurs, nothing beyond
    big = torch.zeros(1, 21, 1)
    big[0, 10, 0] = 1000.0  # a bin's spikes are split over the offsets, roughly uniformly
    out, _ = aug(big, stage="train", generator=torch.Generator().manual_seed(0))
    assert out[0, 8:13, 0].sum() == 1000 and out[0, 8:13, 0].min() > 150


def test_spike_jitter_is_reproducible_with_a_generator_and_refuses_continuous_data():
    aug = AUGMENTATIONS.build({"name": "spike_jitter"})
    x = counts()
    a, _ = aug(x, stage="train", generator=torch.Generator().manual_seed(5))
    b, _ = aug(x, stage="train", generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="integer spike counts"):
        aug(x + 0.5, stage="train")


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="max_shift must be a whole number"):
        AUGMENTATIONS.build({"name": "temporal_shift", "max_shift": -1})
    with pytest.raises(ValueError, match="max_jitter must be a whole number"):
        AUGMENTATIONS.build({"name": "spike_jitter", "max_jitter": 0.5})


@pytest.mark.parametrize(
    "option,first", [("temporal_shift", "temporal_shift"), ("spike_jitter", "spike_jitter")]
)
def test_composed_in_a_list_from_config(option, first):
    cfg = compose([f"augmentation={option}", "data.path=unused.h5"])
    names = [a["name"] for a in cfg.model.augmentations]
    assert names == [first, "coordinated_dropout"]
    from omegaconf import OmegaConf

    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    model_cfg.update(ic_size=4, co_size=2, factor_size=3)
    model = SequentialAutoencoder.from_config(model_cfg, tiny_info())
    spikes = counts(B=3, T=10, N=7)
    x, mask = model.augment(spikes, "train", torch.Generator().manual_seed(0))
    assert x.shape == mask.shape == (3, 10, 5)  # held-in only; the dropout's mask survives
    x, mask = model.augment(spikes, "predict")
    assert mask is None and torch.equal(x, spikes[..., model.heldin_idx])
