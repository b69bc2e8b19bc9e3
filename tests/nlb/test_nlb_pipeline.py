"""synth -> NWB (as nlb_tools loads it) -> prepare -> DSID file -> submissions and scores."""

import h5py
import numpy as np
import pytest
from nlb_tools.evaluation import evaluate
from nlb_tools.make_tensors import make_train_input_tensors
from nlb_tools.nwb_interface import NWBDataset

from dsid.cli import main
from dsid.data.tensor_file import DataFileError, load_tensor_file
from dsid.nlb.baseline import smoothing_baseline
from dsid.nlb.prepare import prepare
from dsid.nlb.scoring import (
    RATE_KEYS,
    evaluate_submission,
    load_submission_h5,
    load_targets,
    make_submission,
    oracle_submission,
    read_nlb_info,
    read_train_order,
    save_submission_h5,
    to_nlb_train_order,
)
from dsid.nlb.specs import get_spec
from dsid.nlb.synth import write_synthetic_nlb
from dsid.nlb.targets import holdout_mask

CASES = [(like, bin_ms, "val") for like in ("mc_maze", "area2_bump") for bin_ms in (5, 20)] + [
    ("mc_maze", 5, "test"),
    ("area2_bump", 20, "test"),
]
WINDOW_MS = {"mc_maze": 700, "area2_bump": 600}


