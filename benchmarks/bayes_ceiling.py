"""The Bayes ceilings of the zoo members whose true rates carry noise: the best co-bps any model can
reach.

``low_rate`` (a noisy van der Pol cycle) and ``multiarea_feedback`` (three areas' noisy limit
cycles, kicked by unobserved input events, with delayed messages) have true rates (the oracle) that
hold noise the spikes do not fully reveal. Knowing a member's generative model exactly
(``dsid.zoo.ceilings.exact_models``: its start, dynamics, noise and read-out, checked against the
file's truth), a particle smoother (``dsid.zoo.ceilings.particle_smoother``) gives each validation
trial's posterior mean rates from its held-in spikes: the best prediction of the held-out neurons
there is. For ``multiarea_feedback`` the smoother is also told each trial's first 5 true states (a
filter cannot find a 12-dimensional start from the prior), so its score is an upper bound on the
ceiling.

``multiregion_rnn`` (four 50-unit chaotic networks: 209 state dimensions, beyond particles) gets a
Gaussian smoother with its true network (``dsid.zoo.ceilings.gaussian_smoother``): an approximate
posterior, so its score is a *lower* bound on the ceiling. Its one setting, how much it inflates the
process noise, is chosen on ``--select-trials`` training trials. ``--seed`` names the draw (data
seed) the file was written with.

``--fit RUN_DIR`` (``dsid fit`` run directories) sets fitted models against it on the same trials.

    .venv/bin/python benchmarks/bayes_ceiling.py --zoo /tmp/zoo [--member NAME ...] [--seed K]
        [--fit RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsid.data.tensor_file import load_tensor_file  # noqa: E402
from dsid.evaluation.metrics import bits_per_spike, latent_r2, rate_r2  # noqa: E402
from dsid.zoo.catalog import write_member  # noqa: E402
from dsid.zoo.ceilings.exact_models import START_TOLD, STATE_SPACES  # noqa: E402
from dsid.zoo.ceilings.gaussian_smoother import gaussian_smoothed_rates  # noqa: E402
from dsid.zoo.ceilings.multiregion_model import multiregion_rnn  # noqa: E402

#: members whose ceiling is bounded from below by the Gaussian smoother: name -> builder
GAUSSIAN_MODELS = {"multiregion_rnn": multiregion_rnn}
from dsid.zoo.ceilings.particle_smoother import smoothed_rates  # noqa: E402


def smooth(model, split, observed, trials: int, start_told: bool, args, seed: int, desc: str):
    """Posterior mean rates and states of the first ``trials`` trials of ``split``; with
    ``start_told`` the smoother starts from the true states of the first ``order`` bins (their
    rates: the true ones)."""
    spikes = split.spikes[:trials, :, observed].astype(np.float64)
    if not start_told:
        return smoothed_rates(
            model,
            spikes,
            observed,
            args.particles,
            args.paths,
            seed=seed,
            chunk=args.chunk,
            desc=desc,
        )
    o, z = model.order, split.truth_latents[:trials].astype(np.float64)
    rates, states = smoothed_rates(
        model,
        spikes[:, o - 1 :],
        observed,
        args.particles,
        args.paths,
        seed=seed,
        chunk=args.chunk,
        desc=desc,
        start=z[:, :o],
    )
    return (
        np.concatenate([split.truth_rates[:trials, : o - 1], rates], 1),
        np.concatenate([z[:, : o - 1], states], 1),
    )


def fitted(run: Path, member: str, trials: int):
    """A ``dsid fit`` run of ``member``: its report's metrics and its validation rates (first
    ``trials``), or None when the run fitted another file."""
    report = json.loads((run / "fit_report.json").read_text())
    if Path(report["data"]).stem != member:
        return None
    with h5py.File(run / "inference.h5", "r") as f:
        return report["metrics"], f["valid/rates"][:trials]


def particle_ceiling(name: str, data, observed, n_va: int, n_tr: int, args):
    """The particle smoother's validation rates and states, training states, checks, label."""
    model, checks = STATE_SPACES[name](data)
    va, tr = data.splits["valid"], data.splits["train"]
    told = name in START_TOLD
    rates, states = smooth(
        model, va, observed, n_va, told, args, 0, f"{name}: smoothing validation trials"
    )
    _, states_tr = smooth(
        model, tr, observed, n_tr, told, args, 1, f"{name}: smoothing training trials"
    )
    what = "upper bound on the ceiling (start told)" if told else "Bayes ceiling (smoother)"
    setting = f"{args.particles} particles, {args.paths} paths"
    return rates, states, states_tr, checks, what, setting


