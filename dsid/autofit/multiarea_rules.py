"""The rules that choose a multi-area model (one sequential autoencoder per area, delay-coupled) and
its training from the data, one plain function per choice returning ``(value, reason)``.

The single-area rules of :mod:`dsid.autofit.rules` for the batch, learning rate and its plateau
schedule, dropout, L2, KL weights, ramps and validation apply unchanged (every area sees the same
trials); this module adds what differs, from those rules' results where it builds on them
(:class:`SingleArea`: ``rules.choose`` passes them in, as this module is imported by that one):

- sizes: every area has the same sizes (``MultiAreaSAE`` builds the areas from one config), the
  single-area model's: each area's dynamics are learnt from the same recorded time as one area's
  would be, and the generator rule (:func:`~dsid.autofit.rules.generator_size`) sizes from that
  time. (Sharing one model's weights out among the areas, H / sqrt(A) units each, gave 0.01-0.03 x
  oracle less co-bps and lower latent R2 on every draw of both multi-area zoo members: the areas
  need the capacity of a whole model each.) A step costs about A times a single area's;
- the coupling: delay coupling with a lag window from the bin width and trial length and a
  group-lasso weight in proportion to the predictable information per trial and area
  (:func:`edge_sparsity`);
- steps without KL and L2 before their ramps, and the delay logits' speed-up, from the budget.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any, List, NamedTuple, Optional, Tuple

from dsid.autofit.describe import DataDescription

Rule = Tuple[Any, str]
Setting = Tuple[str, Any, str]  # (config key, value, reason), as rules.schedule gives them

# the single-area model's other sizes (configs/encoder/bigru.yaml, configs/generator/lfads.yaml,
# configs/train.yaml), every area's too
ENCODER_SIZE, CI_SIZE, CONTROLLER_SIZE, CO_SIZE = 64, 32, 32, 4
# the calibration: experiments/multiarea_delay.yaml's group-lasso weight 10 on its data
# (data/multiarea.h5: 196.7 nats of predictable information per training trial in 3 areas; its
# mean-rate Poisson NLL, ~7,500 nats per trial, is the "~7000 nats" of the experiment's comment)
DEMO_SPARSITY, DEMO_INFO_PER_AREA = 10.0, 196.7 / 3
LAG_WINDOW_MS, LAG_TRIAL_FRACTION = 100.0, 0.1
LAG_STEPS = 10000  # steps the delay logits need at lag_scale 1
COUPLING_GROUP = "+coupling@model.coupling"  # train.yaml has no coupling group: appended


class SingleArea(NamedTuple):
    """What the single-area rules (:mod:`dsid.autofit.rules`) say for these data."""

    generator: Rule  # generator_size(d)
    factors: Rule  # factor_size(median_area(d))
    kl: float  # kl_scale(d)
    ramp: Optional[int] = None  # the KL and L2 ramps' steps of schedule(budget_steps)


def area_generator_size(d: DataDescription, single: Rule) -> Rule:
    """Every area's generator: the single-area size ``single`` (from the recorded time)."""
    h, why = single
    return h, f"{why}; in every one of the {d.n_areas} areas"


def area_sizes(d: DataDescription) -> List[Setting]:
    """Encoder, controller-input encoder, controller and inferred inputs per area: the single-area
    sizes (64, 32, 32, 4)."""
    why = f"the single-area size, in every one of the {d.n_areas} areas"
    return [
        ("model.encoder.hidden_size", ENCODER_SIZE, why),
        ("model.encoder.ci_size", CI_SIZE, why),
        ("model.generator.controller_size", CONTROLLER_SIZE, why),
        ("model.co_size", CO_SIZE, why),
    ]


