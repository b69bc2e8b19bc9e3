"""The spike-smoothing + Poisson-GLM co-smoothing baseline on synthetic DSID data."""

import numpy as np
import pytest

from dsid.data.tensor_file import DSIDData, SplitData
from dsid.evaluation.metrics import bits_per_spike
from dsid.evaluation.smoothing_baseline import fit_poisson_glm, smooth_spikes, smoothing_baseline


def _latents(rng, trials, n_time, n_lat=3, sd=5.0):
    z = rng.standard_normal((trials, n_time + 40, n_lat))
    k = np.exp(-0.5 * (np.arange(-20, 21) / sd) ** 2)
    z = np.apply_along_axis(lambda v: np.convolve(v, k, "same"), 1, z)[:, 20:-20]
    return z / z.std()


def make_data(
    n_train=300, n_valid=100, n_time=50, n_in=30, n_out=8, independent=False, n_areas=1, seed=0
):
    """Smooth latents -> log-rates -> Poisson counts; held-out neurons are the last ``n_out``."""
    rng = np.random.default_rng(seed)
    n = n_in + n_out
    c = rng.standard_normal((3, n))
    c *= 0.8 / np.linalg.norm(c, axis=0)
    b = np.log(rng.uniform(0.1, 0.3, n))
    splits = {}
    for name, trials in (("train", n_train), ("valid", n_valid)):
        rates = np.exp(_latents(rng, trials, n_time) @ c + b)
        if independent:
            rates[..., n_in:] = np.exp(b[n_in:])
        splits[name] = SplitData(spikes=rng.poisson(rates), truth_rates=rates)
    heldout = np.arange(n) >= n_in
    return DSIDData(bin_ms=10.0, area=np.arange(n) % n_areas, heldout=heldout, splits=splits)


def test_smooth_spikes_single_spike_and_mass():
    spikes = np.zeros((2, 80, 3))
    spikes[0, 40, 1] = 1.0
    sd = 2.5  # window |j| <= ceil(4 * 2.5) = 10 bins
    out = smooth_spikes(spikes, sd)
    kern = np.exp(-0.5 * (np.arange(-10, 11) / sd) ** 2)
    assert out[0, 43, 1] == pytest.approx(np.exp(-0.5 * (3 / sd) ** 2) / kern.sum())
    assert out[0, 51, 1] == 0.0 and out[0, 50, 1] > 0
    assert out.sum() == pytest.approx(1.0)  # interior spike: mass preserved
    assert np.all(out[1] == 0) and np.all(out[0, :, [0, 2]] == 0)
    np.testing.assert_allclose(smooth_spikes(np.ones((1, 30, 2)), 4.0), 1.0)  # edges renormalised
    np.testing.assert_allclose(smooth_spikes(spikes, 0), spikes)


def test_fit_poisson_glm_matches_sklearn():
    from sklearn.linear_model import PoissonRegressor

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2000, 5))
    y = rng.poisson(np.exp(x @ rng.standard_normal((5, 2)) * 0.4 - 1.0))
    w = fit_poisson_glm(x, y, 0.01)
    for k in range(2):
        ref = PoissonRegressor(alpha=0.01, tol=1e-10, max_iter=5000).fit(x, y[:, k])
        np.testing.assert_allclose(w[:-1, k], ref.coef_, atol=1e-4)
        assert w[-1, k] == pytest.approx(ref.intercept_, abs=1e-4)


@pytest.fixture(scope="module")
def fitted():
    data = make_data()
    return data, smoothing_baseline(data)


def test_baseline_positive_and_below_oracle(fitted):
    data, res = fitted
    valid = data.splits["valid"]
    oracle = bits_per_spike(valid.truth_rates[..., data.heldout], valid.spikes[..., data.heldout])
    assert res["rates"].shape == (100, 50, 8) and res["rates"].min() > 0
    assert 0.1 < res["co_bps"] < oracle
    assert res["kern_sd_ms"] in (20, 40, 60, 100, 150) and res["alpha"] in (1e-3, 1e-2, 1e-1)
    assert len(res["cv"]) == 15
    fixed = smoothing_baseline(data, kern_sd_ms=res["kern_sd_ms"], alpha=res["alpha"])
    assert fixed["co_bps"] == pytest.approx(res["co_bps"]) and fixed["cv"] == []


def test_independent_heldout_near_zero():
    res = smoothing_baseline(make_data(n_train=200, n_time=40, independent=True, seed=2))
    assert abs(res["co_bps"]) < 0.05


def test_choices_use_train_only(fitted):
    data, first = fitted
    rng = np.random.default_rng(9)
    other = SplitData(
        spikes=rng.poisson(1.0, data.splits["valid"].spikes.shape)
    )  # unrelated valid spikes
    changed = DSIDData(
        bin_ms=data.bin_ms,
        area=data.area,
        heldout=data.heldout,
        splits={"train": data.splits["train"], "valid": other},
    )
    second = smoothing_baseline(changed)
    for key in ("kern_sd_ms", "alpha", "cv"):
        assert second[key] == first[key]
    assert second["co_bps"] < first["co_bps"]


def test_multi_area():
    data = make_data(n_areas=2, seed=4)
    res = smoothing_baseline(data, kern_sd_ms=40.0)
    assert (
        res["rates"].shape[-1] == data.heldout.sum() and res["co_bps"] > 0.1 and len(res["cv"]) == 3
    )


def test_errors_name_the_field():
    data = make_data(n_train=20, n_valid=5, n_time=20)
    with pytest.raises(ValueError, match="test/spikes"):
        smoothing_baseline(data, split="test")
    del data.splits["train"]
    with pytest.raises(ValueError, match="train/spikes"):
        smoothing_baseline(data)
    data = make_data(n_train=20, n_valid=5, n_time=20)
    data.heldout = np.zeros_like(data.heldout)
    with pytest.raises(ValueError, match="neurons/heldout"):
        smoothing_baseline(data)
