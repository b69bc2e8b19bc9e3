"""MultiAreaSAE and the coupling modules: exact independence without coupling, gradients, delay and
effectome read-outs, input errors, and one tiny in-process training."""

import copy

import numpy as np
import pytest
import torch

from dsid.data.multiarea.synth import synth_multiarea, synth_two_area_linear
from dsid.data.tensor_file import load_tensor_file
from dsid.models import build_model
from dsid.models.multiarea.model import MultiAreaSAE
from dsid.models.sae import SequentialAutoencoder
from dsid.registry import COUPLINGS, GENERATORS
from tests.area_by_area import area_by_area_forward
from tests.conftest import TINY_MODEL, TINY_MULTIAREA_OVERRIDES, tiny_info

B, T = 2, 10


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def multiarea_cfg(coupling="lowrank", **kwargs):
    cfg = copy.deepcopy(TINY_MODEL)
    cfg.update(name="multiarea", coupling={"name": coupling, **kwargs})
    return cfg


def uneven_info():
    """Two areas of 3 and 5 neurons, interleaved in the file, one held out in each."""
    info = tiny_info(n_neurons=8, n_heldout=0, n_areas=2)
    info["area"] = [0, 1, 1, 0, 1, 1, 0, 1]
    info["heldout"] = [False, False, True, False, False, False, True, False]
    info["mean_counts"] = [0.1 * (i + 1) for i in range(8)]
    return info


