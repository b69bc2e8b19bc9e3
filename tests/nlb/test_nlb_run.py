"""prepare -> tiny train -> evaluate -> submit, scored by nlb_tools; clear errors that write
nothing."""

import json
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from nlb_tools.evaluation import evaluate

from dsid.cli import main
from dsid.data.tensor_file import DataFileError
from dsid.nlb.callback import NLBEvalCallback
from dsid.nlb.evaluate import METRICS_FILE, NLBRunError, evaluate_run
from dsid.nlb.scoring import RATE_KEYS, load_submission_h5, load_targets, read_nlb_info
from dsid.nlb.specs import get_spec
from dsid.nlb.submit import check_submission, submit_run
from dsid.runs.wandb_offline import iter_records, read_offline_run

MAZE_5 = ("mc_maze", 5, "val")


def _records(offline_run: Path):
    """(run record, artifact records) of an offline W&B run folder."""
    from wandb.proto import wandb_internal_pb2 as pb

    run, artifacts = None, []
    for raw in iter_records(next(offline_run.glob("run-*.wandb"))):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            run = rec.run
        elif kind == "artifact":
            artifacts.append(rec.artifact)
    return run, artifacts


def _offline_runs(run_dir: Path, job_type=None):
    """The offline W&B runs of a run directory (of one job type: "train" is the training run)."""
    runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    if job_type is None:
        return runs
    return [r for r in runs if getattr(_records(r)[0], "job_type", None) == job_type]


def _expected_shapes(path):
    with h5py.File(path, "r") as f:
        n_tr, n_ev = len(f["nlb/train_trial_ids"]), len(f["nlb/eval_trial_ids"])
        _, T, N = f["test/spikes"].shape
        T_fwd = f["test/forward_spikes"].shape[1]
    k = read_nlb_info(path)["n_heldin"]
    return {
        "train_rates_heldin": (n_tr, T, k),
        "train_rates_heldout": (n_tr, T, N - k),
        "eval_rates_heldin": (n_ev, T, k),
        "eval_rates_heldout": (n_ev, T, N - k),
        "eval_rates_heldin_forward": (n_ev, T_fwd, k),
        "eval_rates_heldout_forward": (n_ev, T_fwd, N - k),
    }


def test_training_writes_forward_rates_and_nlb_scores(nlb_run, nlb_prepared):
    with h5py.File(nlb_run / "inference.h5", "r") as f, h5py.File(nlb_prepared[MAZE_5], "r") as d:
        for split in ("train", "valid", "test"):  # 200 ms past the window: 40 bins of 5 ms
            assert f[f"{split}/rates_forward"].shape == (d[f"{split}/spikes"].shape[0], 40, 55)
            assert np.all(f[f"{split}/rates_forward"][()] > 0)
        weight = float(
            f.attrs["forward_weight"]
        )  # the mix the valid trials chose, also in metrics.json
    assert 0.0 <= weight <= 1.0
    assert json.loads((nlb_run / "metrics.json").read_text())["forward_weight"] == pytest.approx(
        weight
    )
    history = read_offline_run(_offline_runs(nlb_run, "train")[0])["history"]
    for key in ("val/nlb_co_bps", "val/nlb_vel_r2", "val/nlb_psth_r2", "val/nlb_fp_bps"):
        assert sum(key in row and np.isfinite(row[key]) for row in history) == 2, (
            key
        )  # each of 2 epochs


def test_evaluate_scores_writes_json_and_logs_to_wandb(nlb_run, capsys):
    (nlb_run / "inference.h5").unlink()  # evaluate infers first when it is missing
    n_before = len(_offline_runs(nlb_run))
    assert not _offline_runs(nlb_run, "nlb-evaluate")
    result = evaluate_run(nlb_run)
    assert (nlb_run / "inference.h5").exists()
    assert set(result["metrics"]) == {"co_bps", "vel_r2", "psth_r2", "fp_bps"}
    assert all(np.isfinite(v) for v in result["metrics"].values())
    assert result["oracle"]["co_bps"] > result["metrics"]["co_bps"]  # 2 epochs of a tiny model
    saved = json.loads((nlb_run / METRICS_FILE).read_text())
    assert (
        saved["metrics"] == result["metrics"]
        and saved["key"] == "mc_maze"
        and saved["n_samples"] == 2
    )
    assert 0.0 <= saved["forward_weight"] <= 1.0
    assert len(_offline_runs(nlb_run)) == n_before + 1
    (evaluation,) = _offline_runs(nlb_run, "nlb-evaluate")
    logged = read_offline_run(evaluation)
    assert logged["summary"]["val/nlb_co_bps"] == pytest.approx(result["metrics"]["co_bps"])
    run, _ = _records(evaluation)
    assert (run.run_group, run.job_type, run.project) == ("nlb_tiny", "nlb-evaluate", "dsid")
    # the command line prints the same table
    assert main(["nlb", "evaluate", str(nlb_run), "--no-wandb"]) == 0
    out = capsys.readouterr().out
    assert f"{result['metrics']['co_bps']:.4f}" in out and "oracle" in out and METRICS_FILE in out
    assert len(_offline_runs(nlb_run)) == n_before + 1


