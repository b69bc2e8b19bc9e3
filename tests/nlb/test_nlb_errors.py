"""Bad input to `prepare` gives a clear error naming the file and the field, and writes nothing."""

import shutil

import h5py
import numpy as np
import pytest
from nlb_tools.make_tensors import PARAMS

from dsid.cli import main
from dsid.data.tensor_file import DataFileError
from dsid.nlb.prepare import prepare
from dsid.nlb.specs import DATASETS, SPECS, check_bin, get_spec

MAZE = get_spec("mc_maze")


def _drop(f, path):
    """Remove a column (with its index) from an NWB table, or any other object, as if never
    written."""
    table, _, name = path.rpartition("/")
    for p in (path, f"{path}_index"):
        if p in f:
            del f[p]
    if table in f and "colnames" in f[table].attrs:
        f[table].attrs["colnames"] = [c for c in f[table].attrs["colnames"] if c != name]


def _copy_maze(nlb_synth, tmp_path, drop=None, test_file=True):
    src = nlb_synth["mc_maze"]
    dst = tmp_path / "nwb"
    dst.mkdir()
    for name in [MAZE.train_file()] + ([MAZE.test_file()] if test_file else []):
        shutil.copy(src / name, dst / name)
    if drop:
        with h5py.File(dst / MAZE.train_file(), "a") as f:
            _drop(f, drop)
    return dst


def _assert_nothing_written(out):
    assert not out.exists()
    assert not list(out.parent.glob("*.tmp")) if out.parent.exists() else True


@pytest.mark.parametrize(
    "field",
    [
        "units/heldout",
        "intervals/trials/split",
        "processing/behavior/hand_vel",
        "intervals/trials/move_onset_time",
        "intervals/trials/trial_version",
        "units/obs_intervals",
    ],
)
def test_missing_nwb_field(nlb_synth, tmp_path, field):
    nwb_dir = _copy_maze(nlb_synth, tmp_path, drop=field)
    out = tmp_path / "out" / "maze.h5"
    with pytest.raises(DataFileError) as err:
        prepare("mc_maze", nwb_dir, 5, "val", out)
    assert err.value.field == field and MAZE.train_file() in str(err.value)
    assert field in str(err.value)
    _assert_nothing_written(out)


def test_not_an_nwb_file(tmp_path):
    (tmp_path / MAZE.train_file()).write_text("not hdf5")
    out = tmp_path / "maze.h5"
    with pytest.raises(DataFileError, match="NWB"):
        prepare("mc_maze", tmp_path, 5, "val", out)
    _assert_nothing_written(out)


@pytest.mark.parametrize("bin_ms", [7, 10, 1, "5ms"])
def test_bad_bin_size(nlb_synth, tmp_path, bin_ms):
    out = tmp_path / "maze.h5"
    with pytest.raises(ValueError, match=r"bin_ms: expected one of \(5, 20\)"):
        prepare("mc_maze", nlb_synth["mc_maze"], bin_ms, "val", out)
    _assert_nothing_written(out)


def test_missing_dataset_files(nlb_synth, tmp_path):
    out = tmp_path / "maze.h5"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=MAZE.train_file().replace("+", r"\+")):
        prepare("mc_maze", tmp_path / "empty", 5, "val", out)
    with pytest.raises(
        FileNotFoundError, match="sub-Han_desc-train"
    ):  # only another dataset's files
        prepare("mc_maze", nlb_synth["area2_bump"], 5, "val", out)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        prepare("mc_maze", tmp_path / "absent", 5, "val", out)
    no_test = _copy_maze(nlb_synth, tmp_path, test_file=False)
    with pytest.raises(FileNotFoundError, match="no mc_maze test file"):
        prepare("mc_maze", no_test, 5, "test", out)
    with pytest.raises(ValueError, match="phase"):
        prepare("mc_maze", no_test, 5, "eval", out)
    with pytest.raises(ValueError, match="mc_maze_small"):
        prepare("mc_mazes", no_test, 5, "val", out)
    _assert_nothing_written(out)


def test_cli_reports_errors(nlb_synth, tmp_path, capsys):
    nwb_dir = _copy_maze(nlb_synth, tmp_path, drop="units/heldout")
    out = tmp_path / "maze.h5"
    code = main(
        [
            "nlb",
            "prepare",
            "--dataset",
            "mc_maze",
            "--nwb-dir",
            str(nwb_dir),
            "--bin",
            "5",
            "--phase",
            "val",
            "--out",
            str(out),
        ]
    )
    assert code == 2 and "units/heldout" in capsys.readouterr().err
    _assert_nothing_written(out)


def test_specs_match_nlb_tools():
    assert set(DATASETS) == set(PARAMS)
    for name, spec in SPECS.items():
        p = PARAMS[name]
        assert spec.align_field == p["make_params"]["align_field"]
        assert spec.align_range == p["make_params"]["align_range"]
        assert spec.lag == p.get("lag") and spec.fp_len == p["fp_len"]
        assert spec.behavior_source == p["behavior_source"]
        assert list(spec.behavior_field) == list(np.atleast_1d(p["behavior_field"]))
        assert list(spec.cond_fields) == p.get("psth_params", {}).get("cond_fields", [])
        assert (spec.decode_mask_field is not None) == ("decode_masks" in p)
        assert spec.key(20) == f"{name}_20" and spec.key(5) == name
    assert [
        SPECS[n].dandiset
        for n in (
            "mc_maze",
            "mc_rtt",
            "area2_bump",
            "dmfc_rsg",
            "mc_maze_large",
            "mc_maze_medium",
            "mc_maze_small",
        )
    ] == ["000128", "000129", "000127", "000130", "000138", "000139", "000140"]
    assert (
        SPECS["mc_maze_small"].train_file()
        == "sub-Jenkins_ses-small_desc-train_behavior+ecephys.nwb"
    )
    assert SPECS["mc_rtt"].test_file() == "sub-Indy_desc-test_ecephys.nwb"
    assert check_bin(20.0) == 20


def test_nlb_commands_without_nlb_tools_say_how_to_install_it(monkeypatch, capsys, tmp_path):
    import importlib.util

    from dsid.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "nlb_tools" else real(name, *a),
    )
    assert main(["nlb", "baseline", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert "pip install --no-deps nlb-tools==0.0.4" in err
