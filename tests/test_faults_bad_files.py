"""Fault injection, bad input: every bad data file through ``dsid train``, ``dsid fit`` and
``dsid infer --data`` (and bad input to ``dsid convert nwb``) is one line ``error: ...`` naming the
file and the field, exit code 2, no traceback, and nothing written or changed."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import pytest

from dsid.runs.train import train
from tests.test_bad_input_errors import (
    TINY,
    console,
    cut_bins,
    edited,
    one_error_line,
    set_array,
    with_nan,
)
from tests.test_run_dir_safety import snapshot, tiny_cfg

pytestmark = pytest.mark.faults


def put(key, value, dtype=np.float64):
    """Set the first element of the array ``key`` to ``value`` (stored as ``dtype``)."""

    def change(x):
        x = np.array(x, dtype)
        x.flat[0] = value
        return x

    return set_array(key, change)


def attr(name, value):
    return lambda f: f.attrs.__setitem__(name, value)


def delete(key):
    return lambda f: f.__delitem__(key)


def with_ext(split, fix):
    """Known external inputs (trials, T, 2) in every split, ``fix`` applied to ``split``'s."""

    def change(f):
        for s in ("train", "valid", "test"):
            ext = np.zeros(f[f"{s}/spikes"].shape[:2] + (2,), np.float32)
            f[f"{s}/ext_inputs"] = fix(ext) if s == split else ext

    return change


def text_file(path):
    path.write_text("not an HDF5 file\n")


def empty_hdf5(path):
    h5py.File(path, "w").close()


def bad(change, field, expected, id):
    """A case: how the valid file is broken, the field the error names, a part of what it
    expected."""
    return pytest.param((change, field, expected), id=id)


BAD_FILES = [
    bad(put("train/spikes", np.nan), "train/spikes", "NaN", id="nan-spikes"),
    bad(put("train/spikes", np.inf), "train/spikes", "inf", id="inf-spikes"),
    bad(put("train/spikes", -1, np.int32), "train/spikes", "non-negative", "negative"),
    bad(put("train/spikes", 0.5), "train/spikes", "spike counts", id="non-integer"),
    bad(put("valid/spikes", 0.5), "valid/spikes", "spike counts", "non-integer-valid"),
    bad(set_array("train/spikes", lambda x: x[0]), "train/spikes", "shape", id="2-D"),
    bad(set_array("valid/spikes", lambda x: x[..., :-1]), "valid/spikes", "shape", id="valid-N"),
    bad(delete("valid"), "valid/spikes", "no such group", id="no-valid"),
    bad(delete("train"), "train/spikes", "no such group", id="no-train"),
    bad(
        set_array("valid/spikes", lambda x: x[:0]), "valid/spikes", "0 trials", id="valid-0-trials"
    ),
    bad(cut_bins(0), "train/spikes", "at least 2 time bins", id="T=0"),
    bad(cut_bins(1), "train/spikes", "at least 2 time bins", id="T=1"),
    bad(attr("bin_ms", "ten"), "attrs/bin_ms", "found 'ten'", id="bin_ms-text"),
    bad(attr("bin_ms", 0.0), "attrs/bin_ms", "positive bin width", id="bin_ms-zero"),
    bad(attr("bin_ms", -5), "attrs/bin_ms", "positive bin width", id="bin_ms-negative"),
    bad(set_array("neurons/heldout", lambda x: x[:-1]), "neurons/heldout", "bool", id="heldout-N"),
    bad(
        set_array("neurons/heldout", lambda x: x.astype(np.int64)),
        "neurons/heldout",
        "bool",
        id="heldout-int",
    ),
    bad(with_ext("train", lambda e: e[:-1]), "train/ext_inputs", "shape", id="ext-trials"),
    bad(
        with_ext("train", lambda e: np.concatenate([e, e[:, :3]], 1)),
        "train/ext_inputs",
        "shape",
        id="ext-bins",
    ),
    bad(with_ext("valid", with_nan), "valid/ext_inputs", "finite", id="ext-nan"),
    bad(
        set_array("valid/truth/latents", with_nan),
        "valid/truth/latents",
        "finite values",
        id="nan-latents",
    ),
    bad(
        set_array("train/truth/rates", lambda x: x[..., :-1]),
        "train/truth/rates",
        "shape",
        id="rates-shape",
    ),
    bad(text_file, "/", "an HDF5 file", id="not-hdf5"),
    bad(empty_hdf5, "attrs/bin_ms", "positive bin width", id="empty-hdf5"),
    bad(None, None, "no such DSID tensor file", id="missing"),
]


