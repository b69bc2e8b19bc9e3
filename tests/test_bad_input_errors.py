"""Bad input is one clear line naming the file and field (or the setting), exit code 2, no
traceback unless ``dsid --debug`` (or ``HYDRA_FULL_ERROR=1``), nothing written or left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from dsid.autofit.fit import REPORT_FILE
from dsid.autofit.fit_config import start_overrides
from dsid.cli import main as cli_main
from dsid.data.synth_lorenz import write_lorenz_benchmark
from dsid.data.tensor_file import DataFileError, load_tensor_file
from dsid.runs.config import compose
from dsid.training.defaults import training_config
from dsid.training.schedules import STEP_SETTINGS

pytestmark = pytest.mark.faults

DSID = str(Path(sys.executable).parent / "dsid")
TINY = [
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "infer.n_samples=1",
    "model.ic_size=4",
    "model.co_size=1",
    "model.factor_size=3",
    "model.encoder.hidden_size=4",
    "model.encoder.ci_size=2",
    "model.generator.hidden_size=4",
    "model.generator.controller_size=2",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_lorenz_benchmark(
        tmp_path_factory.mktemp("bad") / "tiny.h5",
        seed=2,
        n_trials=(20, 6, 6),
        n_time=10,
        n_neurons=8,
        n_heldout=2,
    )


def edited(tiny, tmp_path, change, name="bad.h5") -> Path:
    path = tmp_path / name
    path.write_bytes(Path(tiny).read_bytes())
    with h5py.File(path, "a") as f:
        change(f)
    return path


def set_array(key, fn):
    def change(f):
        value = fn(f[key][()])
        del f[key]
        f[key] = value

    return change


def with_nan(x):
    x = np.array(x, np.float64)
    x.flat[0] = np.nan
    return x


def cut_bins(n_bins):
    def change(f):
        for split in ("train", "valid", "test"):
            set_array(f"{split}/spikes", lambda x: x[:, :n_bins])(f)
            del f[f"{split}/truth"]

    return change


def console(monkeypatch, capsys, *argv):
    """``dsid ARGV`` as from the command line (errors reported, not raised), in this process."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(sys, "argv", ["dsid", *argv])
    code = cli_main()
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert "Traceback" not in text
    return lines[0]


# 1. a data path with spaces and accents reaches Hydra quoted


@pytest.mark.parametrize(
    "name",
    [
        "plain-1.h5",
        "data dir é/my data ü.h5",
        "it's a\\b.h5",
        "a=b,c [1] ${x}.h5",
        "end\\",
        "x\\'y",
    ],
)
def test_fit_passes_any_path_to_hydra_quoted(name):
    path = Path("/data") / name
    cfg = compose(start_overrides(path, [], [], 0, []))
    assert cfg.data.path == str(path) and cfg.experiment_name == f"fit_{path.stem}"


