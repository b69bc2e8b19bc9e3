"""Observation models: log-likelihoods against torch.distributions / scipy, means, support
checks."""

import numpy as np
import pytest
import torch
from scipy import stats

from dsid.data.datamodule import DSIDDataModule
from dsid.data.synth_lorenz import make_lorenz_benchmark
from dsid.data.tensor_file import DataFileError, write_tensor_file
from dsid.registry import OBSERVATIONS

torch.manual_seed(0)
SHAPE = (2, 6, 4)


def test_parameter_counts_come_from_the_models():
    assert {n: OBSERVATIONS.get(n).n_params for n in OBSERVATIONS.names()} == {
        "gamma": 2,
        "gaussian": 2,
        "negative_binomial": 2,
        "poisson": 1,
        "zero_inflated_gamma": 3,
    }


@pytest.mark.parametrize("link", ["softplus", "identity"])
def test_gaussian_nll_matches_torch(link):
    obs = OBSERVATIONS.build({"name": "gaussian", "link": link, "min_std": 0.05})
    params = torch.randn(*SHAPE, 2)
    target = torch.randn(SHAPE)
    mean = torch.nn.functional.softplus(params[..., 0]) if link == "softplus" else params[..., 0]
    std = 0.05 + params[..., 1].exp()
    torch.testing.assert_close(
        obs(params, target), -torch.distributions.Normal(mean, std).log_prob(target)
    )
    torch.testing.assert_close(obs.mean(params), mean)
    torch.testing.assert_close(obs.distribution(params).log_prob(target), -obs(params, target))


