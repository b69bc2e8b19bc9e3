"""The multi-area model on the compiled scan (dsid/models/multiarea/scan.py): the same function as
the step-by-step loop, every output and every parameter's gradient, for each coupling it covers; the
scan's message feedback against autograd's numerical gradient; the loop where it does not apply."""

import copy

import numpy as np
import pytest
import torch

import dsid.models.multiarea.model as multiarea
from dsid.models import build_model
from dsid.models.multiarea.scan import scan_covers
from dsid.modules.recurrent.lfads_scan import LFADSScan, ScanInputs
from tests.conftest import TINY_MODEL, needs_compiler, tiny_info

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def build(coupling, *, ext=0, contiguous=False, generator=None, **kwargs):
    info = tiny_info(n_neurons=9, n_heldout=3, n_areas=3)
    if contiguous:  # areas in blocks of the file (slices) instead of interleaved (index lists)
        info["area"] = np.repeat(np.arange(3), 3).tolist()
        info["heldout"] = [False, False, True] * 3
    info["ext_input_size"] = ext
    cfg = copy.deepcopy(TINY_MODEL)
    cfg.update(name="multiarea", coupling={"name": coupling, **kwargs})
    cfg["generator"].update(generator or {})
    cfg["allowed_edges"] = [
        [0, 1, 1],
        [0, 0, 0],
        [1, 1, 0],
    ]  # in-degrees 1, 2, 1; area 1 sends nothing
    return build_model(cfg, info).double()


def outputs_and_grads(fn, model, x, **kwargs):
    model.zero_grad(set_to_none=True)
    out = fn(x, **kwargs)
    tensors = {k: v for k, v in out.items() if torch.is_tensor(v) and v.is_floating_point()}
    # a different weight per output, so that no gradient can cancel between them
    loss = sum(
        (i + 1) * v.square().sum() + v.sin().sum()
        for i, (_, v) in enumerate(sorted(tensors.items()))
    )
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in tensors.items()}, grads


