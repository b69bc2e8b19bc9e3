"""The grouped GRU update (``gru_update``) is exactly ``nn.GRUCell`` (unclipped), and clipping
bounds it."""

import math

import pytest
import torch
from torch import nn

from dsid.modules.recurrent.gru import ClippedGRUCell, gru_update
from dsid.modules.recurrent.step_protocol import stack_step_params

I, H, B = 5, 7, 4


def cells(n, seed=0):
    """``n`` float64 ``nn.GRUCell``s with random (non-default-scale) weights and biases."""
    torch.manual_seed(seed)
    out = [nn.GRUCell(I, H).double() for _ in range(n)]
    with torch.no_grad():
        for c in out:
            for p in c.parameters():
                p.normal_(0.0, 0.7)
    return out


def grouped_params(cs):
    """Per-cell weights in ``gru_update``'s layout, stacked on a leading group axis."""
    return {
        k: torch.stack([getattr(c, a) for c in cs])
        for k, a in [
            ("w_ih", "weight_ih"),
            ("w_hh", "weight_hh"),
            ("b_ih", "bias_ih"),
            ("b_hh", "bias_hh"),
        ]
    }


@pytest.mark.parametrize("groups", [1, 3])
def test_unclipped_gru_update_equals_grucell(groups):
    cs = cells(groups)
    x = torch.randn(groups, B, I, dtype=torch.float64)
    h = 2.0 * torch.randn(groups, B, H, dtype=torch.float64)
    with torch.no_grad():
        got = gru_update(x, h, grouped_params(cs), clip=math.inf)
        want = torch.stack([c(x[g], h[g]) for g, c in enumerate(cs)])
    assert got.shape == (groups, B, H)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_step_params_of_clipped_cell_match_its_forward():
    """``ClippedGRUCell.step_params`` + ``stack_step_params`` feed ``gru_update`` the cell's
    weights: torch's GRU update of those weights, clipped."""
    torch.manual_seed(1)
    cs = [ClippedGRUCell(I, H, clip=0.5).double() for _ in range(3)]
    x = torch.randn(3, B, I, dtype=torch.float64)
    h = torch.randn(3, B, H, dtype=torch.float64).clamp(-0.5, 0.5)
    with torch.no_grad():
        got = gru_update(x, h, stack_step_params(cs), clip=0.5)
        want = torch.stack(
            [torch.nn.GRUCell.forward(c, x[g], h[g]).clamp(-0.5, 0.5) for g, c in enumerate(cs)]
        )
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("clip", [0.05, 0.3, 1.0])
def test_clipped_state_stays_within_bounds(clip):
    (c,) = cells(1, seed=2)
    p = grouped_params([c])
    x = 3.0 * torch.randn(1, B, I, dtype=torch.float64)
    h = 5.0 * torch.randn(1, B, H, dtype=torch.float64)  # starts well outside the box
    with torch.no_grad():
        unclipped = gru_update(x, h, p, clip=math.inf)
        assert unclipped.abs().max() > clip  # the clip is actually exercised
        h = gru_update(x, h, p, clip=clip)
        torch.testing.assert_close(h, unclipped.clamp(-clip, clip), rtol=0, atol=0)
        for _ in range(10):
            assert h.abs().max() <= clip
            h = gru_update(x, h, p, clip=clip)
    assert h.abs().max() <= clip