def test_synthetic_nwb_has_the_dandi_layout(nlb_synth):
    spec = get_spec("mc_maze")
    train = NWBDataset(str(nlb_synth["mc_maze"] / spec.train_file()))
    assert set(train.data.columns.get_level_values(0)) == {"spikes", "heldout_spikes", "hand_vel"}
    assert list(train.data["hand_vel"].columns) == ["x", "y"]
    assert (train.data["spikes"].shape[1], train.data["heldout_spikes"].shape[1]) == (40, 15)
    assert set(train.trial_info.split) == {"train", "val"}
    for field in ("move_onset_time", "trial_type", "trial_version", "maze_id"):
        assert field in train.trial_info
    test = NWBDataset(str(nlb_synth["mc_maze"] / spec.test_file()))
    assert set(test.data.columns.get_level_values(0)) == {
        "spikes"
    }  # held-in units only, no behavior
    assert test.data["spikes"].shape[1] == 40 and set(test.trial_info.split) == {"test"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_prepared_file(nlb_prepared, case):
    like, bin_ms, phase = case
    data = load_tensor_file(nlb_prepared[case], require_splits=("train", "valid", "test"))
    info = read_nlb_info(nlb_prepared[case])
    n_t, n_fwd = WINDOW_MS[like] // bin_ms, 200 // bin_ms
    assert data.bin_ms == bin_ms and info["key"] == (like if bin_ms == 5 else f"{like}_20")
    assert data.heldout.tolist() == [False] * 40 + [True] * 15 and info["n_heldin"] == 40
    train, valid, test = (data.splits[s] for s in ("train", "valid", "test"))
    n_nlb_train = train.n_trials + valid.n_trials
    with h5py.File(nlb_prepared[case], "r") as f:
        order, train_ids, eval_ids = (
            f[f"nlb/{k}"][()] for k in ("train_order", "train_trial_ids", "eval_trial_ids")
        )
    if (
        phase == "val"
    ):  # the train file's 80 trials, a quarter of them NLB 'val' (the eval trials here)
        assert n_nlb_train + test.n_trials == 80 and 15 <= test.n_trials <= 25
    else:
        assert (n_nlb_train, test.n_trials) == (80, 20)
    # valid: about 20% of NLB's training trials, every condition represented (stratified)
    assert abs(valid.n_trials - 0.2 * n_nlb_train) <= 3
    assert set(valid.condition) == set(train.condition) and train.condition.min() >= 0
    assert sorted(order) == list(range(n_nlb_train)) and len(train_ids) == n_nlb_train
    assert len(eval_ids) == test.n_trials
    if (
        phase == "val"
    ):  # one NWB file: the eval trials are none of the trials models are fit or selected on
        assert not set(eval_ids) & set(train_ids)
    for sd in (train, valid, test):
        assert sd.spikes.shape[1:] == (n_t, 55) and sd.forward_spikes.shape[1:] == (n_fwd, 55)
        assert (
            sd.truth_rates.shape == sd.spikes.shape
            and sd.truth_latents.shape[:2] == sd.spikes.shape[:2]
        )
    for sd in (
        train,
        valid,
    ):  # all spikes of NLB's training trials are known, forward bins included
        assert sd.behavior.shape == (sd.n_trials, n_t, 2) and sd.spikes[..., 40:].any()
        assert abs(sd.forward_spikes.sum() / sd.spikes.sum() * n_t / n_fwd - 1) < 0.5
    # the true rates line up with the spikes: the counts match them in total
    assert abs(train.spikes.sum() / train.truth_rates.sum() - 1) < 0.05
    assert info["heldout_unknown"] == (phase == "test")
    if phase == "test":
        assert (
            not test.spikes[..., 40:].any()
            and not test.forward_spikes.any()
            and test.behavior is None
        )
        assert test.spikes[..., :40].any()
        with pytest.raises(DataFileError, match="nlb/target"):
            load_targets(nlb_prepared[case])
    else:
        target = load_targets(nlb_prepared[case])[info["key"]]
        assert np.array_equal(target["eval_spikes_heldout"], test.spikes[..., 40:])
        assert np.array_equal(target["eval_spikes_heldin_forward"], test.forward_spikes[..., :40])
        assert np.array_equal(
            target["train_behavior"], np.concatenate([train.behavior, valid.behavior])[order]
        )
        assert target["psth"].shape[1:] == (n_t, 55) and len(target["eval_cond_idx"]) == len(
            target["psth"]
        )
        assert ("train_decode_mask" in target) == (like == "area2_bump")


def test_holdout_mask_is_seeded_and_stratified():
    labels = np.repeat(np.arange(6), 10)
    a, b = holdout_mask(60, 0.2, 3, labels), holdout_mask(60, 0.2, 3, labels)
    assert np.array_equal(a, b) and not np.array_equal(a, holdout_mask(60, 0.2, 4, labels))
    assert [int(a[labels == c].sum()) for c in range(6)] == [2] * 6
    assert holdout_mask(3, 0.01, 0).sum() == 1 and holdout_mask(3, 0.99, 0).sum() == 2


def test_tensors_equal_nlb_tools(nlb_synth, nlb_prepared):
    ds = NWBDataset(str(nlb_synth["mc_maze"] / get_spec("mc_maze").train_file()))
    ds.resample(5)
    ref = make_train_input_tensors(
        ds, "mc_maze", "train", save_file=False, include_forward_pred=True
    )
    path = nlb_prepared[("mc_maze", 5, "val")]
    data = load_tensor_file(path)
    order = read_train_order(path)

    def nlb(key):
        return to_nlb_train_order(
            order, *(data.splits[s].__dict__[key] for s in ("train", "valid"))
        )  # noqa

    assert np.array_equal(nlb("spikes")[..., :40], ref["train_spikes_heldin"])
    assert np.array_equal(nlb("spikes")[..., 40:], ref["train_spikes_heldout"])
    assert np.array_equal(nlb("forward_spikes")[..., :40], ref["train_spikes_heldin_forward"])
    assert np.array_equal(nlb("forward_spikes")[..., 40:], ref["train_spikes_heldout_forward"])


def test_valid_fraction_is_checked(nlb_synth, tmp_path):
    for bad in (0, 1, -0.1, "x"):
        with pytest.raises(ValueError, match="valid_fraction"):
            prepare(
                "mc_maze", nlb_synth["mc_maze"], 20, "val", tmp_path / "x.h5", valid_fraction=bad
            )
    assert not list(tmp_path.iterdir())


def _shuffled(sub, seed=0):
    key = next(iter(sub))
    out = dict(sub[key])
    order = np.random.default_rng(seed).permutation(len(out["eval_rates_heldout"]))
    for k in RATE_KEYS[2:]:
        out[k] = out[k][order]
    return {key: out}


@pytest.mark.parametrize("like", ["mc_maze", "area2_bump"])
def test_oracle_beats_shuffled_and_baseline(nlb_prepared, like):
    path = nlb_prepared[(like, 20, "val")]
    targets = load_targets(path)
    oracle = evaluate_submission(oracle_submission(path), targets)
    shuffled = evaluate_submission(_shuffled(oracle_submission(path)), targets)
    baseline = evaluate_submission(smoothing_baseline(path), targets)
    assert set(oracle) == {"co_bps", "vel_r2", "psth_r2", "fp_bps"}
    assert oracle["co_bps"] > 0.2 and oracle["vel_r2"] > 0.9 and oracle["fp_bps"] > 0
    assert shuffled["co_bps"] < oracle["co_bps"] - 0.2
    assert 0 < baseline["co_bps"] < oracle["co_bps"]


@pytest.mark.parametrize("like, n_trials", [("dmfc_rsg", (48, 8)), ("mc_rtt", (60, 8))])
def test_dmfc_and_rtt_end_to_end(tmp_path, like, n_trials):
    nwb_dir = write_synthetic_nlb(like, tmp_path / like, seed=1, n_trials=n_trials)["train"].parent
    path = prepare(like, nwb_dir, 20, "val", tmp_path / f"{like}.h5")
    data = load_tensor_file(path)
    targets = load_targets(path)
    oracle = evaluate_submission(oracle_submission(path), targets)
    baseline = evaluate_submission(smoothing_baseline(path), targets)
    assert set(oracle) == set(get_spec(like).metric_names)
    assert 0 < baseline["co_bps"] < oracle["co_bps"]
    n_nlb_train = data.splits["train"].n_trials + data.splits["valid"].n_trials
    if (
        like == "dmfc_rsg"
    ):  # behavior is per trial (is_eye, theta, is_short, ts, tp), not a time series
        assert data.splits["train"].behavior is None and oracle["tp_corr"] < -0.5
        with h5py.File(path, "r") as f:
            assert f["nlb/train_trial_behavior"].shape == (n_nlb_train, 5)
    else:  # continuous reaching: finger velocity, no conditions
        assert data.splits["test"].behavior.shape[1:] == (30, 2) and oracle["vel_r2"] > 0.9
        assert data.splits["train"].condition is None


def test_make_submission_checks_its_input():
    rates = np.full((3, 4, 5), 0.1)
    sub = make_submission("mc_maze", 20, rates, rates[:2], rates[:2, :2], n_heldin=3)
    assert list(sub) == ["mc_maze_20"] and set(sub["mc_maze_20"]) == set(RATE_KEYS)
    assert sub["mc_maze_20"]["eval_rates_heldout_forward"].shape == (2, 2, 2)
    with pytest.raises(ValueError, match="non-negative"):
        make_submission("mc_maze", 5, -rates, rates, n_heldin=3)
    with pytest.raises(ValueError, match="eval_rates"):
        make_submission("mc_maze", 5, rates, rates[..., :4], n_heldin=3)
    with pytest.raises(ValueError, match="n_heldin"):
        make_submission("mc_maze", 5, rates, rates, n_heldin=5)
    with pytest.raises(ValueError, match="bin_ms"):
        make_submission("mc_maze", 10, rates, rates, n_heldin=3)


def test_submission_file_is_always_fresh(tmp_path):
    rates = np.full((3, 4, 5), 0.1)
    out = tmp_path / "submission.h5"
    save_submission_h5(
        {
            **make_submission("mc_maze", 5, rates, rates, rates, n_heldin=3),
            "area2_bump": {"stale": rates},
        },
        out,
    )
    save_submission_h5(make_submission("mc_maze", 20, rates, 2 * rates, n_heldin=3), out)
    back = load_submission_h5(out)
    assert list(back) == ["mc_maze_20"] and set(back["mc_maze_20"]) == set(RATE_KEYS[:4])
    assert np.allclose(back["mc_maze_20"]["eval_rates_heldin"], 0.2)
    assert [p.name for p in tmp_path.iterdir()] == ["submission.h5"]


def test_cli_baseline_and_prepare(nlb_synth, nlb_prepared, tmp_path, capsys):
    assert (
        main(
            [
                "nlb",
                "baseline",
                str(nlb_prepared[("area2_bump", 20, "val")]),
                "--save",
                str(tmp_path / "sub.h5"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "co_bps" in text and "vel_r2" in text
    # the saved file is what nlb_tools (and EvalAI) read
    targets = load_targets(nlb_prepared[("area2_bump", 20, "val")])
    scores = evaluate(targets, str(tmp_path / "sub.h5"))[0]["area2_bump_20_split"]
    assert f"{scores['co-bps']:8.4f}" in text
    out = tmp_path / "maze_test.h5"
    assert (
        main(
            [
                "nlb",
                "prepare",
                "--dataset",
                "mc_maze",
                "--nwb-dir",
                str(nlb_synth["mc_maze"].parent),
                "--bin",
                "20",
                "--phase",
                "test",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "wrote" in capsys.readouterr().out
    with h5py.File(out, "r") as f:
        assert f["nlb/heldout_unknown"][()] == 1 and f["test/spikes"].shape == (20, 35, 55)
        assert f["train/spikes"].shape[0] + f["valid/spikes"].shape[0] == 80