def test_no_coupling_is_exactly_independent_single_area_models():
    """Without coupling the areas are the single-area models (the same numbers up to the summation
    order of batched matrix products, which the areas share), and exactly independent: changing one
    area's spikes leaves every output of the other area bit for bit unchanged."""
    torch.manual_seed(0)
    info = uneven_info()
    model = build_model(multiarea_cfg("none"), info).eval()
    assert isinstance(model, MultiAreaSAE) and model.coupling.edges == []
    spikes = torch.poisson(torch.full((3, T, 8), 0.5))
    out = model(model.augment(spikes, "predict")[0], n_forward=2, sample=False)
    assert "messages" not in out and out["rates"].shape == (3, T + 2, 8)
    terms = model.loss_terms(out, spikes, None)
    area, heldout = np.array(info["area"]), np.array(info["heldout"])
    single_cfg = {k: v for k, v in TINY_MODEL.items() if k != "augmentations"}
    F, recon, kl_ic = TINY_MODEL["factor_size"], 0.0, 0.0
    for a in range(2):
        idx = np.flatnonzero(area == a)
        sae = SequentialAutoencoder.from_config(
            single_cfg,
            {
                "heldout": heldout[idx].tolist(),
                "mean_counts": np.array(info["mean_counts"])[idx].tolist(),
            },
        )
        sae.load_state_dict(model.areas[a].state_dict())  # same architecture, key for key
        sae.eval()
        ref = sae(spikes[..., idx][..., sae.heldin_idx], n_forward=2, sample=False)
        torch.testing.assert_close(out["rates"][..., idx], ref["rates"], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(
            out["factors"][..., a * F : (a + 1) * F], ref["factors"], rtol=1e-6, atol=1e-7
        )
        ref_terms = sae.loss_terms(ref, spikes[..., idx])
        recon, kl_ic = recon + ref_terms["recon"], kl_ic + ref_terms["kl_ic"]
    torch.testing.assert_close(terms["recon"], recon)  # the loss is the sum of the areas' losses
    torch.testing.assert_close(terms["kl_ic"], kl_ic)
    other = spikes.clone()
    other[..., area == 1] = torch.poisson(torch.full_like(other[..., area == 1], 2.0))
    out2 = model(model.augment(other, "predict")[0], n_forward=2, sample=False)
    for key, cols in (("rates", area == 0), ("factors", slice(0, F)), ("states", slice(0, 12))):
        assert torch.equal(out2[key][..., cols], out[key][..., cols]), key
    assert not torch.equal(out2["rates"][..., area == 1], out["rates"][..., area == 1])


VARIANTS = [(name, {}) for name in COUPLINGS.names()] + [("delay", {"stochastic": True})]


@pytest.mark.parametrize("source", ["rates", "factors", "state"])
@pytest.mark.parametrize(
    "name,kwargs", VARIANTS, ids=[n + "-stochastic" * bool(k) for n, k in VARIANTS]
)
def test_every_coupling_trains_end_to_end(name, kwargs, source):
    torch.manual_seed(0)
    info = tiny_info(n_neurons=9, n_heldout=3, n_areas=3)
    model = build_model(multiarea_cfg(name, source=source, **kwargs), info)
    spikes = torch.poisson(torch.ones(B, T, 9))
    x, mask = model.augment(spikes, "train")
    out = model(x, n_forward=2)
    M = model.coupling.message_size
    if model.coupling.edges:
        assert out["messages"].shape == (B, T + 2, M)
        index = model.message_index()
        assert sorted(index) == sorted(f"{s}_{d}" for s, d in model.coupling.edges)
        assert sum(sl.stop - sl.start for sl in index.values()) == M
    terms = model.loss_terms(out, spikes, mask)
    assert ("kl_msg" in terms) == (name == "bottleneck" or bool(kwargs.get("stochastic")))
    loss = sum(terms.values()) + sum((w**2).sum() for w in model.recurrent_weights())
    assert torch.isfinite(loss)
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
    assert model.effectome().shape == model.delays().shape == (3, 3)


@pytest.mark.parametrize("generator", GENERATORS.names())
def test_every_generator_can_be_an_area(generator):
    """Any registered generator with the step API (initial_state/step) works in every area."""
    torch.manual_seed(0)
    cfg = multiarea_cfg("delay", stochastic=True, max_delay=2)
    cfg["generator"] = {"name": generator}
    model = build_model(cfg, tiny_info(n_neurons=9, n_heldout=3, n_areas=3))
    spikes = torch.poisson(torch.ones(B, T, 9))
    out = model(model.augment(spikes, "train")[0])
    loss = sum(model.loss_terms(out, spikes).values())
    loss.backward()
    assert torch.isfinite(loss) and out["messages"].shape == (B, T, model.coupling.message_size)
    assert all(p.grad is not None for p in model.coupling.parameters())


def test_allowed_edges_restrict_the_edges():
    info = tiny_info(n_neurons=9, n_heldout=3, n_areas=3)
    cfg = multiarea_cfg("lowrank", lag=3)
    cfg["allowed_edges"] = [[0, 1, 0], [0, 0, 1], [1, 0, 0]]
    model = build_model(cfg, info)
    assert model.coupling.edges == [(0, 1), (1, 2), (2, 0)]
    want = -np.ones((3, 3))
    want[0, 1] = want[1, 2] = want[2, 0] = 3
    assert np.array_equal(model.delays(), want)
    # each area's generator gets exactly its incoming messages as external input
    assert [ar.generator.ext_input_size for ar in model.areas] == [2, 2, 2]


def test_effectome_readout_on_a_known_toy():
    """Area 0 sends the same message to areas 1 and 2 at gains 1 and 2; areas 1 and 2 are identical
    copies. Both read-outs give exactly 0 off these edges and a ratio of 2 between them."""
    torch.manual_seed(0)
    info = tiny_info(n_neurons=12, n_heldout=3, n_areas=3)
    info["area"] = [0] * 4 + [1] * 4 + [2] * 4
    info["heldout"] = [False, False, False, True] * 3
    cfg = multiarea_cfg("lowrank", rank=1, lag=0)
    cfg["generator"] = {**cfg["generator"], "dropout": 0.0}
    cfg["allowed_edges"] = [[0, 1, 1], [0, 0, 0], [0, 0, 0]]
    model = build_model(cfg, info)
    model.areas[2].load_state_dict(model.areas[1].state_dict())
    w = torch.randn(1, TINY_MODEL["factor_size"]) * 1e-3  # small: the linear regime
    with torch.no_grad():
        model.coupling.proj[0].weight.copy_(torch.cat([w, 2 * w]))
    spikes = torch.poisson(torch.full((20, T, 12), 1.0))
    spikes[..., 8:] = spikes[..., 4:8]  # areas 1 and 2 see the same data
    model.train()
    model(model.augment(spikes, "predict")[0], sample=False)  # message statistics
    strength = model.effectome()  # before any measurement: the coupling's message strength
    assert np.count_nonzero(strength) == 2 and strength[0, 2] == pytest.approx(
        2 * strength[0, 1], rel=1e-5
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    eff = model.measure_effects(spikes)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert model.training  # measuring leaves the model as it was
    np.testing.assert_allclose(model.effectome(spikes), eff, rtol=1e-6)
    np.testing.assert_allclose(model.effectome(), strength)  # nothing was kept
    off = np.ones((3, 3), bool)
    off[0, 1] = off[0, 2] = False
    assert np.all(eff[off] == 0) and eff[0, 1] > 0
    assert eff[0, 2] / eff[0, 1] == pytest.approx(2.0, rel=0.02)


def test_delay_coupling_recovers_a_planted_delay(tmp_path):
    """Two linear areas, 0 -> 1 with a 4-bin delay: a short fit of the delay coupling (fed the true
    source latents, scored on the destination's next latent state through a learned linear step)
    puts its delay distribution on the planted delay."""
    path = synth_two_area_linear(tmp_path / "lin.h5", delay=4, seed=0, n_trials=(200, 10, 10))
    lat = torch.as_tensor(load_tensor_file(path).splits["train"].truth_latents, dtype=torch.float32)
    x0, x1 = lat[..., :2], lat[..., 2:]  # 2 latent dimensions per area
    torch.manual_seed(0)
    cpl = COUPLINGS.build(
        {"name": "delay", "rank": 1, "max_delay": 8, "lag_scale": 5.0},
        n_areas=2,
        source_sizes=[2, 2],
        target_sizes=[1, 1],
        allowed_edges=[[0, 1], [0, 0]],
    )
    step = torch.nn.Linear(2 + 1, 2)  # x1(t+1) ~ A x1(t) + V m(t) + b
    opt = torch.optim.Adam([*cpl.parameters(), *step.parameters()], lr=0.02)
    for _ in range(150):
        m = cpl.run([x0, x1])[0][0]  # (trials, T, 1): m(t) from x0 up to t
        pred = step(torch.cat([x1[:, :-1], m[:, :-1]], -1))
        loss = ((pred - x1[:, 1:])[:, 8:] ** 2).mean()  # after the window has filled
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = cpl.lag_weights()[0]
    assert int(w.argmax()) == 4 and w[4] > 0.5, w
    assert abs(cpl.delays()[0, 1] - 4) < 1.0 and cpl.delays()[1, 0] == -1


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda i: i.update(area=[0, 1, 2, 0, 1, 5, 0, 1, 2]), r"neurons/area.*0\.\.2"),
        (lambda i: i.update(area=[0, 1, -1, 0, 1, 2, 0, 1, 2]), r"neurons/area.*0\.\.2"),
        (
            lambda i: i.update(
                heldout=[False, True, False, False, True, False, False, True, False]
            ),
            r"neurons/heldout.*held-in neuron.*area 1",
        ),
    ],
)
def test_bad_area_labels_are_explained(change, match):
    info = tiny_info(n_neurons=9, n_heldout=3, n_areas=3)
    change(info)
    with pytest.raises(ValueError, match=match):
        build_model(multiarea_cfg("lowrank"), info)


