"""Step-counted schedules and the KL-free selection objective."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch

from dsid.data.synth_lorenz import write_lorenz_benchmark
from dsid.runs.config import compose
from dsid.runs.train import early_stopping_config, train
from dsid.training.early_stopping import StepEarlyStopping
from dsid.training.lightning_module import TrainingModule
from dsid.training.schedules import Smoothed, StepPlateau
from tests.test_models_and_runs import TINY_MODEL, tiny_info
from tests.test_training_e2e import TINY_OVERRIDES


def test_selection_objective_does_not_move_with_the_kl_weight():
    torch.manual_seed(0)
    a = TrainingModule(TINY_MODEL, tiny_info(), {"kl_scales": {"ic": 1.0, "co": 1.0}})
    b = TrainingModule(
        TINY_MODEL, tiny_info(), {"kl_scales": {"ic": 50.0, "co": 50.0}, "l2_scale": 1.0}
    )
    b.load_state_dict(a.state_dict())
    n = len(tiny_info()["heldout"])
    batch = {"spikes": torch.poisson(torch.full((4, 10, n), 0.5))}
    for m in (a, b):
        m.eval()
    torch.manual_seed(1)
    loss_a, logs_a = a.compute_loss(batch, "val")
    torch.manual_seed(1)
    loss_b, logs_b = b.compute_loss(batch, "val")
    assert torch.isclose(logs_a["recon_heldin"], logs_b["recon_heldin"])
    assert not torch.isclose(loss_a, loss_b)


def test_smoothed_objective():
    s = Smoothed(0.5)
    assert s.update(4.0) == 4.0 and s.update(2.0) == 3.0 and s.update(3.0) == 3.0
    assert Smoothed(0.0).update(7.0) == 7.0
    with pytest.raises(ValueError, match="select_smoothing"):
        Smoothed(1.0)


def test_plateau_patience_counts_steps():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = StepPlateau(opt, patience_steps=100, factor=0.5, min_lr=0.01)
    for step, value in ((0, 1.0), (50, 0.5), (120, 0.6), (149, 0.7)):
        sched.at_step = step
        sched.step(value)
    assert opt.param_groups[0]["lr"] == 1.0  # 99 steps since the best at step 50
    sched.at_step = 150
    sched.step(0.7)
    assert opt.param_groups[0]["lr"] == 0.5
    sched.at_step = 200
    sched.step(0.7)
    assert opt.param_groups[0]["lr"] == 0.5  # counts again from the reduction
    sched.at_step = 250
    sched.step(0.7)
    assert opt.param_groups[0]["lr"] == 0.25


class _FakeTrainer:
    sanity_checking = False

    def __init__(self):
        self.global_step, self.should_stop, self.callback_metrics = 0, False, {}


def test_early_stopping_counts_steps_and_waits_for_the_ramps():
    es = StepEarlyStopping("val/select", patience_steps=30, min_steps=100)
    tr = _FakeTrainer()
    for step, value in ((10, 1.0), (20, 2.0), (60, 2.0), (90, 2.0)):
        tr.global_step, tr.callback_metrics = step, {"val/select": torch.tensor(value)}
        es.on_validation_end(tr, None)
    assert not tr.should_stop  # 80 steps without improvement, but the ramps end at step 100
    tr.global_step = 100
    es.on_validation_end(tr, None)
    assert tr.should_stop and es.stopped_step == 100 and es.best_step == 10
    again = StepEarlyStopping("val/select", patience_steps=30)
    again.load_state_dict(es.state_dict())
    assert again.best == 1.0 and again.best_step == 10
    tr2 = _FakeTrainer()
    tr2.global_step, tr2.callback_metrics = 50, {"val/select": torch.tensor(math.nan)}
    again.on_validation_end(tr2, None)
    assert tr2.should_stop  # a NaN objective is no improvement


def test_early_stopping_settings_are_checked():
    assert early_stopping_config({}) == {"monitor": "val/select", "patience_steps": 0}
    with pytest.raises(
        KeyError, match="early_stopping.patience: schedules count optimizer steps.*patience_steps"
    ):
        early_stopping_config({"early_stopping": {"patience": 3}})
    with pytest.raises(KeyError, match="early_stopping.typo"):
        early_stopping_config({"early_stopping": {"typo": 3}})


class _Weights(pl.Callback):
    def __init__(self):
        self.kl = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.kl.append(module.weights()["kl"])


@pytest.mark.parametrize("n_train", [20, 60])
def test_ramps_follow_optimizer_steps_whatever_the_data_size(tmp_path, n_train):
    """A data set of 20 and one of 60 trials (1 and 3 steps per epoch) see the same KL weights per
    step."""
    path = write_lorenz_benchmark(
        tmp_path / "d.h5", seed=1, n_trials=(n_train, 10, 10), n_time=12, n_neurons=10, n_heldout=2
    )
    rec = _Weights()
    cfg = compose(
        [
            "data=file",
            f"data.path={path}",
            "logger=csv",
            *TINY_OVERRIDES,
            "trainer.max_epochs=-1",
            "+trainer.max_steps=9",
            "train.kl_ramp_steps=6",
            "train.kl_start_step=2",
            "train.metrics_every_n_steps=0",
            "infer.n_samples=0",
            "plots.n_neurons=1",
        ]
    )
    train(cfg, run_dir=str(tmp_path / "run"), callbacks=[rec])
    assert rec.kl == pytest.approx([0.0, 0.0, 0.0, 1 / 6, 2 / 6, 0.5, 4 / 6, 5 / 6, 1.0])


def test_periodic_jobs_count_optimizer_steps():
    """Figures, NLB scores and metrics run at the first validation after each multiple of their step
    interval (and, where asked, at the last epoch or step), whatever the epoch length."""
    from types import SimpleNamespace

    from dsid.training.callbacks import due_every

    def at(step, epoch=0, max_epochs=-1, max_steps=-1):
        return SimpleNamespace(
            global_step=step, current_epoch=epoch, max_epochs=max_epochs, max_steps=max_steps
        )

    assert (
        not due_every(at(49), 50, 0) and due_every(at(53), 50, 0) and not due_every(at(99), 50, 53)
    )
    assert due_every(at(100), 50, 53) and not due_every(at(400), 0, 0)
    assert due_every(at(20, epoch=9, max_epochs=10), 50, 0)  # the last epoch
    assert due_every(at(120, max_steps=120), 50, 100) and not due_every(
        at(120, max_steps=120), 50, 100, at_end=False
    )


def test_epoch_intervals_name_their_step_replacement(tmp_path):
    from dsid.nlb.callback import NLBEvalCallback

    with pytest.raises(KeyError, match="nlb.eval_every_n_epochs.*nlb.eval_every_n_steps"):
        NLBEvalCallback.from_config({"eval_every_n_epochs": 5})
    path = write_lorenz_benchmark(
        tmp_path / "tiny.h5", seed=0, n_trials=(8, 4, 4), n_time=10, n_neurons=6, n_heldout=2
    )
    cfg = compose(
        [
            *TINY_OVERRIDES,
            "data=file",
            f"data.path={path}",
            "data.synth=null",
            "+plots.every_n_epochs=2",
        ]
    )
    with pytest.raises(KeyError, match="plots.every_n_epochs.*plots.every_n_steps"):
        train(cfg, run_dir=str(tmp_path / "run"))


def test_figures_during_training_follow_their_step_interval(tmp_path):
    path = write_lorenz_benchmark(
        tmp_path / "tiny.h5", seed=0, n_trials=(40, 8, 8), n_time=10, n_neurons=6, n_heldout=2
    )
    cfg = compose(
        [
            *TINY_OVERRIDES,
            "data=file",
            f"data.path={path}",
            "data.synth=null",
            "trainer.max_epochs=4",
            "plots.every_n_steps=4",
            "plots.n_neurons=1",
            "infer.n_samples=0",
            "logger=csv",
        ]
    )
    train(cfg, run_dir=str(tmp_path / "run"))  # 2 steps per epoch: figures after steps 4 and 8
    steps = sorted(
        {p.stem.rsplit("_step", 1)[1] for p in (tmp_path / "run" / "figures").glob("*_step*.png")}
    )
    assert steps == ["000004", "000008"]


def test_forward_bins_are_reported_but_not_selected_on():
    torch.manual_seed(0)
    m = TrainingModule(TINY_MODEL, tiny_info())
    m.eval()
    n = len(tiny_info()["heldout"])
    spikes = torch.poisson(torch.full((4, 10, n), 0.5))
    batch = {"spikes": spikes, "forward_spikes": torch.poisson(torch.full((4, 3, n), 0.5))}
    torch.manual_seed(5)
    _, logs = m.compute_loss(batch, "val")
    torch.manual_seed(5)
    _, logs_other = m.compute_loss({**batch, "forward_spikes": batch["forward_spikes"] + 3}, "val")
    assert not torch.isclose(logs["recon_forward"], logs_other["recon_forward"])
    # the window's selection term does not look at the forward bins
    assert torch.isclose(logs["recon_heldin"], logs_other["recon_heldin"])
    # recon_forward: the mean NLL of the held-in neurons' forward bins under the model's prediction
    gen = torch.Generator().manual_seed(10_000)
    x, _ = m.model.augment(spikes, "val", gen)
    torch.manual_seed(5)
    out = m.model(x, sample=True, n_forward=3)
    heldin = ~torch.tensor(tiny_info()["heldout"])
    nll = m.model.observation(out["params"][:, 10:13], batch["forward_spikes"])[..., heldin]
    assert torch.isclose(logs["recon_forward"], nll.mean(), rtol=1e-5)
    assert "recon_forward" not in m.compute_loss({"spikes": spikes}, "val")[1]
