"""Student-t prior: log density against torch.distributions, KL estimate against a numerical KL."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from dsid.registry import PRIORS


def test_log_prob_matches_torch_student_t():
    prior = PRIORS.build({"name": "student_t", "df": 3.0, "scale": 0.7}, size=2)
    z = torch.randn(4, 5, 2) * 2
    expected = torch.distributions.StudentT(3.0, 0.0, 0.7).log_prob(z)
    torch.testing.assert_close(prior.log_prob(z), expected)


def exact_kl(mu: float, sigma: float, df: float, scale: float) -> float:
    """KL(N(mu, sigma^2) || StudentT(df, 0, scale)) by numerical integration."""

    def integrand(z):
        lq = stats.norm.logpdf(z, mu, sigma)
        return np.exp(lq) * (lq - stats.t.logpdf(z, df, 0.0, scale))

    return integrate.quad(integrand, mu - 12 * sigma, mu + 12 * sigma, limit=200)[0]


@pytest.mark.parametrize("mu,sigma", [(0.0, 0.3), (1.5, 0.2), (-0.4, 1.0)])
def test_kl_estimate_is_unbiased(mu, sigma):
    torch.manual_seed(0)
    prior = PRIORS.build({"name": "student_t", "df": 4.0, "scale": 0.5}, size=1)
    n = 100_000
    mean = torch.full((n, 1), mu)
    logvar = torch.full((n, 1), 2 * math.log(sigma))
    sample = mean + sigma * torch.randn(n, 1)
    kl = prior(mean, logvar, sample)
    exact = exact_kl(mu, sigma, 4.0, 0.5)
    stderr = kl.std().item() / math.sqrt(n)
    assert abs(kl.mean().item() - exact) < 4 * stderr + 1e-3, (kl.mean().item(), exact, stderr)


def test_time_series_kl_sums_over_steps_and_dimensions():
    prior = PRIORS.build({"name": "student_t"}, size=3)
    mean, logvar = torch.randn(2, 7, 3), torch.randn(2, 7, 3) * 0.1
    sample = mean + (0.5 * logvar).exp() * torch.randn(2, 7, 3)
    per_step = torch.stack([prior(mean[:, t], logvar[:, t], sample[:, t]) for t in range(7)], 1)
    torch.testing.assert_close(prior(mean, logvar, sample), per_step.sum(1))


def test_learnable_scale_and_degrees_of_freedom():
    prior = PRIORS.build({"name": "student_t", "learn_df": True}, size=2)
    assert {n for n, _ in prior.named_parameters()} == {"log_scale", "log_df"}
    fixed = PRIORS.build({"name": "student_t", "learnable": False}, size=2)
    assert not list(fixed.parameters())


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="df and scale must be > 0"):
        PRIORS.build({"name": "student_t", "df": 0.0}, size=2)
    with pytest.raises(ValueError, match="needs the posterior sample"):
        PRIORS.build({"name": "student_t"}, size=2)(torch.zeros(1, 2), torch.zeros(1, 2))
