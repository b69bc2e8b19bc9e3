"""Component benchmark: every generator, the transformer models and the calcium observation models
on the Lorenz benchmark, under one time budget, with the targets of the architecture issue:

- every generator (lfads, node, linear) reaches latent R2 >= 0.8;
- the transformer model's co-bps is within 10% of LFADS's (the stand-alone NDT model; the
  transformer-encoder + LFADS-generator model is shown too);
- on the calcium-like data, zero_inflated_gamma beats gaussian in rate R2.

Each model trains for at most ``--minutes`` (``trainer.max_time``) from its experiment file, then
the best checkpoint is scored on the validation split. The checkpoint is chosen by the held-in
reconstruction of masked entries (``val/recon_heldin``; it never sees held-out neurons or the
truth), the same for every model: the total validation loss rises while the KL and L2 weights ramp
up, so in runs this short it would pick a checkpoint from before the ramp. Prints the whole table
and writes it, with the figures, to ``--out``.

The calcium rows' rate R2 compares the observation model's mean (expected trace) with the true
spike rates; the line "calcium oracle" gives the same R2 for the expected trace given the true
rates (averaged over 200 simulated draws, so slightly underestimated), the ceiling of that
comparison on these data.

    nice .venv/bin/python benchmarks/component_benchmark.py             # ~30 min on 2 CPU cores
    nice .venv/bin/python benchmarks/component_benchmark.py --only ndt  # rerun some, reuse the rest
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> (experiment, data file, description)
MODELS = {
    "lfads": ("lorenz_lfads", "lorenz", "bigru encoder + lfads generator"),
    "node": ("lorenz_node", "lorenz", "bigru encoder + neural ODE generator"),
    "linear": ("lorenz_linear", "lorenz", "bigru encoder + linear generator"),
    "transformer": ("lorenz_transformer", "lorenz", "transformer encoder + lfads generator"),
    "ndt": ("lorenz_ndt", "lorenz", "stand-alone NDT (masked-bin reconstruction)"),
    "calcium_zig": ("calcium_zig", "calcium", "zero_inflated_gamma on calcium-like traces"),
    "calcium_gaussian": ("calcium_gaussian", "calcium", "gaussian on calcium-like traces"),
}
DATA = {"lorenz": ("data/lorenz.h5", "spikes"), "calcium": ("data/lorenz_calcium.h5", "calcium")}


def ensure_data(key: str) -> Path:
    from dsid.data.synth_lorenz import write_lorenz_benchmark

    path, observation = DATA[key]
    path = ROOT / path
    if not path.exists():
        print(f"writing {path} ({observation})", flush=True)
        write_lorenz_benchmark(path, seed=0, observation=observation)
    return path


def checkpoint_monitor() -> str:
    from dsid.training.lightning_module import TrainingModule

    return "val/recon_heldin" if hasattr(TrainingModule, "heldin_recon") else "val/loss"


def calcium_oracle_rate_r2(n_draws: int = 200) -> float:
    """R2 of the expected calcium trace given the true rates (the best any observation model's mean
    can do) against the true rates, on the validation split."""
    import numpy as np

    from dsid.data.synth_lorenz import calcium_traces
    from dsid.data.tensor_file import load_tensor_file
    from dsid.evaluation.metrics import rate_r2

    data = load_tensor_file(ensure_data("calcium"), counts=False)
    rates = data.splits["valid"].truth_rates.astype(np.float64)
    rng = np.random.default_rng(12345)
    mean = (
        sum(calcium_traces(rng.poisson(rates), rates, rng, data.bin_ms) for _ in range(n_draws))
        / n_draws
    )
    return rate_r2(mean, rates)


def run_model(name: str, out: Path, minutes: float, n_samples: int) -> dict:
    from dsid.runs.config import compose
    from dsid.runs.train import train

    experiment, data_key, _ = MODELS[name]
    secs = int(round(minutes * 60))
    overrides = [
        f"experiment={experiment}",
        f"data.path={ensure_data(data_key)}",
        "data.synth=null",
        "trainer.max_epochs=10000",
        f"trainer.max_time=00:00:{secs // 60:02d}:{secs % 60:02d}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger=csv",
        f"infer.n_samples={n_samples}",
        f"early_stopping.monitor={checkpoint_monitor()}",
    ]
    start = time.time()
    metrics = train(compose(overrides), run_dir=str(out / name))
    metrics["wall_seconds"] = time.time() - start
    (out / name / "benchmark.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def fmt(x, spec="{:.3f}") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else spec.format(x)


def table(results: dict) -> str:
    head = (
        f"{'model':<18}{'description':<46}{'co-bps':>8}{'oracle':>8}{'rate R2':>9}{'latent R2':>10}"
        f"{'params':>9}{'s/epoch':>9}{'epochs':>7}{'wall s':>8}"
    )
    rows = [head, "-" * len(head)]
    for name, m in results.items():
        rows.append(
            f"{name:<18}{MODELS[name][2]:<46}{fmt(m.get('val/co_bps')):>8}"
            f"{fmt(m.get('val/oracle_co_bps')):>8}{fmt(m.get('val/rate_r2')):>9}"
            f"{fmt(m.get('val/latent_r2')):>10}{fmt(m.get('n_parameters'), '{:,.0f}'):>9}"
            f"{fmt(m.get('seconds_per_epoch'), '{:.2f}'):>9}{fmt(m.get('epochs'), '{:.0f}'):>7}"
            f"{fmt(m.get('wall_seconds'), '{:.0f}'):>8}"
        )
    return "\n".join(rows)


def targets(results: dict) -> str:
    get = lambda n, k: results.get(n, {}).get(k, float("nan"))  # noqa: E731
    lines = ["", "targets:"]

    def line(text, value, goal, ok):
        lines.append(f"  {text:<62}{fmt(value):>8}  vs {goal:<18}{'PASS' if ok else 'MISS'}")

    for gen in ("lfads", "node", "linear"):
        v = get(gen, "val/latent_r2")
        line(f"{gen} generator: latent R2 >= 0.8", v, ">= 0.800", v >= 0.8)
    lf = get("lfads", "val/co_bps")
    for name in ("ndt", "transformer"):
        v = get(name, "val/co_bps")
        line(
            f"{name}: co-bps within 10% of LFADS's"
            + (" (the transformer model)" if name == "ndt" else ""),
            v,
            f">= 0.9 x {fmt(lf)}",
            v >= 0.9 * lf,
        )
    zig, gau = get("calcium_zig", "val/rate_r2"), get("calcium_gaussian", "val/rate_r2")
    line("calcium: zero_inflated_gamma rate R2 > gaussian's", zig, f"> {fmt(gau)}", zig > gau)
    if "calcium_zig" in results or "calcium_gaussian" in results:
        lines.append(
            f"  calcium oracle: rate R2 of the expected trace vs the true rates ~ "
            f"{calcium_oracle_rate_r2():.3f}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=3.5, help="training time per model (max_time)")
    p.add_argument(
        "--only", nargs="*", choices=sorted(MODELS), help="run these; reuse the others' results"
    )
    p.add_argument("--out", default=str(ROOT / "runs" / "component_benchmark"))
    p.add_argument(
        "--samples", type=int, default=10, help="posterior samples averaged for the rates"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: fastest when the cores are shared with other work)",
    )
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("WANDB_MODE", "offline")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    results = {}
    for name in MODELS:
        done = out / name / "benchmark.json"
        if args.only is not None and name not in args.only:
            if done.exists():
                results[name] = json.loads(done.read_text())
            continue
        print(
            f"\n=== {name}: {MODELS[name][2]} (at most {args.minutes} min of training)", flush=True
        )
        results[name] = run_model(name, out, args.minutes, args.samples)
    report = table(results) + "\n" + targets(results)
    report += (
        f"\n\ntotal benchmark time this invocation: {(time.time() - start) / 60:.1f} min "
        f"({args.minutes} min of training per model, {args.threads} torch thread(s), "
        f"checkpoints chosen by {checkpoint_monitor()})"
    )
    print("\n" + report)
    (out / "results.txt").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