@pytest.mark.parametrize(
    "mask,match",
    [
        ([[0, 1], [1, 0]], r"model\.allowed_edges: expected an 3 x 3 .*shape \(2, 2\)"),
        ([[0, 1, 2], [1, 0, 1], [1, 1, 0]], r"model\.allowed_edges: expected only 0 and 1"),
    ],
)
def test_bad_allowed_edges_are_explained(mask, match):
    cfg = multiarea_cfg("lowrank")
    cfg["allowed_edges"] = mask
    with pytest.raises(ValueError, match=match):
        build_model(cfg, tiny_info(n_neurons=9, n_heldout=3, n_areas=3))


def test_tiny_multiarea_training_logs_recovery_metrics(tmp_path):
    from dsid.runs.config import compose
    from dsid.runs.train import train
    from dsid.runs.wandb_offline import read_offline_run

    path = synth_multiarea(
        tmp_path / "ma.h5", seed=1, n_trials=(24, 8, 8), n_time=20, neurons_per_area=8
    )
    cfg = compose(
        TINY_MULTIAREA_OVERRIDES
        + [
            f"data.path={path}",
            "data.batch_size=12",
            "trainer.max_epochs=2",
            "train.metrics_every_n_steps=1",
            "logger=wandb",
        ]
    )
    run_dir = tmp_path / "run"
    metrics = train(cfg, run_dir=str(run_dir))
    for key in (
        "val/effectome_cosine",
        "val/edge_auroc",
        "val/delay_error",
        "val/message_r2",
        "val/rate_r2_area2",
        "val/co_bps_area0",
    ):
        assert np.isfinite(metrics[key]), key
    assert -1 <= metrics["val/effectome_cosine"] <= 1 and 0 <= metrics["val/delay_error"] <= 3
    logged = read_offline_run(run_dir)
    assert any("val/effectome_cosine" in row for row in logged["history"])
    assert logged["summary"]["final/val/effectome_cosine"] == pytest.approx(
        metrics["val/effectome_cosine"]
    )
    for name in ("effectome", "delays", "messages"):
        assert (run_dir / "figures" / f"{name}.png").exists(), name
    # W&B: the best checkpoint and the inference file as artifacts, the config once, job type and
    # tags
    from wandb.proto import wandb_internal_pb2 as pb

    from dsid.runs.wandb_offline import iter_records

    (wb,) = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    types, runs = [], []
    for raw in iter_records(wb):
        rec = pb.Record()
        rec.ParseFromString(raw)
        if rec.WhichOneof("record_type") == "artifact":
            types.append(rec.artifact.type)
        elif rec.WhichOneof("record_type") == "run":
            runs.append(rec.run)
    assert "model" in types and "inference" in types, types
    assert runs[0].job_type == "train" and "multiarea" in list(runs[0].tags)
    assert "config" not in logged["config"]  # not logged a second time under "config"