def test_submit_is_what_nlb_tools_scores(nlb_run, nlb_prepared, tmp_path):
    out = tmp_path / "submission.h5"
    with pytest.warns(UserWarning, match="val-phase"):
        submit_run(nlb_run, out)
    sub = load_submission_h5(out)
    assert list(sub) == ["mc_maze"] and set(sub["mc_maze"]) == set(RATE_KEYS)
    shapes = _expected_shapes(nlb_prepared[MAZE_5])
    assert {k: v.shape for k, v in sub["mc_maze"].items()} == shapes
    # nlb_tools reads the file as EvalAI does; same scores as `dsid nlb evaluate`
    scores = evaluate(load_targets(nlb_prepared[MAZE_5]), str(out))[0]["mc_maze_split"]
    result = evaluate_run(nlb_run, log_wandb=False)
    assert scores["co-bps"] == pytest.approx(result["metrics"]["co_bps"], abs=1e-5)
    assert scores["fp-bps"] == pytest.approx(result["metrics"]["fp_bps"], abs=1e-5)
    (submission,) = _offline_runs(nlb_run, "nlb-submit")
    run, artifacts = _records(submission)
    assert run.run_group == "nlb_tiny"
    assert [(a.type, [e.path for e in a.manifest.contents]) for a in artifacts] == [
        ("nlb-submission", ["submission.h5"])
    ]


def test_submit_test_phase_file_fresh_every_time(nlb_run, nlb_prepared, tmp_path, capsys):
    """The test-phase file of the same dataset (--data): EvalAI's shapes, no warning, no stale
    groups."""
    test_file = nlb_prepared[("mc_maze", 5, "test")]
    out = tmp_path / "sub.h5"
    with h5py.File(out, "w") as f:  # a stale file from somewhere else
        f["area2_bump/eval_rates_heldout"] = np.zeros(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (
            main(
                [
                    "nlb",
                    "submit",
                    str(nlb_run),
                    "--out",
                    str(out),
                    "--data",
                    str(test_file),
                    "--no-wandb",
                ]
            )
            == 0
        )
    assert "warning" not in capsys.readouterr().err
    sub = load_submission_h5(out)
    assert list(sub) == ["mc_maze"]
    assert {k: v.shape for k, v in sub["mc_maze"].items()} == _expected_shapes(test_file)
    assert sub["mc_maze"]["train_rates_heldin"].shape[0] == 80  # NLB train + val trials
    check_submission(sub, test_file)
    sub["mc_maze"]["eval_rates_heldout"] = sub["mc_maze"]["eval_rates_heldout"][:3]
    with pytest.raises(NLBRunError, match="eval_rates_heldout"):
        check_submission(sub, test_file)


def _fake_run(tmp_path, data_path, checkpoint=True):
    """A run directory whose config points at ``data_path`` (with an empty checkpoint file)."""
    run_dir = tmp_path / "fake_run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(f"experiment_name: fake\ndata: {{path: {data_path}}}\n")
    if checkpoint:
        (run_dir / "checkpoints" / "best.ckpt").write_bytes(b"")
    return run_dir


def _assert_run_untouched(run_dir, out=None):
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.yaml"]
    if out is not None:
        assert not out.exists() and not list(out.parent.glob("*.tmp"))


def test_errors_are_clear_and_write_nothing(nlb_prepared, tiny_lorenz, tmp_path, capsys):
    out = tmp_path / "out" / "sub.h5"
    no_model = _fake_run(tmp_path / "a", nlb_prepared[MAZE_5], checkpoint=False)
    for fn in (lambda: evaluate_run(no_model), lambda: submit_run(no_model, out)):
        with pytest.raises(FileNotFoundError, match="no trained model"):
            fn()
    _assert_run_untouched(no_model, out)
    assert main(["nlb", "evaluate", str(no_model)]) == 2
    assert "no trained model" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="not a DSID run directory"):
        evaluate_run(tmp_path / "nothing")

    lorenz = _fake_run(tmp_path / "b", tiny_lorenz)
    for fn in (lambda: evaluate_run(lorenz), lambda: submit_run(lorenz, out)):
        with pytest.raises(DataFileError, match="non-NLB data") as err:
            fn()
        assert err.value.field == "nlb/dataset" and str(tiny_lorenz) in str(err.value)
    _assert_run_untouched(lorenz, out)

    test_phase = _fake_run(tmp_path / "c", nlb_prepared[("mc_maze", 5, "test")])
    with pytest.raises(NLBRunError, match="test-phase.*no targets.*dsid nlb submit"):
        evaluate_run(test_phase)
    _assert_run_untouched(test_phase)
    with pytest.raises(ValueError, match=r"\.h5"):
        submit_run(test_phase, tmp_path / "sub.txt")
    missing = _fake_run(tmp_path / "d", tmp_path / "gone.h5")
    with pytest.raises(FileNotFoundError, match="gone.h5.*--data"):
        evaluate_run(missing)
    _assert_run_untouched(missing)


