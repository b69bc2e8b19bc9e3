"""``dsid convert nwb``: a small NWB file written here with pynwb round-trips into a DSID tensor
file."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from dsid.data.convert_nwb import bin_spikes, convert_nwb
from dsid.data.tensor_file import DataFileError, load_tensor_file


def write_nwb(path, spike_times, starts, stops, moves, targets, areas):
    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(
        session_description="test",
        identifier="dsid-convert-test",
        session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc),
    )
    nwb.add_trial_column(name="move_onset_time", description="movement onset (s)")
    nwb.add_trial_column(name="target", description="reach target")
    for s, e, m, t in zip(starts, stops, moves, targets):
        nwb.add_trial(start_time=s, stop_time=e, move_onset_time=m, target=t)
    nwb.add_unit_column(name="location", description="brain area")
    for st, loc in zip(spike_times, areas):
        nwb.add_unit(spike_times=st, location=loc)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


@pytest.fixture()
def recording(tmp_path):
    rng = np.random.default_rng(0)
    n_trials, n_units = 20, 6
    starts = np.arange(n_trials) * 2.0
    stops = starts + 1.0 + rng.uniform(0, 0.3, n_trials)
    moves = starts + 0.4
    moves[3] = np.nan  # a trial without movement: dropped when aligning on it
    spike_times = [
        np.sort(rng.uniform(0, 2.0 * n_trials, rng.integers(200, 400))) for _ in range(n_units)
    ]
    targets = [["left", "right", "up"][i % 3] for i in range(n_trials)]
    areas = ["M1", "M1", "M1", "PMd", "PMd", "PMd"]
    path = write_nwb(tmp_path / "rec.nwb", spike_times, starts, stops, moves, targets, areas)
    return path, spike_times, starts, moves


def test_bin_spikes_counts_by_hand():
    counts = bin_spikes(
        [np.array([0.05, 0.12, 0.15, 0.31]), np.array([1.0])], np.array([0.0, 0.1]), 2, 0.1
    )
    assert counts[:, :, 0].tolist() == [[1, 2], [2, 0]] and counts[:, :, 1].sum() == 0


def test_convert_round_trips_counts_areas_and_conditions(recording, tmp_path):
    path, spike_times, starts, moves = recording
    data = convert_nwb(
        path,
        bin_ms=50,
        align="move_onset_time",
        window_ms=(-200, 400),
        heldout=0,
        area_column="location",
        condition_column="target",
        valid_fraction=0.25,
        out=tmp_path / "rec.h5",
    )
    back = load_tensor_file(tmp_path / "rec.h5")
    assert (
        back.bin_ms == 50
        and back.n_time == 12
        and back.n_neurons == 6
        and back.area_names == ["M1", "PMd"]
    )
    assert sum(sd.n_trials for sd in back.splits.values()) == 19  # the NaN-aligned trial dropped
    assert back.area.tolist() == [0, 0, 0, 1, 1, 1] and not back.heldout.any()
    # every trial's counts equal a histogram of that unit's spikes in its window
    all_counts = np.concatenate([back.splits[s].spikes for s in ("train", "valid")])
    all_cond = np.concatenate([back.splits[s].condition for s in ("train", "valid")])
    kept = [i for i in range(20) if np.isfinite(moves[i])]
    expected = []
    for i in kept:
        edges = moves[i] - 0.2 + 0.05 * np.arange(13)
        expected.append(np.stack([np.histogram(st, edges)[0] for st in spike_times], -1))
    expected = np.stack(expected)
    order = [
        next(j for j in range(len(kept)) if np.array_equal(expected[j], c)) for c in all_counts
    ]
    assert sorted(order) == list(range(len(kept)))  # a permutation of the trials, each exact
    assert [all_cond[k] for k in np.argsort(order)] == [
        ("left", "right", "up").index(["left", "right", "up"][i % 3]) for i in kept
    ]
    assert data.n_time == 12
    # the NWB trial and unit ids and the window's start are kept: each trial maps to its row
    ids = np.concatenate([back.splits[s].trial_id for s in ("train", "valid")])
    assert back.time_start_ms == -200 and back.unit_id.tolist() == list(range(6))
    assert sorted(ids) == kept and all(
        np.array_equal(c, expected[kept.index(i)]) for c, i in zip(all_counts, ids)
    )


def test_convert_command_and_errors(recording, tmp_path):
    path = recording[0]
    dsid = str(Path(sys.executable).parent / "dsid")
    done = subprocess.run(
        [dsid, "convert", "nwb", str(path), "--out", str(tmp_path / "c.h5"), "--bin-ms", "20"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    data = load_tensor_file(tmp_path / "c.h5")
    assert (
        data.n_time == 50 and data.heldout.sum() == 1
    )  # 0 to the shortest trial (1.0 s); a fifth held out
    with pytest.raises(DataFileError, match="intervals/trials/go_cue"):
        convert_nwb(path, align="go_cue")
    with pytest.raises(DataFileError, match="units/region"):
        convert_nwb(path, area_column="region")
    bad = subprocess.run(
        [dsid, "convert", "nwb", str(tmp_path / "none.nwb"), "--out", str(tmp_path / "x.h5")],
        capture_output=True,
        text=True,
    )
    assert (
        bad.returncode == 2
        and "no such NWB file" in bad.stderr
        and not (tmp_path / "x.h5").exists()
    )


def test_a_window_starting_before_the_alignment_is_read_as_the_readme_writes_it(
    recording, tmp_path
):
    from dsid.cli import joined_negative_values, main

    assert joined_negative_values(["--window", "-200,600", "--seed", "-1"]) == [
        "--window=-200,600",
        "--seed",
        "-1",
    ]
    out = tmp_path / "w.h5"
    argv = ["convert", "nwb", str(recording[0]), "--out", str(out), "--bin-ms", "20"]
    assert main([*argv, "--align", "move_onset_time", "--window", "-200,400"]) == 0
    assert load_tensor_file(out).n_time == 30  # 600 ms of 20 ms bins
