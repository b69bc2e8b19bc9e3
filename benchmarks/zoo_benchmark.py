"""The ground-truth zoo benchmark: ``dsid fit`` with no per-system settings on every zoo member.

Every member (``dsid synth zoo``; written to ``--zoo`` when missing) is fitted by ``dsid fit FILE
--budget B`` in its own process, one after another, and the script prints per system: co-bps on the
validation split, the oracle's (true rates) and the fraction of it, the smoothing baseline's co-bps
(spike smoothing + Poisson GLM, the same split), rate R2, latent R2 (the average over latent
dimensions and the worst dimension's), optimizer steps and wall time.
Members with known external inputs are fitted a second time without them (``data.ext_inputs=false``)
to show what the inputs add. For the NLB-layout members it also prints NLB's four metrics (through
``dsid nlb evaluate``) next to NLB's smoothing baseline and the oracle.
Targets: every member co-bps >= 0.9 x oracle, latent R2 >= 0.9 and above the smoothing baseline; the
smallest NLB-layout member above the smoothing baseline on all four NLB metrics.

    nice .venv/bin/python benchmarks/zoo_benchmark.py                     # 15 minutes per member
    .venv/bin/python benchmarks/zoo_benchmark.py --budget 2m --members lorenz,sensory
    .venv/bin/python benchmarks/zoo_benchmark.py --out runs/zoo_ablation --set train.kl_scales.ic=1

Results accumulate in ``--out``/results.jsonl (a member already there is skipped unless --rerun).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dsid.zoo.catalog import MAZE_SIZES, members, write_member  # noqa: E402

NLB_KEYS = ("co_bps", "vel_r2", "psth_r2", "fp_bps")


def fit_member(name: str, path: Path, out: Path, budget: str, extra, seed: int = 0) -> dict:
    run_dir = out / name
    cmd = [
        str(Path(sys.executable).parent / "dsid"),
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
        *extra,
    ]
    t0 = time.time()
    with open(out / f"{name}.log", "w") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=out)
    row = {
        "member": name,
        "wall_s": round(time.time() - t0, 1),
        "returncode": done.returncode,
        "seed": seed,
    }
    report = run_dir / "fit_report.json"
    if done.returncode or not report.exists():
        return {**row, "failed": f"see {out / (name + '.log')}"}
    r = json.loads(report.read_text())
    m = r["metrics"]
    row.update(
        co_bps=m.get("val/co_bps"),
        oracle=m.get("val/oracle_co_bps"),
        rate_r2=m.get("val/rate_r2"),
        latent_r2=m.get("val/latent_r2"),
        latent_r2_min=m.get("val/latent_r2_min"),
        baseline=r["baseline"]["co_bps"],
        steps=r["steps"],
        diagnostics=r["diagnostics"],
        info_nats=r["description"].get("info_nats"),
        kl_scale=next(
            (x["value"] for x in r["settings"] if x["key"] == "train.kl_scales.ic"), None
        ),
    )
    if name in MAZE_SIZES:
        row["nlb"] = nlb_scores(run_dir, path)
    return row


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


def print_table(rows) -> bool:
    print(
        f"\n{'member':<24}{'co-bps':>8}{'oracle':>8}{'xOracle':>8}{'smooth':>8}{'>smooth':>8}"
        f"{'rateR2':>8}{'latR2':>8}{'worst':>7}{'steps':>7}{'wall s':>8}{'info':>7}{'KL w':>7}"
    )
    ok = True
    for r in rows:
        if r.get("failed"):
            print(f"{r['member']:<24}FAILED ({r['failed']})")
            ok = False
            continue
        frac = r["co_bps"] / r["oracle"] if r.get("oracle") else float("nan")
        above = r["co_bps"] > r["baseline"]
        print(
            f"{r['member']:<24}{_f(r['co_bps']):>8}{_f(r.get('oracle')):>8}{_f(frac, 2):>8}"
            f"{_f(r['baseline']):>8}"
            f"{'yes' if above else 'NO':>8}{_f(r.get('rate_r2')):>8}{_f(r.get('latent_r2')):>8}"
            f"{_f(r.get('latent_r2_min'), 2):>7}{r['steps']:>7}"
            f"{r['wall_s']:>8.0f}{_f(r.get('info_nats'), 0):>7}"
            f"{_f(r.get('kl_scale'), 2):>7}"
        )
        if not r["member"].endswith("_no_ext"):
            ok &= bool(frac >= 0.9 and (r.get("latent_r2") or 0) >= 0.9 and above)
    for r in rows:
        if r.get("nlb"):
            n = r["nlb"]
            print(f"\nNLB metrics, {r['member']}:   " + "".join(f"{k:>10}" for k in NLB_KEYS))
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
    p.add_argument(
        "--rerun", action="store_true", help="fit members already in results.jsonl again"
    )
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
    names = args.members.split(",") if args.members else list(members())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    done = {}
    if results.exists() and not args.rerun:
        done = {
            json.loads(line)["member"]: json.loads(line)
            for line in results.read_text().splitlines()
        }
    rows = []
    for name in names:
        path = Path(args.zoo) / f"{name}.h5"
        if not path.exists():
            write_member(name, args.zoo)
        jobs = [(name, list(args.set))]
        with h5py.File(path, "r") as f:
            if "train/ext_inputs" in f:
                jobs.append((f"{name}_no_ext", ["data.ext_inputs=false", *args.set]))
        for label, extra in jobs:
            if label in done:
                rows.append(done[label])
                continue
            print(f"fitting {label} ({args.budget}) ...", flush=True)
            row = fit_member(label, path, out, args.budget, extra, args.seed)
            row["budget"] = args.budget
            row["set"] = list(args.set)
            rows.append(row)
            with open(results, "a") as f:
                f.write(json.dumps(row) + "\n")
    ok = print_table(rows)
    print(
        "\ntargets (co-bps >= 0.9 x oracle, latent R2 >= 0.9, above smoothing; "
        f"maze_small above NLB's smoothing on all four metrics): {'MET' if ok else 'NOT MET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
