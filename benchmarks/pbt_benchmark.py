"""PBT on the Lorenz benchmark from a deliberately poor configuration.

Three fits with the same number of epochs per model (``--epochs``):

1. ``default``: one run of ``experiment=lorenz_lfads`` (the default configuration);
2. ``poor``: one run of the same experiment with the poor configuration (``--poor``: learning rate
   10x too low and/or too high, KL weights 10x too high);
3. ``pbt``: ``dsid tune`` started from the poor configuration, ``--population`` members of
   ``--epochs`` epochs each (so ``population`` times the compute of one run), selected and exported
   on ``val/recon_heldin`` (held-in neurons only); tune settings are configs/tune/pbt.yaml's
   defaults otherwise (member 0 starts at the poor configuration, the others draw from the ranges).

Targets: pbt's val/co_bps >= default's, and poor clearly worse (by at least ``--margin`` of the
oracle co-bps). The two single runs run side by side (one thread each), then PBT (members share the
CPUs). Prints the table and the wall time of each phase; writes ``OUT/results.json``.

    nice .venv/bin/python benchmarks/pbt_benchmark.py                  # ~30-40 min on 2 CPU cores
    .venv/bin/python benchmarks/pbt_benchmark.py --epochs 4 --population 2 --interval 2 # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POOR = {
    "lr_low": ["train.lr=0.0005"],
    "lr_high": ["train.lr=0.05"],
    "kl_high": ["train.kl_scales.ic=10.0", "train.kl_scales.co=10.0"],
}


def dsid(*args: str) -> list:
    return [sys.executable, "-c", "import sys; from dsid.cli import main; sys.exit(main())", *args]


def start(cmd, log: Path, threads: int = 1) -> subprocess.Popen:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
    }
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def wait_all(procs: dict, logs: dict, t0: float) -> dict:
    """Wait for every process; each one's wall time from ``t0`` to its own end."""
    seconds = {}
    while len(seconds) < len(procs):
        for name, proc in procs.items():
            if name in seconds or proc.poll() is None:
                continue
            seconds[name] = time.time() - t0
            if proc.returncode:
                tail = logs[name].read_text()[-3000:]
                raise SystemExit(
                    f"{name} failed (exit {proc.returncode}); end of {logs[name]}:\n{tail}"
                )
        time.sleep(1.0)
    return seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--epochs", type=int, default=50, help="epochs per model (every run, every member)"
    )
    p.add_argument("--population", type=int, default=4)
    p.add_argument("--interval", type=int, default=5, help="PBT perturbation interval (epochs)")
    p.add_argument("--poor", default="lr_low,kl_high", help=f"comma list of {sorted(POOR)}")
    p.add_argument("--cpus", type=float, default=2, help="CPUs Ray may use")
    p.add_argument("--cpus-per-trial", type=float, default=0.5)
    p.add_argument(
        "--margin",
        type=float,
        default=0.1,
        help="'clearly worse': below default co-bps by this fraction of the oracle's",
    )
    p.add_argument("--out", default="runs/bench_pbt")
    p.add_argument("--data", default="data/lorenz.h5")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    poor = [o for key in args.poor.split(",") for o in POOR[key.strip()]]
    common = [
        "experiment=lorenz_lfads",
        f"data.path={args.data}",
        f"seed={args.seed}",
        f"trainer.max_epochs={args.epochs}",
        "trainer.max_time=null",
        "trainer.enable_progress_bar=false",
    ]
    # the data first, so that the runs below do not race to write it
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from dsid.runs.assemble import ensure_data; "
            f"ensure_data({{'path': '{args.data}', 'synth': 'lorenz'}})",
        ],
        cwd=ROOT,
        check=True,
    )

    print(f"Lorenz benchmark, {args.epochs} epochs per model; poor = {' '.join(poor)}", flush=True)
    t0 = time.time()
    runs = {"default": out / "default", "poor": out / "poor"}
    procs = {
        name: start(
            dsid("train", *common, *(poor if name == "poor" else []), f"run_dir={d}"),
            out / f"{name}.log",
        )
        for name, d in runs.items()
    }
    seconds = wait_all(procs, {name: out / f"{name}.log" for name in procs}, t0)
    print(f"single runs done in {time.time() - t0:.0f} s", flush=True)

    t1 = time.time()
    tune_dir = out / "pbt"
    if tune_dir.exists():
        import shutil

        shutil.rmtree(tune_dir)
    proc = start(
        dsid(
            "tune",
            *common,
            *poor,
            f"run_dir={tune_dir}",
            f"tune.population={args.population}",
            f"tune.total_epochs={args.epochs}",
            f"tune.perturbation_interval={args.interval}",
            f"tune.resources_per_trial.cpu={args.cpus_per_trial}",
            f"tune.num_cpus={args.cpus}",
            "tune.verbose=0",
        ),
        out / "pbt.log",
        threads=max(1, int(args.cpus_per_trial)),
    )
    seconds["pbt"] = wait_all({"pbt": proc}, {"pbt": out / "pbt.log"}, t1)["pbt"]

    metrics = {name: json.loads((d / "metrics.json").read_text()) for name, d in runs.items()}
    metrics["pbt"] = json.loads((tune_dir / "best" / "metrics.json").read_text())
    summary = json.loads((tune_dir / "summary.json").read_text())
    oracle = metrics["default"].get("val/oracle_co_bps", float("nan"))
    rows = [
        f"{'run':<9}{'models x epochs':>16}{'val/co_bps':>12}{'x oracle':>10}{'rate_r2':>9}"
        f"{'latent_r2':>11}{'wall s':>9}",
        "-" * 76,
    ]
    for name in ("default", "poor", "pbt"):
        m = metrics[name]
        n = args.population if name == "pbt" else 1
        trained = args.epochs if name == "pbt" else int(m.get("epochs", args.epochs))
        rows.append(
            f"{name:<9}{f'{n} x {trained}':>16}{m['val/co_bps']:>12.4f}"
            f"{m['val/co_bps'] / oracle:>10.3f}{m.get('val/rate_r2', float('nan')):>9.3f}"
            f"{m.get('val/latent_r2', float('nan')):>11.3f}{seconds[name]:>9.0f}"
        )
    d, po, pb = (metrics[k]["val/co_bps"] for k in ("default", "poor", "pbt"))
    ok_pbt, ok_poor = pb >= d, po <= d - args.margin * oracle
    rows += [
        "",
        f"oracle val/co_bps {oracle:.4f}",
        f"target pbt >= default:          {pb:.4f} vs {d:.4f}  {'PASS' if ok_pbt else 'MISS'}",
        f"poor clearly worse (by >= {args.margin:.2f} x oracle): {po:.4f} vs {d:.4f}  "
        f"{'yes' if ok_poor else 'NO'}",
        f"pbt winner: member {summary['best']['member']} at epoch {summary['best']['epoch']}, "
        f"{', '.join(f'{k}={v:.3g}' for k, v in summary['best']['hp'].items())}; "
        f"{summary['n_exploits']} exploits",
        f"wall time: single runs side by side {max(seconds['default'], seconds['poor']):.0f} s, "
        f"pbt {seconds['pbt']:.0f} s (search {summary['tune_seconds']:.0f} s + export "
        f"{summary['export_seconds']:.0f} s), total {time.time() - t0:.0f} s",
    ]
    table = "\n".join(rows)
    print(table)
    (out / "results.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "poor": poor,
                "metrics": metrics,
                "seconds": seconds,
                "targets": {"pbt_ge_default": ok_pbt, "poor_clearly_worse": ok_poor},
                "table": table,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
