"""The compiled recurrent scans compute the reference maths: forward values and every gradient,
float64."""

import pytest
import torch
from torch import nn

from dsid.modules.encoders.bigru import BiGRUEncoder
from dsid.modules.generators.lfads import LFADSGenerator
from dsid.modules.recurrent import gru_scan as gru_scan_module
from dsid.modules.recurrent import lfads_scan, native
from dsid.modules.recurrent.gru import gru_update
from dsid.modules.recurrent.gru_scan import gru_scan
from tests.conftest import needs_compiler

pytestmark = needs_compiler


def test_compiled_scans_build():
    assert native.native_scans() is not None


def close(a, b, tol=1e-6):
    scale = max(a.abs().max().item(), b.abs().max().item(), 1e-12)
    assert (a - b).abs().max().item() <= tol * scale, (a - b).abs().max().item()


@pytest.mark.parametrize("clip,chunk_rows", [(None, 4096), (0.4, 4096), (None, 16), (0.4, 4)])
def test_gru_scan_matches_reference_and_gradcheck(monkeypatch, clip, chunk_rows):
    """The scan equals the generators' GRU update stepped bin by bin per group (reversed groups
    stepped from the last bin), values and every gradient, the input's included, whether the
    backward takes all bins in one chunk or in chunks of 4 bins (the last one short: 6 bins) or of
    1."""
    monkeypatch.setattr(gru_scan_module, "BACKWARD_CHUNK_ROWS", chunk_rows)
    torch.manual_seed(0)
    G, T, B, H, N = 3, 6, 4, 5, 2
    reverse = [False, True, False]
    f64 = dict(dtype=torch.float64, requires_grad=True)
    x, h0 = torch.randn(T, B, N, **f64), torch.randn(G, B, H, **f64)
    p = {
        "w_ih": torch.randn(G, 3 * H, N, **f64),
        "b_ih": torch.randn(G, 3 * H, **f64),
        "w_hh": torch.randn(G, 3 * H, H, **f64),
        "b_hh": torch.randn(G, 3 * H, **f64),
    }
    fast, fast_last = gru_scan(
        x, p["w_ih"], p["b_ih"], p["w_hh"], p["b_hh"], reverse, h0=h0, clip=clip
    )
    bound = float("inf") if clip is None else clip
    refs, ref_last = [], []
    for g in range(G):
        pg = {k: v[g : g + 1] for k, v in p.items()}
        h, states = h0[g : g + 1], [None] * T
        for t in reversed(range(T)) if reverse[g] else range(T):
            h = gru_update(x[t].unsqueeze(0), h, pg, bound)
            states[t] = h[0]
        refs.append(torch.stack(states))
        ref_last.append(h[0])
    ref, ref_last = torch.stack(refs, dim=2), torch.stack(ref_last)
    close(fast, ref)
    close(fast_last, ref_last)
    if clip is not None:
        assert (ref.abs() == clip).any(), (
            "the clip must be active somewhere for this test to mean anything"
        )
    leaves = [x, h0, *p.values()]
    w, w_last = torch.randn_like(fast), torch.randn_like(fast_last)
    loss = (fast * w).sum() + (fast_last * w_last).sum()
    ref_loss = (ref * w).sum() + (ref_last * w_last).sum()
    for gf, gr in zip(torch.autograd.grad(loss, leaves), torch.autograd.grad(ref_loss, leaves)):
        close(gf, gr)
    args = [
        a.detach().requires_grad_() for a in (x, p["w_ih"], p["b_ih"], p["w_hh"], p["b_hh"], h0)
    ]
    assert torch.autograd.gradcheck(
        lambda x_, wi, bi, wh, bh, h: gru_scan(x_, wi, bi, wh, bh, reverse, h0=h, clip=clip), args
    )
    with torch.no_grad():  # inference path (no gates kept) gives the same states
        close(
            gru_scan(x, p["w_ih"], p["b_ih"], p["w_hh"], p["b_hh"], reverse, h0=h0, clip=clip)[0],
            ref,
        )


