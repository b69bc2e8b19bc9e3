"""The user's coordinates (trial ids, unit ids, the alignment's offset) survive the tensor file and
the inference file, and outputs come back in the user's own order."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from dsid.data.from_numpy import from_numpy
from dsid.data.tensor_file import DataFileError, load_tensor_file
from dsid.evaluation.inference import read_coordinates, read_inference, write_inference
from dsid.runs.load import in_user_coordinates


def _user_data(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.poisson(2.0, (30, 5, 7))
    units = np.array([70, 60, 50, 40, 30, 20, 10])  # ids in the reverse of the columns' order
    data = from_numpy(
        x,
        bin_ms=20,
        heldout=np.array([0, 1, 0, 0, 0, 1, 0], bool),
        valid_fraction=0.3,
        test_fraction=0.2,
        trial_ids=100 + np.arange(30),
        unit_ids=units,
        time_start_ms=-200,
        out=tmp_path / "user.h5",
    )
    return x, units, data


def test_ids_and_the_alignment_offset_round_trip_through_the_tensor_file(tmp_path):
    x, units, written = _user_data(tmp_path)
    data = load_tensor_file(tmp_path / "user.h5")
    assert data.time_start_ms == -200 and np.array_equal(data.unit_id, written.unit_id)
    assert not data.heldout[:5].any() and data.heldout[5:].all()  # held-in first in the file
    every = np.concatenate([sd.trial_id for sd in data.splits.values()])
    assert sorted(every) == list(range(100, 130))
    for sd in data.splits.values():  # each file trial is the user's trial of that id
        cols = [int(np.flatnonzero(units == u)[0]) for u in data.unit_id]
        assert np.array_equal(sd.spikes, x[sd.trial_id - 100][..., cols])


def test_outputs_come_back_in_the_users_trial_and_neuron_order_with_times_in_ms(tmp_path):
    x, units, _ = _user_data(tmp_path)
    data = load_tensor_file(tmp_path / "user.h5")
    # a model that predicts each bin's count exactly, so rates can be checked against x
    outputs = {
        s: {"rates": sd.spikes.astype(float), "factors": sd.spikes[..., :2] * 1.0}
        for s, sd in data.splits.items()
    }
    path = write_inference(tmp_path / "inference.h5", outputs, 1, data=data)
    coords = read_coordinates(path)
    for split in data.splits:
        got = in_user_coordinates(read_inference(path)[split], coords, reorder=True)
        assert np.all(np.diff(got["trial_id"]) > 0) and np.all(np.diff(got["unit_id"]) > 0)
        order = np.argsort(units)  # the user's columns sorted by unit id
        assert np.array_equal(got["rates"], x[got["trial_id"] - 100][..., order])
        assert got["factors"].shape == (got["trial_id"].size, 5, 2)
        assert np.allclose(got["time_ms"], [-200, -180, -160, -140, -120])
        same = in_user_coordinates(read_inference(path)[split], coords, reorder=False)
        assert np.array_equal(same["rates"], data.splits[split].spikes)


def test_outputs_as_a_frame_keep_the_users_ids_and_times(tmp_path):
    from dsid.data.coordinates import outputs_frame

    x, units, _ = _user_data(tmp_path)
    data = load_tensor_file(tmp_path / "user.h5")
    sd = data.splits["valid"]
    outputs = {"valid": {"rates": sd.spikes * 1.0, "factors": sd.spikes[..., :2] * 1.0}}
    path = write_inference(tmp_path / "inference.h5", outputs, 1, data=data)
    got = in_user_coordinates(read_inference(path)["valid"], read_coordinates(path), reorder=True)
    df = outputs_frame(got, "rates")
    assert df.index.names == ["trial_id", "time_ms"] and df.columns.name == "unit_id"
    assert list(df.columns) == sorted(units) and df.shape == (got["trial_id"].size * 5, 7)
    trial = int(got["trial_id"][1])
    one = df.xs(trial, level="trial_id")  # one trial: its counts, columns by unit id
    assert list(one.index) == [-200, -180, -160, -140, -120]
    assert np.array_equal(one[10].to_numpy(), x[trial - 100, :, list(units).index(10)])
    factors = outputs_frame(got, "factors")
    assert list(factors.columns) == [0, 1] and factors.columns.name == "factors"
    with pytest.raises(KeyError, match="no .inferred_inputs.*factors, rates"):
        outputs_frame(got, "inferred_inputs")
    # forward bins continue after the trial; a file without times gives bin numbers
    fwd = outputs_frame({**got, "rates_forward": got["rates"][:, :2]}, "rates_forward")
    assert list(fwd.index.get_level_values("time_ms")[:2]) == [-100, -80]
    bare = outputs_frame({"rates": got["rates"]}, "rates")
    assert bare.index.names == ["trial_id", "bin"]


def test_a_file_without_coordinates_uses_its_own_positions(tmp_path):
    from dsid.data.synth_lorenz import write_lorenz_benchmark

    path = write_lorenz_benchmark(
        tmp_path / "l.h5", n_trials=(6, 3, 2), n_time=4, n_neurons=5, n_heldout=1
    )
    data = load_tensor_file(path)
    assert data.unit_id is None and data.time_start_ms == 0.0
    assert all(sd.trial_id is None for sd in data.splits.values())
    outputs = {s: {"rates": sd.spikes * 1.0} for s, sd in data.splits.items()}
    inf = write_inference(tmp_path / "inf.h5", outputs, 1, data=data)
    got = in_user_coordinates(read_inference(inf)["valid"], read_coordinates(inf), True)
    assert list(got["trial_id"]) == [6, 7, 8] and list(got["unit_id"]) == list(range(5))
    assert np.array_equal(got["rates"], data.splits["valid"].spikes)


@pytest.mark.parametrize(
    "field, change, expected",
    [
        (  # a train trial's id repeated in valid
            "valid/trial_id",
            lambda f: f["valid/trial_id"].__setitem__(0, f["train/trial_id"][0]),
            "distinct trial",
        ),
        ("train/trial_id", lambda f: f.__delitem__("train/trial_id"), "every split, or in none"),
        ("neurons/unit_id", lambda f: f["neurons/unit_id"].__setitem__(0, 60), "distinct unit"),
        ("time_start_ms", lambda f: f.attrs.__setitem__("time_start_ms", np.nan), "finite"),
    ],
)
def test_bad_coordinates_are_refused_naming_the_field(tmp_path, field, change, expected):
    _user_data(tmp_path)
    path = tmp_path / "user.h5"
    with h5py.File(path, "a") as f:
        change(f)
    with pytest.raises(DataFileError, match=expected) as err:
        load_tensor_file(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "options, expected",
    [
        (dict(trial_ids=np.arange(29)), r"trial_ids must be \(30,\) integers"),
        (dict(trial_ids=np.linspace(0, 1, 30)), r"trial_ids must be \(30,\) integers"),
        (dict(unit_ids=[1, 1, 2, 3, 4, 5, 6]), "unit_ids must be distinct"),
        (dict(time_start_ms=np.nan), "time_start_ms must be finite"),
    ],
)
def test_bad_ids_given_to_from_numpy_are_refused_before_any_write(tmp_path, options, expected):
    x = np.random.default_rng(0).poisson(2.0, (30, 5, 7))
    with pytest.raises(ValueError, match=expected):
        from_numpy(x, bin_ms=20, out=tmp_path / "bad.h5", **options)
    assert not list(tmp_path.iterdir())
