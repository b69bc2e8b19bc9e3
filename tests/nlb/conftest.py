"""Synthetic NLB-like data, written once and prepared on demand (each case once) for all NLB
tests."""

import pytest

from dsid.nlb.prepare import prepare
from dsid.nlb.synth import write_synthetic_nlb


@pytest.fixture(scope="session")
def nlb_synth(tmp_path_factory):
    """like -> folder holding the train/test NWB files and the truth of a small synthetic
    dataset."""
    root = tmp_path_factory.mktemp("nlb_synth")
    return {
        like: write_synthetic_nlb(like, root / like, seed=0)["train"].parent
        for like in ("mc_maze", "area2_bump")
    }


class _Prepared(dict):
    def __init__(self, synth, out):
        super().__init__()
        self.synth, self.out = synth, out

    def __missing__(self, case):
        like, bin_ms, phase = case
        self[case] = prepare(
            like, self.synth[like], bin_ms, phase, self.out / f"{like}_{bin_ms}_{phase}.h5"
        )
        return self[case]


@pytest.fixture(scope="session")
def nlb_prepared(nlb_synth, tmp_path_factory):
    """(like, bin_ms, phase) -> DSID tensor file prepared from ``nlb_synth`` (prepared on first
    use)."""
    return _Prepared(nlb_synth, tmp_path_factory.mktemp("nlb_prepared"))


# A tiny LFADS for the prepare -> train -> evaluate -> submit tests (seconds per epoch on a CPU).
TINY_TRAIN = [
    "model.ic_size=8",
    "model.co_size=2",
    "model.factor_size=6",
    "model.encoder.hidden_size=8",
    "model.encoder.ci_size=4",
    "model.generator.hidden_size=12",
    "model.generator.controller_size=6",
    "data.batch_size=32",
    "infer.n_samples=2",
    "train.metrics_every_n_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.max_time=null",
]


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread():
    """Tiny models train several times faster on one thread than on contended cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train_tiny(data_path, run_dir, epochs: int = 2, logger: str = "csv", extra=()):
    """Train the tiny model on a prepared NLB file; returns the run directory."""
    from dsid.runs.config import compose
    from dsid.runs.train import train

    cfg = compose(
        [
            "data=file",
            f"data.path={data_path}",
            f"logger={logger}",
            f"trainer.max_epochs={epochs}",
            *TINY_TRAIN,
            *extra,
        ]
    )
    train(cfg, run_dir=str(run_dir))
    return run_dir


@pytest.fixture(scope="session")
def nlb_run(nlb_prepared, tmp_path_factory):
    """A tiny run on synthetic mc_maze-like data at 5 ms (val phase), scored by the NLB callback
    every epoch and logged to W&B offline."""
    run_dir = tmp_path_factory.mktemp("nlb_run") / "run"
    return _train_tiny(
        nlb_prepared[("mc_maze", 5, "val")],
        run_dir,
        epochs=2,
        logger="wandb",
        extra=["nlb.eval_every_n_steps=1", "experiment_name=nlb_tiny"],
    )


@pytest.fixture(scope="session")
def train_tiny():
    """``train_tiny(data_path, run_dir, epochs=2, logger="csv", extra=())``: train the tiny
    model."""
    return _train_tiny
