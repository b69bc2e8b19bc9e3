"""The particle smoother behind the Bayes ceiling: informative spikes recover the state at every bin
(the first ones from later bins too), no spikes give back the prior's mean rates, bad input is
refused."""

import numpy as np
import pytest

from dsid.zoo.ceilings.particle_smoother import StateSpace, _Filtered, smoothed_rates
from dsid.zoo.ceilings.state_noise import GaussianWithKicks

W = np.linspace(-1.0, 1.0, 20)


def slow_drift(noise_sd=0.05):
    """A 1-D random walk from N(0, 1), 20 Poisson neurons with log-rates -0.5 + w_n x."""
    return StateSpace(
        prior=lambda rng, n: rng.standard_normal((n, 1)),
        step=lambda x: x,
        noise_sd=noise_sd,
        log_rates=lambda x: -0.5 + x * W,
    )


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
    est_rates, est_x = smoothed_rates(
        model, spikes[..., observed], observed, n_particles=300, n_paths=50
    )
    assert est_rates.shape == rates.shape and est_x.shape == x.shape
    assert r2(est_x[:, 0], x[:, 0]) > 0.9  # one bin alone says little: the later bins are used
    assert r2(est_x, x) > 0.9
    held_out = np.arange(1, 20, 2)
    assert r2(est_rates[..., held_out], rates[..., held_out]) > 0.8


def test_without_spikes_the_posterior_is_the_prior():
    model = slow_drift(noise_sd=0.3)
    rng = np.random.default_rng(1)
    _, rates, _ = simulate(model, rng, 20000, 6)
    est, _ = smoothed_rates(
        model, np.zeros((8, 6, 0)), np.array([], int), n_particles=4000, n_paths=1000
    )
    prior_mean = rates.mean(0)
    np.testing.assert_allclose(
        est.mean(0), prior_mean, rtol=0.06
    )  # 8 trials' paths: Monte Carlo error
    assert prior_mean[-1].max() > 1.2 * prior_mean[0].max()  # the drift visibly widens the prior


def test_bad_input_is_refused():
    model = slow_drift()
    with pytest.raises(ValueError, match="observed neurons"):
        smoothed_rates(model, np.zeros((2, 5, 3)), np.arange(4))
    with pytest.raises(ValueError, match="2 bins"):
        smoothed_rates(model, np.zeros((2, 1, 4)), np.arange(4))
    with pytest.raises(ValueError, match="order must be >= 1"):
        StateSpace(
            prior=model.prior, step=model.step, noise_sd=0.1, log_rates=model.log_rates, order=0
        )


def as_order_2(model):
    """``model`` written as a second-order model whose step ignores the older state."""
    return StateSpace(
        prior=lambda rng, n: np.stack([np.zeros((n, 1)), model.prior(rng, n)], 1),
        step=lambda h: model.step(h[:, -1]),
        noise_sd=model.noise_sd,
        log_rates=model.log_rates,
        order=2,
    )


def test_a_higher_order_model_that_ignores_its_history_smooths_like_the_first_order_one():
    model = slow_drift()
    _, _, spikes = simulate(model, np.random.default_rng(2), 6, 12)
    observed = np.arange(0, 20, 2)
    first = smoothed_rates(
        model, spikes[..., observed], observed, n_particles=100, n_paths=20, chunk=3
    )
    second = smoothed_rates(
        as_order_2(model), spikes[..., observed], observed, n_particles=100, n_paths=20, chunk=3
    )
    for a, b in zip(first, second):
        np.testing.assert_allclose(a, b, rtol=1e-9)


def delayed_drive(delay=3):
    """A silent, nearly white state ``u`` that drives an observed state ``v`` ``delay`` bins later:
    ``u' = 0.2 u + 0.5 e``, ``v' = 0.3 v + u(t - delay + 1) + 0.05 e``; neurons read ``v`` only, so
    ``u_t`` is known only from ``v_{t + delay}``."""
    order = delay

    def prior(rng, n):
        h = np.zeros((n, order, 2))
        h[:, :, 0] = 0.5 * rng.standard_normal((n, order))  # v = 0 before the start
        return h

    def step(h):
        return np.stack([0.2 * h[:, -1, 0], 0.3 * h[:, -1, 1] + h[:, 0, 0]], -1)

    return StateSpace(
        prior=prior,
        step=step,
        noise_sd=0.0,
        log_rates=lambda x: 0.5 + 2 * x[:, 1:] * W,
        order=order,
        noise=DiagonalNoise(np.array([0.5, 0.05])),
    )


class DiagonalNoise:
    def __init__(self, sd):
        self.sd = sd

    def sample(self, rng, shape):
        return self.sd * rng.standard_normal(shape)

    def logpdf(self, r):
        return -0.5 * ((r / self.sd) ** 2).sum(-1)


