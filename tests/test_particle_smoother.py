"""The particle smoother behind the Bayes ceiling: informative spikes recover the state at every bin
(the first ones from later bins too), no spikes give back the prior's mean rates, bad input is refused."""
import numpy as np
import pytest

from dsid.evaluation.particle_smoother import StateSpace, smoothed_rates

W = np.linspace(-1.0, 1.0, 20)


def slow_drift(noise_sd=0.05):
    """A 1-D random walk from N(0, 1), 20 Poisson neurons with log-rates -0.5 + w_n x."""
    return StateSpace(prior=lambda rng, n: rng.standard_normal((n, 1)), step=lambda x: x, noise_sd=noise_sd,
                      log_rates=lambda x: -0.5 + x * W)


def simulate(model, rng, n_trials, n_time):
    x = np.empty((n_trials, n_time, 1))
    x[:, 0] = model.prior(rng, n_trials)
    for t in range(1, n_time):
        x[:, t] = model.step(x[:, t - 1]) + model.noise_sd * rng.standard_normal((n_trials, 1))
    rates = np.exp(model.log_rates(x.reshape(-1, 1))).reshape(n_trials, n_time, -1)
    return x, rates, rng.poisson(rates)


def r2(pred, true):
    return 1 - ((pred - true) ** 2).sum() / ((true - true.mean()) ** 2).sum()


def test_informative_spikes_recover_the_state_first_bin_included():
    model = slow_drift()
    x, rates, spikes = simulate(model, np.random.default_rng(0), 40, 30)
    observed = np.arange(0, 20, 2)
    est_rates, est_x = smoothed_rates(model, spikes[..., observed], observed, n_particles=300, n_paths=50)
    assert est_rates.shape == rates.shape and est_x.shape == x.shape
    assert r2(est_x[:, 0], x[:, 0]) > 0.9  # one bin alone says little: the later bins are used
    assert r2(est_x, x) > 0.9
    held_out = np.arange(1, 20, 2)
    assert r2(est_rates[..., held_out], rates[..., held_out]) > 0.8


def test_without_spikes_the_posterior_is_the_prior():
    model = slow_drift(noise_sd=0.3)
    rng = np.random.default_rng(1)
    _, rates, _ = simulate(model, rng, 20000, 6)
    est, _ = smoothed_rates(model, np.zeros((8, 6, 0)), np.array([], int), n_particles=4000, n_paths=1000)
    prior_mean = rates.mean(0)
    np.testing.assert_allclose(est.mean(0), prior_mean, rtol=0.06)  # 8 trials' paths: Monte Carlo error
    assert prior_mean[-1].max() > 1.2 * prior_mean[0].max()  # the drift visibly widens the prior


def test_bad_input_is_refused():
    model = slow_drift()
    with pytest.raises(ValueError, match="observed neurons"):
        smoothed_rates(model, np.zeros((2, 5, 3)), np.arange(4))
    with pytest.raises(ValueError, match="2 bins"):
        smoothed_rates(model, np.zeros((2, 1, 4)), np.arange(4))
