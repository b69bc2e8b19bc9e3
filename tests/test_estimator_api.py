"""``dsid.fit`` on arrays and ``Run.transform`` on new trials: the estimator researchers know."""

from __future__ import annotations

import numpy as np
import pytest

import dsid
from dsid.data.synth_lorenz import make_lorenz_benchmark
from dsid.runs.status import RunDirError

SMALL = [
    "logger=csv",
    "infer.n_samples=2",
    "model.encoder.hidden_size=8",
    "model.encoder.ci_size=4",
    "model.generator.controller_size=4",
    "model.generator.hidden_size=16",
    "model.ic_size=8",
]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    lorenz = make_lorenz_benchmark(seed=3, n_trials=(40, 10, 0), n_time=12, n_neurons=10)
    counts = np.concatenate([sd.spikes for sd in lorenz.splits.values()])  # (50, 12, 10)
    units = np.arange(10) * 7 + 3  # the user's own unit ids, in column order
    out = tmp_path_factory.mktemp("est") / "run"
    report = dsid.fit(
        counts,
        bin_ms=10,
        unit_ids=units,
        time_start_ms=-50,
        budget="6steps",
        out=str(out),
        overrides=SMALL,
        verbose=False,
    )
    return counts, units, out, report


def test_fit_on_arrays_keeps_the_data_with_the_run_and_the_users_order(fitted):
    counts, units, out, report = fitted
    assert report["steps"] == 6 and (out / "data.h5").exists()
    run = dsid.load_run(out)
    res = run.outputs("valid")
    assert list(res["unit_id"]) == list(units) and np.allclose(res["time_ms"][:2], [-50, -40])
    assert res["rates"].shape == (res["trial_id"].size, 12, 10) and res["trial_id"].size == 10
    assert set(res["trial_id"]) <= set(range(50)) and np.all(np.diff(res["trial_id"]) > 0)


def test_transform_infers_new_trials_like_the_runs_own_inference(fitted):
    counts, units, out, _ = fitted
    run = dsid.load_run(out)
    res = run.outputs("valid")
    again = run.transform(counts[res["trial_id"]], n_samples=2)
    assert np.allclose(again["rates"], res["rates"], rtol=1e-4, atol=1e-6)  # same model, seed
    assert np.array_equal(
        again["rates"], run.transform(counts[res["trial_id"]], n_samples=2)["rates"]
    )
    # held-out neurons' columns are not read
    data = run.sessions()[0]
    held_out_ids = data.unit_id[data.heldout]
    blind = counts[:4].copy()
    blind[..., np.isin(units, held_out_ids)] = 0
    assert np.allclose(run.transform(blind)["rates"], run.transform(counts[:4])["rates"])
    assert run.transform(counts[:3])["factors"].shape[:2] == (3, 12)


def test_transform_and_fit_on_arrays_refuse_bad_input(fitted, tmp_path):
    counts, _, out, _ = fitted
    run = dsid.load_run(out)
    with pytest.raises(ValueError, match=r"\(trials, T, 10\)"):
        run.transform(counts[..., :9])
    with pytest.raises(ValueError, match="finite"):
        run.transform(np.full((2, 12, 10), np.nan))
    with pytest.raises(ValueError, match="ext_inputs must be None"):
        run.transform(counts[:2], ext_inputs=np.zeros((2, 12, 1)))
    with pytest.raises(ValueError, match="bin_ms"):
        dsid.fit(counts, out=str(tmp_path / "x"))
    with pytest.raises(RunDirError, match="data of an earlier fit"):
        dsid.fit(counts, bin_ms=10, out=str(out), budget="2steps", verbose=False)
    # a folder holding another run: refused before anything is written into it
    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.json").write_text("{}")
    with pytest.raises(RunDirError, match="already holds a run"):
        dsid.fit(counts, bin_ms=10, out=str(other), budget="2steps", verbose=False)
    assert sorted(p.name for p in other.iterdir()) == ["metrics.json"]