@pytest.fixture
def bad_file(request, tiny_lorenz, tmp_path):
    """The bad file of the case and the part of the error line that names its field."""
    change, field, expected = request.param
    path = tmp_path.resolve() / "bad data" / "x.h5"  # as dsid fit names it
    path.parent.mkdir()
    if change in (text_file, empty_hdf5):
        change(path)
    elif change is not None:
        edited(tiny_lorenz, path.parent, change, path.name)
    return path, (f"field '{field}'" if field else ""), expected


def check_line(line: str, bad_file) -> None:
    path, field, expected = bad_file
    assert str(path) in line and field in line and expected in line, line


@pytest.mark.parametrize("bad_file", BAD_FILES, indirect=True)
def test_train(bad_file, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "R"
    args = ["train", "data=file", f"data.path={bad_file[0]}", f"run_dir={run_dir}", *TINY]
    code, out, err = console(monkeypatch, capsys, *args)
    assert code == 2, out + err
    check_line(one_error_line(err), bad_file)
    assert not run_dir.exists()


@pytest.mark.parametrize("bad_file", BAD_FILES, indirect=True)
def test_fit(bad_file, tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "R"
    args = ["fit", str(bad_file[0]), "--budget", "4steps", "--out", str(run_dir)]
    code, out, err = console(monkeypatch, capsys, *args)
    assert code == 2 and not err.strip(), out + err  # fit's error is on stdout, like its report
    check_line(one_error_line(out), bad_file)
    assert not run_dir.exists()


@pytest.fixture(scope="module")
def finished_run(tiny_lorenz, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    train(tiny_cfg(tiny_lorenz, "trainer.max_epochs=1", "infer.n_samples=1"), run_dir=str(run_dir))
    return run_dir


@pytest.mark.parametrize("bad_file", BAD_FILES, indirect=True)
def test_infer(bad_file, finished_run, tmp_path, monkeypatch, capsys):
    run = Path(shutil.copytree(finished_run, tmp_path / "run"))
    before = snapshot(run)
    code, out, err = console(monkeypatch, capsys, "infer", str(run), "--data", str(bad_file[0]))
    assert code == 2, out + err
    check_line(one_error_line(err), bad_file)
    assert snapshot(run) == before and not list(run.glob("inference_*.h5"))


# dsid convert nwb


def nwb_without_units(path):
    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(
        session_description="no units",
        identifier="dsid-faults",
        session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc),
    )
    nwb.add_trial(start_time=0.0, stop_time=1.0)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def bare_nwb_version(path):
    with h5py.File(path, "w") as f:
        f.attrs["nwb_version"] = "2.5.0"


@pytest.mark.parametrize(
    "make,extra,expected",
    [
        pytest.param(text_file, [], "field '/': expected an NWB (HDF5) file", id="text"),
        pytest.param(None, [], "field 'attrs/nwb_version': expected an NWB file", id="dsid-file"),
        pytest.param(nwb_without_units, [], "field 'units': expected a units table", id="no-units"),
        pytest.param(
            bare_nwb_version,
            [],
            "field '/': expected an NWB file that pynwb",
            id="nwb_version-only",
        ),
        pytest.param(None, ["--bin-ms", "0"], "--bin-ms 0: expected a positive", id="bin-ms-0"),
        pytest.param(None, ["--bin-ms", "-5"], "--bin-ms -5: expected a positive", id="bin-ms-neg"),
    ],
)
def test_convert_nwb(make, extra, expected, tiny_lorenz, tmp_path, monkeypatch, capsys):
    path = tmp_path / "in.nwb"
    if make is None:
        shutil.copy(tiny_lorenz, path)
    else:
        make(path)
    out = tmp_path / "out.h5"
    code, _, err = console(
        monkeypatch, capsys, "convert", "nwb", str(path), *extra, "--out", str(out)
    )
    line = one_error_line(err)
    assert code == 2 and expected in line, line
    assert str(path) in line or extra, line
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.nwb"]