def test_gamma_nll_matches_scipy():
    obs = OBSERVATIONS.build({"name": "gamma"})
    params = torch.randn(*SHAPE, 2, dtype=torch.float64)
    target = torch.rand(SHAPE, dtype=torch.float64) * 3 + 0.01
    m, k = params[..., 0].exp().numpy(), params[..., 1].exp().numpy()
    expected = -stats.gamma.logpdf(target.numpy(), a=k, scale=m / k)
    np.testing.assert_allclose(obs(params, target).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(obs.mean(params).numpy(), m)
    torch.testing.assert_close(obs.distribution(params).log_prob(target), -obs(params, target))


@pytest.mark.parametrize("loc", [0.0, 0.05])
def test_zero_inflated_gamma_nll_matches_scipy(loc):
    obs = OBSERVATIONS.build({"name": "zero_inflated_gamma", "loc": loc})
    params = torch.randn(*SHAPE, 3, dtype=torch.float64)
    target = torch.rand(SHAPE, dtype=torch.float64) * 2 + loc + 0.01
    target[:, ::2] = 0.0  # exact zeros: probability mass 1 - q
    q = torch.sigmoid(params[..., 0]).numpy()
    m, k = params[..., 1].exp().numpy(), params[..., 2].exp().numpy()
    y = target.numpy()
    expected = np.where(
        y == 0,
        -np.log1p(-q),
        -np.log(q) - stats.gamma.logpdf(np.where(y > 0, y - loc, 1.0), a=k, scale=m / k),
    )
    np.testing.assert_allclose(obs(params, target).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(obs.mean(params).numpy(), q * (loc + m), rtol=1e-6)


def test_zero_inflated_gamma_sampling_matches_its_mean_and_zero_mass():
    obs = OBSERVATIONS.build({"name": "zero_inflated_gamma", "loc": 0.1})
    params = torch.tensor([[0.5, -0.3, 0.7]]).expand(40000, 3)
    draws = obs.distribution(params).sample()
    assert draws.min() >= 0 and ((draws > 0) & (draws < 0.1)).sum() == 0
    assert abs((draws == 0).float().mean() - (1 - torch.sigmoid(torch.tensor(0.5)))) < 0.01
    assert abs(draws.mean() - obs.mean(params[:1])[0]) < 0.02 * obs.mean(params[:1])[0] + 0.005


def test_negative_binomial_nll_matches_scipy_and_torch():
    obs = OBSERVATIONS.build({"name": "negative_binomial"})
    params = torch.randn(*SHAPE, 2, dtype=torch.float64)
    target = torch.poisson(torch.full(SHAPE, 2.0, dtype=torch.float64))
    m, r = params[..., 0].exp().numpy(), params[..., 1].exp().numpy()
    expected = -stats.nbinom.logpmf(target.numpy(), n=r, p=r / (r + m))
    np.testing.assert_allclose(obs(params, target).numpy(), expected, rtol=1e-6)
    torch.testing.assert_close(obs(params, target), -obs.distribution(params).log_prob(target))
    torch.testing.assert_close(obs.distribution(params).mean, params[..., 0].exp())


@pytest.mark.parametrize(
    "name", ["gaussian", "gamma", "zero_inflated_gamma", "negative_binomial", "poisson"]
)
def test_initial_parameters_reproduce_the_mean(name):
    obs = OBSERVATIONS.build({"name": name})
    mean_counts = np.array([0.05, 0.4, 2.0])
    bias = torch.as_tensor(obs.init_params(mean_counts), dtype=torch.float32)
    assert bias.shape == (3, obs.n_params)
    np.testing.assert_allclose(obs.mean(bias).numpy(), mean_counts, rtol=1e-3)


SUPPORT_CASES = [  # observation, data, accepted?, words in the refusal
    ("poisson", np.array([0.0, 1, 3]), True, ""),
    ("poisson", np.array([0.0, -1, 3]), False, "negative"),
    ("negative_binomial", np.array([0.0, 1.5]), False, "non-integer"),
    ("negative_binomial", np.array([0.0, -2.0]), False, "negative"),
    ("gamma", np.array([0.3, 1.2]), True, ""),
    ("gamma", np.array([0.0, 1.2]), False, "zeros"),
    ("gamma", np.array([-0.1, 1.2]), False, "negative"),
    ("zero_inflated_gamma", np.array([0.0, 1.2]), True, ""),
    ("zero_inflated_gamma", np.array([-0.2, 1.2]), False, "negative"),
    ("gaussian", np.array([-3.0, 1.2]), True, ""),
    ("gaussian", np.array([np.nan, 1.2]), False, "NaN"),
]


@pytest.mark.parametrize("name,data,ok,words", SUPPORT_CASES)
def test_check_support(name, data, ok, words):
    problem = OBSERVATIONS.get(name).check_support(data)
    assert (problem is None) == ok, problem
    if not ok:
        assert words in problem


@pytest.fixture(scope="module")
def calcium_file(tmp_path_factory):
    data = make_lorenz_benchmark(
        seed=4, n_trials=(6, 3, 3), n_time=10, n_neurons=6, n_heldout=2, observation="calcium"
    )
    return write_tensor_file(tmp_path_factory.mktemp("ca") / "calcium.h5", data)


def test_calcium_data_loads_for_continuous_models(calcium_file):
    for name in ("zero_inflated_gamma", "gaussian"):
        dm = DSIDDataModule(str(calcium_file), observation_check=OBSERVATIONS.get(name))
        dm.setup()
        assert dm.data.splits["train"].spikes.dtype == np.float32


@pytest.mark.parametrize(
    "name,exc,words",
    [
        (
            "gamma",
            ValueError,
            ["'train/spikes'", "gamma observation model needs strictly positive", "zeros"],
        ),
        ("poisson", DataFileError, ["'train/spikes'", "integer spike counts"]),
        ("negative_binomial", DataFileError, ["'train/spikes'", "integer spike counts"]),
    ],
)
def test_data_outside_support_refused_at_load_naming_file_and_field(calcium_file, name, exc, words):
    dm = DSIDDataModule(str(calcium_file), observation_check=OBSERVATIONS.get(name))
    with pytest.raises(exc) as err:
        dm.setup()
    msg = str(err.value)
    assert str(calcium_file) in msg and all(w in msg for w in words), msg


def test_negative_counts_refused_for_negative_binomial(tmp_path):
    data = make_lorenz_benchmark(seed=4, n_trials=(6, 3, 3), n_time=10, n_neurons=6, n_heldout=2)
    data.splits["valid"].spikes = data.splits["valid"].spikes.astype(np.float32)
    data.splits["valid"].spikes[0, 0, 0] = -1.0
    path = write_tensor_file(tmp_path / "neg.h5", data)
    with pytest.raises(DataFileError, match="'valid/spikes': expected non-negative") as err:
        DSIDDataModule(str(path), observation_check=OBSERVATIONS.get("negative_binomial")).setup()
    assert str(path) in str(err.value)


def test_synth_calcium_option_keeps_the_default_and_the_truth(tmp_path):
    from dsid.cli import main as cli_main
    from dsid.data.tensor_file import load_tensor_file

    args = [
        "synth",
        "lorenz",
        "--trials",
        "6,3,3",
        "--bins",
        "12",
        "--neurons",
        "6",
        "--heldout",
        "2",
    ]
    assert cli_main(args + ["--out", str(tmp_path / "s.h5")]) == 0
    assert cli_main(args + ["--out", str(tmp_path / "c.h5"), "--observation", "calcium"]) == 0
    spikes = load_tensor_file(tmp_path / "s.h5")
    with pytest.raises(DataFileError, match="integer spike counts"):
        load_tensor_file(tmp_path / "c.h5")  # float traces are not counts
    calcium = load_tensor_file(tmp_path / "c.h5", counts=False)
    again = make_lorenz_benchmark(n_trials=(6, 3, 3), n_time=12, n_neurons=6, n_heldout=2)
    for split in ("train", "valid", "test"):
        s, c = spikes.splits[split], calcium.splits[split]
        np.testing.assert_array_equal(s.spikes, again.splits[split].spikes)  # default deterministic
        np.testing.assert_array_equal(
            c.truth_rates, s.truth_rates
        )  # truth rates and latents remain
        np.testing.assert_array_equal(c.truth_latents, s.truth_latents)
        assert c.spikes.dtype == np.float32 and c.spikes.min() >= 0 and (c.spikes == 0).any()
    import h5py

    with h5py.File(tmp_path / "c.h5") as f:  # the spikes behind the traces are kept as truth
        np.testing.assert_array_equal(f["train/truth/spikes"][()], spikes.splits["train"].spikes)
    big = make_lorenz_benchmark(
        n_trials=(30, 2, 2), n_time=30, n_neurons=30, n_heldout=2, observation="calcium"
    ).splits["train"]
    trace, rates = big.spikes.mean((0, 1)), big.truth_rates.mean((0, 1))
    assert np.corrcoef(trace, rates)[0, 1] > 0.9  # traces are in spikes per bin
    assert 0.5 < trace.sum() / rates.sum() < 1.5


def test_bits_per_spike_is_nlbs_definition():
    """DSID's own bits/spike (no nlb_tools needed to train) equals nlb_tools' where both exist."""
    import numpy as np

    from dsid.evaluation.metrics import bits_per_spike

    nlb = pytest.importorskip("nlb_tools.evaluation")
    rng = np.random.default_rng(0)
    rates = rng.gamma(2.0, 0.1, (6, 20, 5))
    spikes = rng.poisson(rates).astype(float)
    rates[0, 0, 0] = 0.0  # an exact zero is scored as 1e-9 by both
    spikes[1, 2, 3] = np.nan  # NaN entries are ignored by both
    assert bits_per_spike(rates, spikes) == pytest.approx(
        nlb.bits_per_spike(rates.copy(), spikes), rel=1e-12
    )
    assert np.isnan(bits_per_spike(rates, np.zeros_like(spikes)))
    with pytest.raises(ValueError, match="negative"):
        bits_per_spike(-rates, np.nan_to_num(spikes))
