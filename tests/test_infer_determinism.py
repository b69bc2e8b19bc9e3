"""Inference is seeded: the same checkpoint and data give the same file, the caller's random state
is left alone, and a run stopped in its final inference resumes to the uninterrupted run's
metrics (with a finite seconds_per_epoch)."""

import json

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from dsid.cli import main as cli_main
from dsid.evaluation.inference import infer_data, read_inference
from dsid.models import build_model
from dsid.runs.config import compose
from dsid.runs.status import read_status
from dsid.runs.train import resume_run, train
from tests.conftest import TINY_MODEL, tiny_info
from tests.test_training_e2e import TINY_OVERRIDES

pytestmark = pytest.mark.faults


def tiny_cfg(data):
    return compose(
        ["data=file", f"data.path={data}", "logger=csv", *TINY_OVERRIDES, "trainer.max_epochs=3"]
    )


def assert_same(a, b):
    assert a.keys() == b.keys()
    for split in a:
        assert a[split].keys() == b[split].keys()
        for key in a[split]:
            np.testing.assert_array_equal(a[split][key], b[split][key], err_msg=f"{split}/{key}")


def infer_twice(model, data, device):
    """Two seeded inferences with other random draws between them, and one of seed 1; the
    random state of ``device`` is checked to be left as it was."""
    state = lambda: torch.cuda.get_rng_state(device) if device != "cpu" else torch.get_rng_state()  # noqa: E731
    before = state()
    first = infer_data(model, data, n_samples=2)
    assert torch.equal(state(), before)
    torch.rand(7, device=device)
    return first, infer_data(model, data, n_samples=2), infer_data(model, data, n_samples=2, seed=1)


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
        ),
    ],
)
def test_infer_data_is_seeded_and_leaves_the_callers_random_state(lorenz_data, device):
    torch.manual_seed(0)
    model = build_model(TINY_MODEL, tiny_info(n_neurons=8, n_heldout=2)).to(device)
    first, again, other = infer_twice(model, lorenz_data, device)
    assert_same(first, again)
    assert not np.allclose(other["valid"]["rates"], first["valid"]["rates"])


def test_dsid_infer_writes_the_file_of_the_final_inference_again(tiny_lorenz, tmp_path):
    train(tiny_cfg(tiny_lorenz), run_dir=str(tmp_path))
    path = tmp_path / "inference.h5"
    final = read_inference(path)
    state = torch.get_rng_state()
    assert cli_main(["infer", str(tmp_path)]) == 0
    assert torch.equal(torch.get_rng_state(), state)
    assert_same(read_inference(path), final)
    assert cli_main(["infer", str(tmp_path), "--seed", "1"]) == 0
    assert not np.allclose(read_inference(path)["valid"]["rates"], final["valid"]["rates"])


class StopInFinalInference(pl.Callback):
    """Stops the run when its fit ends, before the final inference (as a kill there would)."""

    def on_fit_end(self, trainer, module):
        raise RuntimeError("stopped before the final inference")


def test_a_run_stopped_in_its_final_inference_resumes_to_the_same_metrics(tiny_lorenz, tmp_path):
    whole = train(tiny_cfg(tiny_lorenz), run_dir=str(tmp_path / "whole"))
    stopped = tmp_path / "stopped"
    with pytest.raises(RuntimeError, match="stopped before the final inference"):
        train(tiny_cfg(tiny_lorenz), run_dir=str(stopped), callbacks=[StopInFinalInference()])
    assert read_status(stopped)["status"] == "failed" and not (stopped / "metrics.json").exists()
    torch.rand(3)  # the resumed process's random state is another one
    resumed = resume_run(stopped)
    for key in ("val/co_bps", "val/rate_r2", "val/latent_r2", "train/bps", "epochs"):
        assert resumed[key] == whole[key], key
    assert_same(
        read_inference(stopped / "inference.h5"),
        read_inference(tmp_path / "whole" / "inference.h5"),
    )
    assert np.isfinite(resumed["seconds_per_epoch"]) and resumed["seconds_per_epoch"] > 0
    assert resumed == json.loads((stopped / "metrics.json").read_text())
