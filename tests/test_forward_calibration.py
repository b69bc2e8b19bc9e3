"""Forward predictions mixed with the mean rates by the weight the validation trials choose."""

import h5py
import numpy as np
import torch

from dsid.data.tensor_file import DSIDData, SplitData
from dsid.evaluation.forward_calibration import calibrate_forward, forward_weight
from dsid.evaluation.inference import infer_data
from dsid.evaluation.metrics import poisson_nll
from dsid.models import build_model
from tests.conftest import TINY_MODEL, tiny_info


def _future(rng, n_trials, n_fwd=6, n=7, spread=1.0):
    """True forward rates varying across trials (log-normal around a mean of ~1.5 spikes per bin)
    and their spikes."""
    rates = (
        1.5
        * np.exp(spread * rng.standard_normal((n_trials, 1, n)) - spread**2 / 2)
        * np.ones((1, n_fwd, 1))
    )
    return rates, rng.poisson(rates)


def test_good_predictions_are_kept_and_noise_is_shrunk_to_the_mean():
    rng = np.random.default_rng(0)
    rates, spikes = _future(rng, 400)
    mean = spikes.mean(axis=(0, 1))
    assert forward_weight(rates, spikes, mean) >= 0.9  # the truth: (almost) nothing to mix in
    unrelated, _ = _future(rng, 400)  # as variable as the truth, but about other trials
    assert forward_weight(unrelated, spikes, mean) <= 0.1
    noisy = (
        rates * unrelated / 1.5
    )  # the truth's trial-to-trial variation and as much of other trials'
    w = forward_weight(noisy, spikes, mean)
    assert 0.3 <= w <= 0.7
    mixes = [poisson_nll(v * noisy + (1 - v) * mean, spikes.astype(float)) for v in (0.0, w, 1.0)]
    assert mixes[1] <= min(mixes[0], mixes[2])


def _data(rng, heldout):
    n = heldout.size
    splits = {}
    for split, n_trials in (("train", 300), ("valid", 300), ("test", 50)):
        _, fwd = _future(rng, n_trials, n=n)
        splits[split] = SplitData(spikes=rng.poisson(1.0, (n_trials, 10, n)), forward_spikes=fwd)
    return DSIDData(bin_ms=10.0, area=np.zeros(n, int), heldout=heldout, splits=splits)


def test_the_weight_is_chosen_on_held_in_neurons_of_the_validation_trials_only():
    rng = np.random.default_rng(1)
    heldout = np.array([False] * 5 + [True] * 2)
    data = _data(rng, heldout)
    unrelated = {s: {"rates_forward": _future(rng, d.n_trials)[0]} for s, d in data.splits.items()}
    before = {s: o["rates_forward"].copy() for s, o in unrelated.items()}
    w = calibrate_forward(unrelated, data)
    assert w is not None and w <= 0.1
    mean = data.splits["train"].forward_spikes.mean(axis=(0, 1))
    for (
        s,
        o,
    ) in (
        unrelated.items()
    ):  # every split mixed with the training trials' mean, held-out neurons too
        np.testing.assert_allclose(o["rates_forward"], w * before[s] + (1 - w) * mean, rtol=1e-6)
    # held-out neurons' validation spikes do not move the weight; held-in ones do
    good = {s: {"rates_forward": d.forward_spikes + 0.0} for s, d in data.splits.items()}
    data.splits["valid"].forward_spikes[..., heldout] = 0
    assert calibrate_forward({k: dict(v) for k, v in good.items()}, data) == 1.0
    valid = data.splits["valid"].forward_spikes
    valid[..., ~heldout] = rng.permutation(valid[..., ~heldout])  # held-in spikes of other trials
    assert calibrate_forward(good, data) < 1.0
    # nothing to choose on: left alone
    no_valid = {"test": {"rates_forward": before["test"].copy()}}
    assert calibrate_forward(no_valid, data) is None
    np.testing.assert_array_equal(no_valid["test"]["rates_forward"], before["test"])


def test_inference_files_carry_the_mixed_forward_rates_and_their_weight(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    info = tiny_info()
    data = _data(rng, np.asarray(info["heldout"], bool))
    model = build_model(TINY_MODEL, {**info, "n_forward": 6})
    raw = infer_data(model, data, n_samples=0, calibrate=False)
    out = infer_data(model, data, n_samples=0, out=tmp_path / "inference.h5")
    with h5py.File(tmp_path / "inference.h5", "r") as f:
        w = float(f.attrs["forward_weight"])
        np.testing.assert_allclose(
            f["test/rates_forward"][()], out["test"]["rates_forward"], rtol=1e-6
        )
    mean = data.splits["train"].forward_spikes.mean(axis=(0, 1))
    np.testing.assert_allclose(
        out["test"]["rates_forward"], w * raw["test"]["rates_forward"] + (1 - w) * mean, rtol=1e-5
    )
    np.testing.assert_array_equal(
        out["test"]["rates"], raw["test"]["rates"]
    )  # the window is left alone
