import math

import torch

from dsid.registry import OBSERVATIONS, PRIORS


def test_poisson_nll_matches_torch_distributions():
    obs = OBSERVATIONS.build({"name": "poisson"})
    params = torch.randn(2, 10, 5, 1)
    target = torch.poisson(torch.full((2, 10, 5), 1.5))
    expected = -torch.distributions.Poisson(params[..., 0].exp()).log_prob(target)
    torch.testing.assert_close(obs(params, target), expected)
    torch.testing.assert_close(obs.mean(params), params[..., 0].exp())
    assert OBSERVATIONS.get("poisson").check_support(target.numpy()) is None
    assert "negative" in OBSERVATIONS.get("poisson").check_support(-target.numpy() - 1)


def test_poisson_nll_gradient_matches_the_plain_expression_clamp_included():
    obs = OBSERVATIONS.build({"name": "poisson"})
    f64 = torch.float64
    raw = torch.cat(
        [torch.randn(40, dtype=f64) * 3, torch.tensor([-25.0, 21.0, 20.0, -20.0], dtype=f64)]
    )
    target = torch.poisson(torch.full(raw.shape, 2.0, dtype=torch.float64))
    params = raw.clone().view(1, -1, 1, 1).requires_grad_()
    weights = torch.rand(raw.shape, dtype=torch.float64)
    (obs(params, target.view(1, -1, 1)).view(-1) * weights).sum().backward()
    plain = raw.clone().requires_grad_()
    log_rate = plain.clamp(-20.0, 20.0)
    expected = torch.exp(log_rate) - target * log_rate + torch.lgamma(target + 1)
    (expected * weights).sum().backward()
    torch.testing.assert_close(
        obs(params, target.view(1, -1, 1)).view(-1), expected, rtol=1e-12, atol=1e-12
    )
    torch.testing.assert_close(params.grad.view(-1), plain.grad, rtol=1e-12, atol=0.0)
    assert params.grad.view(-1)[40] == 0 and params.grad.view(-1)[41] == 0  # beyond the clamp
    inside = params.detach()[:, :40].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda p: obs(p, target.view(1, -1, 1)[:, :40]), (inside,))
    # a gradient for the counts takes the plain expression
    counts = target.view(1, -1, 1).clone().requires_grad_()
    obs(params.detach(), counts).sum().backward()
    torch.testing.assert_close(
        counts.grad.view(-1), torch.digamma(target + 1) - raw.clamp(-20.0, 20.0)
    )


def test_gaussian_prior_kl_matches_torch():
    prior = PRIORS.build({"name": "gaussian", "var": 0.3}, size=4)
    mean, logvar = torch.randn(3, 4), torch.randn(3, 4) * 0.3
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(prior.mean, (0.5 * prior.logvar).exp())
    torch.testing.assert_close(prior(mean, logvar), torch.distributions.kl_divergence(q, p).sum(-1))


def test_ar1_prior_log_prob_matches_multivariate_normal():
    prior = PRIORS.build({"name": "ar1", "tau": 4.0, "var": 0.5}, size=1)
    T = 6
    a, v = math.exp(-1 / 4.0), 0.5
    cov = torch.tensor([[v * a ** abs(i - j) for j in range(T)] for i in range(T)])
    z = torch.randn(3, T, 1)
    expected = torch.distributions.MultivariateNormal(torch.zeros(T), cov).log_prob(z[..., 0])
    torch.testing.assert_close(prior.log_prob(z), expected, rtol=1e-4, atol=1e-4)


def test_ar1_kl_estimate_is_unbiased():
    torch.manual_seed(0)
    prior = PRIORS.build({"name": "ar1", "tau": 3.0, "var": 0.2}, size=2)
    mean = torch.zeros(20000, 5, 2)
    logvar = torch.full_like(mean, math.log(0.2))
    sample = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
    kl = prior(mean, logvar, sample).mean()
    # exact KL(q||p) for these Gaussians through the multivariate normal form
    T, a, v = 5, math.exp(-1 / 3.0), 0.2
    cov = torch.tensor([[v * a ** abs(i - j) for j in range(T)] for i in range(T)])
    q = torch.distributions.MultivariateNormal(torch.zeros(T), torch.eye(T) * 0.2)
    exact = 2 * torch.distributions.kl_divergence(
        q, torch.distributions.MultivariateNormal(torch.zeros(T), cov)
    )
    assert abs(kl.item() - exact.item()) < 0.05 * max(exact.item(), 0.2)
