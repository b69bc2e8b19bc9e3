"""Per-edge read-outs of multi-area models: ranks from the edges' drive, lag ranges from the lag
weights, and their scores against a file's truth."""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dsid.data.tensor_file import SplitData
from dsid.evaluation.multiarea.edges import edge_ranks, edge_scores, lag_ranges, true_ranks
from dsid.models import build_model
from tests.conftest import TINY_MODEL, tiny_info

EDGES = [[0, 1, 1], [0, 0, 0], [0, 1, 0]]  # 0->1, 0->2, 2->1


def model_with(coupling):
    torch.manual_seed(0)
    cfg = copy.deepcopy(TINY_MODEL)
    cfg.update(name="multiarea", coupling=coupling, allowed_edges=EDGES)
    return build_model(cfg, tiny_info(n_neurons=9, n_heldout=3, n_areas=3)).eval()


def test_an_edges_rank_counts_the_dimensions_of_its_drive():
    model = model_with({"name": "lowrank", "rank": 2})
    with torch.no_grad():  # orthonormal input weights: the drive has the message's own spectrum
        for e, (_, d) in enumerate(model.edges):
            w = model.areas[d].generator.ext_input_weight()
            q = torch.linalg.qr(torch.randn(w.shape[0], 2))[0]
            cols = model.edge_columns[e]
            model.areas[d].generator.cell.weight_ih[:, model.areas[d].generator.co_size :][
                :, cols
            ] = q
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20, 15, 1))
    index, msgs = model.message_index(), np.zeros((20, 15, model.coupling.message_size))
    msgs[..., index["0_1"]] = np.concatenate([z, 0.1 * z], -1)  # one direction
    msgs[..., index["0_2"]] = rng.normal(size=(20, 15, 2))  # two of equal variance
    msgs[..., index["2_1"]] = 1e-4 * rng.normal(size=(20, 15, 2))  # negligible: unused
    ranks = edge_ranks(model, msgs)
    assert ranks[0, 1] == 1 and ranks[0, 2] == 2 and ranks[2, 1] == 0
    assert ranks[1, 0] == -1 and ranks[1, 2] == -1 and np.all(np.diag(ranks) == -1)


def test_lag_ranges_follow_the_lag_weights():
    model = model_with({"name": "delay", "rank": 1, "max_delay": 6})
    with torch.no_grad():
        model.coupling.delay_logits.zero_()
        model.coupling.delay_logits[0, 3] = 50.0  # edge 0->1: all weight on lag 3
    lags = lag_ranges(model)
    assert lags[0, 1].tolist() == [3, 3]
    assert lags[0, 2].tolist() == [0, 6]  # uniform weights: the whole window
    assert lags[1, 0].tolist() == [-1, -1]
    fixed = lag_ranges(model_with({"name": "lowrank", "rank": 1, "lag": 2}))
    assert fixed[2, 1].tolist() == [2, 2]


def test_edge_scores_against_the_truth():
    msgs = {"0_1": np.zeros((2, 5, 1)), "1_2": np.zeros((2, 5, 2)), "2_0": np.zeros((2, 5))}
    data = SimpleNamespace(
        n_areas=3,
        splits={"valid": SplitData(spikes=np.zeros((2, 5, 3)), truth_messages=msgs)},
        delay_bins=np.array([[-1, 2, -1], [-1, -1, 0], [4, -1, -1]]),
    )
    truth = true_ranks(data)
    assert truth[0, 1] == 1 and truth[1, 2] == 2 and truth[2, 0] == 1 and truth[0, 2] == -1
    ranks = np.array([[-1, 1, 2], [0, -1, 1], [1, 0, -1]])  # 2 of the 3 true edges right
    lags = -np.ones((3, 3, 2), int)
    lags[0, 1], lags[1, 2], lags[2, 0] = [1, 3], [1, 2], [4, 4]  # 0 is outside [1, 2]
    got = edge_scores(ranks, lags, data)
    assert got["edge_rank_accuracy"] == pytest.approx(2 / 3)
    assert got["delay_coverage"] == pytest.approx(2 / 3)
    assert got["lag_range_width"] == pytest.approx(1.0)
    bare = SimpleNamespace(n_areas=3, splits={}, delay_bins=None)
    assert edge_scores(ranks, lags, bare) == {}


def test_the_bits_an_edge_carries():
    """An edge whose destination ignores its message carries nothing; the others carry what their
    cut costs the destination's held-out neurons, with an interval around it."""
    from dsid.evaluation.multiarea.edge_evidence import edge_evidence

    model = model_with({"name": "lowrank", "rank": 2})
    with torch.no_grad():
        for e, (s, d) in enumerate(model.edges):
            gen = model.areas[d].generator
            block = gen.cell.weight_ih[:, gen.co_size :][:, model.edge_columns[e]]
            block.mul_(0.0 if (s, d) == (2, 1) else 30.0)  # 2->1 unused; the rest made strong
    info = tiny_info(n_neurons=9, n_heldout=3, n_areas=3)
    spikes = np.random.default_rng(0).poisson(2.0, (12, 15, 9)).astype(np.float32)
    ev = edge_evidence(model, spikes, np.asarray(info["heldout"]), np.asarray(info["area"]))
    assert ev["bits"][2, 1] == 0 and ev["low"][2, 1] == 0 and ev["high"][2, 1] == 0
    for s, d in ((0, 1), (0, 2)):
        assert ev["low"][s, d] <= ev["bits"][s, d] <= ev["high"][s, d]
        assert ev["bits"][s, d] != 0
    assert np.isnan(ev["bits"][1, 0]) and np.isnan(ev["bits"][0, 0])  # no such edge
