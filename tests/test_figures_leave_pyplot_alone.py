"""DSID's figures leave the user's matplotlib as it was: no backend chosen on import or when
drawing (a notebook's ``plt.show()`` still shows), figures still saved."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import matplotlib
matplotlib.use("pdf")  # the user's choice, made before DSID is imported
chosen = []
matplotlib.use = lambda *a, **k: chosen.append(a)  # any later choice of a backend is seen
import dsid, dsid.evaluation.figures.diagnostics, dsid.evaluation.figures.single_area
import dsid.training.callbacks, dsid.tuning.plots, dsid.runs.compare
from dsid.evaluation.figures.style import save_figures, styled, subplots

@styled
def figure():
    fig, axes = subplots(1, 2, figsize=(3, 2))
    axes[0].plot([0, 1], [1, 0])
    return fig

save_figures({"f": figure()}, sys.argv[1])
print(matplotlib.get_backend(), len(chosen))
"""


def test_importing_dsid_and_drawing_keeps_the_users_backend(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["pdf", "0"]
    assert (tmp_path / "f.png").stat().st_size > 1000 and (tmp_path / "f.svg").exists()


def test_the_population_figure_is_drawn_and_saved(tmp_path):
    from dsid.tuning.pbt_logic import HyperParam
    from dsid.tuning.plots import plot_population

    history = [
        {"trial": t, "member": m, "epoch": e, "objective": 1.0 / (e + 1 + m), "lr": 1e-3 * (m + 1)}
        for m, t in enumerate(("a", "b"))
        for e in range(3)
    ]
    fig = plot_population(history, {"lr": HyperParam("lr", 1e-4, 1e-2)}, tmp_path / "pop.png")
    assert len(fig.axes) == 2 and (tmp_path / "pop.png").stat().st_size > 1000