@pytest.mark.parametrize("coupling", ["lowrank", "gated", "delay"])
def test_grouped_unroll_matches_an_area_by_area_reference(coupling):
    """The areas are stepped as one group; a plain loop over areas with each generator's own
    ``step`` and messages assembled edge by edge gives the same factors (uneven in-degrees: zero
    padding)."""
    torch.manual_seed(0)
    info = tiny_info(n_neurons=9, n_heldout=3, n_areas=3)
    cfg = multiarea_cfg(coupling, rank=2, **({"max_delay": 3} if coupling == "delay" else {}))
    cfg["allowed_edges"] = [[0, 1, 1], [0, 0, 0], [0, 1, 0]]  # in-degrees 0, 2, 1
    model = build_model(cfg, info).eval()
    assert model.msg_width == 4 and [ar.generator.ext_input_size for ar in model.areas] == [4, 4, 4]
    x = model.augment(torch.poisson(torch.ones(B, T, 9)), "predict")[0]
    got = model(x, sample=False)
    factors, messages = area_by_area_forward(model, x)
    torch.testing.assert_close(got["factors"], factors, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got["messages"], messages, rtol=1e-5, atol=1e-6)


def test_edge_gains_and_the_sparsity_penalty():
    """An edge's gain is the norm of (destination input weights for its message) x (its projection);
    the ``sparsity`` penalty is that weight times the summed gains, and descending it shrinks
    them."""
    torch.manual_seed(0)
    info = tiny_info(n_neurons=9, n_heldout=3, n_areas=3)
    model = build_model(multiarea_cfg("lowrank", rank=1, sparsity=2.0), info)
    cpl = model.coupling
    gains = model.edge_gains()
    assert gains.shape == (len(cpl.edges),) and (gains > 0).all()
    e = cpl.edges.index((1, 2))
    W = model.areas[2].generator.cell.weight_ih[:, 2:]  # after the 2 inferred inputs: the messages
    col = cpl.incoming(2).index(e)
    U = cpl.proj[1].weight[cpl.outgoing(1).index(e)]  # (S,)
    torch.testing.assert_close(gains[e], torch.linalg.norm(torch.outer(W[:, col], U)))
    with torch.no_grad():
        cpl.proj[1].weight[cpl.outgoing(1).index(e)] = 0.0
    assert model.edge_gains()[e] == 0
    spikes = torch.poisson(torch.ones(B, T, 9))
    out = model(model.augment(spikes, "train")[0])
    terms = model.loss_terms(out, spikes)
    torch.testing.assert_close(terms["reg_sparsity"], 2.0 * model.edge_gains().sum())
    before = model.edge_gains().sum().item()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(5):
        opt.zero_grad()
        model.loss_terms(model(model.augment(spikes, "train")[0]), spikes)[
            "reg_sparsity"
        ].backward()
        opt.step()
    assert model.edge_gains().sum().item() < before
    plain = build_model(multiarea_cfg("lowrank", rank=1), info)
    assert "reg_sparsity" not in plain.loss_terms(plain(plain.augment(spikes, "train")[0]), spikes)


