"""The generators' unroll equals the plain bin-by-bin reference: outputs and every gradient, in
float64, for each generator with and without controller, external input and forward bins."""
import itertools

import pytest
import torch

from dsid.registry import GENERATORS
from tests.reference_unroll import reference_unroll

B, T, I, C, E, F, N_FWD = 3, 7, 5, 6, 2, 4, 3


def run(gen, fn, ic, ci, ext, n_steps, seed):
    torch.manual_seed(seed)  # the same dropout masks and posterior samples for both unrolls
    out = fn(gen, ic, ci, ext, n_steps, True) if fn is reference_unroll else gen(ic, ci, ext, n_steps, True)
    loss = sum((o * torch.linspace(0.5, 1.5, o.shape[-1], dtype=o.dtype)).sum() for o in out if o is not None)
    leaves = [ic] + [x for x in (ci, ext) if x is not None] + list(gen.parameters())
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return out, grads


@pytest.mark.parametrize("name,co_size,ext_size,n_fwd", list(itertools.product(
    ["lfads", "node", "linear"], [0, 2], [0, E], [0, N_FWD])))
def test_unroll_equals_the_reference(name, co_size, ext_size, n_fwd):
    torch.manual_seed(0)
    gen = GENERATORS.build({"name": name, "dropout": 0.2},
                           ic_size=I, co_size=co_size, factor_size=F, ci_input_size=C if co_size else 0,
                           ext_input_size=ext_size).double().train()
    ic = torch.randn(B, I, dtype=torch.float64, requires_grad=True)
    ci = torch.randn(B, T, C, dtype=torch.float64, requires_grad=True) if co_size else None
    ext = torch.randn(B, T, ext_size, dtype=torch.float64, requires_grad=True) if ext_size else None
    fast, g_fast = run(gen, None, ic, ci, ext, T + n_fwd, seed=1)
    ref, g_ref = run(gen, reference_unroll, ic, ci, ext, T + n_fwd, seed=1)
    for a, b in zip(fast, ref):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.shape[1] == T + n_fwd
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)
    for a, b in zip(g_fast, g_ref):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)
