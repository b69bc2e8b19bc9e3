"""The generators' unroll equals the plain bin-by-bin reference: outputs and every gradient, in
float64, for each generator with and without controller, external input and forward bins."""

import itertools

import pytest
import torch

from dsid.registry import GENERATORS
from tests.per_bin_unroll import per_bin_unroll

B, T, I, C, E, F, N_FWD = 3, 7, 5, 6, 2, 4, 3


def run(gen, fn, ic, ci, ext, n_steps, seed, sample=True):
    """``fn`` (the bin-by-bin reference) or the generator's own autograd unroll
    (``stepwise_forward`` where the generator also has a compiled path: tests/test_recurrent_scan.py
    compares that one)."""
    torch.manual_seed(seed)  # the same dropout masks and posterior samples for both unrolls
    own = getattr(gen, "stepwise_forward", gen)
    out = (
        fn(gen, ic, ci, ext, n_steps, sample)
        if fn is per_bin_unroll
        else own(ic, ci, ext, n_steps, sample)
    )
    loss = sum(
        (o * torch.linspace(0.5, 1.5, o.shape[-1], dtype=o.dtype)).sum()
        for o in out
        if o is not None
    )
    leaves = [x for x in (ic, ci, ext) if x is not None] + list(gen.parameters())
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    # a weight an unroll never touches gets no gradient: count it as zero
    return out, [torch.zeros_like(x) if g is None else g for g, x in zip(grads, leaves)]


@pytest.mark.parametrize(
    "name,co_size,ext_size,n_fwd",
    list(itertools.product(["lfads", "node", "linear"], [0, 2], [0, E], [0, N_FWD])),
)
def test_unroll_equals_the_reference(name, co_size, ext_size, n_fwd):
    torch.manual_seed(0)
    gen = (
        GENERATORS.build(
            {"name": name, "dropout": 0.2},
            ic_size=I,
            co_size=co_size,
            factor_size=F,
            ci_input_size=C if co_size else 0,
            ext_input_size=ext_size,
        )
        .double()
        .train()
    )
    ic = torch.randn(B, I, dtype=torch.float64, requires_grad=True)
    ci = torch.randn(B, T, C, dtype=torch.float64, requires_grad=True) if co_size else None
    ext = torch.randn(B, T, ext_size, dtype=torch.float64, requires_grad=True) if ext_size else None
    fast, g_fast = run(gen, None, ic, ci, ext, T + n_fwd, seed=1)
    ref, g_ref = run(gen, per_bin_unroll, ic, ci, ext, T + n_fwd, seed=1)
    for a, b in zip(fast, ref):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.shape[1] == T + n_fwd
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)
    assert len(g_fast) == len(g_ref)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize(
    "train,sample,n_steps", [(False, False, T), (False, True, T + 2), (True, False, T - 2)]
)
def test_lfads_unroll_in_every_mode(train, sample, n_steps):
    """Evaluation mode (no dropout), posterior means, and fewer bins than the encodings."""
    torch.manual_seed(0)
    gen = (
        GENERATORS.build(
            {"name": "lfads", "dropout": 0.3},
            ic_size=I,
            co_size=2,
            factor_size=F,
            ci_input_size=C,
            ext_input_size=E,
        )
        .double()
        .train(train)
    )
    ic = torch.randn(B, I, dtype=torch.float64, requires_grad=True)
    ci = torch.randn(B, T, C, dtype=torch.float64, requires_grad=True)
    ext = torch.randn(B, T, E, dtype=torch.float64, requires_grad=True)
    fast, g_fast = run(gen, None, ic, ci, ext, n_steps, seed=2, sample=sample)
    ref, g_ref = run(gen, per_bin_unroll, ic, ci, ext, n_steps, seed=2, sample=sample)
    for a, b in zip([*fast, *g_fast], [*ref, *g_ref]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name", ["lfads", "node", "linear"])
def test_every_generator_reads_one_ci_row_per_trial_for_its_samples(name):
    """ci with one row per trial and k posterior samples per trial in ic: every generator gives what
    it gives with ci repeated k times (posterior means, no dropout)."""
    torch.manual_seed(1)
    gen = GENERATORS.build(
        {
            "name": name,
            "ic_size": I,
            "co_size": 2,
            "ci_input_size": C,
            "factor_size": F,
            "dropout": 0.0,
        }
    ).double()
    k, trials = 3, 2
    ic = torch.randn(trials * k, I, dtype=torch.float64)
    ci = torch.randn(trials, T, C, dtype=torch.float64)
    shared = gen(ic, ci, sample=False)
    repeated = gen(ic, ci.repeat_interleave(k, dim=0), sample=False)
    assert torch.allclose(shared.factors, repeated.factors, rtol=1e-10, atol=1e-12)
