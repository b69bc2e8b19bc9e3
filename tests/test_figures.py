"""Every diagnostic figure is made on tiny data, labels its axes, and is saved as PNG and SVG."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from dsid.evaluation.figures.diagnostics import diagnostic_figures, save_figures
from dsid.zoo.members.integrator import make_integrator


def _labelled(fig) -> list:
    """The axes of ``fig`` that show something but lack an axis label."""
    missing = []
    for ax in fig.axes:
        if not (ax.lines or ax.collections or ax.images or ax.patches):
            continue
        labels = [ax.get_xlabel(), ax.get_ylabel()] + (
            [ax.get_zlabel()] if hasattr(ax, "get_zlabel") else []
        )
        shared_x = not ax.get_xlabel() and any(o is not ax and o.get_xlabel() for o in fig.axes)
        if not ax.get_ylabel() or not (ax.get_xlabel() or shared_x) or not all(labels[2:]):
            missing.append(ax.get_title() or repr(ax))
    return missing


@pytest.fixture(scope="module")
def tiny():
    data = make_integrator(seed=0, n_trials=(12, 6, 2), n_time=14, n_neurons=9, n_heldout=3)
    rng = np.random.default_rng(0)
    outputs = {
        s: {
            "rates": rng.gamma(2.0, 0.1, data.splits[s].spikes.shape),
            "factors": rng.normal(size=(data.splits[s].n_trials, 14, 4)),
            "inferred_inputs": rng.normal(size=(data.splits[s].n_trials, 14, 2)),
        }
        for s in ("train", "valid")
    }
    history = [
        {
            "step": 10 * i,
            "val/co_bps": 0.1 * i,
            "val/bps": 0.2,
            "val/rate_r2": 0.5,
            "val/latent_r2": 0.4,
            "val/oracle_co_bps": 0.5,
        }
        for i in range(4)
    ]
    return data, outputs, history


def test_every_figure_is_made_and_labelled(tiny, tmp_path):
    data, outputs, history = tiny
    figs = diagnostic_figures(data, outputs, n_neurons=4, history=history)
    assert set(figs) == {"rates", "latents", "psths", "inputs", "trajectories", "training"}
    for name, fig in figs.items():
        assert _labelled(fig) == [], name
    rates = figs["rates"]
    assert rates.axes[-1].get_ylabel() == "neuron" and rates.axes[-1].get_xlabel() == "time (ms)"
    assert all(ax.get_ylabel() == "spikes/s" for ax in rates.axes[:-1])
    assert len(rates.axes[-1].collections) == data.n_neurons  # one raster row per neuron
    assert any("R2" in t.get_text() for t in figs["latents"].axes[0].texts)
    assert len(figs["trajectories"].axes) == 2  # aligned to the truth: inferred and true panels
    save_figures(figs, tmp_path)
    for name in figs:
        assert (tmp_path / f"{name}.png").stat().st_size > 0 and (
            tmp_path / f"{name}.svg"
        ).stat().st_size > 0
    plt.close("all")


def test_figures_use_the_alignment_offset_and_name_only_the_truth_they_have(tiny):
    _, outputs, _ = tiny
    data = make_integrator(seed=0, n_trials=(12, 6, 2), n_time=14, n_neurons=9, n_heldout=3)
    data.time_start_ms = -200.0  # a window from 200 ms before the alignment event
    figs = diagnostic_figures(data, outputs, n_neurons=4)
    for name in ("rates", "latents", "psths", "inputs"):
        lines = [ln for ax in figs[name].axes for ln in ax.lines]
        assert min(ln.get_xdata()[0] for ln in lines) == pytest.approx(-200.0), name
    assert figs["rates"].axes[-1].get_xlim()[0] == pytest.approx(-200.0)
    assert "truth (dashed)" in figs["psths"]._suptitle.get_text()
    for sd in data.splits.values():
        sd.truth_rates = None
    untrue = diagnostic_figures(data, outputs, n_neurons=4)["psths"]._suptitle.get_text()
    assert "truth" not in untrue and "smoothed spikes" in untrue
    plt.close("all")


def test_figures_without_truth_or_conditions(tiny):
    data, outputs, _ = tiny
    for sd in data.splits.values():
        sd.truth_rates = sd.truth_latents = sd.truth_inputs = sd.condition = None
    figs = diagnostic_figures(
        data,
        {s: {k: v for k, v in o.items() if k != "inferred_inputs"} for s, o in outputs.items()},
    )
    assert set(figs) == {"rates", "trajectories"}
    labels = {ln.get_label() for ax in figs["rates"].axes for ln in ax.lines}
    assert "smoothed spikes" in labels and "true" not in labels
    assert len(figs["trajectories"].axes) == 1 and _labelled(figs["trajectories"]) == []
    plt.close("all")


def test_multiarea_figures_are_labelled():
    from dsid.evaluation.multiarea.plots import plot_delays, plot_effectomes, plot_messages

    rng = np.random.default_rng(0)
    eff = rng.uniform(0, 1, (3, 3))
    delays = np.array([[-1, 2, -1], [3, -1, 1], [-1, -1, -1]])
    msgs = {"0_1": rng.normal(size=(4, 10, 2)), "1_0": rng.normal(size=(4, 10, 2))}
    figs = [
        plot_effectomes(eff, eff * 0.9, ["V1", "V2", "PFC"]),
        plot_delays(delays + 0.5 * (delays >= 0), delays),
        plot_messages(msgs, {k: v + 0.1 for k, v in msgs.items()}, ["0_1", "1_0"]),
    ]
    for fig in figs:
        assert _labelled(fig) == []


def test_multiarea_figures_without_truth_name_areas_and_times():
    from dsid.evaluation.multiarea.plots import plot_effectomes, plot_messages

    eff = np.array([[0.0, 0.5, 5e-5], [0.2, 0.0, 0.0], [0.0, 0.3, 0.0]])
    alone = plot_effectomes(None, eff, ["V1", "V2", "PFC"])
    panels = [ax for ax in alone.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["inferred effectome"]  # no empty "true" panel
    texts = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
        for t in panels[0].texts
    }
    assert texts[(0, 2)] == "~0" and texts[(0, 1)] == "0.5"  # 5e-5 is not drawn as an edge
    rng = np.random.default_rng(0)
    msgs = {"0_2": rng.normal(size=(4, 10, 1))}
    fig = plot_messages(
        msgs, msgs, ["0_2"], area_names=["V1", "V2", "PFC"], bin_ms=20, start_ms=-100
    )
    ax = fig.axes[0]
    assert (
        ax.get_title().startswith("message V1 -> PFC") and fig.axes[-1].get_xlabel() == "time (ms)"
    )
    assert ax.lines[0].get_xdata()[0] == -100 and ax.lines[0].get_xdata()[1] == -80
    plt.close("all")


def test_smoothed_spikes_keep_their_length_and_level_however_short():
    from dsid.evaluation.figures.style import smoothed

    for n in (1, 5, 12, 40):
        out = smoothed(np.full(n, 3.0))
        assert out.shape == (n,) and np.allclose(out, 3.0)
    peak = smoothed(np.eye(1, 41, 20)[0])
    assert peak.argmax() == 20 and peak.sum() == pytest.approx(1.0, abs=1e-6)
