"""NLB metrics of DSID's LFADS on synthetic MC_Maze-like data at 5 ms, next to the smoothing
baseline and the oracle (the true rates), all scored by ``nlb_tools.evaluation.evaluate`` on NLB's
val phase.

The data: ``write_synthetic_nlb("mc_maze", ...)`` with more trials and neurons than the test default
(``--trials``, ``--heldin``, ``--heldout``), prepared by ``dsid nlb prepare`` at 5 ms (700 ms
windows + 200 ms forward). LFADS trains within ``--minutes`` of wall clock on the CPU (early
stopping on DSID valid, i.e. held-back NLB training trials; NLB's evaluation trials are only scored
at the end), then ``dsid nlb evaluate`` scores its posterior-averaged rates.

Targets printed at the end: DSID co-bps >= 0.9 x the oracle's, and DSID better than the smoothing
baseline on all four metrics (co-bps, vel R2, psth R2, fp-bps).

    nice .venv/bin/python benchmarks/nlb_benchmark.py [--minutes 14] [--trials 400 100]
        [--out runs/nlb_benchmark]
        [--set model.generator.hidden_size=64 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

METRICS = ("co_bps", "vel_r2", "psth_r2", "fp_bps")

# LFADS for this data on a 2-core CPU: 60 held-in neurons, 8 latent dimensions (one a trial-unique
# slow noise process, which the 2 inferred inputs and the initial condition must capture), 240
# training trials. With these settings early stopping ended the fit after ~180 epochs (~10 min,
# 3 s/epoch) in our run.
LFADS = [
    "model.ic_size=32",
    "model.co_size=2",
    "model.factor_size=16",
    "model.encoder.hidden_size=32",
    "model.encoder.ci_size=16",
    "model.encoder.dropout=0.2",
    "model.generator.hidden_size=64",
    "model.generator.controller_size=32",
    "model.generator.dropout=0.2",
    "data.batch_size=32",
    "train.lr=0.006",
    "train.kl_ramp_steps=90",
    "train.l2_ramp_steps=90",
    "train.lr_patience_steps=24",
    "train.metrics_every_n_steps=0",
    "early_stopping.patience_steps=75",
    "infer.n_samples=30",
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=14.0, help="LFADS training budget (wall clock)"
    )
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument(
        "--trials",
        type=int,
        nargs=2,
        default=(400, 100),
        metavar=("TRAIN_FILE", "TEST"),
        help="trials of the synthetic train file (a quarter are NLB 'val') and test file",
    )
    parser.add_argument("--heldin", type=int, default=60)
    parser.add_argument("--heldout", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: on a shared 2-core machine two threads ran ~30x slower)",
    )
    parser.add_argument("--out", default="runs/nlb_benchmark")
    parser.add_argument(
        "--set", nargs="*", default=[], help="extra Hydra overrides for the LFADS run"
    )
    args = parser.parse_args(argv)

    import torch

    from dsid.nlb.baseline import smoothing_baseline
    from dsid.nlb.evaluate import evaluate_run
    from dsid.nlb.prepare import prepare
    from dsid.nlb.scoring import evaluate_submission, load_targets, oracle_submission
    from dsid.nlb.synth import write_synthetic_nlb
    from dsid.runs.config import compose
    from dsid.runs.train import train

    torch.set_num_threads(args.threads)
    t_start = time.time()
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    write_synthetic_nlb(
        "mc_maze",
        out / "nwb",
        seed=args.seed,
        n_heldin=args.heldin,
        n_heldout=args.heldout,
        n_trials=tuple(args.trials),
    )
    path = prepare(
        "mc_maze", out / "nwb", 5, "val", out / "mc_maze_5ms_val.h5", seed=args.seed, log=print
    )
    targets = load_targets(path)
    rows = {
        "smoothing": evaluate_submission(smoothing_baseline(path), targets),
        "oracle": evaluate_submission(oracle_submission(path), targets),
    }

    seconds = int(round(args.minutes * 60))
    budget = f"00:{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"  # DD:HH:MM:SS
    overrides = [
        "data=file",
        f"data.path={path}",
        "trainer=cpu",
        "logger=csv",
        f"trainer.max_epochs={args.max_epochs}",
        f"trainer.max_time={budget}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "experiment_name=nlb_benchmark",
        *LFADS,
        *args.set,
    ]
    t0 = time.time()
    metrics = train(compose(overrides), run_dir=str(out / "lfads"))
    train_s = time.time() - t0
    rows["DSID LFADS"] = evaluate_run(out / "lfads", log_wandb=False)["metrics"]
    total_s = time.time() - t_start

    import h5py

    with h5py.File(path, "r") as f:
        sizes = {s: f[f"{s}/spikes"].shape for s in ("train", "valid", "test")}
    print()
    print(
        f"synthetic mc_maze-like data, 5 ms bins: {args.heldin} held-in + "
        f"{args.heldout} held-out neurons, "
        f"T={sizes['train'][1]} bins + 40 forward; trials: train {sizes['train'][0]}, "
        f"valid {sizes['valid'][0]} (NLB 'train'), eval {sizes['test'][0]} (NLB 'val')"
    )
    print(
        f"LFADS: {metrics['epochs']} epochs in {train_s / 60:.1f} min "
        f"({metrics['seconds_per_epoch']:.1f} s/epoch, "
        f"{metrics['n_parameters']} parameters, budget {args.minutes:g} min); overrides: "
        f"{' '.join(LFADS + list(args.set))}"
    )
    print()
    print(f"{'':<12}" + "".join(f"{m:>10}" for m in METRICS))
    for name in ("smoothing", "DSID LFADS", "oracle"):
        print(f"{name:<12}" + "".join(f"{rows[name][m]:>10.4f}" for m in METRICS))
    dsid, base, oracle = rows["DSID LFADS"], rows["smoothing"], rows["oracle"]
    ratio = dsid["co_bps"] / oracle["co_bps"]
    print()
    print(
        f"DSID co-bps >= 0.9 x oracle: {'PASS' if ratio >= 0.9 else 'MISS'} "
        f"({dsid['co_bps']:.4f} = {ratio:.3f} x {oracle['co_bps']:.4f})"
    )
    beats = {m: dsid[m] > base[m] for m in METRICS}
    print(
        f"DSID beats smoothing on all four metrics: {'PASS' if all(beats.values()) else 'MISS'} "
        f"({', '.join(m + (' yes' if ok else ' no') for m, ok in beats.items())})"
    )
    print(f"total run time {total_s / 60:.1f} min")
    (out / "benchmark.json").write_text(
        json.dumps(
            {
                "rows": rows,
                "train_seconds": train_s,
                "total_seconds": total_s,
                "epochs": metrics["epochs"],
                "args": vars(args),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
