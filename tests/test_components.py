"""Every registered component: forward, backward, no NaN, a gradient for every parameter."""

import pytest
import torch

import dsid.modules  # noqa: F401
from dsid.registry import AUGMENTATIONS, ENCODERS, GENERATORS, OBSERVATIONS, PRIORS, READOUTS

B, T, N, I, F = 2, 10, 5, 6, 4


def check_grads(module, loss):
    assert torch.isfinite(loss), loss
    loss.backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"


def total(*tensors):
    return sum(t.float().sum() for t in tensors if t is not None)


@pytest.mark.parametrize("name", ENCODERS.names())
def test_encoder(name):
    torch.manual_seed(0)
    enc = ENCODERS.build({"name": name}, input_size=N, ic_size=I)
    out = enc(torch.poisson(torch.ones(B, T, N)))
    assert out.ic_mean.shape == (B, I) and out.ic_logvar.shape == (B, I)
    if out.ci is not None:
        assert out.ci.shape[:2] == (B, T) and out.ci.shape[2] == enc.ci_output_size
    check_grads(enc, total(out.ic_mean, out.ic_logvar, out.ci))


@pytest.mark.parametrize("name", GENERATORS.names())
@pytest.mark.parametrize("co_size", [0, 3])
def test_generator(name, co_size):
    torch.manual_seed(0)
    gen = GENERATORS.build(
        {"name": name}, ic_size=I, co_size=co_size, factor_size=F, ci_input_size=7, ext_input_size=2
    )
    ci = torch.randn(B, T, 7) if co_size else None
    out = gen(torch.randn(B, I), ci=ci, ext=torch.randn(B, T, 2), n_steps=T + 3)
    assert out.factors.shape == (B, T + 3, F)
    if co_size:
        assert out.co_mean.shape == (B, T + 3, co_size)
    check_grads(gen, total(out.factors, out.co_mean, out.co_logvar))


@pytest.mark.parametrize("name", READOUTS.names())
def test_readout(name):
    ro = READOUTS.build({"name": name}, factor_size=F, n_neurons=N, n_params=2)
    out = ro(torch.randn(B, T, F))
    assert out.shape == (B, T, N, 2)
    check_grads(ro, total(out))


@pytest.mark.parametrize("name", OBSERVATIONS.names())
def test_observation(name):
    torch.manual_seed(0)
    obs = OBSERVATIONS.build({"name": name})
    params = (0.3 * torch.randn(B, T, N, obs.n_params)).requires_grad_()
    target = obs.distribution(params.detach()).sample()
    nll = obs(params, target)
    assert nll.shape == (B, T, N) and torch.isfinite(nll).all()
    assert obs.mean(params).shape == (B, T, N)
    nll.sum().backward()
    assert params.grad is not None and torch.isfinite(params.grad).all()
    if list(obs.parameters()):
        check_grads(obs, obs(params.detach(), target).sum())


@pytest.mark.parametrize("name", PRIORS.names())
def test_prior(name):
    torch.manual_seed(0)
    prior = PRIORS.build({"name": name}, size=3)
    mean = torch.randn(B, T, 3, requires_grad=True)
    logvar = (0.1 * torch.randn(B, T, 3)).requires_grad_()
    sample = mean + (0.5 * logvar).exp() * torch.randn(B, T, 3)
    kl = prior(mean, logvar, sample)
    assert kl.shape == (B,)
    check_grads(prior, kl.sum())
    assert mean.grad is not None and logvar.grad is not None


@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_augmentation(name):
    torch.manual_seed(0)
    aug = AUGMENTATIONS.build({"name": name})
    x = torch.poisson(torch.full((B, T, N), 2.0))
    out_x, mask = aug(x, stage="train")
    assert out_x.shape == x.shape and torch.isfinite(out_x).all()
    assert mask is None or mask.shape == x.shape
    same_x, _ = aug(x, stage="predict")
    torch.testing.assert_close(same_x, x)  # no augmentation at inference
    if list(aug.parameters()):
        check_grads(aug, out_x.sum())


from dsid.registry import COUPLINGS  # noqa: E402


@pytest.mark.parametrize("name", COUPLINGS.names())
def test_coupling(name):
    torch.manual_seed(0)
    sizes, targets_h = [5, 4, 6], [7, 3, 7]
    allowed = [[0, 1, 1], [1, 0, 0], [1, 1, 0]]  # 1->2 not allowed
    cpl = COUPLINGS.build(
        {"name": name}, n_areas=3, source_sizes=sizes, target_sizes=targets_h, allowed_edges=allowed
    )
    assert all(allowed[s][d] for s, d in cpl.edges) and len(cpl.edge_sizes) == len(cpl.edges)
    signals = [torch.randn(B, T, s, requires_grad=True) for s in sizes]
    targets = [torch.randn(B, T, h, requires_grad=True) for h in targets_h]
    out = cpl.run(signals, targets)
    assert len(out.messages) == len(cpl.edges)
    for m, k in zip(out.messages, cpl.edge_sizes):
        assert m.shape == (B, T, k) and torch.isfinite(m).all()
    assert sum(cpl.in_size(d) for d in range(3)) == cpl.message_size
    kl = cpl.kl(out)
    assert kl is None or (kl.shape == (B,) and torch.isfinite(kl).all())
    assert cpl.strength().shape == cpl.delays().shape == (3, 3)
    assert all(
        cpl.delays()[s, d] == -1 for s in range(3) for d in range(3) if (s, d) not in cpl.edges
    )
    if list(cpl.parameters()):
        check_grads(cpl, total(*out.messages, kl))
    else:
        assert out.messages == []
