"""The weight average: its arithmetic, the swap in place, checkpoints that load the average and
resume the raw weights, and a fit whose checkpoints and fitted module hold the average."""

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from dsid.data.synth_lorenz import write_lorenz_benchmark
from dsid.runs.config import compose
from dsid.runs.train import train
from dsid.training.weight_average import RAW_KEY, WeightAverage
from tests.test_training_e2e import TINY_OVERRIDES


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))


def set_all(module, value):
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(value)


def test_the_average_follows_its_decay():
    m = net()
    avg = WeightAverage(m, steps=4)
    expected = None
    for step, value in enumerate([1.0, 3.0, -2.0, 5.0, 0.5, 7.0, 2.0]):
        set_all(m, value)
        avg.update(step)
        d = min(1 - 1 / 4, (1 + step) / (10 + step))
        expected = value if expected is None else d * expected + (1 - d) * value
    avg.use_average()
    for p in m.parameters():
        torch.testing.assert_close(p, torch.full_like(p, expected))
    assert expected != pytest.approx(2.0)  # differs from the last weights


def test_swapping_restores_the_trained_weights_exactly():
    m = net()
    trained = [p.detach().clone() for p in m.parameters()]
    avg = WeightAverage(m, steps=10)
    avg.use_average()  # nothing averaged yet: nothing changes
    assert all(torch.equal(p, t) for p, t in zip(m.parameters(), trained))
    avg.update(0)
    set_all(m, 2.0)
    avg.update(1)
    raw = [p.detach().clone() for p in m.parameters()]
    avg.use_average()
    assert avg.averaged and not any(torch.equal(p, r) for p, r in zip(m.parameters(), raw))
    with pytest.raises(RuntimeError, match="average"):
        avg.update(2)
    avg.use_raw()
    assert all(torch.equal(p, r) for p, r in zip(m.parameters(), raw))


@pytest.mark.parametrize("averaged_when_saved", [False, True])
def test_a_checkpoint_loads_the_average_and_resumes_the_raw_weights(averaged_when_saved):
    m = net()
    avg = WeightAverage(m, steps=3)
    for step, value in enumerate([1.0, 4.0, 9.0]):
        set_all(m, value)
        avg.update(step)
    raw = {n: p.detach().clone() for n, p in m.named_parameters()}
    avg.use_average()
    average = {n: p.detach().clone() for n, p in m.named_parameters()}
    if not averaged_when_saved:
        avg.use_raw()
    checkpoint = {"state_dict": {k: v.clone() for k, v in m.state_dict().items()}}
    avg.to_checkpoint(checkpoint)
    for n in raw:
        assert torch.equal(checkpoint["state_dict"][n], average[n]) and torch.equal(
            checkpoint[RAW_KEY][n], raw[n]
        )

    fresh = net()
    fresh.load_state_dict(checkpoint["state_dict"])  # what loading a checkpoint gives: the average
    resumed = WeightAverage(fresh, steps=3)
    resumed.resume(checkpoint[RAW_KEY])  # what resuming trains: the raw weights
    assert all(torch.equal(p, raw[n]) for n, p in fresh.named_parameters())
    resumed.use_average()
    assert all(torch.equal(p, average[n]) for n, p in fresh.named_parameters())
    with pytest.raises(KeyError, match="raw weights"):
        WeightAverage(net(), steps=3).resume({})


def test_a_non_positive_horizon_is_refused():
    with pytest.raises(ValueError, match="average_steps"):
        WeightAverage(net(), steps=0)


class _Record(pl.Callback):
    """The trained weights after each optimizer step and the weights validation sees."""

    def __init__(self):
        self.trained, self.validated, self.fitted = {}, [], None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.trained[trainer.global_step] = flat(module)

    def on_validation_epoch_end(self, trainer, module):
        if not trainer.sanity_checking:
            self.validated.append((trainer.global_step, flat(module)))

    def on_fit_end(self, trainer, module):
        self.fitted, self.names = flat(module), [n for n, _ in module.named_parameters()]


def flat(module):
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


def test_validation_checkpoints_and_the_fitted_module_hold_the_average(tmp_path):
    path = write_lorenz_benchmark(
        tmp_path / "d.h5", seed=1, n_trials=(40, 10, 10), n_time=12, n_neurons=10, n_heldout=2
    )
    rec, horizon = _Record(), 4
    cfg = compose(
        [
            "data=file",
            f"data.path={path}",
            "logger=csv",
            *TINY_OVERRIDES,
            "trainer.max_epochs=-1",
            "+trainer.max_steps=12",
            f"train.average_steps={horizon}",
            "train.metrics_every_n_steps=0",
            "infer.n_samples=0",
            "plots.n_neurons=1",
        ]
    )
    train(cfg, run_dir=str(tmp_path / "run"), callbacks=[rec])
    steps = sorted(rec.trained)
    avg, expected = None, {}
    for t in steps:
        d = min(1 - 1 / horizon, (1 + t) / (10 + t))
        avg = rec.trained[t].clone() if avg is None else d * avg + (1 - d) * rec.trained[t]
        expected[t] = avg
    assert len(rec.validated) >= 3
    for step, seen in rec.validated:
        torch.testing.assert_close(seen, expected[step])
        assert not torch.allclose(seen, rec.trained[step])  # not the trained weights
    last = torch.load(
        tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    names = rec.names
    torch.testing.assert_close(
        torch.cat([last["state_dict"][n].flatten() for n in names]), expected[steps[-1]]
    )
    torch.testing.assert_close(
        torch.cat([last[RAW_KEY][n].flatten() for n in names]), rec.trained[steps[-1]]
    )
    torch.testing.assert_close(rec.fitted, expected[steps[-1]])  # the fitted module: the average
