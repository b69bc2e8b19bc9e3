"""Inferred-input R2: the true unobserved inputs decoded from the inferred inputs, allowing for a
lead or lag of a few bins, cross-validated (fit on train, scored on valid)."""

from types import SimpleNamespace

import numpy as np

from dsid.evaluation.metrics import input_r2_per_dim, lagged
from dsid.evaluation.scores import split_metrics


def _pulses(rng, shape):
    return (rng.random(shape) < 0.05).astype(float)


def test_lagged_stacks_neighbouring_bins_with_zeros_beyond_the_ends():
    x = np.arange(1.0, 5.0).reshape(1, 4, 1)
    got = lagged(x, 1)
    assert got.shape == (1, 4, 3)
    assert got[0, :, 0].tolist() == [0, 1, 2, 3]  # the bin before
    assert got[0, :, 1].tolist() == [1, 2, 3, 4]  # the bin itself
    assert got[0, :, 2].tolist() == [2, 3, 4, 0]  # the bin after


def test_inputs_inferred_a_bin_late_are_recovered_and_a_missed_one_is_not():
    rng = np.random.default_rng(0)
    truth = _pulses(rng, (2, 60, 50, 2))  # train, valid: (trials, T, 2 inputs)
    truth[..., -5:, :] = 0  # (no pulse whose late copy would fall beyond the trial)
    inferred = np.zeros((2, 60, 50, 3))
    inferred[..., 1:, 0] = 2.0 * truth[..., :-1, 0]  # input 0, seen one bin late, scaled
    inferred[..., 1:] += 0.01 * rng.standard_normal((2, 60, 50, 2))  # input 1: missed
    per_input = input_r2_per_dim(inferred[0], truth[0], inferred[1], truth[1], bin_ms=10)
    assert per_input.shape == (2,) and per_input[0] > 0.99 and per_input[1] < 0.05
    # the window is +-20 ms: 2 bins of 10 ms, 5 bins of 4 ms
    far = np.zeros_like(inferred)
    far[..., 5:, 0] = truth[..., :-5, 0]  # five bins late: outside a 20 ms window of 10 ms bins
    assert input_r2_per_dim(far[0], truth[0], far[1], truth[1], bin_ms=10)[0] < 0.05
    assert input_r2_per_dim(far[0], truth[0], far[1], truth[1], bin_ms=4)[0] > 0.99  # 5 lags


def test_split_metrics_report_input_r2_only_with_true_inputs_and_inferred_inputs():
    rng = np.random.default_rng(1)
    truth = {s: _pulses(rng, (30, 40, 1)) for s in ("train", "valid")}
    spikes = {s: rng.poisson(1.0, (30, 40, 4)).astype(float) for s in truth}

    def split(s, with_truth):
        return SimpleNamespace(
            spikes=spikes[s],
            truth_rates=None,
            truth_latents=None,
            truth_inputs=truth[s] if with_truth else None,
        )

    def data(with_truth):
        splits = {s: split(s, with_truth) for s in truth}
        return SimpleNamespace(heldout=np.zeros(4, bool), splits=splits, n_time=40, bin_ms=10.0)

    outputs = {
        s: {"rates": np.ones((30, 40, 4)), "inferred_inputs": truth[s] * 3 + 1} for s in truth
    }
    m = split_metrics(data(True), outputs)
    assert m["val/input_r2"] > 0.99 and m["val/input_r2_min"] == m["val/input_r2"]
    assert "val/input_r2" not in split_metrics(data(False), outputs)
    no_inputs = {s: {"rates": o["rates"]} for s, o in outputs.items()}
    assert "val/input_r2" not in split_metrics(data(True), no_inputs)
