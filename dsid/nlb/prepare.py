"""NLB NWB files -> one DSID tensor file, with the NLB targets the scorer needs under ``nlb/``.

Tensors come from ``nlb_tools.make_tensors`` exactly as NLB builds them. Neurons are held-in then
held-out. NLB's training trials (its 'train' trials in phase 'val', 'train'+'val' in phase 'test')
are split, seeded and stratified by condition, into DSID ``train`` and ``valid`` (a
``valid_fraction`` held back for model selection; all of their spikes, forward spikes included, are
known). ``test`` holds NLB's evaluation trials ('val' or 'test'), which model selection never sees.
In phase 'test' their held-out and forward spikes are unknown: stored as zeros, with
``nlb/heldout_unknown`` = 1.

``nlb/train_order`` puts DSID's train and valid trials back in NLB's training-trial order:
``np.concatenate([train, valid])[train_order]`` lines up with ``nlb/train_trial_ids`` (and with the
``train_*`` targets under ``nlb/target``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import h5py
import numpy as np
import pandas as pd

from dsid.data.tensor_file import DataFileError, DSIDData, SplitData, write_tensor_file
from dsid.nlb.specs import PHASES, NLBSpec, check_bin, get_spec, quiet_nlb_tools
from dsid.nlb.synth import TRUTH_FILE, read_truth

TRUTH = "dsid_truth"  # signal name of the true rates/latents added to the NWBDataset
# continuous fields of the DANDI files that NLB's tensors do not use (skipped on load, as NLB's
# scripts do)
UNUSED_FIELDS = (
    "hand_pos",
    "cursor_pos",
    "eye_pos",
    "finger_pos",
    "target_pos",
    "muscle_vel",
    "muscle_len",
    "joint_vel",
    "joint_ang",
    "force",
    "hand_vel",
    "finger_vel",
)


def find_nwb_files(spec: NLBSpec, nwb_dir, need_test: bool) -> Tuple[Path, Optional[Path]]:
    """Locate the dataset's train (and test) NWB file in ``nwb_dir`` or below it."""
    root = Path(nwb_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: no such directory (expected the {spec.name} NWB files, "
            f"DANDI {spec.dandiset}/sub-{spec.subject}/)"
        )
    found = {}
    for part, name in (("train", spec.train_file()), ("test", spec.test_file())):
        if part == "test" and not need_test:
            continue
        hits = sorted(root.rglob(f"{spec.file_prefix()}{part}*.nwb"))
        if not hits:
            present = sorted(p.name for p in root.rglob("*.nwb"))[:10]
            raise FileNotFoundError(
                f"{root}: no {spec.name} {part} file: expected '{name}' (DANDI "
                f"{spec.dandiset}); .nwb files found: {present or 'none'}"
            )
        if len(hits) > 1:
            raise FileNotFoundError(
                f"{root}: several {spec.name} {part} files: {[str(h) for h in hits]}"
            )
        found[part] = hits[0]
    return found["train"], found.get("test")


def _precheck(path: Path, spec: NLBSpec, test_file: bool) -> bool:
    """Check what NWBDataset needs before loading; return whether the units table has
    ``heldout``."""
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataFileError(path, "/", "an NWB (HDF5) file", str(err)) from err
    with f:
        units = f.get("units")
        for col in ("spike_times", "obs_intervals"):
            if units is None or col not in units:
                raise DataFileError(
                    path, f"units/{col}", f"a '{col}' column in the units table", "none"
                )
        has_heldout = "heldout" in units
        if has_heldout and units["heldout"].dtype != bool:
            raise DataFileError(
                path, "units/heldout", "a boolean column", f"dtype {units['heldout'].dtype}"
            )
        if not has_heldout and not test_file:
            raise DataFileError(
                path, "units/heldout", "a boolean column marking NLB's held-out units", "none"
            )
        trials = f.get("intervals/trials")
        if trials is None:
            raise DataFileError(path, "intervals/trials", "a trials table", "none")
        missing = [c for c in spec.required_trial_fields(test_file) if c not in trials]
        if missing:
            raise DataFileError(
                path,
                f"intervals/trials/{missing[0]}",
                f"trial columns {list(spec.required_trial_fields(test_file))} for {spec.name}",
                f"missing {missing}",
            )
    return has_heldout


def _load(path: Path, spec: NLBSpec, test_file: bool, split_needed: Tuple[str, ...]):
    from nlb_tools.nwb_interface import NWBDataset

    has_heldout = _precheck(path, spec, test_file)
    try:
        skip = [f for f in UNUSED_FIELDS if f not in spec.behavior_field]
        ds = NWBDataset(str(path), split_heldout=has_heldout, skip_fields=skip)
    except Exception as err:  # nlb_tools raises assorted errors on malformed files
        raise DataFileError(
            path, "/", "an NWB file nlb_tools' NWBDataset can load", f"{type(err).__name__}: {err}"
        ) from err
    signals = set(ds.data.columns.get_level_values(0))
    if not test_file:
        if "heldout_spikes" not in signals:
            raise DataFileError(path, "units/heldout", "at least one held-out unit", "none marked")
        if spec.time_series_behavior and spec.behavior_field[0] not in signals:
            raise DataFileError(
                path,
                f"processing/behavior/{spec.behavior_field[0]}",
                f"the behavior TimeSeries '{spec.behavior_field[0]}' on the 1 ms grid",
                f"none (time series found: {sorted(signals - {'spikes', 'heldout_spikes'})})",
            )
    splits = set(ds.trial_info["split"].astype(str))
    for s in split_needed:
        if s not in splits:
            raise DataFileError(
                path,
                "intervals/trials/split",
                f"trials with split '{s}'",
                f"splits {sorted(splits)}",
            )
    return ds


def _attach_truth(ds, path: Path, part: str, bin_ms: int) -> int:
    """Add the synthetic truth to a resampled NWBDataset as signal ``dsid_truth``: held-in rates,
    held-out rates (spikes per bin) and latents (bin means). Return the number of rate columns."""
    rates, latents, heldout = read_truth(path, part)
    n_bins = int(np.ceil(len(rates) / bin_ms))
    if n_bins != len(ds.data):
        raise DataFileError(
            path,
            f"{part}/latents",
            f"{len(ds.data) * bin_ms} samples (the NWB file's 1 ms grid)",
            f"{len(rates)}",
        )

    def per_bin(x, mean):
        x = np.concatenate([x, np.zeros((n_bins * bin_ms - len(x), x.shape[1]))])
        return x.reshape(n_bins, bin_ms, -1).sum(1) / (bin_ms if mean else 1)

    arr = np.hstack(
        [
            per_bin(rates[:, ~heldout], False),
            per_bin(rates[:, heldout], False),
            per_bin(latents, True),
        ]
    )
    ds.add_continuous_data(arr, TRUTH, chan_names=[f"{i:04d}" for i in range(arr.shape[1])])
    return rates.shape[1]


def _counts(x, name: str, log) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    bad = np.isnan(x)
    if bad.any():
        log(f"  note: {int(bad.sum())} NaN bins in {name} (outside observed intervals) stored as 0")
        x = np.where(bad, 0.0, x)
    return np.rint(x).astype(np.int32)


def _forward_truth(ds, spec: NLBSpec, mask, seed: int):
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


def _conditions(spec: NLBSpec, ds, eds, train_mask, eval_mask):
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


def _trial_mask(ds, spec: NLBSpec, splits, n_built: int, path: Path) -> np.ndarray:
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


def _val_targets(ds, spec: NLBSpec, key: str, n_train: int, n_eval: int, seed: int, log):
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
            _counts(tg[f"eval_spikes_{s}_forward"], f"eval_spikes_{s}_forward", log)
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


def _subset(sd: SplitData, keep: np.ndarray) -> SplitData:
    pick = lambda x: None if x is None else x[keep]  # noqa: E731
    return SplitData(
        spikes=sd.spikes[keep],
        forward_spikes=pick(sd.forward_spikes),
        behavior=pick(sd.behavior),
        condition=pick(sd.condition),
        truth_rates=pick(sd.truth_rates),
        truth_latents=pick(sd.truth_latents),
    )


def prepare(
    dataset: str,
    nwb_dir,
    bin_ms: int,
    phase: str,
    out,
    seed: int = 0,
    valid_fraction: float = 0.2,
    log: Optional[Callable[[str], None]] = None,
) -> Path:
    """Build the DSID tensor file ``out`` for NLB ``dataset`` at ``bin_ms`` (5/20) in ``phase``
    (val/test).

    ``valid_fraction`` of NLB's training trials become the ``valid`` split (chosen with ``seed``,
    stratified by condition); ``seed`` also seeds nlb_tools' jitter (dmfc_rsg). ``log`` receives
    progress lines. Bad input raises ``DataFileError``/``FileNotFoundError``/``ValueError`` naming
    the file and field; nothing is written.
    """
    log = log or (lambda msg: None)
    spec, bin_ms = get_spec(dataset), check_bin(bin_ms)
    if phase not in PHASES:
        raise ValueError(f"phase: expected one of {PHASES}, found {phase!r}")
    try:
        valid_fraction = float(valid_fraction)
    except (TypeError, ValueError):
        valid_fraction = float("nan")
    if not 0 < valid_fraction < 1:
        raise ValueError(
            f"valid_fraction: expected a fraction strictly between 0 and 1 (the share of NLB's "
            f"training trials held back for validation), found {valid_fraction!r}"
        )
    train_path, test_path = find_nwb_files(spec, nwb_dir, need_test=phase == "test")
    with quiet_nlb_tools():
        return _prepare(spec, train_path, test_path, bin_ms, phase, out, seed, valid_fraction, log)


def _prepare(
    spec: NLBSpec,
    train_path: Path,
    test_path: Optional[Path],
    bin_ms: int,
    phase: str,
    out,
    seed: int,
    valid_fraction: float,
    log,
) -> Path:
    from nlb_tools.make_tensors import make_eval_input_tensors, make_train_input_tensors

    log(f"loading {train_path}")
    ds = eds = _load(train_path, spec, False, ("train", "val"))
    if phase == "test":
        log(f"loading {test_path}")
        eds = _load(test_path, spec, True, ("test",))
    eval_path = test_path or train_path
    log(f"resampling to {bin_ms} ms")
    for d in {id(ds): ds, id(eds): eds}.values():
        d.resample(bin_ms)
    truth_path = train_path.parent / TRUTH_FILE
    n_rates = 0
    if truth_path.exists():
        with h5py.File(truth_path, "r") as f:
            is_ours = f.attrs.get("like") == spec.name
        if is_ours:
            log(f"adding true rates from {truth_path}")
            n_rates = _attach_truth(ds, truth_path, "train", bin_ms)
            if eds is not ds:
                _attach_truth(eds, truth_path, "test", bin_ms)
    train_split, eval_split = ("train", "val") if phase == "val" else (["train", "val"], "test")
    log("building tensors with nlb_tools.make_tensors")
    tr = make_train_input_tensors(
        ds,
        spec.name,
        train_split,
        save_file=False,
        include_behavior=True,
        include_forward_pred=True,
        seed=seed,
    )
    ev = make_eval_input_tensors(eds, spec.name, eval_split, save_file=False, seed=seed)
    n_in, n_out = tr["train_spikes_heldin"].shape[2], tr["train_spikes_heldout"].shape[2]
    n_eval, t_len, n_in_eval = ev["eval_spikes_heldin"].shape
    if n_in_eval != n_in:
        raise DataFileError(
            eval_path, "units", f"{n_in} held-in units like the train file", f"{n_in_eval}"
        )
    train_mask = _trial_mask(ds, spec, train_split, len(tr["train_spikes_heldin"]), train_path)
    eval_mask = _trial_mask(eds, spec, eval_split, n_eval, eval_path)

    def cat(d, k):
        return np.concatenate([_counts(d[k % s], k % s, log) for s in ("heldin", "heldout")], -1)  # noqa

    # all of NLB's training trials, in NLB's order; split into DSID train/valid below
    nlb_train = SplitData(
        spikes=cat(tr, "train_spikes_%s"), forward_spikes=cat(tr, "train_spikes_%s_forward")
    )
    key = spec.key(bin_ms)
    extra: Dict[str, object] = {
        "nlb/dataset": spec.name,
        "nlb/key": key,
        "nlb/bin_ms": np.int64(bin_ms),
        "nlb/phase": phase,
        "nlb/n_heldin": np.int64(n_in),
        "nlb/heldout_unknown": np.int8(phase == "test"),
        "nlb/seed": np.int64(seed),
        "nlb/valid_fraction": np.float64(valid_fraction),
        "nlb/train_trial_ids": ds.trial_info.trial_id.to_numpy()[train_mask],
        "nlb/eval_trial_ids": eds.trial_info.trial_id.to_numpy()[eval_mask],
    }
    beh = tr.get("train_behavior")
    if beh is not None and beh.ndim == 3:
        nlb_train.behavior = beh.astype(np.float32)
    elif beh is not None:  # dmfc_rsg: per-trial values from the trial table
        extra["nlb/train_trial_behavior"] = beh
    if phase == "val":
        test = SplitData(spikes=cat(ev, "eval_spikes_%s"))
        test.forward_spikes, eval_beh, targets = _val_targets(
            ds, spec, key, nlb_train.n_trials, n_eval, seed, log
        )
        extra.update(targets)
        if nlb_train.behavior is not None and eval_beh.shape[:2] == (n_eval, t_len):
            test.behavior = eval_beh.astype(np.float32)
    else:
        # held-out and forward spikes of test trials are unknown: zeros, flagged by
        # nlb/heldout_unknown
        test = SplitData(
            spikes=np.concatenate(
                [
                    _counts(ev["eval_spikes_heldin"], "eval_spikes_heldin", log),
                    np.zeros((n_eval, t_len, n_out), np.int32),
                ],
                -1,
            ),
            forward_spikes=np.zeros((n_eval,) + nlb_train.forward_spikes.shape[1:], np.int32),
        )
    nlb_train.condition, test.condition, combos = _conditions(spec, ds, eds, train_mask, eval_mask)
    if combos is not None:
        extra["nlb/condition_fields"] = np.array([f.encode() for f in spec.cond_fields])
        try:
            extra["nlb/condition_values"] = np.array(combos, dtype=np.float64)
        except (TypeError, ValueError):
            pass  # non-numeric condition values: the field names still say what they are
    if n_rates:
        upd = {"spk_field": TRUTH, "hospk_field": TRUTH}
        t_tr = make_train_input_tensors(
            ds, spec.name, train_split, update_params=upd, save_file=False, seed=seed
        )["train_spikes_heldin"]
        t_ev = make_eval_input_tensors(
            eds, spec.name, eval_split, update_params=upd, save_file=False, seed=seed
        )["eval_spikes_heldin"]
        for sd, t in ((nlb_train, t_tr), (test, t_ev)):
            sd.truth_rates, sd.truth_latents = t[..., :n_rates], t[..., n_rates:]
        eval_split_mask = (eds.trial_info.split == eval_split).to_numpy()
        extra["nlb/truth/eval_rates_forward"] = _forward_truth(eds, spec, eval_split_mask, seed)[
            ..., :n_rates
        ]
    held_back = holdout_mask(nlb_train.n_trials, valid_fraction, seed, nlb_train.condition)
    order = np.r_[np.flatnonzero(~held_back), np.flatnonzero(held_back)]
    extra["nlb/train_order"] = np.argsort(order).astype(
        np.int64
    )  # cat(train, valid)[train_order]: NLB order
    train, valid = _subset(nlb_train, ~held_back), _subset(nlb_train, held_back)
    data = DSIDData(
        bin_ms=float(bin_ms),
        area=np.zeros(n_in + n_out, np.int64),
        heldout=np.r_[np.zeros(n_in, bool), np.ones(n_out, bool)],
        splits={"train": train, "valid": valid, "test": test},
        area_names=[spec.name],
    )
    path = write_tensor_file(out, data, extra=extra)
    log(
        f"wrote {path}: train {train.n_trials} + valid {valid.n_trials} trials "
        "(NLB training trials), "
        f"test {test.n_trials} trials "
        f"(NLB '{eval_split}'{', held-out spikes unknown' if phase == 'test' else ''}"
        f"), T={t_len} bins of {bin_ms} ms + {nlb_train.forward_spikes.shape[1]} forward bins, "
        f"{n_in} held-in + {n_out} held-out neurons"
    )
    return path
