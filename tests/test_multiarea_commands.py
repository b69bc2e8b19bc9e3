"""``dsid perturb`` / ``Run.perturb`` and ``dsid analyze`` on a trained multi-area run: the files,
figures, the user's order, and clear errors."""

import copy
import types

import numpy as np
import pytest

from dsid.cli import main as cli_main
from dsid.data.multiarea.synth import synth_multiarea
from dsid.models import build_model
from dsid.runs.perturb import perturb_run, read_perturbation
from tests.conftest import TINY_MODEL, TINY_MULTIAREA_OVERRIDES, tiny_info

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from dsid.runs.config import compose
    from dsid.runs.train import train

    tmp = tmp_path_factory.mktemp("perturb")
    path = synth_multiarea(
        tmp / "ma.h5", seed=1, n_trials=(16, 6, 6), n_time=16, neurons_per_area=6
    )
    cfg = compose(
        TINY_MULTIAREA_OVERRIDES
        + [f"data.path={path}", "data.batch_size=8", "trainer.max_epochs=1", "logger=csv"]
    )
    train(cfg, run_dir=str(tmp / "run"))
    return tmp / "run"


def test_perturb_command_writes_the_prediction_and_its_figure(run_dir, capsys):
    assert (
        cli_main(["perturb", str(run_dir), "--mode", "silence", "--area", "0", "--from-bin", "7"])
        == 0
    )
    printed = capsys.readouterr().out
    path = run_dir / "perturbations" / "silence_A0_from7_valid.h5"  # the area by its name
    assert f"wrote {path}" in printed and "messages silenced from bin 7" in printed
    assert path.with_suffix(".png").exists() and path.with_suffix(".svg").exists()
    got = read_perturbation(path)
    n_trials, n_time, n = got["rates_base"].shape
    assert (n_trials, n_time) == (6, 16) and got["unit_area"].shape == (n,)
    assert np.all(np.diff(got["unit_id"]) > 0) and np.all(np.diff(got["trial_id"]) > 0)
    np.testing.assert_allclose(got["rates_delta"], got["rates_perturbed"] - got["rates_base"])
    assert np.all(got["rates_delta"][:, :8] == 0) and np.abs(got["rates_delta"][:, 8:]).max() > 0
    assert got["area_effect_rms"].shape == (3, 16) and np.all(got["area_effect_rms"][:, :8] == 0)
    assert got["attrs"]["mode"] == "silence" and got["attrs"]["first_bin_affected"] == 8
    assert got["attrs"]["area"] == "A0" and got["attrs"]["edge"] == ""
    # the same prediction from Python, with the run's inference order
    import dsid

    again = dsid.load_run(run_dir).perturb("silence", area=0, from_bin=7)
    np.testing.assert_allclose(again["rates_delta"], got["rates_delta"], rtol=1e-6)


def test_perturb_command_explains_bad_requests(run_dir):
    with pytest.raises(SystemExit, match="is not an edge of this model"):
        cli_main(["perturb", str(run_dir), "--mode", "clamp", "--edge", "A0->A0"])
    with pytest.raises(SystemExit, match="factor: required"):
        cli_main(["perturb", str(run_dir), "--mode", "scale", "--area", "A1"])
    with pytest.raises(SystemExit, match="leaves no bin"):
        cli_main(["perturb", str(run_dir), "--mode", "silence", "--area", "A1", "--from-bin", "15"])
    with pytest.raises(SystemExit, match="no split 'test2'"):
        cli_main(["perturb", str(run_dir), "--mode", "silence", "--area", "A1", "--split", "test2"])
    assert not (run_dir / "perturbations" / "silence_A1_from15_valid.h5").exists()


def test_a_single_area_model_has_nothing_to_perturb():
    sae = build_model(copy.deepcopy(TINY_MODEL), tiny_info())
    fake = types.SimpleNamespace(model=sae, run_dir="runs/x")
    with pytest.raises(ValueError, match="model=multiarea"):
        perturb_run(fake, "silence", area=0)


