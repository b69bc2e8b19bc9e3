"""Shared fixtures: tiny synthetic data and a tiny model config."""

import copy
import os
import shutil

import numpy as np
import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_CODE", "true")

from dsid.data.synth_lorenz import make_lorenz_benchmark, write_lorenz_benchmark  # noqa: E402

# for tests of the compiled scans: skipped only where there is no compiler at all (with one, a
# failed build is a test failure)
needs_compiler = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None,
    reason="no C++ compiler for the compiled scans",
)

TINY_MODEL = {
    "name": "sae",
    "ic_size": 8,
    "co_size": 2,
    "factor_size": 6,
    "encoder": {"name": "bigru", "hidden_size": 8, "ci_size": 4, "dropout": 0.0},
    "generator": {"name": "lfads", "hidden_size": 12, "controller_size": 6, "dropout": 0.0},
    "readout": {"name": "linear"},
    "observation": {"name": "poisson"},
    "ic_prior": {"name": "gaussian"},
    "co_prior": {"name": "ar1"},
    "augmentations": [{"name": "coordinated_dropout", "rate": 0.3}],
}


# a tiny delay-coupled multi-area model for in-process training tests (data.path to be added)
TINY_MULTIAREA_OVERRIDES = [
    "experiment=multiarea_delay",
    "model.ic_size=4",
    "model.co_size=1",
    "model.factor_size=3",
    "model.encoder.hidden_size=8",
    "model.encoder.ci_size=4",
    "model.generator.hidden_size=8",
    "model.generator.controller_size=4",
    "model.coupling.max_delay=3",
    "trainer.max_time=null",
    "infer.n_samples=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def tiny_info(n_neurons=7, n_heldout=2, n_areas=1):
    heldout = np.zeros(n_neurons, bool)
    heldout[-n_heldout:] = True
    area = np.arange(n_neurons) % n_areas
    return {
        "n_neurons": n_neurons,
        "heldout": heldout.tolist(),
        "area": area.tolist(),
        "n_areas": n_areas,
        "bin_ms": 10.0,
        "n_time": 10,
        "n_forward": 0,
        "mean_counts": [0.2] * n_neurons,
        "area_names": None,
    }


@pytest.fixture
def one_thread():
    """One torch thread: on a few shared cores, more threads make tiny recurrent models much
    slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_lorenz(tmp_path_factory):
    """A small Lorenz benchmark file (60/20/20 trials, 20 bins, 12 neurons, 3 held out)."""
    path = tmp_path_factory.mktemp("data") / "tiny_lorenz.h5"
    write_lorenz_benchmark(
        path, seed=1, n_trials=(60, 20, 20), n_time=20, n_neurons=12, n_heldout=3
    )
    return path


@pytest.fixture(scope="session")
def _lorenz_data_once():
    return make_lorenz_benchmark(seed=2, n_trials=(6, 3, 3), n_time=10, n_neurons=8, n_heldout=2)


@pytest.fixture
def lorenz_data(_lorenz_data_once):
    """A very small in-memory Lorenz dataset (a fresh copy per test)."""
    return copy.deepcopy(_lorenz_data_once)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """After a run of the fault-injection suite (``-m faults``): how many of its cases pass."""
    if "faults" not in (config.getoption("markexpr") or ""):
        return
    reports = [
        r
        for kind in ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
        for r in terminalreporter.stats.get(kind, [])
        if getattr(r, "when", "call") == "call" or r.outcome != "passed"
    ]
    cases = {r.nodeid: r.outcome for r in reports}  # a case's last word (setup, call or teardown)
    passed = sum(outcome == "passed" for outcome in cases.values())
    terminalreporter.write_line(f"fault-injection suite: {passed} of {len(cases)} cases pass")
