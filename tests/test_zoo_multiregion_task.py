"""Tests of the ``multiregion_task`` zoo member: the task (the context selects the integrated
stream), the multi-area truth (messages at their delays, effectome on the true edges only) and
interventions (silencing a region, cutting, scaling or holding an edge)."""

import numpy as np
import pytest

from dsid.data.perturbation import Perturbation
from dsid.data.tensor_file import SPLITS
from dsid.zoo.members import ZOO
from dsid.zoo.members.multiregion_task import (
    COHERENCES,
    EDGES,
    draw_trials,
    make_multiregion_task,
    simulate,
)

SMALL = dict(n_trials=(40, 12, 12), n_time=60, neurons_per_region=12)


@pytest.fixture(scope="module")
def trials():
    return draw_trials(200, 100, [0, 1])


@pytest.fixture(scope="module")
def base(trials):
    return simulate(trials)


def test_registered_with_a_cognitive_task_size():
    assert "multiregion_task" in ZOO and ZOO["multiregion_task"].summary
    d = make_multiregion_task(seed=0)
    n_train = d.splits["train"].spikes.shape[0]
    assert n_train < d.n_neurons * 2  # few trials for the neurons
    assert d.area_names == ["sensory", "integrator", "context"]


def test_the_context_selects_the_integrated_stream(trials, base):
    coh = np.asarray(COHERENCES)
    cond = trials["condition"]
    context, c1, c2 = cond // coh.size**2, (cond // coh.size) % coh.size, cond % coh.size
    a_end = base["latents"][:, -1, 3]
    for ctx, chosen, ignored in ((0, c1, c2), (1, c2, c1)):
        sel = context == ctx
        r_chosen = np.corrcoef(a_end[sel], coh[chosen[sel]])[0, 1]
        r_ignored = np.corrcoef(a_end[sel], coh[ignored[sel]])[0, 1]
        assert r_chosen > 0.6 and abs(r_ignored) < 0.3
    assert np.allclose(np.abs(base["latents"][:, -1, 5]), 1.0)  # the context persists


def test_messages_are_the_sources_at_their_delays(base):
    z, m = base["latents"], base["messages"]
    source = {0: z[..., 0:2], 1: z[..., 3:4], 2: z[..., 5:6]}
    for s, d, dl, rank in EDGES:
        assert m[s, d].shape == z.shape[:2] + (rank,)
        np.testing.assert_array_equal(m[s, d][:, dl:], source[s][:, : z.shape[1] - dl])
        assert not m[s, d][:, :dl].any()


def test_file_truth():
    d = make_multiregion_task(seed=0, **SMALL)
    on = np.zeros((3, 3), bool)
    for s, dst, dl, rank in EDGES:
        on[s, dst] = True
        assert d.delay_bins[s, dst] == dl and d.effectome[s, dst] > 0
        assert d.splits["valid"].truth_messages[f"{s}_{dst}"].shape[-1] == rank
    assert np.all(d.effectome[~on] == 0) and np.all(d.delay_bins[~on] == -1)
    for split in SPLITS:
        sd = d.splits[split]
        assert sd.truth_inputs.shape[-1] == 4 and sd.truth_latents.shape[-1] == 7
    assert np.array_equal(np.unique(d.area), [0, 1, 2])


def test_silencing_a_region_from_a_bin(trials, base):
    t0 = 50
    out = simulate(trials, Perturbation(silence_area=2, from_bin=t0))
    z0, z1 = base["latents"], out["latents"]
    np.testing.assert_array_equal(z1[:, :t0], z0[:, :t0])
    assert not z1[:, t0:, 5:7].any()  # the context region is held at 0
    assert not out["messages"][2, 1][:, t0:].any()
    # with the gate at one half the integrator changes from the next bin on; sensory evidence not
    assert np.abs(z1[:, t0 + 2 :, 3] - z0[:, t0 + 2 :, 3]).mean() > 0.05
    np.testing.assert_array_equal(z1[..., 0:2], z0[..., 0:2])


def test_cutting_scaling_and_holding_an_edge(trials, base):
    t0 = 40
    cut = simulate(trials, Perturbation(cut_edges=[(1, 0)], from_bin=t0))
    assert not cut["messages"][1, 0][:, t0:].any()
    np.testing.assert_array_equal(cut["latents"][:, : t0 + 1], base["latents"][:, : t0 + 1])
    assert np.abs(cut["latents"][:, t0 + 1 :, 2] - base["latents"][:, t0 + 1 :, 2]).mean() > 0.05
    scaled = simulate(trials, Perturbation(edge_scale={(0, 1): 2.0}, from_bin=t0))
    np.testing.assert_allclose(
        scaled["messages"][0, 1][:, t0:], 2 * scaled["latents"][:, t0 - 2 : -2, 0:2]
    )
    held = simulate(trials, Perturbation(clamp_edges=[(2, 1)], from_bin=t0))
    np.testing.assert_array_equal(
        held["messages"][2, 1][:, t0:], np.repeat(base["messages"][2, 1][:, t0 - 1 : t0], 60, 1)
    )


def test_perturbed_file_keeps_its_read_out():
    """The perturbed file's rates differ from the unperturbed one's only where the intervention
    acts: the read-out is the unperturbed run's."""
    t0 = 30
    d0 = make_multiregion_task(seed=0, **SMALL)
    d1 = make_multiregion_task(
        seed=0, perturb=Perturbation(cut_edges=[(1, 0)], from_bin=t0), **SMALL
    )
    r0, r1 = d0.splits["train"].truth_rates, d1.splits["train"].truth_rates
    np.testing.assert_array_equal(r1[:, : t0 + 1], r0[:, : t0 + 1])
    sensory = d0.area == 0
    assert not np.array_equal(r1[:, t0 + 1 :, sensory], r0[:, t0 + 1 :, sensory])
    np.testing.assert_array_equal(r1[..., d0.area == 2], r0[..., d0.area == 2])