def test_a_silent_state_is_recovered_from_the_delayed_effects_it_has():
    model, delay, n_time = delayed_drive(), 3, 30
    rng = np.random.default_rng(3)
    h = model.initial(rng, 40)
    xs = []
    for _ in range(n_time):
        xs.append(h[:, -1])
        x = model.step(h) + model.noise.sample(rng, (40, 2))
        h = np.concatenate([h[:, 1:], x[:, None]], 1)
    x = np.stack(xs, 1)
    spikes = rng.poisson(np.exp(model.log_rates(x.reshape(-1, 2))).reshape(40, n_time, -1))
    observed = np.arange(20)
    _, est = smoothed_rates(model, spikes, observed, n_particles=300, n_paths=40)
    seen = slice(0, n_time - delay)  # u's last bins reach v after the trial's end
    # u is never observed, only through v 3 bins later (without the smoother's delayed terms:
    # R2 < 0)
    assert r2(est[:, seen, 0], x[:, seen, 0]) > 0.35
    assert r2(est[:, :, 1], x[:, :, 1]) > 0.5


def test_every_particle_keeps_its_own_history():
    model = delayed_drive(delay=4)
    rng = np.random.default_rng(5)
    spikes = rng.poisson(1.0, (3, 7, 20)).astype(float)
    f = _Filtered(model, spikes, np.arange(20), 50, rng)
    hist = f.start
    for t in range(7):
        if (
            t
        ):  # the forward pass's histories: the ancestor's, shifted, then the particle's own state
            hist = np.concatenate(
                [
                    np.take_along_axis(hist, f.anc[t][..., None, None], 1)[:, :, 1:],
                    f.xs[t][:, :, None],
                ],
                2,
            )
        np.testing.assert_array_equal(f.histories(t, 4), hist)


def test_kick_noise_density_is_normalised_and_matches_its_draws():
    noise = GaussianWithKicks(sd=0.05, rate=0.3, size=1.0, block=2)
    g = np.arange(-1.5, 1.5, 0.005)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    mass = np.exp(noise.logpdf(grid) - np.log(2 * np.pi)).sum() * 0.005**2  # the constant put back
    np.testing.assert_allclose(mass, np.exp(-0.3) * 1.3, rtol=0.01)  # no kick or one kick
    single = GaussianWithKicks(sd=0.05, rate=0.3, size=1.0, block=2, single=True)
    np.testing.assert_allclose(
        np.exp(single.logpdf(grid) - np.log(2 * np.pi)).sum() * 0.005**2, 1.0, rtol=0.01
    )
    r = noise.sample(np.random.default_rng(4), (20000, 4)).reshape(-1, 2)
    kicked = np.linalg.norm(r, axis=-1) > 0.5
    np.testing.assert_allclose(kicked.mean(), 1 - np.exp(-0.3), atol=0.01)
    with pytest.raises(ValueError, match="blocks of 2"):
        noise.sample(np.random.default_rng(0), (3, 5))


def test_a_proposal_that_kicks_more_often_keeps_the_models_posterior():
    kicks = GaussianWithKicks(sd=0.05, rate=0.1, size=1.0, block=2)
    model = StateSpace(
        prior=lambda rng, n: np.zeros((n, 2)),
        step=lambda x: x,
        noise_sd=0.05,
        log_rates=lambda x: x,
        noise=kicks,
        proposal=GaussianWithKicks(sd=0.05, rate=0.5, size=1.0, block=2, single=True),
    )
    rng = np.random.default_rng(6)
    x = np.zeros((20000, 6, 2))
    for t in range(1, 6):
        x[:, t] = x[:, t - 1] + kicks.sample(rng, (20000, 2))
    prior_mean = np.exp(x).mean(0)
    est, _ = smoothed_rates(
        model, np.zeros((8, 6, 0)), np.array([], int), n_particles=2000, n_paths=300
    )
    np.testing.assert_allclose(
        est.mean(0), prior_mean, rtol=0.05
    )  # no spikes: the prior, kicks as rare
    assert prior_mean[-1].min() > 1.1  # the kicks visibly widen it


def test_a_known_start_is_where_every_path_begins():
    model = delayed_drive()
    start = np.random.default_rng(7).normal(size=(2, 3, 2))
    _, est = smoothed_rates(
        model, np.zeros((2, 5, 0)), np.array([], int), n_particles=50, n_paths=10, start=start
    )
    np.testing.assert_allclose(est[:, 0], start[:, -1])
    with pytest.raises(ValueError, match="start must be"):
        smoothed_rates(model, np.zeros((2, 5, 0)), np.array([], int), start=start[:, 1:])
