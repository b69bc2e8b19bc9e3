"""The ground-truth zoo benchmark: ``dsid fit`` with no per-system settings on every zoo member,
on several draws of each system.

Every member is written once per draw (data seed ``d`` in ``--zoo``/draw<d>/, when missing) and
fitted by ``dsid fit FILE --budget B`` in a process of its own (``--jobs`` at a time, one thread
each when more than one). Per fit it prints co-bps on the validation split, the oracle's (true
rates) and the fraction of it, the smoothing baseline's co-bps (spike smoothing + Poisson GLM, the
same split), rate R2, latent R2 (the average over latent dimensions and the worst dimension's),
optimizer steps, wall time, the training seconds until the fit first reached 0.9 x the oracle
(from its starts' metrics_history.json, which hold an evaluation every
``train.metrics_every_n_steps``; '-' when none reached it) and how many starts the fit made ('c':
two of them agreed, so the fit stopped as converged). A table per member follows: the mean
and the worst draw, which is the member's figure. Members with known external inputs are fitted a
second time without them (``data.ext_inputs=false``) to show what the inputs add. For the NLB-layout
members it also prints NLB's four metrics (through ``dsid nlb evaluate``) next to NLB's smoothing
baseline and the oracle.
Targets: every member's worst draw co-bps >= 0.9 x oracle, latent R2 >= 0.9 and above the smoothing
baseline; the smallest NLB-layout member above the smoothing baseline on all four NLB metrics.

    nice .venv/bin/python benchmarks/zoo_benchmark.py --jobs 2          # 15 minutes per fit
    .venv/bin/python benchmarks/zoo_benchmark.py --budget 2m --members lorenz,sensory --draws 1
    .venv/bin/python benchmarks/zoo_benchmark.py --out runs/zoo_ablation --set train.kl_scales.ic=1

Results accumulate in ``--out``/results.jsonl, one line per finished fit: a fit already there is
skipped unless --rerun, so an interrupted benchmark continues where it stopped (a fit it was
running continues with ``dsid fit --resume``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dsid.zoo.catalog import write_member  # noqa: E402
from dsid.zoo.members import MAZE_SIZES, members  # noqa: E402

NLB_KEYS = ("co_bps", "vel_r2", "psth_r2", "fp_bps")


def fit_member(
    name: str, path: Path, out: Path, budget: str, extra, seed: int = 0, draw: int = 0, threads=None
) -> dict:
    tag = f"{name}_d{draw}"
    run_dir = out / tag
    dsid = str(Path(sys.executable).parent / "dsid")
    if (run_dir / "fit_state.json").exists():  # a fit an interrupted benchmark left: continue it
        cmd = [dsid, "fit", "--resume", str(run_dir)]
    else:  # (what a failed earlier attempt left in run_dir is replaced)
        cmd = [
            dsid,
            "fit",
            str(path),
            "--budget",
            budget,
            "--out",
            str(run_dir),
            "--seed",
            str(seed),
            "logger=csv",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "overwrite=true",
            *extra,
        ]
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.time()
    with open(out / f"{tag}.log", "w") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=out, env=env)
    row = {
        "member": name,
        "draw": draw,
        "wall_s": round(time.time() - t0, 1),
        "returncode": done.returncode,
        "seed": seed,
    }
    report = run_dir / "fit_report.json"
    if done.returncode or not report.exists():
        return {**row, "failed": f"see {out / (tag + '.log')}"}
    r = json.loads(report.read_text())
    m = r["metrics"]
    row.update(
        co_bps=m.get("val/co_bps"),
        oracle=m.get("val/oracle_co_bps"),
        rate_r2=m.get("val/rate_r2"),
        latent_r2=m.get("val/latent_r2"),
        latent_r2_min=m.get("val/latent_r2_min"),
        input_r2=m.get("val/input_r2"),  # members with unobserved inputs
        baseline=r["baseline"]["co_bps"],
        steps=r["steps"],
        diagnostics=r["diagnostics"],
        seconds_to_90=fit_seconds_to_fraction(r, 0.9, out),
        starts=len(r.get("starts") or [1]),
        converged=r.get("converged"),
        info_nats=r["description"].get("info_nats"),
        kl_scale=next(
            (x["value"] for x in r["settings"] if x["key"] == "train.kl_scales.ic"), None
        ),
    )
    if name in MAZE_SIZES:
        row["nlb"] = nlb_scores(run_dir, path)
    return row


def seconds_to_fraction(history_file: Path, fraction: float):
    """Training seconds until validation co-bps first reached ``fraction`` x the oracle's (None
    when it never did or the run kept no history)."""
    if not history_file.exists():
        return None
    for h in json.loads(history_file.read_text()):
        co, oracle = h.get("val/co_bps"), h.get("val/oracle_co_bps")
        if co is not None and oracle and co >= fraction * oracle:
            return h.get("seconds")
    return None


def fit_seconds_to_fraction(report: dict, fraction: float, cwd: Path):
    """Seconds from the start of a fit's training until any of its starts first reached
    ``fraction`` x the oracle (each start's history, shifted by when the start began; relative
    run directories are relative to ``cwd``, where the fit ran)."""
    times = []
    for s in report.get("starts") or [{"run_dir": report["run_dir"], "offset_seconds": 0.0}]:
        t = seconds_to_fraction(Path(cwd, s["run_dir"]) / "metrics_history.json", fraction)
        if t is not None:
            times.append(s.get("offset_seconds", 0.0) + t)
    return min(times) if times else None


def nlb_scores(run_dir: Path, path: Path) -> dict:
    """NLB's four metrics of the run, of NLB's smoothing baseline and of the oracle."""
    from dsid.nlb.baseline import smoothing_baseline
    from dsid.nlb.evaluate import evaluate_run
    from dsid.nlb.scoring import evaluate_submission, load_targets

    res = evaluate_run(run_dir, log_wandb=False)
    base = evaluate_submission(smoothing_baseline(str(path)), load_targets(str(path)))
    return {"model": res["metrics"], "baseline": base, "oracle": res.get("oracle") or {}}


def _f(x, nd=3) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "   n/a"
    return f"{x:.{nd}f}" if math.isfinite(x) else "   n/a"


def frac_of_oracle(r) -> float:
    return r["co_bps"] / r["oracle"] if r.get("oracle") else float("nan")


def print_fits(rows) -> None:
    """One line per fit (member and draw)."""
    print(
        f"\n{'member':<24}{'draw':>5}{'co-bps':>8}{'oracle':>8}{'xOracle':>8}{'smooth':>8}"
        f"{'>smooth':>8}{'rateR2':>8}{'latR2':>8}{'worst':>7}{'steps':>7}{'wall s':>8}"
        f"{'t@0.9x':>8}{'info':>7}{'KL w':>7}{'starts':>7}"
    )
    for r in rows:
        head = f"{r['member']:<24}{r.get('draw', 0):>5}"
        if r.get("failed"):
            print(f"{head}  FAILED ({r['failed']})")
            continue
        t90 = r.get("seconds_to_90")
        print(
            f"{head}{_f(r['co_bps']):>8}{_f(r.get('oracle')):>8}{_f(frac_of_oracle(r), 2):>8}"
            f"{_f(r['baseline']):>8}{'yes' if r['co_bps'] > r['baseline'] else 'NO':>8}"
            f"{_f(r.get('rate_r2')):>8}{_f(r.get('latent_r2')):>8}"
            f"{_f(r.get('latent_r2_min'), 2):>7}{r['steps']:>7}{r['wall_s']:>8.0f}"
            f"{'-' if t90 is None else f'{t90:.0f}':>8}{_f(r.get('info_nats'), 0):>7}"
            f"{_f(r.get('kl_scale'), 2):>7}"
            f"{str(r.get('starts', 1)) + ('c' if r.get('converged') else ''):>7}"
        )


def _mean(x) -> float:
    return sum(x) / len(x) if x else float("nan")


def _worst(x) -> float:
    return min(x) if x else float("nan")


def print_members(rows) -> bool:
    """Per member: the mean over its draws and the worst draw (its figure); whether the worst draw
    meets the targets."""
    print(
        f"\n{'member':<24}{'draws':>6}{'xOracle mean':>13}{'worst':>7}{'latR2 mean':>11}"
        f"{'worst':>7}{'>smooth':>9}{'t@0.9x max':>11}  targets"
    )
    ok = True
    for name in dict.fromkeys(r["member"] for r in rows):
        mine = [r for r in rows if r["member"] == name]
        good = [r for r in mine if not r.get("failed")]
        fracs = [frac_of_oracle(r) for r in good]
        lat = [r.get("latent_r2") or float("nan") for r in good]
        above = sum(r["co_bps"] > r["baseline"] for r in good)
        t90 = [r.get("seconds_to_90") for r in good]
        met = (
            len(good) == len(mine)
            and bool(good)
            and min(fracs) >= 0.9
            and min(lat) >= 0.9
            and above == len(good)
        )
        slowest = "-" if not good or None in t90 else f"{max(t90):.0f}"
        print(
            f"{name:<24}{len(mine):>6}{_f(_mean(fracs), 2):>13}{_f(_worst(fracs), 2):>7}"
            f"{_f(_mean(lat), 3):>11}{_f(_worst(lat), 3):>7}{f'{above}/{len(mine)}':>9}"
            f"{slowest:>11}  {'met' if met else 'NOT met'}"
        )
        if not name.endswith("_no_ext"):
            ok &= met
    for r in rows:
        if r.get("nlb"):
            n = r["nlb"]
            print(
                f"\nNLB metrics, {r['member']} draw {r.get('draw', 0)}:   "
                + "".join(f"{k:>10}" for k in NLB_KEYS)
            )
            for who in ("model", "baseline", "oracle"):
                print(f"  {who:<24}" + "".join(f"{_f(n[who].get(k)):>10}" for k in NLB_KEYS))
            if r["member"] == "maze_small":
                ok &= all(
                    (n["model"].get(k) or -1e9) > (n["baseline"].get(k) or 0) for k in NLB_KEYS
                )
    return ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--zoo", default=str(ROOT / "data" / "zoo"), help="folder of the zoo files")
    p.add_argument("--out", default=str(ROOT / "runs" / "zoo_benchmark"))
    p.add_argument("--budget", default="15m")
    p.add_argument("--members", default="", help="comma-separated (default: all)")
    p.add_argument("--draws", type=int, default=3, help="data seeds 0..N-1 of every member")
    p.add_argument(
        "--jobs", type=int, default=1, help="fits at a time (each on one thread when > 1)"
    )
    p.add_argument("--rerun", action="store_true", help="fit again what results.jsonl holds")
    p.add_argument(
        "--seed", type=int, default=0, help="the fits' seed (the same data; for run-to-run spread)"
    )
    p.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="settings given to every fit, winning over the rules (an ablation, e.g. "
        "train.kl_scales.ic=1 train.kl_scales.co=1; the flag may be repeated)",
    )
    args = p.parse_args()
    if args.draws < 1 or args.jobs < 1:
        p.error("--draws and --jobs: expected at least 1")
    names = args.members.split(",") if args.members else list(members())
    unknown = sorted(set(names) - set(members()))
    if unknown:
        p.error(f"--members {','.join(unknown)}: expected some of {', '.join(members())}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    done = {}
    if results.exists() and not args.rerun:
        for line in results.read_text().splitlines():
            r = json.loads(line)
            if not r.get("failed"):  # a failed fit is tried again
                done[(r["member"], r.get("draw", 0), r.get("seed", 0))] = r
    jobs = []
    for draw in range(args.draws):
        for name in names:
            folder = Path(args.zoo) / f"draw{draw}"
            path = folder / f"{name}.h5"
            if not path.exists():
                print(f"writing {name}, draw {draw} ...", flush=True)
                write_member(name, folder, seed=draw)
            fits = [(name, list(args.set))]
            with h5py.File(path, "r") as f:
                if "train/ext_inputs" in f:
                    fits.append((f"{name}_no_ext", ["data.ext_inputs=false", *args.set]))
            jobs += [(label, draw, path, extra) for label, extra in fits]
    lock = threading.Lock()

    def run(job):
        label, draw, path, extra = job
        if (label, draw, args.seed) in done:
            return done[(label, draw, args.seed)]
        with lock:
            print(f"fitting {label}, draw {draw} ({args.budget}) ...", flush=True)
        threads = 1 if args.jobs > 1 else None
        row = fit_member(label, path, out, args.budget, extra, args.seed, draw, threads)
        row.update(budget=args.budget, set=list(args.set), jobs=args.jobs)
        with lock, open(results, "a") as f:
            f.write(json.dumps(row) + "\n")
        return row

    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(run, jobs))
    rows.sort(
        key=lambda r: (
            names.index(r["member"].removesuffix("_no_ext")),
            r["member"],
            r.get("draw", 0),
        )
    )
    print_fits(rows)
    ok = print_members(rows)
    print(
        "\ntargets (worst draw: co-bps >= 0.9 x oracle, latent R2 >= 0.9, above smoothing; "
        f"maze_small above NLB's smoothing on all four metrics): {'MET' if ok else 'NOT MET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