def gaussian_ceiling(name: str, data, observed, n_va: int, n_tr: int, args):
    """The Gaussian smoother's validation rates and states, training states, checks, label; its
    noise inflation is the one whose held-out co-bps is best on ``args.select_trials`` training
    trials."""
    heldout = np.asarray(data.heldout, bool)
    va, tr = data.splits["valid"], data.splits["train"]

    def run(model, split, n, seed, desc):
        spikes = split.spikes[:n][..., observed]
        return gaussian_smoothed_rates(model, spikes, observed, seed=seed, desc=desc)

    n_sel, scores = min(args.select_trials, tr.spikes.shape[0]), {}
    for f in args.inflations:
        model, checks = GAUSSIAN_MODELS[name](data, args.seed, inflation=f)
        r, _ = run(model, tr, n_sel, 2, f"{name}: inflation {f:g} on training trials")
        scores[f] = bits_per_spike(r[..., heldout], tr.spikes[:n_sel][..., heldout])
    best = max(scores, key=scores.get)
    print(
        f"  noise inflation, co-bps on {n_sel} training trials: "
        + ", ".join(f"x{f:g} {v:.4f}" for f, v in scores.items())
        + f" -> x{best:g}"
    )
    model, checks = GAUSSIAN_MODELS[name](data, args.seed, inflation=best)
    rates, states = run(model, va, n_va, 0, f"{name}: smoothing validation trials")
    _, states_tr = run(model, tr, n_tr, 1, f"{name}: smoothing training trials")
    what = "lower bound on the ceiling (Gaussian)"
    return rates, states, states_tr, checks, what, f"noise inflation x{best:g}"


def member_ceiling(name: str, args) -> None:
    path = Path(args.zoo) / f"{name}.h5"
    if not path.exists():
        write_member(name, args.zoo, seed=args.seed)
    data = load_tensor_file(path, require_splits=("train", "valid"))
    heldout = np.asarray(data.heldout, bool)
    observed = np.flatnonzero(~heldout)
    va, tr = data.splits["valid"], data.splits["train"]
    n_va = min(args.trials or va.spikes.shape[0], va.spikes.shape[0])
    n_tr = min(args.train_trials, tr.spikes.shape[0])
    t0 = time.perf_counter()
    ceiling_of = gaussian_ceiling if name in GAUSSIAN_MODELS else particle_ceiling
    rates, states, states_tr, checks, what, setting = ceiling_of(
        name, data, observed, n_va, n_tr, args
    )
    spikes_out = va.spikes[:n_va][..., heldout]
    oracle = bits_per_spike(va.truth_rates[:n_va][..., heldout], spikes_out)
    ceiling = bits_per_spike(rates[..., heldout], spikes_out)
    lat = latent_r2(states_tr, tr.truth_latents[:n_tr], states, va.truth_latents[:n_va])
    print(
        f"{name}: {n_va} of {va.spikes.shape[0]} validation trials, "
        f"{observed.size} held-in + {heldout.sum()} "
        f"held-out neurons; {setting}, {time.perf_counter() - t0:.0f} s"
    )
    print("  model check: " + ", ".join(f"{k} {v:.3g}" for k, v in checks.items()))
    print(f"  oracle (true rates)                       co-bps {oracle:.4f}")
    print(
        f"  {what:<41} co-bps {ceiling:.4f} = {ceiling / oracle:.3f} x oracle, "
        f"rate R2 {rate_r2(rates, va.truth_rates[:n_va]):.3f}, latent R2 {lat:.3f}"
    )
    for run in map(Path, args.fit):
        got = fitted(run, name, n_va)
        if got is None:
            continue
        metrics, fit_rates = got
        co = bits_per_spike(fit_rates[..., heldout], spikes_out)
        print(
            f"  {run}: co-bps {co:.4f} = {co / oracle:.3f} x oracle = "
            f"{co / ceiling:.3f} x {what.split(' (')[0]}"
            " on these trials (all validation trials: "
            f"{metrics.get('val/co_bps', float('nan')):.4f}), rate R2 "
            f"{rate_r2(fit_rates, va.truth_rates[:n_va]):.3f}"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--zoo", default="runs/zoo", help="zoo directory (members are written there if absent)"
    )
    names = list(STATE_SPACES) + list(GAUSSIAN_MODELS)
    ap.add_argument("--member", nargs="*", default=names, choices=names)
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the data seed (draw) the files were written with (particle members: 0 only)",
    )
    ap.add_argument(
        "--fit", nargs="*", default=[], help="dsid fit run directories of these members to compare"
    )
    ap.add_argument("--particles", type=int, default=1000)
    ap.add_argument(
        "--paths", type=int, default=50, help="smoothed trajectories averaged per trial"
    )
    ap.add_argument("--trials", type=int, default=0, help="validation trials smoothed (0: all)")
    ap.add_argument(
        "--train-trials", type=int, default=50, help="training trials smoothed for the latent map"
    )
    ap.add_argument(
        "--chunk",
        type=int,
        default=2,
        help="trials smoothed together (memory: chunk x particles x paths)",
    )
    ap.add_argument(
        "--inflations",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[1.0, 4.0, 16.0, 64.0],
        help="Gaussian smoother: process-noise inflations tried on training trials",
    )
    ap.add_argument(
        "--select-trials",
        type=int,
        default=24,
        help="Gaussian smoother: training trials that choose the inflation",
    )
    args = ap.parse_args(argv)
    for name in args.member:
        member_ceiling(name, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
