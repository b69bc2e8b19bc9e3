"""The rules that choose a model and its training from the data, one plain function per choice.

Every rule follows from the data's size and statistics (trials, neurons, bins, areas, inputs) and
from the budget, never from a particular data set; each returns ``(value, reason)`` so the choices
can be printed with why. The numbers in them are the usual ones of sequential autoencoders (LFADS
defaults at ~1,000 trials) with regularisation growing as data shrink.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from dsid.autofit.describe import DataDescription
from dsid.autofit.multiarea_rules import SingleArea, median_area, multiarea_choices

Rule = Tuple[Any, str]


@dataclass(frozen=True)
class Choice:
    """One setting: the config key, its value and the reason (``"set by you"`` for a user's)."""

    key: str
    value: Any
    reason: str

    def override(self) -> str:
        value = self.value
        if isinstance(value, float):
            value = f"{value:.6g}"
        return f"{self.key}={value}"


def model_kind(d: DataDescription) -> Rule:
    if d.n_areas > 1:
        return (
            "multiarea",
            f"{d.n_areas} areas in neurons/area: per-area dynamics with delayed coupling",
        )
    return "sae", "one area: a single-area sequential autoencoder (LFADS)"


def batch_size(d: DataDescription) -> Rule:
    """A power of two near n_train / 8 (about 8 steps per epoch), in 16..128."""
    b = int(min(128, max(16, 2 ** math.floor(math.log2(max(d.n_train / 8, 1))))))
    return b, f"{d.n_train} training trials: ~{math.ceil(d.n_train / b)} steps per epoch"


def learning_rate(batch: int) -> Rule:
    """5e-3 at batch 64, scaled with the square root of the batch size."""
    lr = 0.005 * math.sqrt(batch / 64)
    return round(lr, 6), f"5e-3 x sqrt(batch {batch} / 64)"


def generator_size(d: DataDescription) -> Rule:
    """What the data can support: the recorded time of the training trials (trials x trial length,
    which constrains the dynamics whatever the bin width), not the number of neurons (a system's
    dynamics are no simpler for being recorded with fewer of them). 64 units below 200 s, 128 from
    500 s, in steps of 16 in between."""
    seconds = d.n_train * d.n_time * d.bin_ms / 1000.0
    why = (
        f"{seconds:.0f} s of training data "
        f"({d.n_train} trials of {d.n_time * d.bin_ms / 1000.0:g} s)"
    )
    if seconds < 200:
        return 64, why + ": the small model"
    h = int(min(128, 64 + 16 * round(4 * (seconds - 200) / 300)))
    return h, why + (": the large model" if h == 128 else "")


def factor_size(d: DataDescription) -> Rule:
    """Half the held-in neurons, in 10..40."""
    return int(
        min(40, max(10, d.n_heldin // 2))
    ), f"half of {d.n_heldin} held-in neurons, in 10..40"


DROPOUT_MAX = 0.2


def dropout(d: DataDescription) -> Rule:
    """0.05 + 0.25 sqrt(100 / n_train), at most 0.2: stronger for fewer trials, up to the point
    where the noise it puts into the generator's state drowns the trial-to-trial variability the
    inferred inputs must track (at ~80 training trials 0.33 instead of 0.2 halved the co-bps of a
    chaotic RNN and lost half of a maze task's unobserved fluctuation; 0.1 was slightly worse than
    0.2)."""
    p = min(DROPOUT_MAX, 0.05 + 0.25 * math.sqrt(100 / max(d.n_train, 1)))
    why = f"{d.n_train} training trials"
    return round(p, 3), why + (
        f": the most ({DROPOUT_MAX:g}) below ~280 trials" if p == DROPOUT_MAX else ""
    )


def l2_scale(d: DataDescription) -> Rule:
    """1e-3 at 1,000+ trials, growing as 1 / n_train up to 1e-2."""
    s = 1e-3 * min(10.0, max(1.0, 1000 / max(d.n_train, 1)))
    return round(s, 6), f"{d.n_train} training trials"


INFO_FULL_NATS = 100.0


def kl_scale(d: DataDescription) -> Rule:
    """The KL terms' weight: 1 when a trial holds at least 100 nats of predictable information
    (``d.info_nats``), in proportion below that, at least 0.01. A posterior that pins down a trial's
    trajectory costs tens to about a hundred nats of KL (an initial condition of 64-128 dimensions
    and inferred inputs at every bin); with less information than that in a trial, the full weight
    makes ignoring the data (every trial the average rates) the optimum the fit runs into."""
    s = min(1.0, max(0.01, d.info_nats / INFO_FULL_NATS))
    why = f"{d.info_nats:g} nats of predictable information per trial" + (
        ""
        if s == 1.0
        else f" (< {INFO_FULL_NATS:g}): a lighter KL weight against posterior collapse"
    )
    return round(s, 3), why


def validation_interval(d: DataDescription, batch: int, budget_steps: int) -> Rule:
    """Validate every epoch, or every few epochs when epochs are short (about 25 steps apart), at
    least 4 times within the budget."""
    per_epoch = math.ceil(d.n_train / batch)
    n = max(1, min(math.ceil(25 / per_epoch), budget_steps // (4 * per_epoch)))
    return n, f"{per_epoch} steps per epoch: validation about every {n * per_epoch} steps"


def schedule(budget_steps: int) -> List[Tuple[str, int, str]]:
    """Ramps, plateau patience, early-stopping patience and metric interval in optimizer steps: the
    usual values (ramps and plateau patience 250 steps, early-stopping patience 750) whatever the
    data size; the ramps and plateau patience shortened in proportion when the budget holds fewer
    than 1,000 steps, early stopping never more patient than 750 nor less than 200 steps (the
    budget's estimate comes from a few timed steps and may be off)."""
    scale = min(1.0, budget_steps / 1000)
    ramp = int(max(20, 250 * scale))
    why = f"~{budget_steps} steps fit the budget" + (": shortened" if scale < 1 else "")
    return [
        ("train.kl_ramp_steps", ramp, why),
        ("train.l2_ramp_steps", ramp, why),
        ("train.lr_patience_steps", ramp, why),
        ("early_stopping.patience_steps", max(200, 3 * ramp), why),
        ("train.metrics_every_n_steps", int(max(50, budget_steps // 25)), why),
    ]


def choose(d: DataDescription, budget_steps: Optional[int] = None) -> List[Choice]:
    """Every rule's choice for data ``d``; schedules only once ``budget_steps`` is known."""
    kind, why_kind = model_kind(d)
    batch, why_batch = batch_size(d)
    out = [
        Choice("model.name", kind, why_kind),
        Choice("data.batch_size", batch, why_batch),
        Choice("train.lr", *learning_rate(batch)),
    ]
    if kind == "sae":
        gen, why_gen = generator_size(d)
        out += [
            Choice("model.generator.hidden_size", gen, why_gen),
            Choice("model.ic_size", gen, "the generator's size"),
            Choice("model.factor_size", *factor_size(d)),
        ]
    else:  # per-area sizes, the coupling and the warm-up, from the single-area rules' results
        ramps = {k: v for k, v, _ in schedule(budget_steps)} if budget_steps is not None else {}
        single = SingleArea(
            generator_size(d),
            factor_size(median_area(d)),
            kl_scale(d)[0],
            ramps.get("train.kl_ramp_steps"),
        )
        out += [Choice(*s) for s in multiarea_choices(d, budget_steps, single)]
    p, why_p = dropout(d)
    kl, why_kl = kl_scale(d)
    out += [
        Choice("model.encoder.dropout", p, why_p),
        Choice("model.generator.dropout", p, why_p),
        Choice("train.l2_scale", *l2_scale(d)),
        Choice("train.kl_scales.ic", kl, why_kl),
        Choice("train.kl_scales.co", kl, why_kl),
    ]
    if budget_steps is not None:
        out += [Choice(k, v, why) for k, v, why in schedule(budget_steps)]
        out.append(
            Choice("trainer.check_val_every_n_epoch", *validation_interval(d, batch, budget_steps))
        )
    return out
