"""Fault injection, paths and permissions: file and folder names with spaces, accents, commas and
quotes go through every command unchanged; a folder that cannot be written (read-only) is one line
``error: ...`` naming it, exit code 1, and nothing in it changes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from dsid.cli import main as cli_main
from dsid.data.tensor_file import load_tensor_file
from dsid.evaluation.inference import read_data_path
from dsid.runs.config import quoted_paths
from tests.test_bad_input_errors import TINY, one_error_line
from tests.test_convert_nwb import write_nwb
from tests.test_run_dir_safety import snapshot

pytestmark = pytest.mark.faults

ODD = "dàta dir, 'x' [1]"  # a folder name Hydra's grammar would not read unquoted


def dsid(*argv, capsys=None):
    """``dsid ARGV`` in this process, as from the command line: (exit code, stdout, stderr)."""
    with mock.patch.object(sys, "argv", ["dsid", *map(str, argv)]):
        with mock.patch.dict(os.environ, {"HYDRA_FULL_ERROR": ""}):
            code = cli_main()
    out = capsys.readouterr() if capsys is not None else None
    return code, out.out if out else "", out.err if out else ""


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    """A data file and a finished run, both in folders with odd names."""
    root = tmp_path_factory.mktemp("paths") / ODD
    data, run = root / "my dätä, 1.h5", root / "rün dir é"
    assert dsid("synth", "lorenz", "--out", data, "--trials", "20,6,6", "--bins", "10",
                "--neurons", "8", "--heldout", "2")[0] == 0  # fmt: skip
    code = dsid("train", "data=file", f"data.path={data}", *TINY, "trainer.max_epochs=1",
                f"run_dir={run}")[0]  # fmt: skip
    assert code == 0
    return data, run


@pytest.mark.parametrize(
    "override",
    ["run_dir=/data/rün", "data.path=/data/a, b.h5", "data.path=/d/it's [1].h5"],
)
def test_a_path_hydra_cannot_read_is_quoted_as_one_path(override):
    from dsid.runs.config import compose

    key, value = override.split("=", 1)
    cfg = compose(["data=file", *quoted_paths([override])])
    assert (cfg.data.path if key == "data.path" else cfg.run_dir) == value


def test_what_hydra_reads_is_left_as_written():
    given = ["data.path='/a b.h5'", "run_dir=/plain/run", "model.ic_size=4"]
    assert quoted_paths(given) == given
    assert quoted_paths(["-m", "data.path=a.h5,b.h5"]) == ["-m", "data.path=a.h5,b.h5"]  # a sweep
    assert quoted_paths(["data.path=a.h5,b.h5"]) == ["data.path='a.h5,b.h5'"]  # one file


def test_synth_and_train_keep_odd_names(odd):
    data, run = odd
    assert load_tensor_file(data).n_neurons == 8
    assert (run / "checkpoints" / "last.ckpt").exists() and (run / "inference.h5").exists()
    assert sorted(p.name for p in run.parent.iterdir()) == sorted([data.name, run.name])


def test_infer_compare_and_resume_keep_odd_names(odd, tmp_path, capsys):
    data, run = odd
    run = Path(shutil.copytree(run, tmp_path / ODD / "rün copy"))
    copy = tmp_path / ODD / "öther dätä, 2.h5"
    shutil.copy(data, copy)
    assert dsid("infer", run, "--data", copy, capsys=capsys)[0] == 0
    written = run / f"inference_{copy.stem}.h5"
    assert read_data_path(written) == str(copy.resolve())
    out = tmp_path / ODD / "infer out é.h5"
    assert dsid("infer", run, "--data", copy, "--out", out, capsys=capsys)[0] == 0
    assert out.exists()
    table = tmp_path / ODD / "compäre, 1"
    code, stdout, _ = dsid("compare", run, run, "--out", table, "--no-wandb", capsys=capsys)
    assert code == 0 and (table / "compare.csv").exists() and run.name in stdout
    code, _, err = dsid("train", f"resume={run}", capsys=capsys)
    assert code == 2 and f"{run}: the run finished" in one_error_line(err)


def test_convert_nwb_keeps_odd_names(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / ODD
    folder.mkdir()
    starts = np.arange(6) * 2.0
    spikes = [np.sort(rng.uniform(0, 12.0, 100)) for _ in range(4)]
    nwb = write_nwb(folder / "récording 1.nwb", spikes, starts, starts + 1.0, starts + 0.4,
                    ["a", "b"] * 3, ["M1"] * 4)  # fmt: skip
    out = folder / "cönverted, 1.h5"
    code, _, err = dsid("convert", "nwb", nwb, "--out", out, capsys=capsys)
    assert code == 0, err
    assert load_tensor_file(out, require_splits=("train",)).n_neurons == 4


# a folder nobody may write: a read-only file system (as root, for whom permissions do not count)
# or, for any other user, a folder without write permission


@contextmanager
def read_only(folder: Path, fill):
    """``folder`` with what ``fill(folder)`` puts there, then made read-only."""
    folder.mkdir()
    if os.geteuid() != 0:
        fill(folder)
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(folder)]).returncode != 0:
        pytest.skip("root, and no right to mount a read-only file system")
    try:
        fill(folder)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _commands(data, run, ro):
    train = ["data=file", f"data.path={data}", *TINY, "trainer.max_epochs=1"]
    return {
        "train": ["train", *train, f"run_dir={ro / 'new run'}"],
        "train-overwrite": ["train", *train, f"run_dir={ro / 'run'}", "overwrite=true"],
        "infer": ["infer", ro / "run"],
        "infer-data": ["infer", ro / "run", "--data", data],
        "fit": ["fit", data, "--budget", "4steps", "--out", ro / "fit", *TINY],
        "synth": ["synth", "lorenz", "--out", ro / "x.h5"],
        "compare": ["compare", ro / "run", "--out", ro / "compare", "--no-wandb"],
    }


@pytest.mark.parametrize("command", list(_commands("d", "r", Path("ro"))))
def test_a_read_only_folder_is_one_line_and_nothing_in_it_changes(odd, tmp_path, capsys, command):
    data, run = odd

    def fill(folder):
        shutil.copytree(run, folder / "run")

    with read_only(tmp_path / "read-only", fill) as ro:
        before = snapshot(ro)
        code, out, err = dsid(*_commands(data, run, ro)[command], capsys=capsys)
        lines = (out + err).strip().splitlines()
        assert code == 1 and lines[-1].startswith("error: OSError: ["), out + err
        assert ("Read-only file system" in lines[-1]) or ("Permission denied" in lines[-1])
        assert (
            f"'{ro}/" in lines[-1] and "Traceback" not in out + err
        )  # names what it could not write
        assert snapshot(ro) == before