def scan_calls(monkeypatch):
    calls = []
    real = multiarea.scan_areas
    monkeypatch.setattr(multiarea, "scan_areas", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


CASES = [
    ("delay", {"max_delay": 3}),
    ("delay", {"max_delay": 3, "source": "state"}),
    ("delay", {"max_delay": 14}),
    ("lowrank", {"lag": 2}),
    ("lowrank", {"lag": 0, "source": "state"}),
    ("none", {}),
]


@needs_compiler
@pytest.mark.parametrize("coupling,kwargs", CASES, ids=[f"{c}-{k}" for c, k in CASES])
@pytest.mark.parametrize("ext,n_samples,n_forward,contiguous", [(0, 1, 2, False), (2, 2, 0, True)])
def test_scan_equals_the_step_loop(
    monkeypatch, coupling, kwargs, ext, n_samples, n_forward, contiguous
):
    """Every output (factors, states, inferred inputs, messages, rates) and every parameter's
    gradient of the scan equal the step-by-step loop's in float64: lags longer than the trial, lag
    0, messages from the state, uneven in-degrees, external inputs, several samples per trial,
    forward bins."""
    torch.manual_seed(0)
    model = build(coupling, ext=ext, contiguous=contiguous, **kwargs).eval()
    x = model.augment(torch.poisson(torch.ones(3, 10, 9)).double(), "predict")[0]
    e = torch.randn(3, 12, ext, dtype=torch.float64) if ext else None
    calls = scan_calls(monkeypatch)
    kw = dict(sample=False, n_forward=n_forward, ext=e, n_samples=n_samples)
    out, grads = outputs_and_grads(model, model, x, **kw)
    assert calls == [1]
    ref_out, ref_grads = outputs_and_grads(model.stepwise_forward, model, x, **kw)
    assert calls == [1] and out.keys() == ref_out.keys() and grads.keys() == ref_grads.keys()
    assert ("messages" in out) == (coupling != "none")
    unused = {
        n for n, _ in model.named_parameters() if "prior" in n
    }  # only the loss reads the priors
    assert set(grads) == {n for n, _ in model.named_parameters()} - unused
    for k in out:
        torch.testing.assert_close(out[k], ref_out[k], rtol=1e-9, atol=1e-11, msg=k)
    for k in grads:
        torch.testing.assert_close(grads[k], ref_grads[k], rtol=1e-8, atol=1e-10, msg=k)


@needs_compiler
@pytest.mark.parametrize("groups", [1, 2])
def test_message_feedback_gradcheck(groups):
    """The compiled scan with message feedback (from the factors and from the state), one group or
    two (block-diagonal weights), against autograd's numerical gradient, every input that takes
    one."""
    torch.manual_seed(1)
    G, T, B, H, F, Hc, C, P, L = groups, 5, 3, 4, 3, 3, 2, 2, 3
    f64 = dict(dtype=torch.float64)

    def r(*shape):
        return (0.5 * torch.randn(*shape, **f64)).requires_grad_()

    for from_state in (False, True):
        inp = ScanInputs(
            r(T, B, G * 3 * Hc),
            r(T, B, G * 3 * H),
            r(B, G * H),
            r(B, G * F),
            r(G, 3 * Hc, F),
            r(G, 3 * Hc, Hc),
            r(G * 3 * Hc),
            r(G, 2 * C, Hc),
            r(G * 2 * C),
            r(G, 3 * H, C),
            r(G, 3 * H, H),
            r(G * 3 * H),
            r(G, F, H),
            r(P, G * (H if from_state else F)),
            r(L, P),
            r(G * 3 * H, P),
            torch.randn(T, B, G * C, **f64),
            torch.empty(0, **f64),
            torch.empty(0, **f64),
            from_state,
            0.0,
            0.0,
        )
        tensors = [i for i, v in enumerate(inp) if torch.is_tensor(v) and v.requires_grad]

        def fn(*values):
            args = list(inp)
            for i, v in zip(tensors, values):
                args[i] = v
            return LFADSScan.apply(*args)

        assert torch.autograd.gradcheck(fn, [inp[i] for i in tensors])


@pytest.mark.parametrize(
    "coupling,kwargs,generator",
    [
        ("gated", {}, None),
        ("delay", {"stochastic": True}, None),
        ("delay", {"source": "rates"}, None),
        ("delay", {}, {"name": "linear"}),
    ],
)
def test_what_the_scan_does_not_cover_runs_on_the_loop(monkeypatch, coupling, kwargs, generator):
    """Target-gated or stochastic messages, rates as the signal, another generator: the loop
    runs."""
    torch.manual_seed(0)
    model = build(coupling, generator=generator, **kwargs).train()
    x = model.augment(torch.poisson(torch.ones(2, 10, 9)).double(), "predict")[0]
    assert not scan_covers(model, x, None, None)
    calls = scan_calls(monkeypatch)
    out = model(x)
    out["factors"].sum().backward()
    assert calls == [] and out["factors"].shape == (2, 10, 18)


@needs_compiler
def test_scan_training_mode_samples_and_drops_out():
    """In training mode the scan samples inferred inputs and applies dropout: two calls differ, the
    running message statistics update, and the outputs stay finite."""
    torch.manual_seed(0)
    model = build("delay", generator={"dropout": 0.3}, max_delay=3).train()
    x = model.augment(torch.poisson(torch.ones(4, 10, 9)).double(), "predict")[0]
    a, b = model(x), model(x)
    assert not torch.equal(a["factors"], b["factors"]) and torch.isfinite(a["rates"]).all()
    assert bool(model.coupling.stats_seen) and (model.coupling.msg_var > 0).all()
    model.eval()
    torch.testing.assert_close(model(x, sample=False)["factors"], model(x, sample=False)["factors"])


@needs_compiler
def test_scan_without_direct_blas_gives_the_same_numbers():
    """The scans' per-bin products call BLAS directly where PyTorch's library exports it (this
    build: reported, not required) and at::mm on the same memory otherwise; both give the same
    outputs and gradients."""
    from dsid.modules.recurrent.native import native_scans

    torch.manual_seed(0)
    model = build("delay", max_delay=3).eval()
    x = model.augment(torch.poisson(torch.ones(3, 10, 9)).double(), "predict")[0]
    results = []
    for direct in (True, False):
        old = native_scans().set_direct_blas(direct)
        try:
            results.append(outputs_and_grads(model, model, x, sample=False, n_forward=2))
        finally:
            native_scans().set_direct_blas(old)
    (out, grads), (ref_out, ref_grads) = results
    print("direct BLAS available:", native_scans().direct_blas_available())
    for k in out:
        torch.testing.assert_close(out[k], ref_out[k], rtol=1e-12, atol=1e-13, msg=k)
    for k in grads:
        torch.testing.assert_close(grads[k], ref_grads[k], rtol=1e-10, atol=1e-12, msg=k)
