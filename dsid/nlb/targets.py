"""The NLB targets and trial bookkeeping :mod:`dsid.nlb.prepare` writes next to the tensors: the
true forward rates, trial conditions, which trials NLB's splits hold, the 'val' phase's evaluation
targets, the held-out neurons' mask, and split subsets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from dsid.data.tensor_file import DataFileError, SplitData
from dsid.nlb.nwb_reading import TRUTH, as_counts
from dsid.nlb.specs import NLBSpec


def forward_truth(ds, spec: NLBSpec, mask, seed: int):
    """True forward-window rates of ``mask`` trials, aligned as nlb_tools aligns forward spikes."""
    from nlb_tools.make_tensors import PARAMS, _prep_jitter, make_stacked_array

    params = PARAMS[spec.name]
    ti = ds.trial_info
    align = ti[spec.align_field].copy()
    if params.get("jitter") is not None:
        np.random.seed(seed)
        align[mask] = align[mask] + pd.to_timedelta(
            _prep_jitter(ds, mask, params["jitter"]), unit="ms"
        )
    ds.trial_info = ti.assign(_dsid_fp_align=align)
    end = spec.align_range[1]
    try:
        fp = make_stacked_array(
            ds,
            [TRUTH],
            {
                "align_field": "_dsid_fp_align",
                "allow_overlap": True,
                "align_range": (end, end + spec.fp_len),
            },
            mask,
        )[TRUTH]
    finally:
        ds.trial_info = ti
    return fp


def trial_conditions(spec: NLBSpec, ds, eds, train_mask, eval_mask):
    """Condition index of each train/eval trial: position of its ``cond_fields`` values among the
    sorted combinations seen in the train file (-1: none); also returns the combinations."""
    fields = list(spec.cond_fields)
    if not fields or any(c not in ds.trial_info for c in fields):
        return None, None, None

    def keys(ti, m):
        return list(ti.loc[np.asarray(m, bool), fields].itertuples(index=False, name=None))

    pool = keys(ds.trial_info, ds.trial_info.split.isin(["train", "val"]))
    combos = sorted({k for k in pool if not any(pd.isna(v) for v in k)})
    lookup = {k: i for i, k in enumerate(combos)}
    lab = lambda ti, m: np.array([lookup.get(k, -1) for k in keys(ti, m)], np.int64)  # noqa: E731
    ev = lab(eds.trial_info, eval_mask) if all(c in eds.trial_info for c in fields) else None
    return lab(ds.trial_info, train_mask), ev, combos


def nlb_trial_mask(ds, spec: NLBSpec, splits, n_built: int, path: Path) -> np.ndarray:
    """Trials of ``splits`` that nlb_tools tensorised (those with an alignment time), in tensor
    order."""
    ti = ds.trial_info
    mask = ti.split.isin(np.atleast_1d(splits)).to_numpy() & ti[spec.align_field].notna().to_numpy()
    if int(mask.sum()) != n_built:
        raise DataFileError(
            path,
            f"intervals/trials/{spec.align_field}",
            f"{int(mask.sum())} trials of split {list(np.atleast_1d(splits))} with this time",
            f"nlb_tools built {n_built} trials",
        )
    return mask


def val_targets(ds, spec: NLBSpec, key: str, n_train: int, n_eval: int, seed: int, log):
    """NLB's evaluation targets ('train' vs 'val'): eval forward spikes, eval behavior,
    ``nlb/target/*``."""
    from nlb_tools.make_tensors import make_eval_target_tensors

    tg = make_eval_target_tensors(
        ds,
        spec.name,
        "train",
        "val",
        save_file=False,
        include_psth=bool(spec.cond_fields),
        seed=seed,
    )[key]
    fwd = np.concatenate(
        [
            as_counts(tg[f"eval_spikes_{s}_forward"], f"eval_spikes_{s}_forward", log)
            for s in ("heldin", "heldout")
        ],
        -1,
    )
    extra = {}
    for name, val in tg.items():
        if name.endswith("_cond_idx"):  # ragged index lists -> one condition label per trial
            n = n_train if name.startswith("train") else n_eval
            lab = np.full(n, -1, np.int64)
            for c, rows in enumerate(val):
                lab[np.asarray(rows, dtype=np.int64)] = c
            extra[f"nlb/target/{name.replace('idx', 'labels')}"] = lab
        else:
            extra[f"nlb/target/{name}"] = val
    return fwd, tg["eval_behavior"], extra


def holdout_mask(
    n: int, fraction: float, seed: int, labels: Optional[np.ndarray] = None
) -> np.ndarray:
    """A seeded boolean mask of ``round(fraction * n)`` trials to hold back (at least one, never
    all), stratified by ``labels``: each label gets its share, remainders going to the largest
    fractions."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(n, np.int64) if labels is None else np.asarray(labels)
    groups = [np.flatnonzero(labels == lab) for lab in np.unique(labels)]
    total = int(np.clip(round(fraction * n), 1, n - 1))
    exact = np.array([fraction * len(g) for g in groups])
    quota = np.floor(exact).astype(int)
    left = total - int(quota.sum())
    if left > 0:  # largest remainders first, ties in random order
        rank = np.lexsort((rng.random(len(groups)), -(exact - quota)))
        quota[rank[:left]] += 1
    elif left < 0:
        rank = np.lexsort((rng.random(len(groups)), exact - quota))
        for i in rank:
            if left == 0:
                break
            if quota[i] > 0:
                quota[i], left = quota[i] - 1, left + 1
    mask = np.zeros(n, bool)
    for g, q in zip(groups, quota):
        mask[rng.permutation(g)[:q]] = True
    return mask


def subset_split(sd: SplitData, keep: np.ndarray) -> SplitData:
    pick = lambda x: None if x is None else x[keep]  # noqa: E731
    return SplitData(
        spikes=sd.spikes[keep],
        forward_spikes=pick(sd.forward_spikes),
        behavior=pick(sd.behavior),
        condition=pick(sd.condition),
        truth_rates=pick(sd.truth_rates),
        truth_latents=pick(sd.truth_latents),
    )
