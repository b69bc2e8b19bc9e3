"""Synthetic NLB-like NWB files with known latent dynamics and true firing rates.

``write_synthetic_nlb(like, out_dir)`` writes a train file (train and val trials, held-in and
held-out units, behavior) and a test file (test trials, held-in units only) under DANDI's names,
which ``nlb_tools.nwb_interface.NWBDataset`` loads like the real ones, plus ``dsid_truth.h5``: the
true rates and latents on each file's 1 ms grid (rates from ``read_truth``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List

import h5py
import numpy as np
from scipy.signal import lfilter

from dsid.data.atomic import atomic_h5
from dsid.nlb.specs import SYNTH_LIKES as LIKES
from dsid.nlb.specs import get_spec

TRUTH_FILE = "dsid_truth.h5"
# (train-file trials, test trials) per dataset: small enough for quick tests
DEFAULT_TRIALS = {
    "mc_maze": (80, 20),
    "area2_bump": (80, 20),
    "dmfc_rsg": (96, 24),
    "mc_rtt": (120, 30),
}
N_LATENT = 8


def _bump(t, mu, sd):
    return np.exp(-0.5 * ((t - mu) / sd) ** 2)


def _sig(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _val_mask(keys: List, rng, frac=0.25) -> np.ndarray:
    """Pick ``frac`` of the trials as 'val', stratified by condition key."""
    keys = [str(k) for k in keys]
    val = np.zeros(len(keys), bool)
    for k in sorted(set(keys)):
        idx = rng.permutation([i for i, x in enumerate(keys) if x == k])
        val[idx[: int(round(frac * len(idx)))]] = True
    return val


def _maze_session(n, rng, area2=False):
    """Reaches to a few targets; latents: preparatory, rotational, velocity, condition-invariant."""
    trials, z_parts, t0 = [], [], 0
    n_cond = 8 if area2 else 6
    for i in range(n):
        c = i % n_cond
        tr = {"start_time": t0, "target_on_time": t0 + 100}
        if area2:
            theta, bump = np.deg2rad(90 * (c % 4)), c >= 4
            cue = tr["target_on_time"] + int(rng.integers(200, 400))  # go cue, or the bump
            onset = cue + (30 if bump else int(rng.integers(150, 250)))
            tr.update(
                cond_dir=float(90 * (c % 4)),
                ctr_hold_bump=bool(bump),
                result="R",
                bump_dir=float(90 * (c % 4)) if bump else np.nan,
                go_cue_time=np.nan if bump else cue,
                bump_time=cue if bump else np.nan,
                move_onset_time=onset,
            )
        else:
            theta = 2 * np.pi * c / n_cond
            go = tr["target_on_time"] + int(rng.integers(200, 400))
            tr.update(
                trial_type=c // 2 + 1,
                trial_version=c % 2,
                maze_id=10 + c,
                success=True,
                go_cue_time=go,
                move_onset_time=go + int(rng.integers(250, 350)),
                delay=float(go - tr["target_on_time"]),
            )
        mo = tr["move_onset_time"]
        tr["stop_time"] = mo + 600
        nxt = tr["stop_time"] + int(rng.integers(60, 150))
        t = np.arange(t0, nxt, dtype=float)
        tau, sig = t - mo, t - tr["target_on_time"]
        z = np.zeros((t.size, N_LATENT))
        u = np.array([np.cos(theta), np.sin(theta)])
        if area2:
            speed = 1.6 * _bump(tau, 60, 40) if tr["ctr_hold_bump"] else _bump(tau, 150, 80)
            z[:, 0:2] = speed[:, None] * u
            z[:, 2:4] = _sig((tau - 150) / 50)[:, None] * u
            z[:, 4] = float(tr["ctr_hold_bump"]) * _bump(tau, 40, 30)
            z[:, 5] = _sig(sig / 50) * (tau < 0)
        else:
            prep = _sig(sig / 40) * np.where(tau < 0, 1.0, np.exp(-np.maximum(tau, 0) / 150))
            z[:, 0:2] = prep[:, None] * u
            amp, ph = _bump(tau, 120, 100), theta + 2 * np.pi * tau / 600
            z[:, 2:4] = (amp * np.stack([np.cos(ph), np.sin(ph)])).T
            z[:, 4:6] = _bump(tau, 200, 90)[:, None] * u
            z[:, 6] = _bump(tau, 0, 150)
        trials.append(tr)
        z_parts.append(z)
        t0 = nxt
    vel_latents = (0, 1) if area2 else (4, 5)
    return trials, np.concatenate(z_parts), vel_latents


def _dmfc_session(n, rng):
    """Ready-set-go timing: the set-go trajectory is traversed at a speed 1/tp."""
    trials, z_parts, t0 = [], [], 0
    for i in range(n):
        eye, theta, short = bool(i % 2), float(180 * ((i // 2) % 2)), bool((i // 4) % 2)
        ts = float(rng.choice([500, 650, 800] if short else [800, 1000, 1200]))
        tp = float(round(ts * (1 + 0.12 * rng.standard_normal())))
        ready = t0 + 300
        tr = dict(
            start_time=t0,
            ready_time=ready,
            set_time=ready + ts,
            go_time=ready + ts + tp,
            is_eye=eye,
            theta=theta,
            is_short=short,
            ts=ts,
            tp=tp,
            is_outlier=0,
        )
        tr["stop_time"] = tr["go_time"] + 300
        nxt = int(tr["stop_time"]) + 100
        t = np.arange(t0, nxt, dtype=float)
        z = np.zeros((t.size, N_LATENT))
        s = (t - tr["set_time"]) / tp
        during = (s >= 0) & (s < 1)
        z[during, 0], z[during, 1] = (
            1.5 * np.cos(np.pi * s[during]),
            1.5 * np.sin(np.pi * s[during]),
        )
        after = t >= tr["go_time"]
        z[after, 0] = -1.5 * np.exp(-(t[after] - tr["go_time"]) / 100)
        meas = (t >= ready) & (t < tr["set_time"])
        z[meas, 2] = (t[meas] - ready) / ts
        z[:, 3], z[:, 4] = (
            (0.5 if short else -0.5),
            (0.5 if eye else -0.5),
        )  # prior and effector context
        z[:, 5] = 0.5 * np.cos(np.deg2rad(theta))
        z[:, 6] = _bump(t, tr["go_time"], 60)
        trials.append(tr)
        z_parts.append(z)
        t0 = nxt
    return trials, np.concatenate(z_parts), None


def _rtt_session(n, rng):
    """Random-target reaching chopped into consecutive 600 ms trials (as NLB's mc_rtt)."""
    total = n * 600 + 400
    z = np.zeros((total, N_LATENT))
    t0 = 0
    while t0 < total:
        dur, phi, amp = (
            int(rng.integers(400, 900)),
            rng.uniform(0, 2 * np.pi),
            rng.uniform(0.6, 1.4),
        )
        u = np.linspace(0, 1, dur, endpoint=False)
        seg = slice(t0, min(t0 + dur, total))
        k = seg.stop - seg.start
        speed = amp * np.sin(np.pi * u[:k]) ** 2
        z[seg, 0:2] = speed[:, None] * [np.cos(phi), np.sin(phi)]
        ph = phi + 2 * np.pi * u[:k]
        z[seg, 2:4] = (amp * np.sin(np.pi * u[:k]) * np.stack([np.cos(ph), np.sin(ph)])).T
        z[seg, 4] = _bump(np.arange(k), 80, 60)
        t0 += dur
    trials = [{"start_time": 600 * i, "stop_time": 600 * (i + 1)} for i in range(n)]
    return trials, z, (0, 1)


def _session(like, n, rng):
    """Trials (times in ms), latents on the 1 ms grid (with a quiet 500 ms tail), velocity
    latents."""
    if like == "mc_rtt":
        return _rtt_session(n, rng)
    trials, z, vel = (
        _dmfc_session(n, rng) if like == "dmfc_rsg" else _maze_session(n, rng, like == "area2_bump")
    )
    return trials, np.concatenate([z, np.zeros((500, z.shape[1]))]), vel


def _ou(n_time, rng, tau=200.0, sd=0.6):
    a = 1.0 - 1.0 / tau
    return lfilter([sd * np.sqrt(1 - a * a)], [1.0, -a], rng.standard_normal(n_time))


def _rates(z, loadings, base):
    """Spikes per ms: ``exp(base + clip(z @ loadings.T, -3, 2.5))``."""
    return np.exp(base + np.clip(z @ loadings.T, -3.0, 2.5))


def read_truth(path, part: str):
    """``(rates, latents, heldout)`` of the ``'train'`` or ``'test'`` file on its 1 ms grid.

    ``rates`` are spikes per ms for every unit in unit-table order (held-out units included).
    """
    with h5py.File(path, "r") as f:
        z = f[f"{part}/latents"][()].astype(np.float64)
        return _rates(z, f["loadings"][()], f["base"][()]), z, f["heldout"][()].astype(bool)


def _spike_times(rates_ms: np.ndarray, rng) -> List[np.ndarray]:
    counts = rng.poisson(rates_ms)
    out = []
    for n in range(counts.shape[1]):
        ms = np.repeat(np.arange(counts.shape[0]), counts[:, n])
        out.append(np.sort((ms + rng.uniform(0.05, 0.95, ms.size)) / 1000.0))
    return out


def _write_nwb(path, trials, units, unit_ids, heldout, end_s, behavior, ident):
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    nwb = NWBFile(
        session_description=f"DSID synthetic NLB-like data ({ident})",
        identifier=ident,
        session_start_time=datetime(2000, 1, 1, tzinfo=timezone.utc),
    )
    skip = {"start_time", "stop_time"}
    for col in trials[0]:
        if col not in skip:
            nwb.add_trial_column(name=col, description=f"synthetic {col}")
    for tr in trials:
        nwb.add_trial(**{k: (v / 1000.0 if k.endswith("_time") else v) for k, v in tr.items()})
    if heldout is not None:
        nwb.add_unit_column(name="heldout", description="held-out unit (co-smoothing target)")
    for i, (uid, st) in enumerate(zip(unit_ids, units)):
        kw = {"heldout": bool(heldout[i])} if heldout is not None else {}
        nwb.add_unit(id=int(uid), spike_times=st, obs_intervals=[[0.0, end_s]], **kw)
    if behavior:
        pm = nwb.create_processing_module(name="behavior", description="synthetic behavior")
        for name, arr in behavior.items():
            pm.add(
                TimeSeries(
                    name=name,
                    data=arr,
                    unit="cm/s",
                    rate=1000.0,
                    starting_time=0.0,
                    comments="columns=[x,y]",
                    description=f"synthetic {name}",
                )
            )
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def write_synthetic_nlb(
    like: str, out_dir, seed: int = 0, n_heldin: int = 40, n_heldout: int = 15, n_trials=None
) -> Dict[str, Path]:
    """Write a synthetic dataset shaped like NLB's ``like``; return the paths written.

    ``n_trials`` is ``(train-file trials, test trials)``; 25% of the train file's trials are 'val'.
    """
    if like not in LIKES:
        raise ValueError(f"like: expected one of {', '.join(LIKES)}, found {like!r}")
    spec = get_spec(like)
    rng = np.random.default_rng(seed)
    n_train, n_test = n_trials or DEFAULT_TRIALS[like]
    n_all = n_heldin + n_heldout
    heldout = np.zeros(n_all, bool)
    heldout[rng.choice(n_all, n_heldout, replace=False)] = True
    loadings = rng.standard_normal((n_all, N_LATENT)) * 1.1 / np.sqrt(3)
    base = np.log(rng.uniform(5, 25, n_all) / 1000.0)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    with atomic_h5(out_dir / TRUTH_FILE) as truth:
        truth.attrs.update(
            like=like,
            seed=seed,
            n_heldin=n_heldin,
            n_heldout=n_heldout,
            rates="spikes per ms = exp(base + clip(latents @ loadings.T, -3, 2.5))",
        )
        truth["heldout"], truth["loadings"], truth["base"] = heldout, loadings, base
        for part, n in (("train", n_train), ("test", n_test)):
            trials, z, vel = _session(like, n, rng)
            z[:, N_LATENT - 1] = _ou(
                len(z), rng, *((500.0, 0.15) if like == "dmfc_rsg" else (200.0, 0.6))
            )
            z = z.astype(np.float32).astype(
                np.float64
            )  # the stored latents reproduce the rates exactly
            rates = _rates(z, loadings, base)
            end_s = len(z) / 1000.0
            if part == "train":
                keys = [tuple(tr.get(f) for f in spec.cond_fields[:3]) for tr in trials]
                val = _val_mask(keys, rng)
                for tr, v in zip(trials, val):
                    tr["split"] = "val" if v else "train"
            else:
                for tr in trials:
                    tr["split"] = "test"
                    for hidden in ("tp", "is_outlier"):
                        tr.pop(hidden, None)
            behavior = {}
            if part == "train" and vel is not None:
                lagged = np.roll(z[:, list(vel)], spec.lag, axis=0)  # behavior(t) = W z(t - lag)
                noise = 0.05 * rng.standard_normal(lagged.shape)
                behavior[spec.behavior_field[0]] = (20.0 * (lagged + noise)).astype(np.float32)
            spikes = _spike_times(rates, rng)
            keep = np.arange(n_all) if part == "train" else np.flatnonzero(~heldout)
            name = spec.train_file() if part == "train" else spec.test_file()
            _write_nwb(
                out_dir / name,
                trials,
                [spikes[i] for i in keep],
                keep,
                heldout[keep],
                end_s,
                behavior,
                f"dsid-synth-{like}-{part}-{seed}",
            )
            truth.create_dataset(
                f"{part}/latents", data=z.astype(np.float32), compression="gzip", compression_opts=1
            )
            paths[part] = out_dir / name
    paths["truth"] = out_dir / TRUTH_FILE
    return paths
