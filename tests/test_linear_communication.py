"""The linear communication baseline (lagged reduced-rank regression on smoothed spikes) finds the
direction, delay and rank of a linear edge it is given, and is scored like the model."""

from types import SimpleNamespace

import numpy as np
import pytest

from dsid.evaluation.multiarea.linear_baseline import linear_communication, linear_scores

DELAY = 3


def _two_areas(seed=0, trials=(120, 60), n_time=80, neurons=12):
    """Area 0: two slow independent latents; area 1: its own slow latent plus, DELAY bins later,
    one direction of area 0's (a rank-1 edge 0 -> 1, none back). Poisson spikes of both."""
    rng = np.random.default_rng(seed)
    splits = {}
    load0, load1 = rng.normal(0, 1, (2, neurons)), rng.normal(0, 1, (2, neurons))
    for name, n in zip(("train", "valid"), trials):
        z0 = np.zeros((n, n_time, 2))
        z1 = np.zeros((n, n_time, 2))
        for t in range(1, n_time):
            z0[:, t] = 0.9 * z0[:, t - 1] + rng.normal(0, 0.45, (n, 2))
            push = z0[:, t - 1 - DELAY, 0] if t - 1 - DELAY >= 0 else 0.0
            z1[:, t, 0] = 0.6 * z1[:, t - 1, 0] + 0.9 * push + rng.normal(0, 0.1, n)
            z1[:, t, 1] = 0.9 * z1[:, t - 1, 1] + rng.normal(0, 0.45, n)
        rates = 2.0 * np.concatenate([np.exp(0.3 * z0 @ load0), np.exp(0.3 * z1 @ load1)], -1)
        splits[name] = SimpleNamespace(spikes=rng.poisson(rates).astype(np.float32))
    return SimpleNamespace(
        splits=splits,
        area=np.repeat([0, 1], neurons),
        heldout=np.zeros(2 * neurons, bool),
        n_areas=2,
        bin_ms=10.0,
        effectome=np.array([[0.0, 1.0], [0.0, 0.0]]),
        delay_bins=np.array([[-1, DELAY], [-1, -1]]),
    )


def test_a_delayed_rank_one_edge_is_found_with_its_direction_delay_and_rank():
    data = _two_areas()
    found = linear_communication(data, max_delay=6)
    assert found.delay_bins[0, 1] == DELAY
    # a rank-1 edge seen through exponential neurons: one or two linear directions; none back
    assert found.rank[0, 1] in (1, 2) and found.rank[1, 0] == 0 and found.effectome[1, 0] == 0
    assert found.effectome[0, 0] == 0 and found.delay_bins[1, 1] == -1
    scores = linear_scores(found, data)
    assert scores["effectome_cosine"] > 0.95 and scores["delay_error"] == 0
    assert "edge_auroc" in scores  # one edge and one non-edge: defined


def test_without_truth_there_are_no_scores():
    data = _two_areas(trials=(40, 20), n_time=40)
    data.effectome = data.delay_bins = None
    assert linear_scores(linear_communication(data, 4), data) == {}


@pytest.mark.parametrize("seed", [1, 2])
def test_the_edge_is_found_on_other_draws(seed):
    found = linear_communication(_two_areas(seed=seed), max_delay=6)
    assert found.delay_bins[0, 1] == DELAY and found.effectome[0, 1] > found.effectome[1, 0]
    assert found.rank[0, 1] >= 1


def test_data_it_cannot_read_is_refused_naming_why():
    short = _two_areas(trials=(10, 5), n_time=8)
    with pytest.raises(ValueError, match="too short for lags up to 6"):
        linear_communication(short, max_delay=6)
    silent = _two_areas(trials=(10, 5), n_time=30)
    silent.heldout = np.repeat([False, True], 12)  # area 1 entirely held out
    with pytest.raises(ValueError, match=r"area\(s\) \[1\] have no held-in"):
        linear_communication(silent, max_delay=3)


def test_the_fit_report_says_when_the_baseline_was_not_computed():
    from dsid.autofit.area_report import area_lines

    result = {
        "areas": [
            {
                "area": "A0",
                "heldin": 3,
                "heldout": 1,
                "co_bps": 0.1,
                "baseline_co_bps": 0.0,
                "rate_r2": None,
            }
        ],
        "communication": {
            "area_names": ["A0"],
            "effectome": [[0.0]],
            "delay_bins": [[-1]],
            "linear": {"error": "linear baseline: trials of 8 bins are too short"},
        },
        "metrics": {},
    }
    assert "  linear baseline not computed: linear baseline: trials of 8" in "\n".join(
        area_lines(result)
    )
