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
from typing import Callable, Dict, Optional

import h5py
import numpy as np

from dsid.data.tensor_file import DataFileError, DSIDData, SplitData, write_tensor_file
from dsid.nlb.nwb_reading import TRUTH, as_counts, attach_truth, find_nwb_files, load_nwb
from dsid.nlb.specs import PHASES, NLBSpec, check_bin, get_spec, quiet_nlb_tools
from dsid.nlb.synth import TRUTH_FILE
from dsid.nlb.targets import (
    forward_truth,
    holdout_mask,
    nlb_trial_mask,
    subset_split,
    trial_conditions,
    val_targets,
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
    ds = eds = load_nwb(train_path, spec, False, ("train", "val"))
    if phase == "test":
        log(f"loading {test_path}")
        eds = load_nwb(test_path, spec, True, ("test",))
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
            n_rates = attach_truth(ds, truth_path, "train", bin_ms)
            if eds is not ds:
                attach_truth(eds, truth_path, "test", bin_ms)
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
    train_mask = nlb_trial_mask(ds, spec, train_split, len(tr["train_spikes_heldin"]), train_path)
    eval_mask = nlb_trial_mask(eds, spec, eval_split, n_eval, eval_path)

    def cat(d, k):
        return np.concatenate([as_counts(d[k % s], k % s, log) for s in ("heldin", "heldout")], -1)  # noqa

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
        test.forward_spikes, eval_beh, targets = val_targets(
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
                    as_counts(ev["eval_spikes_heldin"], "eval_spikes_heldin", log),
                    np.zeros((n_eval, t_len, n_out), np.int32),
                ],
                -1,
            ),
            forward_spikes=np.zeros((n_eval,) + nlb_train.forward_spikes.shape[1:], np.int32),
        )
    nlb_train.condition, test.condition, combos = trial_conditions(
        spec, ds, eds, train_mask, eval_mask
    )
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
        extra["nlb/truth/eval_rates_forward"] = forward_truth(eds, spec, eval_split_mask, seed)[
            ..., :n_rates
        ]
    held_back = holdout_mask(nlb_train.n_trials, valid_fraction, seed, nlb_train.condition)
    order = np.r_[np.flatnonzero(~held_back), np.flatnonzero(held_back)]
    extra["nlb/train_order"] = np.argsort(order).astype(
        np.int64
    )  # cat(train, valid)[train_order]: NLB order
    train, valid = subset_split(nlb_train, ~held_back), subset_split(nlb_train, held_back)
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
