"""Tests of multi-area recovery metrics and plots on cases with known answers."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from dsid.evaluation.multiarea.metrics import (
    cycle_delay_error,
    delay_error,
    directed_cycles,
    edge_auroc,
    effectome_cosine,
    message_r2,
    per_area_co_bps,
    per_area_rate_r2,
    rate_r2,
)
from dsid.evaluation.multiarea.plots import plot_delays, plot_effectomes, plot_messages

TRUE = np.array([[0, 0.5, 0], [0, 0, 0.8], [0.3, 0, 0]])


def test_effectome_cosine():
    assert effectome_cosine(TRUE, TRUE) == pytest.approx(1.0)
    assert effectome_cosine(TRUE, 3 * TRUE + 7 * np.eye(3)) == pytest.approx(
        1.0
    )  # scale-free, diagonal ignored
    assert effectome_cosine(TRUE, TRUE.T) == pytest.approx(0.0)
    perm = TRUE[[1, 2, 0]][:, [1, 2, 0]] + np.array([[0, 0, 0.4], [0, 0, 0], [0, 0, 0]])
    assert effectome_cosine(TRUE, perm) < 1
    with pytest.warns(RuntimeWarning):
        assert np.isnan(effectome_cosine(TRUE, np.eye(3)))
    with pytest.raises(ValueError):
        effectome_cosine(TRUE, np.zeros((2, 2)))


def test_edge_auroc():
    assert edge_auroc(TRUE + 5 * np.eye(3), TRUE) == 1.0  # diagonal ignored
    assert edge_auroc(-TRUE, TRUE) == 0.0
    assert edge_auroc(np.ones((3, 3)), TRUE) == 0.5
    with pytest.warns(RuntimeWarning, match="one class"):
        assert np.isnan(edge_auroc(TRUE, np.ones((3, 3))))


def test_message_r2():
    rng = np.random.default_rng(0)
    tr, va = rng.normal(size=(50, 20, 2)), rng.normal(size=(30, 20, 2))
    A, b = np.array([[2.0, -1.0, 0.5], [0.3, 1.0, -2.0]]), np.array([1.0, -3.0, 0.2])
    assert message_r2(tr @ A + b, tr, va @ A + b, va) == pytest.approx(1.0, abs=1e-6)
    assert message_r2(tr @ A + b, tr, va @ A + b, va, weighting="variance") == pytest.approx(
        1.0, abs=1e-6
    )
    noise_tr, noise_va = rng.normal(size=(50, 20, 3)), rng.normal(size=(30, 20, 3))
    assert abs(message_r2(noise_tr, tr, noise_va, va)) < 0.02
    half = message_r2(tr[..., :1], tr, va[..., :1], va)  # one of two independent dims recovered
    assert half == pytest.approx(0.5, abs=0.02)
    assert message_r2(tr[..., 0], tr[..., 0], va[..., 0], va[..., 0]) == pytest.approx(
        1.0
    )  # (trials, T)
    with pytest.raises(ValueError):
        message_r2(tr, tr[:10], va, va)


def test_delay_error():
    true = np.array([[-1, 3, -1], [-1, -1, 1], [5, -1, -1]])
    inferred = np.array([[0, 4, 2], [1, 0, 1], [2, 0, 0]])  # errors 1, 0, 3 on true edges
    assert delay_error(inferred, true) == pytest.approx(4 / 3)
    assert delay_error(true, true) == 0.0


def test_cycles_and_cycle_delay_error():
    true = np.array([[-1, 3, -1], [-1, -1, 1], [5, -1, -1]])  # one cycle 0 -> 1 -> 2 -> 0, total 9
    assert directed_cycles(true >= 0) == [[0, 1, 2]]
    both = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 0]], bool)  # 0 <-> 1 and 0 -> 2
    assert directed_cycles(both) == [[0, 1]]
    assert sorted(map(tuple, directed_cycles(~np.eye(3, dtype=bool)))) == [
        (0, 1),
        (0, 1, 2),
        (0, 2),
        (0, 2, 1),
        (1, 2),
    ]
    # area 1's latents shifted by one bin: +1 on its outgoing delay, -1 on its incoming one
    shifted = true.astype(float)
    shifted[0, 1] -= 1
    shifted[1, 2] += 1
    assert (
        delay_error(shifted, true) == pytest.approx(2 / 3) and cycle_delay_error(shifted, true) == 0
    )
    shifted[2, 0] += 1.5
    assert cycle_delay_error(shifted, true) == pytest.approx(1.5)
    with pytest.warns(RuntimeWarning, match="no directed cycle"):
        assert np.isnan(cycle_delay_error(np.zeros((2, 2)), np.array([[-1, 2], [-1, -1]])))


def test_rate_r2_and_per_area():
    rng = np.random.default_rng(1)
    true = rng.uniform(0.05, 0.5, size=(10, 20, 6))
    area = np.array([0, 0, 0, 1, 1, 1])
    assert rate_r2(true, true) == pytest.approx(1.0)
    pred = true.copy()
    pred[..., 3:] = true[..., 3:].mean((0, 1))  # area 1 predicted by its mean: R2 = 0
    np.testing.assert_allclose(per_area_rate_r2(pred, true, area), [1.0, 0.0], atol=1e-12)


def test_per_area_co_bps():
    from nlb_tools.evaluation import bits_per_spike

    rng = np.random.default_rng(2)
    rates = rng.uniform(0.05, 1.0, size=(20, 30, 6))
    spikes = rng.poisson(rates)
    area, heldout = np.array([0, 0, 0, 1, 1, 1]), np.array([True, True, False, False, True, False])
    got = per_area_co_bps(rates, spikes, heldout, area)
    assert got.shape == (2,) and (got > 0).all()
    assert got[0] == pytest.approx(
        bits_per_spike(rates[..., :2].copy(), spikes[..., :2].astype(float))
    )
    assert got[1] == pytest.approx(
        bits_per_spike(rates[..., [4]].copy(), spikes[..., [4]].astype(float))
    )
    assert np.isnan(per_area_co_bps(rates, spikes, heldout & (area == 0), area)[1])


def test_plots(tmp_path):
    inferred = TRUE + 0.1
    figs = [
        plot_effectomes(TRUE, inferred, ["A0", "A1", "A2"]),
        plot_delays(
            np.array([[-1, 2, -1], [-1, -1, 1], [4, 3, -1]]),
            np.array([[-1, 3, -1], [-1, -1, 1], [5, -1, -1]]),
        ),
    ]
    rng = np.random.default_rng(0)
    true = {"0_1": rng.normal(size=(4, 30, 1)), "1_2": rng.normal(size=(4, 30, 2))}
    inferred_msgs = {k: v @ rng.normal(size=(v.shape[-1], 3)) for k, v in true.items()}
    figs.append(plot_messages(true, inferred_msgs, ["0_1", "1_2"], trial=1))
    figs.append(plot_messages([true["0_1"]], [inferred_msgs["0_1"]], ["0_1"]))
    for i, fig in enumerate(figs):
        assert isinstance(fig, Figure)
        fig.savefig(tmp_path / f"f{i}.png")
        assert (tmp_path / f"f{i}.png").stat().st_size > 0
