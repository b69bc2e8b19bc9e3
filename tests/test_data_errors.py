"""Each bad-input case gives a clear error naming the file, the field and the expectation."""

import h5py
import numpy as np
import pytest

from dsid.data.tensor_file import DataFileError, load_tensor_file, write_tensor_file

pytestmark = pytest.mark.faults


@pytest.fixture
def good_file(tmp_path, lorenz_data):
    return write_tensor_file(tmp_path / "good.h5", lorenz_data)


def edit(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)
    return path


def replace(f, key, value):
    del f[key]
    f[key] = value


def test_good_file_round_trips(good_file, lorenz_data):
    data = load_tensor_file(good_file)
    np.testing.assert_array_equal(data.splits["train"].spikes, lorenz_data.splits["train"].spikes)
    np.testing.assert_array_equal(data.heldout, lorenz_data.heldout)
    assert data.n_neurons == 8 and data.n_areas == 1 and data.latent_size == 3


CASES = [
    ("missing spikes", lambda f: f["valid"].__delitem__("spikes"), "valid/spikes", "nothing"),
    ("missing split", lambda f: f.__delitem__("valid"), "valid/spikes", "no such group"),
    ("missing bin width", lambda f: f.attrs.__delitem__("bin_ms"), "attrs/bin_ms", "bin width"),
    ("missing area", lambda f: f["neurons"].__delitem__("area"), "neurons/area", "integer array"),
    (
        "wrong neuron count",
        lambda f: replace(f, "train/spikes", np.zeros((6, 10, 5), np.int32)),
        "train/spikes",
        "shape (trials, T, 8)",
    ),
    (
        "float area labels",
        lambda f: replace(f, "neurons/area", np.zeros(8)),
        "neurons/area",
        "integer",
    ),
    (
        "string spikes",
        lambda f: replace(f, "train/spikes", np.full((6, 10, 8), b"a")),
        "train/spikes",
        "integer spike counts",
    ),
    (
        "NaN counts",
        lambda f: replace(f, "train/spikes", np.full((6, 10, 8), np.nan)),
        "train/spikes",
        "no NaN",
    ),
    (
        "negative counts",
        lambda f: replace(f, "train/spikes", -np.ones((6, 10, 8), np.int32)),
        "train/spikes",
        "non-negative",
    ),
    (
        "fractional counts",
        lambda f: replace(f, "train/spikes", np.full((6, 10, 8), 0.5)),
        "train/spikes",
        "integer spike counts",
    ),
    (
        "empty split",
        lambda f: replace(f, "valid/spikes", np.zeros((0, 10, 8), np.int32)),
        "valid/spikes",
        "at least one trial",
    ),
    (
        "mismatched bins",
        lambda f: replace(f, "valid/spikes", np.zeros((3, 7, 8), np.int32)),
        "valid/spikes",
        "T=10",
    ),
    (
        "heldout wrong length",
        lambda f: replace(f, "neurons/heldout", np.zeros(3, bool)),
        "neurons/heldout",
        "(8,) bool",
    ),
    (
        "all held out",
        lambda f: replace(f, "neurons/heldout", np.ones(8, bool)),
        "neurons/heldout",
        "at least one held-in neuron",
    ),
    (
        "area gap",
        lambda f: replace(f, "neurons/area", np.array([0, 0, 0, 0, 2, 2, 2, 2])),
        "neurons/area",
        "every area",
    ),
    (
        "latent trial mismatch",
        lambda f: replace(f, "train/truth/latents", np.zeros((2, 10, 3))),
        "train/truth/latents",
        "shape (6, 10, L)",
    ),
    (
        "bad effectome",
        lambda f: f.create_dataset("truth/effectome", data=np.zeros((2, 2))),
        "truth/effectome",
        "shape (1, 1)",
    ),
]


@pytest.mark.parametrize("label,change,field,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_file_field_and_expectation(good_file, label, change, field, expected):
    edit(good_file, change)
    with pytest.raises(DataFileError) as err:
        load_tensor_file(good_file)
    msg = str(err.value)
    assert str(good_file) in msg and f"'{field}'" in msg and expected in msg, msg


def test_missing_and_non_hdf5_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such DSID tensor file"):
        load_tensor_file(tmp_path / "absent.h5")
    bad = tmp_path / "text.h5"
    bad.write_text("not hdf5")
    with pytest.raises(DataFileError, match="an HDF5 file"):
        load_tensor_file(bad)


def test_failed_write_leaves_nothing(tmp_path, lorenz_data):
    lorenz_data.splits["train"].behavior = object()  # cannot be written
    with pytest.raises(Exception):
        write_tensor_file(tmp_path / "out.h5", lorenz_data)
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_have_normal_permissions_and_leave_nothing(tmp_path):
    import os
    import time

    from dsid.data.atomic import STALE_SECONDS, atomic_h5

    out = tmp_path / "out.h5"
    stale = tmp_path / ".out.h5.abc123.tmp"  # what a killed writer left a while ago
    stale.write_bytes(b"x" * 100)
    old = time.time() - STALE_SECONDS - 10
    os.utime(stale, (old, old))
    with atomic_h5(out) as f:
        f["x"] = [1, 2, 3]
    assert out.stat().st_mode & 0o777 == 0o666 & ~_current_umask()
    assert not stale.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]
    with pytest.raises(KeyboardInterrupt):
        with atomic_h5(tmp_path / "other.h5") as f:
            f["x"] = [1]
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def _current_umask():
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_split_without_trials_is_left_out_of_the_file(tmp_path):
    from dsid.cli import main

    path = tmp_path / "no_test.h5"
    argv = ["synth", "lorenz", "--trials", "40,12,0", "--bins", "20", "--out", str(path)]
    assert main(argv) == 0
    data = load_tensor_file(path)  # the README calls test optional: the file reads
    assert sorted(data.splits) == ["train", "valid"] and data.splits["valid"].n_trials == 12
    with h5py.File(path, "r") as f:
        assert "test" not in f
