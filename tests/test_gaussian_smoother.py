"""The Gaussian smoother behind ``multiregion_rnn``'s ceiling bound: on a near-Gaussian problem it
agrees with the particle smoother, known inputs move its estimate, bad input is refused, and the
member's model steps exactly as the member's simulator does."""

import numpy as np
import pytest

from dsid.zoo.ceilings.gaussian_smoother import (
    GaussianStateSpace,
    gaussian_smoothed_rates,
    smooth_trials,
)
from dsid.zoo.ceilings.particle_smoother import StateSpace, smoothed_rates

W = np.linspace(-1.0, 1.0, 20)
NOISE_SD = 0.1


def drift_models():
    """A 1-D random walk from N(0, 1) read by 20 Poisson neurons (log-rates -0.5 + w x), for both
    smoothers."""
    gaussian = GaussianStateSpace(
        prior_mean=np.zeros(1),
        prior_cov=np.eye(1),
        noise_cov=NOISE_SD**2 * np.eye(1),
        step=lambda z: z,
        step_jacobian=lambda z: np.broadcast_to(np.eye(1), (z.shape[0], 1, 1)).copy(),
        log_rates=lambda z: -0.5 + z * W,
        log_rates_jacobian=lambda z, idx: np.broadcast_to(
            W[idx][None, :, None], (z.shape[0], idx.size, 1)
        ).copy(),
        states=lambda z: z,
    )
    particles = StateSpace(
        prior=lambda rng, n: rng.standard_normal((n, 1)),
        step=lambda x: x,
        noise_sd=NOISE_SD,
        log_rates=lambda x: -0.5 + x * W,
    )
    return gaussian, particles


def simulate(rng, n_trials, n_time):
    x = np.cumsum(NOISE_SD * rng.standard_normal((n_trials, n_time, 1)), 1)
    x += rng.standard_normal((n_trials, 1, 1))
    rates = np.exp(-0.5 + x * W)
    return x, rates, rng.poisson(rates)


def test_agrees_with_the_particle_smoother_where_the_posterior_is_near_gaussian():
    gaussian, particles = drift_models()
    x, rates, spikes = simulate(np.random.default_rng(0), 30, 25)
    observed = np.arange(0, 20, 2)
    g_rates, g_x = gaussian_smoothed_rates(gaussian, spikes[..., observed], observed, chunk=7)
    p_rates, p_x = smoothed_rates(particles, spikes[..., observed], observed, 500, 100)
    assert g_rates.shape == rates.shape and g_x.shape == x.shape
    gap = np.abs(g_x - p_x)  # both carry Monte Carlo error
    assert gap.mean() < 0.03 * x.std() and gap.max() < 0.2 * x.std()
    held_out = np.arange(1, 20, 2)
    rel = np.abs(g_rates[..., held_out] - p_rates[..., held_out]) / p_rates[..., held_out]
    assert np.median(rel) < 0.02
    assert 1 - ((g_x - x) ** 2).sum() / ((x - x.mean()) ** 2).sum() > 0.9


def test_known_inputs_move_the_estimate():
    gaussian, _ = drift_models()
    _, _, spikes = simulate(np.random.default_rng(1), 4, 10)
    observed = np.arange(20)
    drive = np.zeros((4, 10, 1))
    drive[:, 4] = 3.0  # a known kick after bin 4
    free, _ = smooth_trials(gaussian, spikes, observed)
    kicked, _ = smooth_trials(gaussian, spikes, observed, drive)
    step = (kicked - free)[:, 5] - (kicked - free)[:, 4]
    assert np.all(step > 1.0)  # the spikes pull back some of the kick, not most of it
    jumps = np.abs(np.diff((kicked - free)[..., 0], axis=1))
    assert np.all(jumps.argmax(1) == 4)  # the estimate jumps where the kick comes, nowhere else


def test_bad_input_is_refused():
    gaussian, _ = drift_models()
    with pytest.raises(ValueError, match="one column per observed neuron"):
        gaussian_smoothed_rates(gaussian, np.zeros((2, 5, 3)), np.arange(4))
    with pytest.raises(ValueError, match="drive must be"):
        gaussian_smoothed_rates(gaussian, np.zeros((2, 5, 4)), np.arange(4), drive=np.zeros((2, 5)))


def test_multiregion_model_steps_as_the_member_simulates():
    from dsid.zoo.ceilings.multiregion_model import augmented_states, multiregion_rnn
    from dsid.zoo.members.multiregion_rnn import build_network, draw_trials, simulate

    data = make_small_reference()
    model, checks = multiregion_rnn(data, seed=0)
    assert checks["true log-rate error"] == 0.0
    net = build_network(0)
    lag = max(e[2] for e in net.edges)
    trials = draw_trials(net, 3, 12, [5, 5])
    sim = simulate(net, {**trials, "burn": np.int64(int(trials["burn"]) - lag)})
    z = augmented_states(net, sim, lag)  # (3, 12, D), stored bins 0..11
    burn = int(trials["burn"])
    nx = net.B.size
    pulses = trials["pulses"][burn:-1]  # (11, K, A): the drive from bin t into bin t + 1
    mu = data.splits["train"].truth_inputs.mean()
    known = net.alpha * np.einsum("tka,an->ktan", pulses - mu, net.B).reshape(3, 11, nx)
    noise = trials["noise"][burn + 1 :].transpose(2, 0, 1, 3).reshape(3, 11, nx)
    pred = model.step(z[:, :-1].reshape(-1, z.shape[-1])).reshape(3, 11, -1)
    np.testing.assert_allclose(pred[..., :nx] + known + noise, z[:, 1:, :nx], atol=1e-10)
    np.testing.assert_allclose(pred[..., nx:], z[:, 1:, nx:], atol=1e-10)
    # and the Jacobian is the step's derivative
    z0, eps = z[:, 3], 1e-6
    jac = model.step_jacobian(z0)
    probe = np.random.default_rng(0).normal(size=z0.shape)
    numeric = (model.step(z0 + eps * probe) - model.step(z0 - eps * probe)) / (2 * eps)
    np.testing.assert_allclose(np.einsum("kde,ke->kd", jac, probe), numeric, atol=1e-6)


def make_small_reference():
    from dsid.zoo.members.multiregion_rnn import make_multiregion_rnn

    return make_multiregion_rnn(seed=0)


def test_multiregion_model_refuses_a_file_of_another_draw():
    from dsid.zoo.ceilings.multiregion_model import multiregion_rnn

    with pytest.raises(ValueError, match=r"not make_multiregion_rnn\(seed=1\)"):
        multiregion_rnn(make_small_reference(), seed=1)
