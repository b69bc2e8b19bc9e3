"""The exact models behind the zoo's Bayes ceilings: they explain the member files' truth, refuse a
file that does not follow them, and the smoother runs on them."""

import numpy as np
import pytest

from dsid.data.tensor_file import load_tensor_file, write_tensor_file
from dsid.zoo.ceilings.exact_models import STATE_SPACES
from dsid.zoo.ceilings.particle_smoother import smoothed_rates
from dsid.zoo.members.low_rate import make_low_rate
from dsid.zoo.members.multiarea_feedback import write_multiarea_feedback


@pytest.fixture(scope="module")
def feedback(tmp_path_factory):
    path = write_multiarea_feedback(
        tmp_path_factory.mktemp("zoo") / "multiarea_feedback.h5", n_trials=(40, 4, 4)
    )
    return load_tensor_file(path, require_splits=("train", "valid"))


def test_the_multiarea_model_explains_the_members_truth(feedback):
    model, checks = STATE_SPACES["multiarea_feedback"](feedback)
    assert checks["read-out log-rate error"] < 1e-4
    assert (
        abs(checks["noise sd / the member's"] - 1) < 0.05
    )  # the dynamics leave the member's noise
    assert (
        0.6 < checks["input events per bin / the member's"] < 1.4
    )  # ~480 area-trials' events: Poisson error
    assert model.order == 5  # the longest delay (4 bins) back, and the current state
    va = feedback.splits["valid"]
    heldout = np.asarray(feedback.heldout, bool)
    observed = np.flatnonzero(~heldout)
    z = va.truth_latents[:2].astype(np.float64)
    rates, states = smoothed_rates(
        model, va.spikes[:2, 4:, observed], observed, n_particles=100, n_paths=5, start=z[:, :5]
    )
    assert rates.shape == (2, va.spikes.shape[1] - 4, heldout.size) and np.isfinite(rates).all()
    np.testing.assert_allclose(states[:, 0], z[:, 4])  # told start


def test_a_file_from_another_seed_is_refused(tmp_path):
    path = write_multiarea_feedback(tmp_path / "other.h5", seed=3, n_trials=(20, 2, 2))
    with pytest.raises(ValueError, match="multiarea_feedback: the file does not follow"):
        STATE_SPACES["multiarea_feedback"](
            load_tensor_file(path, require_splits=("train", "valid"))
        )


def test_the_low_rate_read_out_is_exact(tmp_path):
    path = write_tensor_file(tmp_path / "low_rate.h5", make_low_rate(n_trials=(30, 5, 5)))
    model, checks = STATE_SPACES["low_rate"](
        load_tensor_file(path, require_splits=("train", "valid"))
    )
    assert checks["read-out log-rate error"] < 1e-4 and model.order == 1
    assert abs(checks["noise sd / the member's"] - 1) < 0.05
    fast = write_tensor_file(tmp_path / "fast.h5", make_low_rate(n_trials=(30, 5, 5), freq_hz=3.0))
    with pytest.raises(ValueError, match="low_rate: the file does not follow"):
        STATE_SPACES["low_rate"](load_tensor_file(fast, require_splits=("train", "valid")))
