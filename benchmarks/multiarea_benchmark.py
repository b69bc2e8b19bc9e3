"""Multi-area benchmark: which coupling recovers the communication of the default 3-area system?

Trains, on the synthetic 3-area system of ``dsid synth multiarea`` (defaults: seed 0, 80 neurons per
area, 600/150/150 trials of 100 bins; written to ``--data`` when missing), each for the same
wall-clock budget (``--minutes``, default 8.5), ``--jobs`` models at a time (default 2, one process
and one torch thread each):

- ``none``, ``lowrank``, ``bottleneck``, ``delay``, ``gated``:
  ``experiments/multiarea_<coupling>.yaml``;
- ``pooled_lfads``: ``experiments/multiarea_pooled_lfads.yaml`` (single-area LFADS on all neurons),

and prints how well the system's ground truth pins the communication down (share of each
destination's latent variance set by its messages; share of each message lost when the source's
true latents are read one bin off the true delay), one row per model (failures too): effectome
cosine, edge AUROC, message R2, delay error (bins), cycle delay error (the error of the total delay
around the cycle 0->1->2->0, which per-area time shifts of the inferred latents leave unchanged),
held-out co-bps and rate R2 on the validation split, epochs and training seconds, and the linear
baseline's row (``dsid.evaluation.multiarea.linear_baseline``: no model, recovery only); the
per-edge message R2 and delays; then the target check.
Targets (issue: multi-area model): the best coupling model (the coupling model that meets the most
targets, ties broken by effectome cosine) reaches effectome cosine >= 0.95, edge AUROC = 1.0,
message R2 >= 0.8, and a held-out co-bps above both ``none`` and ``pooled_lfads``; the ``delay``
model reaches a delay error <= 1 bin.

    nice .venv/bin/python benchmarks/multiarea_benchmark.py            # ~28 minutes on 2 CPU cores
    .venv/bin/python benchmarks/multiarea_benchmark.py --models none,delay --minutes 1

Runs go to ``--out`` (one run directory per model, with metrics.json and figures/).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

MODELS = {
    "none": "multiarea_none",
    "lowrank": "multiarea_lowrank",
    "bottleneck": "multiarea_bottleneck",
    "delay": "multiarea_delay",
    "gated": "multiarea_gated",
    "pooled_lfads": "multiarea_pooled_lfads",
}
COUPLED = ("lowrank", "bottleneck", "delay", "gated")
COLUMNS = [
    ("effectome cos", "val/effectome_cosine"),
    ("edge AUROC", "val/edge_auroc"),
    ("message R2", "val/message_r2"),
    ("delay err", "val/delay_error"),
    ("cycle err", "val/delay_cycle_error"),
    ("rank acc", "val/edge_rank_accuracy"),
    ("delay cover", "val/delay_coverage"),
    ("co-bps", "val/co_bps"),
    ("rate R2", "val/rate_r2"),
    ("epochs", "epochs"),
    ("train s", "train_seconds"),
]


def linear_row(d, max_delay: int = 8) -> dict:
    """The linear baseline (lagged reduced-rank regression on the spikes, nothing trained; lags up
    to the delay coupling's default window) scored like the models."""
    from dsid.evaluation.multiarea.linear_baseline import linear_communication, linear_scores

    found = linear_communication(d, max_delay)
    return {f"val/{k}": v for k, v in linear_scores(found, d).items()}


def fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def run_model(name: str, data: Path, out: Path, minutes: float, extra, threads: int = 1) -> dict:
    """Train one model (in a worker process of its own) and return its final metrics."""
    import torch

    from dsid.runs.config import compose
    from dsid.runs.train import train

    torch.set_num_threads(threads)
    seconds = int(round(minutes * 60))
    cfg = compose(
        [
            f"experiment={MODELS[name]}",
            f"data.path={data}",
            f"trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "logger=csv",
            *extra,
        ]
    )
    start = time.perf_counter()
    metrics = train(cfg, run_dir=str(out / name))
    metrics["train_seconds"] = time.perf_counter() - start
    return metrics


def identifiability(d) -> list:
    """Lines on how sharply the default system's ground truth pins its communication down."""
    from dsid.data.multiarea.report import coupling_report

    rep = coupling_report(seed=0, n_areas=d.n_areas)
    lines = ["ground truth (dsid.data.multiarea.report.coupling_report, default system):"]
    lines += [
        f"  area {a}: {100 * r['input_determined']:.0f}% of its latent variance "
        "set by its incoming messages"
        for a, r in rep["areas"].items()
    ]
    lines += [
        f"  edge {k.replace('_', '->')} (delay {e['delay_bins']}): read one (two) bins "
        f"off the true delay, the source's true latents explain {100 * e['one_bin_off_loss']:.1f}% "
        f"({100 * e['two_bins_off_loss']:.1f}%) less of the message"
        for k, e in rep["edges"].items()
    ]
    return lines


def edge_table(d, names: list, results: dict) -> list:
    """Per true edge: each coupled model's message R2 and inferred delay (true delay in the
    header)."""
    edges = [(s, t) for s, t in zip(*np.nonzero(d.delay_bins >= 0)) if s != t]
    lines = [
        f"{'per edge':<14}"
        + "".join(f"{f'{s}->{t} R2':>12}{f'delay {d.delay_bins[s, t]}':>10}" for s, t in edges)
    ]
    for name in names:
        r = results[name]
        if name in COUPLED and "error" not in r:
            lines.append(
                f"{name:<14}"
                + "".join(
                    f"{fmt(r.get(f'val/message_r2_{s}_{t}')):>12}"
                    f"{fmt(r.get(f'val/delay_{s}_{t}')):>10}"
                    for s, t in edges
                )
            )
    return lines


def target_check(results: dict) -> list:
    """Lines of the target check (PASS/MISS), from the results of every model."""

    def get(name, key):
        v = results.get(name, {}).get(key)
        return float("nan") if v is None else float(v)

    co_refs = [get("none", "val/co_bps"), get("pooled_lfads", "val/co_bps")]
    co_ref = max(co_refs) if not any(math.isnan(c) for c in co_refs) else float("nan")

    def checks(name):
        return [
            ("effectome cosine >= 0.95", get(name, "val/effectome_cosine") >= 0.95),
            ("edge AUROC = 1.0", get(name, "val/edge_auroc") >= 1.0 - 1e-9),
            ("message R2 >= 0.8", get(name, "val/message_r2") >= 0.8),
            (f"co-bps > none and pooled LFADS ({fmt(co_ref)})", get(name, "val/co_bps") > co_ref),
        ]

    ran = [n for n in COUPLED if n in results and "error" not in results[n]]
    lines = []
    if ran:
        best = max(
            ran,
            key=lambda n: (
                sum(ok for _, ok in checks(n)),
                get(n, "val/effectome_cosine")
                if not math.isnan(get(n, "val/effectome_cosine"))
                else -2,
            ),
        )
        lines.append(f"best coupling model: {best}")
        lines += [f"  {'PASS' if ok else 'MISS'}  {what}" for what, ok in checks(best)]
    else:
        lines.append("best coupling model: none trained")
    d = get("delay", "val/delay_error")
    lines.append(
        f"  {'PASS' if d <= 1.0 else 'MISS'}  delay model: delay error <= 1 bin ({fmt(d)})"
    )
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data", default="data/multiarea.h5", help="the 3-area file (written when missing)"
    )
    p.add_argument("--out", default="runs/multiarea_benchmark", help="directory for the runs")
    p.add_argument(
        "--minutes", type=float, default=8.5, help="training wall-clock budget per model"
    )
    p.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated subset of {list(MODELS)}"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per model (1 is fastest for these small recurrent models)",
    )
    p.add_argument(
        "--jobs", type=int, default=2, help="models trained at the same time (one process each)"
    )
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides applied to every model")
    args = p.parse_args(argv)
    from dsid.data.multiarea.synth import synth_multiarea
    from dsid.data.tensor_file import load_tensor_file

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        p.error(f"--models: unknown {unknown}; known: {', '.join(MODELS)}")
    t0 = time.perf_counter()
    data, out = Path(args.data), Path(args.out)
    if not data.exists():
        print(f"writing the default 3-area system to {data}", flush=True)
        synth_multiarea(data, seed=0)
    d = load_tensor_file(data)
    report_lines = identifiability(d)
    print("\n".join(report_lines), flush=True)
    results = {}
    print(
        f"training {len(names)} models, {args.jobs} at a time, {args.minutes:g} min each",
        flush=True,
    )
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = {
            pool.submit(
                run_model, name, data, out, args.minutes, args.overrides, args.threads
            ): name
            for name in names
        }
        for fut in as_completed(futures):
            name = futures[fut]
            try:
                results[name] = fut.result()
            except Exception as err:  # a failed model still gets its row
                traceback.print_exception(err)
                results[name] = {"error": f"{type(err).__name__}: {err}"}
            print(f"=== {name} done ({time.perf_counter() - t0:.0f} s since start)", flush=True)
    oracle = None
    for r in results.values():
        oracle = oracle or r.get("val/oracle_co_bps")
    header = f"{'model':<14}" + "".join(f"{c:>14}" for c, _ in COLUMNS)
    lines = [
        f"multi-area benchmark: {data} ({d.n_areas} areas, {d.n_neurons} neurons, "
        f"{d.splits['train'].n_trials} train trials, T={d.n_time}); "
        f"{args.minutes:g} min per model; "
        f"oracle val co-bps {fmt(oracle)}",
        header,
        "-" * len(header),
    ]
    for name in names:
        r = results[name]
        if "error" in r:
            lines.append(f"{name:<14}  FAILED: {r['error'][:200]}")
        else:
            lines.append(f"{name:<14}" + "".join(f"{fmt(r.get(k)):>14}" for _, k in COLUMNS))
    linear = linear_row(d)
    lines.append(f"{'linear (RRR)':<14}" + "".join(f"{fmt(linear.get(k)):>14}" for _, k in COLUMNS))
    results["linear_baseline"] = linear
    lines += [
        "",
        *edge_table(d, names, results),
        "",
        *report_lines,
        "",
        "target check:",
        *target_check(results),
        f"total time {time.perf_counter() - t0:.0f} s",
    ]
    print("\n" + "\n".join(lines), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    (out / "table.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