def test_fit_on_a_path_with_spaces_and_accents(tiny, tmp_path):
    folder = tmp_path / "data dir é"
    folder.mkdir()
    data = folder / "my data ü.h5"
    data.write_bytes(Path(tiny).read_bytes())
    out = tmp_path / "run"
    done = subprocess.run(
        [DSID, "fit", str(data), "--budget", "4steps", "--out", str(out), *TINY],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["data"] == str(data.resolve()) and report["steps"] == 4


# 2. and 3. the file's fields are checked when it is loaded


@pytest.mark.parametrize(
    "change,field,expected",
    [
        (set_array("valid/truth/latents", with_nan), "valid/truth/latents", "finite values"),
        (set_array("train/truth/rates", lambda x: x * np.inf), "train/truth/rates", "finite"),
        (set_array("test/truth/latents", lambda x: x[:, :4]), "test/truth/latents", "(6, 10, L)"),
        (cut_bins(0), "train/spikes", "at least 2 time bins"),
        (cut_bins(1), "train/spikes", "at least 2 time bins"),
        (lambda f: f.attrs.__setitem__("bin_ms", "ten"), "attrs/bin_ms", "found 'ten'"),
        (lambda f: f.attrs.__setitem__("bin_ms", 0.0), "attrs/bin_ms", "positive bin width"),
        (lambda f: f.attrs.__setitem__("bin_ms", -5), "attrs/bin_ms", "positive bin width"),
        (
            lambda f: f.create_dataset("valid/truth/messages/0_1", data=np.zeros((6, 3, 2))),
            "valid/truth/messages/0_1",
            "(6, 10, k)",
        ),
        (
            lambda f: f.create_dataset("truth/effectome", data=np.full((1, 1), np.nan)),
            "truth/effectome",
            "finite values",
        ),
    ],
    ids=[
        "nan-latents",
        "inf-rates",
        "latent-bins",
        "T=0",
        "T=1",
        "bin_ms-text",
        "bin_ms-zero",
        "bin_ms-negative",
        "message-bins",
        "nan-effectome",
    ],
)
def test_bad_fields_are_named_when_loaded(tiny, tmp_path, change, field, expected):
    path = edited(tiny, tmp_path, change)
    with pytest.raises(DataFileError) as err:
        load_tensor_file(path, counts=False)
    msg = str(err.value)
    assert str(path) in msg and f"'{field}'" in msg and expected in msg, msg


def test_train_on_nan_truth_is_one_line_and_leaves_no_run(tiny, tmp_path, monkeypatch, capsys):
    path = edited(tiny, tmp_path, set_array("valid/truth/latents", with_nan))
    run_dir = tmp_path / "run"
    args = ["train", "data=file", f"data.path={path}", *TINY, f"run_dir={run_dir}"]
    code, out, err = console(monkeypatch, capsys, *args)
    line = one_error_line(err)
    assert code == 2 and "field 'valid/truth/latents': expected finite values" in line
    assert not run_dir.exists()


def test_fit_on_a_file_without_bins_is_one_line(tiny, tmp_path, monkeypatch, capsys):
    path = edited(tiny, tmp_path, cut_bins(0))
    code, out, err = console(
        monkeypatch, capsys, "fit", str(path), "--budget", "4steps", "--out", str(tmp_path / "r")
    )
    assert code == 2 and "at least 2 time bins" in one_error_line(out)
    assert not (tmp_path / "r").exists()


# 3. settings that cannot train are refused by name, before the run directory is touched


def test_fit_refuses_bad_settings_before_anything_is_written(tiny, tmp_path):
    out = tmp_path / "fit"
    done = subprocess.run(
        [DSID, "fit", str(tiny), "--budget", "4steps", "--out", str(out), "trainer.max_epochs=abc"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "trainer.max_epochs=abc: expected an integer" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr and not out.exists()


@pytest.mark.parametrize(
    "override,expected",
    [
        ("data.batch_size=0", "data.batch_size=0: expected an integer >= 1"),
        ("data.batch_size=-8", "data.batch_size=-8: expected an integer >= 1"),
        ("trainer.max_epochs=abc", "trainer.max_epochs=abc: expected an integer"),
        ("model.generator.hidden_size=abc", "model.generator.hidden_size=abc: expected an integer"),
        ("train.kl_ramp_steps=-10", "train.kl_ramp_steps=-10: expected a whole number"),
    ],
)
def test_bad_settings_are_one_line_and_touch_nothing(
    tiny, tmp_path, monkeypatch, capsys, override, expected
):
    run_dir = tmp_path / "run"
    args = ["train", "data=file", f"data.path={tiny}", *TINY, override, f"run_dir={run_dir}"]
    code, out, err = console(monkeypatch, capsys, *args)
    assert code == 2 and expected in one_error_line(err)
    assert not run_dir.exists()  # a later run may use it


@pytest.mark.parametrize("key", STEP_SETTINGS["train"])
def test_negative_step_counts_are_refused(key):
    with pytest.raises(ValueError, match=rf"train.{key}=-10: expected a whole number"):
        training_config({key: -10})
    assert training_config({key: 0})[key] == 0


def test_negative_step_counts_of_other_sections_are_refused(tiny):
    from dsid.runs.assemble import check_settings

    for override, key in (
        ("early_stopping.patience_steps=-1", "early_stopping.patience_steps=-1"),
        ("plots.every_n_steps=-5", "plots.every_n_steps=-5"),
        ("nlb.eval_every_n_steps=-2", "nlb.eval_every_n_steps=-2"),
    ):
        cfg = compose(["data=file", f"data.path={tiny}", override])
        with pytest.raises(ValueError, match=f"{key}: expected a whole number"):
            check_settings(cfg)


# 3. dsid convert nwb on what is not an NWB file, or with a zero bin width


def test_convert_refuses_files_that_are_not_nwb(tiny, tmp_path, monkeypatch, capsys):
    text = tmp_path / "notes.nwb"
    text.write_text("not HDF5")
    out = tmp_path / "out.h5"
    cases = [
        ([str(text)], "notes.nwb: field '/': expected an NWB (HDF5) file"),
        ([str(tiny)], "field 'attrs/nwb_version': expected an NWB file"),
        ([str(tiny), "--bin-ms", "0"], "--bin-ms 0: expected a positive bin width"),
    ]
    for extra, expected in cases:
        code, _, err = console(monkeypatch, capsys, "convert", "nwb", *extra, "--out", str(out))
        assert code == 2 and expected in one_error_line(err)
        assert not out.exists()


# 5. one convention for every command: the line, the traceback only when debugging


def test_infer_error_is_one_line_and_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    missing = str(tmp_path / "nothing")
    code, out, err = console(monkeypatch, capsys, "infer", missing)
    assert code == 2 and "not a DSID run directory" in one_error_line(err)
    code, _, err = console(monkeypatch, capsys, "--debug", "infer", missing)
    assert code == 2 and "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("error: ") and "not a DSID run" in err
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    monkeypatch.setattr(sys, "argv", ["dsid", "infer", missing])
    assert cli_main() == 2 and "Traceback" in capsys.readouterr().err


def test_a_failure_that_is_not_bad_input_exits_1(tmp_path, monkeypatch, capsys):
    import dsid.runs.infer  # the module `dsid infer` imports infer_run from when it runs

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(dsid.runs.infer, "infer_run", broken)
    code, _, err = console(monkeypatch, capsys, "infer", str(tmp_path))
    assert code == 1 and one_error_line(err) == "error: RuntimeError: the disk is on fire"


def test_train_error_through_the_installed_command(tmp_path):
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [DSID, "train", "data=file", f"data.path={tmp_path / 'none.h5'}", f"run_dir={run_dir}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "no such DSID tensor file" in one_error_line(done.stderr)
    assert not run_dir.exists()


@pytest.mark.parametrize(
    "setting, expected",
    [
        ("model.ic_sise=3", "model.ic_sise: no such setting; did you mean model.ic_size"),
        ("train.lr_pateince_steps=5", "did you mean train.lr_patience_steps"),
        ("trainer.zzz=1", "trainer.zzz: no such setting; trainer has accelerator,"),
    ],
)
def test_a_misspelt_setting_is_named_with_its_closest_spellings(setting, expected):
    from dsid.runs.errors import exit_code, one_line

    with pytest.raises(Exception) as caught:
        compose(["data=file", "data.path=x.h5", setting])
    line = one_line(caught.value)
    assert line.startswith("error: ") and expected in line, line
    key = setting.split("=")[0]
    assert f"+{key}=" in line and "\n" not in line and exit_code(caught.value) == 2
