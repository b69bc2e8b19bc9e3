"""The built wheel installs into a fresh environment and trains, without this repository."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_trains_without_the_repository(tmp_path):
    # nothing may put the repository on the path (PBT's Ray start-up exports PYTHONPATH, for one)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DSID_CONFIG_DIR")}
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        cwd=tmp_path,
        env=env,
    )
    wheel = next(wheels.glob("dsid-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert (
        "dsid/configs/train.yaml" in names and "dsid/configs/experiment/lorenz_lfads.yaml" in names
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        cwd=tmp_path,
        env=env,
    )
    # the dependencies (torch, Lightning, ...) come from this environment's site-packages, added as
    # a plain path: its editable-install hook for the repository's dsid is not run
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    deps = [p for p in site.getsitepackages() if "site-packages" in p] or [
        sysconfig.get_paths()["purelib"]
    ]
    Path(purelib, "deps.pth").write_text("\n".join(deps) + "\n")
    work = tmp_path / "work"
    work.mkdir()

    def run(*args):
        done = subprocess.run(
            [str(venv / "bin" / "dsid"), *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    where = subprocess.run(
        [
            str(py),
            "-c",
            "import dsid, dsid.training.defaults as d; print(dsid.__file__); print(d.config_dir())",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0, where.stderr[-3000:]
    file_, configs = where.stdout.split()
    assert file_.startswith(str(venv)) and configs.startswith(str(venv)), (
        where.stdout + where.stderr
    )
    assert run("--version").strip().startswith("dsid ")
    run(
        "synth",
        "lorenz",
        "--out",
        "tiny.h5",
        "--trials",
        "30,10,10",
        "--bins",
        "15",
        "--neurons",
        "10",
        "--heldout",
        "2",
    )
    out = run(
        "train",
        "data=file",
        "data.path=tiny.h5",
        "trainer.max_epochs=1",
        "logger=csv",
        "run_dir=run",
        "model.generator.hidden_size=16",
        "model.ic_size=8",
        "infer.n_samples=1",
        "trainer.enable_progress_bar=false",
    )
    assert "val/co_bps" in out and (work / "run" / "checkpoints" / "best.ckpt").exists()