def test_analyze_command_writes_the_communication_and_silencing(run_dir, capsys):
    import json

    assert cli_main(["analyze", str(run_dir), "--from-bin", "6"]) == 0
    printed = capsys.readouterr().out
    assert "A0 -> A1:" in printed and "(lags " in printed and ", rank " in printed
    assert "bits/spike [" in printed and "edge AUROC of the bits carried" in printed
    assert "silencing from bin 6" in printed and "edge ranks recovered" in printed
    out = run_dir / "analysis"
    for name in ("effectome", "silencing", "delays"):
        assert (out / f"{name}.png").exists(), name
    got = json.loads((out / "analysis.json").read_text())
    sil = np.array(got["silencing"], dtype=float)  # None -> nan
    assert sil.shape == (3, 3) and np.all(np.isnan(np.diag(sil)))
    off = sil[~np.eye(3, dtype=bool)]
    assert np.all(np.isfinite(off)) and np.all(off >= 0) and off.max() > 0
    comm = got["communication"]
    assert np.array(comm["lag_range"]).shape == (3, 3, 2) and "true_rank" in comm
    bits = np.array(comm["evidence_bits"], dtype=float)
    assert np.all(np.isnan(np.diag(bits))) and np.isfinite(bits[0, 1])
    assert 0 <= comm["scores"]["evidence_auroc"] <= 1
    assert 0 <= got["scores"]["val/edge_rank_accuracy"] <= 1 and got["from_bin"] == 6


def test_analyze_refuses_a_silencing_bin_outside_the_trials(run_dir, tmp_path):
    for bad in ("15", "-1"):
        with pytest.raises(SystemExit, match="from_bin: .* not a bin from 0 to 14"):
            cli_main(["analyze", str(run_dir), "--from-bin", bad, "--out", str(tmp_path / bad)])
        assert not (tmp_path / bad).exists()  # refused before anything was written


def test_analyze_refuses_a_single_area_run():
    from dsid.runs.analyze import analyze_run

    sae = build_model(copy.deepcopy(TINY_MODEL), tiny_info())
    with pytest.raises(ValueError, match="model=multiarea"):
        analyze_run(types.SimpleNamespace(model=sae, run_dir="runs/x"))


@pytest.fixture(scope="module")
def other_runs(run_dir, tmp_path_factory):
    """A second fit of run_dir's data with another seed, and a fit of other data."""
    from dsid.runs.config import compose
    from dsid.runs.train import train

    tmp = tmp_path_factory.mktemp("others")
    other_data = synth_multiarea(
        tmp / "other.h5", seed=2, n_trials=(16, 6, 6), n_time=16, neurons_per_area=6
    )
    out = {}
    for name, path, seed in (
        ("seed2", run_dir.parent / "ma.h5", 2),
        ("other_data", other_data, 0),
    ):
        cfg = compose(
            TINY_MULTIAREA_OVERRIDES
            + [f"data.path={path}", "data.batch_size=8", "trainer.max_epochs=1", "logger=csv"]
            + [f"seed={seed}"]
        )
        train(cfg, run_dir=str(tmp / name))
        out[name] = tmp / name
    return out


def test_analyze_with_other_fits_reports_each_edge_across_them(run_dir, other_runs, capsys):
    import json

    out = run_dir.parent / "across"
    args = ["analyze", str(run_dir), "--with", str(other_runs["seed2"]), str(run_dir)]
    assert cli_main(args + ["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "across 3 fits of these data" in printed
    spread = json.loads((out / "analysis.json").read_text())["across_runs"]
    assert spread["runs"] == 3 and len(spread["run_dirs"]) == 3
    used = np.array(spread["used"])
    assert used.shape == (3, 3) and np.all((used >= 0) & (used <= 3)) and used.max() > 0
    st = {k: np.array(v, dtype=float) for k, v in spread["strength"].items()}
    assert np.all(st["low"] <= st["median"] + 1e-12) and np.all(st["median"] <= st["high"] + 1e-12)
    assert np.array(spread["ranks"]).shape == (3, 3, 3)
    # the two fits differ (another seed), so some edge's strength has a spread
    assert (st["high"] - st["low"]).max() > 0


def test_analyze_with_a_fit_of_other_data_is_refused(run_dir, other_runs, tmp_path):
    with pytest.raises(SystemExit, match="fits to compare must share their data"):
        cli_main(
            ["analyze", str(run_dir), "--with", str(other_runs["other_data"])]
            + ["--out", str(tmp_path / "x")]
        )
    assert not (tmp_path / "x").exists()