def test_inference_of_other_data_is_refused(nlb_run, nlb_prepared, tmp_path):
    """An inference.h5 that does not match the run's data (another bin size) is an error, not a
    score."""
    run_dir = tmp_path / "run"
    shutil.copytree(nlb_run, run_dir, ignore=shutil.ignore_patterns("wandb"))
    other = nlb_prepared[("mc_maze", 20, "val")]
    text = (run_dir / "config.yaml").read_text().replace(str(nlb_prepared[MAZE_5]), str(other))
    (run_dir / "config.yaml").write_text(text)
    with pytest.raises(NLBRunError, match="dsid infer"):
        evaluate_run(run_dir, log_wandb=False)
    assert not (run_dir / METRICS_FILE).exists() or json.loads(
        (run_dir / METRICS_FILE).read_text()
    )["data_path"] != str(other)


def test_callback_needs_nlb_data(tiny_lorenz, nlb_prepared):
    class Trainer:
        def __init__(self, path):
            self.datamodule = type("DM", (), {"path": str(path)})()

    with pytest.raises(DataFileError, match="nlb.eval_every_n_steps"):
        NLBEvalCallback(2).setup(Trainer(tiny_lorenz), None)
    with pytest.warns(UserWarning, match="test-phase"):
        cb = NLBEvalCallback(2)
        cb.setup(Trainer(nlb_prepared[("mc_maze", 5, "test")]), None)
    assert cb.targets is None
    assert NLBEvalCallback.from_config({"eval_every_n_steps": 0}) is None
    with pytest.raises(ValueError, match="positive"):
        NLBEvalCallback(0)


FULL_PATH = [
    pytest.param("area2_bump", 20, id="area2_bump-20"),
    pytest.param("mc_maze", 20, id="mc_maze-20", marks=pytest.mark.slow),
    pytest.param("area2_bump", 5, id="area2_bump-5", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("like, bin_ms", FULL_PATH)
def test_full_path(nlb_prepared, train_tiny, tmp_path, like, bin_ms, capsys):
    """Val phase: train, evaluate (every metric); test phase: train on NLB's train+val trials,
    submit."""
    val_run = train_tiny(nlb_prepared[(like, bin_ms, "val")], tmp_path / "val_run", epochs=1)
    assert main(["nlb", "evaluate", str(val_run), "--no-wandb"]) == 0
    metrics = json.loads((val_run / METRICS_FILE).read_text())["metrics"]
    assert set(metrics) == set(get_spec(like).metric_names)
    test_file = nlb_prepared[(like, bin_ms, "test")]
    test_run = train_tiny(test_file, tmp_path / "test_run", epochs=1)
    assert main(["nlb", "evaluate", str(test_run), "--no-wandb"]) == 2
    assert "dsid nlb submit" in capsys.readouterr().err
    out = tmp_path / "submission.h5"
    assert main(["nlb", "submit", str(test_run), "--out", str(out), "--no-wandb"]) == 0
    sub = load_submission_h5(out)
    key = get_spec(like).key(bin_ms)
    assert list(sub) == [key] and {k: v.shape for k, v in sub[key].items()} == _expected_shapes(
        test_file
    )
    assert all(np.isfinite(v).all() and (v > 0).all() for v in sub[key].values())