def area_heldin(d: DataDescription) -> List[int]:
    """Held-in neurons of each area (split evenly when the description does not say)."""
    if d.area_heldin:
        return [int(n) for n in d.area_heldin]
    a = max(d.n_areas, 1)
    return [d.n_heldin // a] * a


def median_area(d: DataDescription) -> DataDescription:
    """The data of one area with the median area's held-in neurons: the single-area factor rule
    applied to it sizes every area's factors (one size serves all areas; the larger ones need not
    be squeezed through the smallest one's)."""
    n = int(statistics.median(area_heldin(d)))
    return dataclasses.replace(d, n_heldin=n, n_areas=1, area_heldin=(n,))


def area_factor_size(d: DataDescription, single: Rule) -> Rule:
    """The single-area factor size of :func:`median_area` (``single``: half, in 10..40)."""
    n = median_area(d).n_heldin
    return single[0], f"half the median area's {n} held-in neurons, in 10..40"


def coupling_kind(d: DataDescription) -> Rule:
    return "delay", (
        f"{d.n_areas} areas: low-rank messages through a learnt delay per edge, "
        "edges the data do not need pruned"
    )


def max_delay(d: DataDescription) -> Rule:
    """Lags 0..max_delay bins: up to 100 ms, at most a tenth of the trial, at least 1 bin."""
    k = max(1, min(round(LAG_WINDOW_MS / d.bin_ms), int(LAG_TRIAL_FRACTION * d.n_time)))
    return k, f"lags up to {k * d.bin_ms:g} ms ({d.bin_ms:g} ms bins, trials of {d.n_time} bins)"


def edge_sparsity(d: DataDescription) -> Rule:
    """The group-lasso weight on every edge's end-to-end gain (``model.coupling.sparsity``, nats per
    trial per unit gain): 10 x (info_nats / A) / 65.6, i.e. a unit of gain costs 15% of the
    predictable information a trial holds per area, the most an edge into an area can explain, on
    any data set. (Not the mean-rate NLL: its Poisson noise part grows with neurons and bins at
    the same information, and would prune edges of noisier data harder.)"""
    per_area = d.info_nats / max(d.n_areas, 1)
    s = DEMO_SPARSITY * per_area / DEMO_INFO_PER_AREA
    return round(s, 3), (
        f"{per_area:.1f} nats of predictable information per trial and area: "
        f"{DEMO_SPARSITY:g} x that / {DEMO_INFO_PER_AREA:.1f} (the demo's)"
    )


def message_kl(kl: float) -> Rule:
    """``train.kl_scales.msg`` (stochastic messages only): half the inferred inputs' weight ``kl``
    (:func:`~dsid.autofit.rules.kl_scale`, from the information per trial), so drive another area
    explains takes the messages rather than the controllers."""
    return round(0.5 * kl, 4), f"half the inferred inputs' KL weight {kl:g}"


def warmup_steps(ramp: int) -> Rule:
    """Steps without KL and L2 before their ramps of ``ramp`` steps (``rules.schedule``: 250 from
    1,000 budget steps on, shorter below): a fifth of them, so every area's dynamics leave the mean
    rates before the posteriors are squeezed."""
    return ramp // 5, f"a fifth of the {ramp}-step ramps: the areas' dynamics first"


def lag_scale(budget_steps: int) -> Rule:
    """The delay logits' speed-up: 10,000 / steps, in 1..5 (the logits move about ``lag_scale``
    times as far per step; ~2,000 steps at 1 barely move them)."""
    s = min(5.0, max(1.0, LAG_STEPS / max(budget_steps, 1)))
    return round(s, 2), f"~{budget_steps} steps for the delays"


def multiarea_choices(
    d: DataDescription, budget_steps: Optional[int], single: SingleArea
) -> List[Setting]:
    """The multi-area settings besides the ones shared with a single area
    (:func:`~dsid.autofit.rules.choose`); the budget's only once ``budget_steps`` is known."""
    gen, why_gen = area_generator_size(d, single.generator)
    out = [
        ("model.generator.hidden_size", gen, why_gen),
        ("model.ic_size", gen, "the generator's size"),
        ("model.factor_size", *area_factor_size(d, single.factors)),
        *area_sizes(d),
        (COUPLING_GROUP, *coupling_kind(d)),
        ("model.coupling.max_delay", *max_delay(d)),
        ("model.coupling.sparsity", *edge_sparsity(d)),
        ("++train.kl_scales.msg", *message_kl(single.kl)),  # a key train.yaml lacks
    ]
    if budget_steps is not None and single.ramp is not None:
        n, why = warmup_steps(single.ramp)
        out += [
            ("train.kl_start_step", n, why),
            ("train.l2_start_step", n, why),
            ("model.coupling.lag_scale", *lag_scale(budget_steps)),
        ]
    return out
