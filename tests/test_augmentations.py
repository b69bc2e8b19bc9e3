import torch

from dsid.models.sae import SequentialAutoencoder
from dsid.registry import AUGMENTATIONS
from tests.conftest import TINY_MODEL, tiny_info


def test_coordinated_dropout_masks_and_scores_only_masked_bins():
    aug = AUGMENTATIONS.build({"name": "coordinated_dropout", "rate": 0.4})
    x = torch.ones(4, 50, 6)
    out, mask = aug(x, stage="train")
    assert torch.all((out == 0) == (mask == 1))  # scored exactly where the input was hidden
    assert 0.3 < mask.mean().item() < 0.5
    torch.testing.assert_close(out[mask == 0], torch.full_like(out[mask == 0], 1 / 0.6))


def test_coordinated_dropout_loss_ignores_unmasked_heldin_bins():
    torch.manual_seed(0)
    model = SequentialAutoencoder.from_config(TINY_MODEL, tiny_info())
    spikes = torch.poisson(torch.full((2, 10, 7), 0.5))
    out = model(spikes[..., model.heldin_idx], sample=False)
    mask = torch.zeros(2, 10, 5)
    mask[:, :3] = 1.0
    base = model.loss_terms(out, spikes, mask)["recon"]
    changed = spikes.clone()
    changed[:, 5:, :5] += 3  # only unscored held-in bins change
    assert torch.allclose(model.loss_terms(out, changed, mask)["recon"], base)
    changed[:, 5:, 5:] += 3  # held-out neurons are always scored
    assert not torch.allclose(model.loss_terms(out, changed, mask)["recon"], base)
