"""``dsid fit`` end to end on tiny files, its errors, and external inputs from the file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from dsid.autofit.fit import REPORT_FILE, fit
from dsid.autofit.report import report_lines
from dsid.data.synth_lorenz import write_lorenz_benchmark
from dsid.data.tensor_file import DataFileError, load_tensor_file, write_tensor_file
from dsid.runs.load import load_run
from dsid.zoo.members.sensory import make_sensory

QUIET = [
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "infer.n_samples=1",
    "model.encoder.hidden_size=8",
    "model.encoder.ci_size=4",
    "model.generator.controller_size=4",
]

STALLING = [  # a learning rate too small to move and no random masks: every start stalls
    *QUIET,
    "train.lr=1e-12",
    "model.augmentations=[]",
    "train.select_smoothing=0",
    "early_stopping.patience_steps=6",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_lorenz_benchmark(
        tmp_path_factory.mktemp("fit") / "tiny.h5",
        seed=2,
        n_trials=(40, 12, 12),
        n_time=15,
        n_neurons=12,
        n_heldout=3,
    )


def test_a_silent_fit_prints_nothing(tiny, tmp_path, capfd):
    # the trainer's own progress and summary settings left at their defaults
    small = [o for o in QUIET if not o.startswith("trainer.")]
    res = fit(tiny, budget="8steps", out=str(tmp_path / "run"), overrides=small, verbose=False)
    out, err = capfd.readouterr()
    assert res["steps"] == 8 and out == "", out[:500]
    bar = re.compile(r"\d+it/s|s/it\]")  # tqdm's rate, as a redrawn bar writes it
    assert "Trainer" not in err and "Params" not in err and not bar.search(err), err[:500]
    # told to speak, into a file (not a terminal): progress as plain lines, no redrawn bar
    fit(tiny, budget="8steps", out=str(tmp_path / "loud"), overrides=small)
    out, err = capfd.readouterr()
    assert "training ended: step 8" in out and "\r" not in out + err and not bar.search(err)


def test_fit_trains_and_reports_against_the_baseline(tiny, tmp_path, capsys):
    res = fit(
        tiny,
        budget="12steps",
        out=str(tmp_path / "run"),
        overrides=[*QUIET, "model.generator.hidden_size=16", "model.ic_size=8"],
    )
    text = capsys.readouterr().out
    assert (
        "smoothing baseline co-bps" in text and "diagnostics:" in text and "oracle co-bps" in text
    )
    assert "model.generator.hidden_size=16" in text and "set by you" in text
    report = json.loads((tmp_path / "run" / REPORT_FILE).read_text())
    assert report["steps"] == 12 and np.isfinite(report["baseline"]["co_bps"])
    assert not (tmp_path / "run" / "wandb").exists()  # logging to CSV: no W&B run
    assert report["metrics"]["val/co_bps"] == res["metrics"]["val/co_bps"]
    keys = {s["key"]: s for s in report["settings"]}
    assert keys["model.generator.hidden_size"]["reason"] == "set by you"
    assert keys["data.batch_size"]["value"] == 16 and keys["train.kl_ramp_steps"]["value"] == 20
    run = load_run(tmp_path / "run")
    assert (
        run.config["model"]["generator"]["hidden_size"] == 16
        and run.config["data"]["batch_size"] == 16
    )
    # the outputs carry the trials' and neurons' ids and each bin's time (a synthetic file has
    # no recorded ids: its own positions, valid trials after the 40 train trials)
    out, data = run.outputs("valid"), load_tensor_file(tiny)
    assert out["rates"].shape == data.splits["valid"].spikes.shape
    assert list(out["trial_id"]) == list(range(40, 52)) and list(out["unit_id"]) == list(range(12))
    assert np.allclose(out["time_ms"], data.bin_ms * np.arange(data.n_time))
    assert report["diagnostics"]
    # data with forward bins: the report names the mix of forward predictions and mean rates
    assert not any("forward prediction weight" in line for line in report_lines(res))
    res["metrics"]["forward_weight"] = 0.65
    assert any(
        "forward prediction weight" in line and "0.6500" in line for line in report_lines(res)
    )


def test_fit_command_errors_are_clear(tiny, tmp_path):
    dsid = str(Path(sys.executable).parent / "dsid")
    bad = subprocess.run(
        [dsid, "fit", str(tiny), "--budget", "fortnight"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--budget 'fortnight': expected a duration" in bad.stdout
    data = load_tensor_file(tiny)
    del data.splits["valid"]
    lone = write_tensor_file(tmp_path / "novalid.h5", data)
    bad = subprocess.run([dsid, "fit", str(lone)], capture_output=True, text=True)
    assert bad.returncode == 2 and "field 'valid/spikes'" in bad.stdout
    missing = subprocess.run(
        [dsid, "fit", str(tmp_path / "nope.h5")], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "no such DSID tensor file" in missing.stdout
    calcium = write_lorenz_benchmark(
        tmp_path / "calcium.h5",
        seed=2,
        n_trials=(20, 6, 6),
        n_time=10,
        n_neurons=8,
        n_heldout=2,
        observation="calcium",
    )
    bad = subprocess.run([dsid, "fit", str(calcium)], capture_output=True, text=True)
    assert (
        bad.returncode == 2 and "field 'train/spikes': dsid fit models spike counts" in bad.stdout
    )
    data = load_tensor_file(tiny)
    data.heldout[:] = False
    bad = subprocess.run(
        [dsid, "fit", str(write_tensor_file(tmp_path / "noho.h5", data))],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "neurons/heldout" in bad.stdout


@pytest.fixture(scope="module")
def sensory(tmp_path_factory):
    data = make_sensory(seed=0, n_trials=(30, 10, 10), n_time=16, n_neurons=12, n_heldout=3)
    return write_tensor_file(tmp_path_factory.mktemp("ext") / "sensory.h5", data)


def test_external_inputs_are_read_checked_and_fed_to_the_model(sensory, tmp_path):
    data = load_tensor_file(sensory)
    assert data.ext_input_size == 3 and data.splits["train"].ext_inputs.shape == (30, 16, 3)
    res = fit(sensory, budget="4steps", out=str(tmp_path / "with"), overrides=QUIET, verbose=False)
    run = load_run(tmp_path / "with")
    assert run.model.generator.ext_input_size == 3
    assert np.isfinite(res["metrics"]["val/co_bps"])
    # the inputs reach the rates: other inputs, other rates
    from dsid.evaluation.inference import infer_split

    sd = data.splits["valid"]
    a = infer_split(run.model, sd.spikes, n_samples=0, ext=sd.ext_inputs)["rates"]
    b = infer_split(run.model, sd.spikes, n_samples=0, ext=np.zeros_like(sd.ext_inputs))["rates"]
    assert not np.allclose(a, b)
    import dsid  # the Python API

    dsid.fit(
        sensory,
        budget="4steps",
        out=str(tmp_path / "without"),
        overrides=[*QUIET, "data.ext_inputs=false"],
        verbose=False,
    )
    assert load_run(tmp_path / "without").model.generator.ext_input_size == 0


def _replace(key, value):
    def change(f):
        del f[key]
        f[key] = value

    return change


def _nan(f):
    f["train/ext_inputs"][0, 0, 0] = np.nan


@pytest.mark.parametrize(
    "change,field,expected",
    [
        (
            _replace("valid/ext_inputs", np.zeros((10, 5, 3), np.float32)),
            "valid/ext_inputs",
            "shape",
        ),
        (_nan, "train/ext_inputs", "finite values"),
        (
            _replace("test/ext_inputs", np.zeros((10, 16, 2), np.float32)),
            "test/ext_inputs",
            "the same number",
        ),
        (lambda f: f.__delitem__("test/ext_inputs"), "test/ext_inputs", "in every split"),
        (
            lambda f: f.create_dataset("valid/truth/inputs", data=np.zeros((10, 5, 2))),
            "valid/truth/inputs",
            r"shape \(10, 16, U\)",
        ),
    ],
)
def test_bad_external_inputs_name_the_field(sensory, tmp_path, change, field, expected):
    path = tmp_path / "bad.h5"
    path.write_bytes(Path(sensory).read_bytes())
    with h5py.File(path, "a") as f:
        change(f)
    with pytest.raises(DataFileError, match=f"field '{field}'.*{expected}"):
        load_tensor_file(path)


def test_zoo_command_writes_members_that_load(tmp_path):
    from dsid.zoo.members import members

    assert {
        "lorenz",
        "chaotic_rnn",
        "sensory",
        "maze_small",
        "maze_large",
        "multiarea_feedback",
    } <= set(members())
    dsid = str(Path(sys.executable).parent / "dsid")
    done = subprocess.run(
        [dsid, "synth", "zoo", "--out", str(tmp_path), "--only", "lorenz,maze_small"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    maze = load_tensor_file(tmp_path / "maze_small.h5")
    assert 60 <= maze.splits["train"].n_trials <= 90 and maze.bin_ms == 20
    assert maze.splits["valid"].truth_rates is not None and maze.heldout.any()
    assert load_tensor_file(tmp_path / "lorenz.h5").splits["train"].n_trials == 800
    bad = subprocess.run(
        [dsid, "synth", "zoo", "--out", str(tmp_path), "--only", "unicorn"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "unknown member" in bad.stderr + bad.stdout


def test_readme_python_example_runs(tmp_path, monkeypatch):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = text.split("### Python API\n\n```python\n", 1)[1].split("```", 1)[0]
    assert 'budget="15m"' in code and len(code.strip().splitlines()) <= 12
    small = ", ".join(
        f'"{o}"' for o in QUIET + ["model.generator.hidden_size=16", "model.ic_size=8"]
    )
    code = code.replace('budget="15m"', f'budget="6steps", out="run", overrides=[{small}]')
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert (
        scope["rates"].shape[1:] == (50, 30)
        and scope["factors"].shape[:2] == scope["rates"].shape[:2]
    )
    assert (tmp_path / "run" / "fit_report.json").exists()


def test_from_numpy_checks_and_splits():
    from dsid.data import from_numpy

    rng = np.random.default_rng(1)
    counts = rng.poisson(1.0, (50, 8, 10))
    data = from_numpy(counts, bin_ms=5, heldout=3, area=[0] * 5 + [1] * 5, condition=np.arange(50))
    assert [sd.n_trials for sd in data.splits.values()] == [40, 10] and data.heldout.sum() == 3
    assert not data.heldout[:7].any() and data.heldout[7:].all()  # held-in neurons first
    assert sorted(
        np.concatenate([data.splits[s].condition for s in ("train", "valid")]).tolist()
    ) == list(range(50))
    for bad, match in (
        ({"heldout": 10}, "heldout=10"),
        ({"area": [0, 1]}, "area must have one entry"),
        ({"valid_fraction": 0.0}, "cannot make train and valid"),
    ):
        with pytest.raises(ValueError, match=match):
            from_numpy(counts, bin_ms=5, **bad)
    with pytest.raises(ValueError, match="integer counts"):
        from_numpy(counts + 0.5, bin_ms=5)


def test_a_fit_that_stops_improving_with_budget_left_tries_other_starts(tiny, tmp_path):
    out = tmp_path / "starts_run"
    res = fit(
        tiny,
        budget="60steps",
        out=str(out),
        # seed=5 as a setting: the first start's seed, then 6, 7, ... (never 5 for every start)
        overrides=[*STALLING, "seed=5"],
        verbose=False,
    )
    starts = res["starts"]
    assert len(starts) >= 2 and [s["seed"] for s in starts] == list(range(5, 5 + len(starts)))
    assert res["steps"] == sum(s["steps"] for s in starts) <= 60
    kept = [s for s in starts if s["kept"]]
    assert len(kept) == 1 and kept[0]["select"] == min(s["select"] for s in starts)
    assert not res["converged"] and res["diagnostics"][-1] == res["ending"]
    assert (out / "checkpoints" / "best.ckpt").exists() and (out / REPORT_FILE).exists()
    others = [s for s in starts if not s["kept"]]
    assert all((Path(s["run_dir"]) / "metrics.json").exists() for s in others)
    assert not (out / "starts" / f"seed{kept[0]['seed']}").exists()
    assert load_run(out).config["seed"] == kept[0]["seed"]
    assert any(line.startswith("starts (kept") for line in report_lines(res))


def test_a_multiarea_fit_reports_every_area_and_its_communication(tmp_path):
    from dsid.data.multiarea.synth import synth_multiarea

    path = synth_multiarea(
        tmp_path / "ma.h5",
        seed=1,
        n_areas=2,
        neurons_per_area=10,
        n_trials=(24, 8, 8),
        n_time=20,
        latent_size=2,
    )
    res = fit(path, budget="8steps", out=str(tmp_path / "run"), overrides=QUIET, verbose=False)
    areas = res["areas"]
    assert [a["area"] for a in areas] == ["A0", "A1"]
    assert all(a["heldin"] + a["heldout"] == 10 and a["heldout"] > 0 for a in areas)
    assert all(np.isfinite(a["co_bps"]) and np.isfinite(a["baseline_co_bps"]) for a in areas)
    comm = res["communication"]
    assert np.asarray(comm["effectome"]).shape == (2, 2) and comm["area_names"] == ["A0", "A1"]
    text = "\n".join(report_lines(res))
    assert "per area (valid):" in text and "A0 -> A1:" in text and "(true " in text
    assert "effectome cosine (vs truth)" in text
    linear = comm["linear"]  # the linear baseline beside the model, scored the same way
    assert np.asarray(linear["delay_bins"]).shape == (2, 2) and "delay_error" in linear["scores"]
    assert "linear baseline: delay" in text and "linear baseline" in text.split("recovery")[1]
    # every edge's lag range and rank, with the true rank, and their recovery scores
    assert np.asarray(comm["lag_range"]).shape == (2, 2, 2) and comm["rank"][0][1] >= 0
    edge = r"A0 -> A1: .* \(lags \d+-\d+\), rank \d, carries -?[\d.]+ bits/spike \[.*\] "
    assert re.search(edge + r"\(true delay \d+, rank \d\)", text)
    assert "edge ranks recovered" in text and "true delays in the lag range" in text
    assert json.loads((tmp_path / "run" / REPORT_FILE).read_text())["areas"] == areas


def test_a_fit_killed_in_its_second_start_resumes_to_the_same_report(tiny, tmp_path, monkeypatch):
    import pytorch_lightning as pl

    import dsid.autofit.fit_run as fit_run

    whole = fit(tiny, budget="60steps", out=str(tmp_path / "whole"), overrides=STALLING)
    assert len(whole["starts"]) >= 2

    class ProcessDied(Exception):
        pass

    class Killed(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step >= 12:
                raise ProcessDied("killed")

    real_train = fit_run.train

    def dying_train(cfg, run_dir, callbacks):
        extra = [Killed()] if run_dir.endswith("seed1") else []
        return real_train(cfg, run_dir=run_dir, callbacks=callbacks + extra)

    out = tmp_path / "killed"
    monkeypatch.setattr(fit_run, "train", dying_train)
    with pytest.raises(ProcessDied):
        fit(tiny, budget="60steps", out=str(out), overrides=STALLING)
    monkeypatch.setattr(fit_run, "train", real_train)
    assert not (out / REPORT_FILE).exists() and (out / "fit_state.json").exists()
    with pytest.raises(Exception, match="holds an unfinished fit"):
        fit(tiny, budget="60steps", out=str(out), overrides=STALLING)
    with pytest.raises(ValueError, match="own data and settings"):
        fit(tiny, resume=str(out))
    left = out / ".fit_state.json.x1y2.tmp"  # as a kill while saving the state leaves
    left.write_text("{")
    resumed = fit(resume=str(out))
    assert not left.exists()
    assert [s["seed"] for s in resumed["starts"]] == [s["seed"] for s in whole["starts"]]
    assert [s["steps"] for s in resumed["starts"]] == [s["steps"] for s in whole["starts"]]
    assert [s["select"] for s in resumed["starts"]] == [s["select"] for s in whole["starts"]]
    assert resumed["metrics"]["val/co_bps"] == whole["metrics"]["val/co_bps"]
    assert resumed["steps"] == whole["steps"]
    second = Path(next(s["run_dir"] for s in resumed["starts"] if s["seed"] == 1))
    assert json.loads((second / "status.json").read_text())["resumed"] == 1  # continued, not redone
    assert (out / REPORT_FILE).exists() and not (out / "fit_state.json").exists()
    with pytest.raises(Exception, match="the fit finished"):
        fit(resume=str(out))


def test_the_report_is_logged_to_wandb_beside_the_kept_start(tiny, tmp_path):
    from dsid.runs.wandb_offline import read_offline_run

    small = [o for o in QUIET if o != "logger=csv"]
    run_dir = tmp_path / "run"
    res = fit(tiny, budget="8steps", out=str(run_dir), overrides=small, verbose=False)
    logged = [read_offline_run(p) for p in sorted(run_dir.glob("wandb/offline-run-*"))]
    reports = [r for r in logged if "fit/co_bps" in r["summary"]]
    assert len(logged) >= 2 and len(reports) == 1  # the training run and the report's
    summary, config = reports[0]["summary"], reports[0]["config"]
    assert summary["fit/co_bps"] == pytest.approx(res["metrics"]["val/co_bps"])
    assert summary["fit/baseline_co_bps"] == pytest.approx(res["baseline"]["co_bps"])
    assert summary["fit/diagnostics"] == "\n".join(res["diagnostics"])
    settings = config["fit"]["settings"]
    assert settings["model.encoder.hidden_size"] == "8"  # as the report holds it
    assert config["train_wandb_id"]  # linked to the training run


def test_all_neurons_trains_a_final_model_reading_every_neuron(tiny, tmp_path, capsys):
    run_dir = tmp_path / "run"
    res = fit(tiny, budget="8steps", out=str(run_dir), overrides=QUIET, all_neurons=True)
    text = capsys.readouterr().out
    entry = res["all_neurons"]
    kept = next(s for s in res["starts"] if s["kept"])
    assert entry["max_steps"] == kept["steps"] and entry["neurons"] == 12
    assert "final model on all 12 neurons" in text
    assert json.loads((run_dir / REPORT_FILE).read_text())["all_neurons"] == entry
    final = load_run(entry["run_dir"])
    assert int(final.model.heldin_idx.numel()) == 12  # held-out neurons are read too
    assert load_tensor_file(entry["data"]).heldout.sum() == 0
    assert final.config["seed"] == kept["seed"]
    # its inference depends on the columns the kept model ignores (held out there)
    data = load_tensor_file(tiny)
    x = data.splits["valid"].spikes[:4].astype(np.float32)
    changed = x.copy()
    changed[..., data.heldout] += 3
    for run, reads_heldout in ((final, True), (load_run(run_dir), False)):
        a, b = (
            run.transform(x, n_samples=2)["factors"],
            run.transform(changed, n_samples=2)["factors"],
        )
        assert (not np.allclose(a, b)) == reads_heldout


def test_a_fit_killed_as_its_second_start_began_resumes(tiny, tmp_path, monkeypatch):
    """Killed after the second start wrote its config but before its status: the resumed fit
    begins that start again in its own folder."""
    import dsid.autofit.fit_run as fit_run

    class ProcessDied(Exception):
        pass

    real_train = fit_run.train

    def dying_train(cfg, run_dir, callbacks):
        if run_dir.endswith("seed1"):
            Path(run_dir).mkdir(parents=True)
            (Path(run_dir) / "config.yaml").write_text("seed: 1\n")  # and nothing else
            raise ProcessDied("killed")
        return real_train(cfg, run_dir=run_dir, callbacks=callbacks)

    out = tmp_path / "killed"
    monkeypatch.setattr(fit_run, "train", dying_train)
    with pytest.raises(ProcessDied):
        fit(tiny, budget="60steps", out=str(out), overrides=STALLING, verbose=False)
    monkeypatch.setattr(fit_run, "train", real_train)
    resumed = fit(resume=str(out), verbose=False)
    assert [s["seed"] for s in resumed["starts"]][:2] == [0, 1]
    assert (out / REPORT_FILE).exists()


def test_the_wandb_summary_keeps_train_and_validation_scores_apart():
    from dsid.autofit.report_wandb import report_summary

    result = {
        "metrics": {"train/co_bps": 0.5, "val/co_bps": 0.2, "val/bps": float("nan")},
        "baseline": {"co_bps": 0.1},
        "steps": 10,
        "starts": [{}],
        "converged": False,
        "ending": "budget",
        "diagnostics": ["no problem found"],
        "budget": "10 steps",
    }
    summary = report_summary(result)
    assert summary["fit/co_bps"] == 0.2 and summary["fit/train/co_bps"] == 0.5
    assert "fit/bps" not in summary  # not finite: left out