@pytest.mark.parametrize("ci_size", [7, 5, 0])
def test_bigru_encoder_scan_matches_nn_gru(ci_size):
    torch.manual_seed(1)
    enc = BiGRUEncoder(
        input_size=6, ic_size=3, hidden_size=7, ci_size=ci_size, dropout=0.0
    ).double()
    x = torch.randn(4, 9, 6, dtype=torch.float64)
    h_last, ci = enc.run_rnns(x)
    _, ref_last = enc.ic_rnn(x)
    ref_last = torch.cat([ref_last[0], ref_last[1]], dim=-1)
    ref_ci = enc.ci_rnn(x)[0] if ci_size else None
    close(h_last, ref_last)
    loss, ref_loss = h_last.square().sum(), ref_last.square().sum()
    if ci_size:
        close(ci, ref_ci)
        loss, ref_loss = loss + ci.sin().sum(), ref_loss + ref_ci.sin().sum()
    params = list(enc.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    ref_grads = torch.autograd.grad(ref_loss, params, allow_unused=True)
    for g, r in zip(grads, ref_grads):
        assert (g is None) == (r is None)
        if g is not None:
            close(g, r)


class ReplayDropout(nn.Module):
    """Dropout whose masks are given: the first call uses ``first``, then ``masks[0]``,
    ``masks[1]``..."""

    def __init__(self, first, masks):
        super().__init__()
        self.first, self.masks, self.calls, self.p = first, masks, 0, 0.5

    def forward(self, x):
        m = self.first if self.calls == 0 or self.first is None else self.masks[self.calls - 1]
        if self.first is None:
            m = self.masks[self.calls]
        self.calls += 1
        return x * m


def replay(shape, n, gen):
    return (
        (torch.rand(*shape, generator=gen, dtype=torch.float64) < 0.7).double() / 0.7
        if n == 1
        else [
            (torch.rand(*shape, generator=gen, dtype=torch.float64) < 0.7).double() / 0.7
            for _ in range(n)
        ]
    )


CASES = [
    # co_size, ext_input_size, n_ci (encoded bins), n_ext, n_steps (forward bins past the data),
    # dropout, sample
    (3, 0, 8, 0, 8, False, False),
    (3, 2, 8, 8, 11, True, True),
    (0, 0, 0, 0, 7, True, False),
    (0, 2, 0, 6, 9, False, False),
    (2, 2, 6, 9, 9, True, True),
]


@pytest.mark.parametrize("co_size,ext_size,n_ci,n_ext,n_steps,dropout,sample", CASES)
def test_lfads_scan_matches_per_bin_unroll(
    monkeypatch, co_size, ext_size, n_ci, n_ext, n_steps, dropout, sample
):
    torch.manual_seed(2)
    B, H, F, CON = 4, 6, 5, 4
    gen = LFADSGenerator(
        ic_size=3,
        hidden_size=H,
        factor_size=F,
        co_size=co_size,
        ci_input_size=4,
        controller_size=CON,
        ext_input_size=ext_size,
        dropout=0.0,
        clip=0.6,
    ).double()
    ic = torch.randn(B, 3, dtype=torch.float64, requires_grad=True)
    ci = torch.randn(B, n_ci, 4, dtype=torch.float64, requires_grad=True) if co_size else None
    ext = (
        torch.randn(B, n_ext, ext_size, dtype=torch.float64, requires_grad=True)
        if ext_size
        else None
    )
    rng = torch.Generator().manual_seed(3)
    if dropout:
        g_first, g_masks = replay((B, H), 1, rng), replay((B, H), n_steps, rng)
        c_masks = replay((B, CON), n_ci, rng) if co_size else None
    noise = [torch.randn(B, co_size, generator=rng, dtype=torch.float64) for _ in range(n_ci)]

    def run(fn):
        if dropout:
            gen.dropout = ReplayDropout(g_first, g_masks)
            if co_size:
                gen.controller.dropout = ReplayDropout(None, c_masks)
        return fn(ic, ci, ext, n_steps=n_steps, sample=sample)

    with monkeypatch.context() as m:
        pending = list(noise)
        m.setattr(torch, "randn_like", lambda x, **kw: pending.pop(0))
        ref = run(gen.stepwise_forward)
    with monkeypatch.context() as m:
        if dropout:
            masks = {H: torch.stack(g_masks), CON: torch.stack(c_masks) if co_size else None}
            m.setattr(lfads_scan, "dropout_mask", lambda drop, shape, like: masks[shape[-1]])
        m.setattr(
            torch,
            "randn",
            lambda *shape, **kw: torch.stack(noise) if noise else torch.empty(0, B, 0),
        )
        fast = run(gen.forward)
        with torch.no_grad():  # the inference path (no gates kept) computes the same values
            inferred = run(gen.forward)
    for k in ref._fields:
        if getattr(ref, k) is not None:
            close(getattr(inferred, k), getattr(ref, k))
    assert fast.factors.shape == ref.factors.shape == (B, n_steps, F)
    leaves = [x for x in (ic, ci, ext) if x is not None] + list(gen.parameters())
    loss_w = {
        k: torch.randn_like(getattr(ref, k)) for k in ref._fields if getattr(ref, k) is not None
    }
    for k, w in loss_w.items():
        close(getattr(fast, k), getattr(ref, k))

    def loss(out):
        return sum((getattr(out, k) * w).sum() for k, w in loss_w.items())

    g_fast = torch.autograd.grad(loss(fast), leaves, allow_unused=True)
    g_ref = torch.autograd.grad(loss(ref), leaves, allow_unused=True)
    for gf, gr, leaf in zip(g_fast, g_ref, leaves):
        if gr is None or gf is None:
            assert gr is None or not gr.abs().any(), "the fast path lost a gradient"
            continue
        close(gf, gr)
    assert (
        ref.states.abs() == 0.6
    ).any() or n_steps < 9  # the clip is exercised in the longer cases


def test_forward_uses_the_scan_and_falls_back(monkeypatch):
    gen = LFADSGenerator(
        ic_size=3, hidden_size=6, factor_size=5, co_size=2, ci_input_size=4, controller_size=4
    )
    ic, ci = torch.randn(2, 3), torch.randn(2, 5, 4)
    import dsid.modules.generators.lfads as lfads_module

    called = []
    real = lfads_module.lfads_unroll
    monkeypatch.setattr(lfads_module, "lfads_unroll", lambda *a: called.append(1) or real(*a))
    gen(ic, ci)
    assert called == [1]
    monkeypatch.setenv("DSID_NATIVE", "0")
    out = gen(ic, ci)
    assert called == [1] and out.factors.shape == (2, 5, 5)


def test_cpu_autocast_takes_the_reference_path():
    gen = LFADSGenerator(
        ic_size=3, hidden_size=6, factor_size=5, co_size=2, ci_input_size=4, controller_size=4
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not native.usable(torch.zeros(1))
        out = gen(torch.randn(2, 3), torch.randn(2, 5, 4))
    assert out.factors.shape == (2, 5, 5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_factorial_equals_lgamma(dtype):
    x = torch.cat(
        [torch.arange(0, 300, dtype=dtype), torch.tensor([0.5, 2.25, 1e4, 255.5], dtype=dtype)]
    )
    fast, ref = native.log_factorial(x), torch.lgamma(x + 1)
    assert torch.allclose(fast, ref, rtol=1e-6, atol=0)
    assert fast.dtype == dtype and fast.shape == x.shape


def test_lfads_scan_shares_one_encoding_among_a_trials_samples():
    """ci with one row per trial and k samples per trial in ic: the same values and gradients as ci
    repeated k times (the fast path and the reference path)."""
    torch.manual_seed(4)
    gen = LFADSGenerator(
        ic_size=3,
        hidden_size=6,
        factor_size=5,
        co_size=2,
        ci_input_size=4,
        controller_size=4,
        dropout=0.0,
    ).double()
    k, trials = 3, 4
    ic = torch.randn(trials * k, 3, dtype=torch.float64)
    ci = torch.randn(trials, 7, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(trials * k, 7, 5, dtype=torch.float64)
    shared = gen(ic, ci, sample=False).factors
    repeated = gen(ic, ci.repeat_interleave(k, dim=0), sample=False).factors
    close(shared, repeated)
    close(
        torch.autograd.grad((shared * w).sum(), ci)[0],
        torch.autograd.grad((repeated * w).sum(), ci)[0],
    )
    close(gen.stepwise_forward(ic, ci.repeat_interleave(k, dim=0), sample=False).factors, shared)
    close(
        gen.stepwise_forward(ic, ci, sample=False).factors, shared
    )  # the reference path shares them too


@pytest.mark.parametrize("native_path", [True, False])
def test_ci_rows_that_do_not_divide_the_batch_are_an_error(monkeypatch, native_path):
    if not native_path:
        monkeypatch.setenv("DSID_NATIVE", "0")
    gen = LFADSGenerator(
        ic_size=3, hidden_size=6, factor_size=5, co_size=2, ci_input_size=4, controller_size=4
    )
    with pytest.raises(ValueError, match="ci has 4 rows for 6 initial conditions"):
        gen(torch.randn(6, 3), torch.randn(4, 5, 4))


def test_sae_samples_share_the_encoding_and_match_single_sample_means():
    from dsid.models.sae import SequentialAutoencoder

    torch.manual_seed(5)
    cfg = {
        "ic_size": 4,
        "co_size": 2,
        "factor_size": 3,
        "encoder": {"name": "bigru", "hidden_size": 5, "ci_size": 5, "dropout": 0.0},
        "generator": {"name": "lfads", "hidden_size": 6, "controller_size": 4, "dropout": 0.0},
        "observation": {"name": "poisson"},
        "ic_prior": {"name": "gaussian"},
        "co_prior": {"name": "ar1"},
        "augmentations": [],
    }
    model = SequentialAutoencoder.from_config(cfg, {"heldout": [False] * 6 + [True] * 2}).eval()
    x = torch.poisson(torch.full((3, 9, 6), 0.5))
    one = model(x, sample=False)["rates"]
    many = model(x, sample=False, n_samples=4)["rates"]
    assert many.shape == (12, 9, 8)
    close(many, one.repeat_interleave(4, dim=0))


def test_encoder_scan_gradients_with_rows_split_across_threads():
    """Batches larger than one thread's share of rows: the per-thread bias-gradient sums add up."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(6)
        enc = BiGRUEncoder(input_size=5, ic_size=3, hidden_size=6, ci_size=6, dropout=0.0).double()
        x = torch.randn(150, 7, 5, dtype=torch.float64)
        h_last, ci = enc.run_rnns(x)
        _, ref_last = enc.ic_rnn(x)
        loss = h_last.square().sum() + ci.sin().sum()
        ref_loss = (
            torch.cat([ref_last[0], ref_last[1]], -1).square().sum() + enc.ci_rnn(x)[0].sin().sum()
        )
        params = list(enc.ic_rnn.parameters()) + list(enc.ci_rnn.parameters())
        for g, r in zip(
            torch.autograd.grad(loss, params, allow_unused=True),
            torch.autograd.grad(ref_loss, params, allow_unused=True),
        ):
            if r is not None:
                close(g, r)
    finally:
        torch.set_num_threads(threads)


def test_a_failed_openmp_build_is_remembered(tmp_path, monkeypatch):
    """A compiler without OpenMP: the first process tries the OpenMP build, then the plain one;
    later processes load the plain build directly."""
    import torch.utils.cpp_extension as ext

    tried = []

    def fake_load(name, **kw):
        tried.append(name)
        if name.endswith("_omp"):
            raise RuntimeError("fatal error: omp.h: No such file or directory")
        return name

    monkeypatch.setattr(ext, "load", fake_load)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    assert not native._build().endswith("_omp") and len(tried) == 2 and tried[0].endswith("_omp")
    marker = list(tmp_path.glob("*_omp.failed"))
    assert len(marker) == 1 and "omp.h" in marker[0].read_text()
    tried.clear()
    assert native._build() == tried[0] and len(tried) == 1 and not tried[0].endswith("_omp")


def test_each_environment_keeps_its_own_build(monkeypatch):
    """The build's name holds a digest of the sources, PyTorch's version and install location and
    Python's version: two environments sharing one cache do not rebuild each other's module."""
    import torch.utils.cpp_extension as ext

    names = []
    monkeypatch.setattr(ext, "load", lambda name, **kw: names.append(name) or name)
    key = native.build_key()
    assert len(key) == 12 and native.build_key() == key  # stable within one environment
    native._build()
    assert names and names[0].endswith(f"_{key}_omp")
    monkeypatch.setattr(torch, "__file__", "/elsewhere/site-packages/torch/__init__.py")
    assert native.build_key() != key  # another PyTorch install