def test_lag_entropy_penalty():
    """``reg_lag_entropy`` = weight x summed entropy of the edges' delay distributions: log(D + 1)
    per edge at the uniform start, near 0 once an edge puts its weight on one lag."""
    cpl = COUPLINGS.build(
        {"name": "delay", "rank": 1, "max_delay": 4, "lag_entropy": 0.5},
        n_areas=2,
        source_sizes=[2, 2],
        target_sizes=[1, 1],
    )
    terms = cpl.loss_terms(None)
    assert terms["reg_lag_entropy"].item() == pytest.approx(0.5 * 2 * np.log(5), rel=1e-5)
    with torch.no_grad():
        cpl.delay_logits[:, 2] = 50.0
    assert cpl.loss_terms(None)["reg_lag_entropy"].item() < 1e-6
    assert np.allclose(cpl.delays()[[0, 1], [1, 0]], 2.0)
    with pytest.raises(ValueError, match="lag_entropy"):
        COUPLINGS.build(
            {"name": "delay", "lag_entropy": -1.0},
            n_areas=2,
            source_sizes=[2, 2],
            target_sizes=[1, 1],
        )
    for name in ("lowrank", "bottleneck", "delay", "gated"):
        with pytest.raises(ValueError, match="sparsity >= 0"):
            COUPLINGS.build(
                {"name": name, "sparsity": -1.0},
                n_areas=2,
                source_sizes=[2, 2],
                target_sizes=[1, 1],
            )


def test_training_loss_adds_the_model_regularisers():
    """``reg_*`` terms join the training loss (ramped in with the L2 penalty)."""
    from dsid.training.lightning_module import TrainingModule

    torch.manual_seed(0)
    info = tiny_info(n_neurons=9, n_heldout=3, n_areas=3)
    module = TrainingModule(
        multiarea_cfg("delay", rank=1, max_delay=2, sparsity=0.5, lag_entropy=0.2),
        info,
        {"l2_scale": 0.01},
    )
    loss, logs = module.compute_loss({"spikes": torch.poisson(torch.ones(B, T, 9))}, "train")
    assert logs["reg_sparsity"] > 0 and logs["reg_lag_entropy"] > 0
    want = (
        logs["recon"]
        + logs["kl"]
        + 0.01 * logs["l2"]
        + logs["reg_sparsity"]
        + logs["reg_lag_entropy"]
    )
    torch.testing.assert_close(loss, want)  # no trainer: every ramp is at 1
