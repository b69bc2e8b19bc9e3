"""Perturbation benchmark: do fitted multi-area models predict what an intervention does?

For every fit of a multi-area zoo member that can re-simulate interventions (``multiregion_rnn``,
``multiarea_feedback``, ``multiregion_task``) in a zoo benchmark run (``--fits``, the ``--out``
folder of ``benchmarks/zoo_benchmark.py``: ``<member>_d<draw>/``, fitted on the member written
with data seed ``draw``), the simulator re-runs the validation trials (same initial states, noise,
inputs and spike draws) under each intervention, from bin ``--from-bin`` on (default: mid-trial):

- silence every area with outgoing edges (its activity 0, its messages 0);
- on every true edge: cut it, scale its messages by 2, hold them (clamp).

The model predicts the same interventions (``dsid perturb``: every edge of the model leaving the
area, or the model's edge between the same areas). Printed per fit and intervention, and as the
mean and worst over them: the R2 of the trial-averaged effect on the rates (entries: bin x neuron)
and of every trial's effect (trial x bin x neuron), over all bins the intervention reaches and over
its first 10, on every neuron but the silenced area's own; the true and predicted RMS effect
(spikes/s). Before them, each fit's edges against the truth (``dsid analyze``'s read-outs): edge
rank recovery (beside the linear baseline's), delay coverage by the lag ranges, and the bits each
edge carries as an edge detector (AUROC). Target (issue: multi-area science): perturbation-effect
R2 >= 0.8.

    .venv/bin/python benchmarks/zoo_benchmark.py \
        --members multiregion_rnn,multiarea_feedback,multiregion_task --out runs/zoo
    .venv/bin/python benchmarks/perturbation_benchmark.py --fits runs/zoo
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.8
EARLY_BINS = 10


def interventions(data, from_bin: int):
    """(label, simulator Perturbation, dsid perturb keyword arguments) for every intervention on
    the member's true network."""
    from dsid.data.perturbation import Perturbation

    names = data.area_names
    edges = [tuple(int(v) for v in e) for e in np.argwhere(data.delay_bins >= 0)]
    out = []
    for src in sorted({s for s, _ in edges}):
        out.append(
            (
                f"silence {names[src]}",
                Perturbation(silence_area=src, from_bin=from_bin),
                dict(mode="silence", area=src),
            )
        )
    for s, d in edges:
        edge, arrow = (s, d), f"{names[s]}->{names[d]}"
        out += [
            (
                f"cut {arrow}",
                Perturbation(cut_edges=[edge], from_bin=from_bin),
                dict(mode="silence"),
            ),
            (
                f"x2 {arrow}",
                Perturbation(edge_scale={edge: 2.0}, from_bin=from_bin),
                dict(mode="scale", factor=2.0),
            ),
            (
                f"clamp {arrow}",
                Perturbation(clamp_edges=[edge], from_bin=from_bin),
                dict(mode="clamp"),
            ),
        ]
        for kw in (out[-3][2], out[-2][2], out[-1][2]):
            kw["edge"] = (s, d)
    return out


def simulate_member(member: str, seed: int, perturb=None):
    """The member drawn with data seed ``seed`` (a DSIDData), under ``perturb`` if given."""
    if member == "multiregion_rnn":
        from dsid.zoo.members.multiregion_rnn import make_multiregion_rnn

        return make_multiregion_rnn(seed=seed, perturb=perturb)
    if member == "multiregion_task":
        from dsid.zoo.members.multiregion_task import make_multiregion_task

        return make_multiregion_task(seed=seed, perturb=perturb)
    from dsid.data.tensor_file import load_tensor_file
    from dsid.zoo.members.multiarea_feedback import write_multiarea_feedback

    with tempfile.TemporaryDirectory() as tmp:
        return load_tensor_file(
            write_multiarea_feedback(Path(tmp) / "m.h5", seed=seed, perturb=perturb)
        )


MEMBERS = ("multiregion_rnn", "multiarea_feedback", "multiregion_task")


def score_draw(member: str, run_dir: Path, draw: int, from_bin) -> list:
    """One row per intervention for the fit of ``member`` in ``run_dir`` (data seed ``draw``)."""
    from dsid.evaluation.multiarea.perturbation import effect_scores, predict_perturbation
    from dsid.models.multiarea.intervention import build_intervention
    from dsid.runs.load import load_run

    run = load_run(run_dir)
    model, data = run.model, run.sessions()[0]
    truth = simulate_member(member, draw)
    spikes = data.splits["valid"].spikes
    if not np.array_equal(truth.splits["valid"].spikes, spikes):
        raise ValueError(f"{run_dir}: its data is not {member} drawn with seed {draw}")
    T = spikes.shape[1]
    t0 = T // 2 if from_bin is None else int(from_bin)
    rows = []
    for label, true_pert, kw in interventions(truth, t0):
        true_rates = simulate_member(member, draw, true_pert).splits["valid"].truth_rates
        true_delta = true_rates - truth.splits["valid"].truth_rates
        iv = build_intervention(model, from_bin=t0, **kw)
        pred = predict_perturbation(model, spikes, iv)
        pred_delta = pred["rates_perturbed"] - pred["rates_base"]
        keep = np.ones(data.area.shape, bool)
        if kw["mode"] == "silence" and "area" in kw:
            keep = data.area != kw["area"]
        per_s = 1000.0 / data.bin_ms
        full = effect_scores(pred_delta, true_delta, t0, keep)
        early = effect_scores(
            pred_delta[:, : t0 + 1 + EARLY_BINS], true_delta[:, : t0 + 1 + EARLY_BINS], t0, keep
        )
        rows.append(
            {
                "member": member,
                "draw": draw,
                "intervention": label,
                "from_bin": t0,
                "r2_mean": full["effect_r2"],
                "r2_trials": full["effect_r2_trials"],
                "r2_mean_early": early["effect_r2"],
                "r2_trials_early": early["effect_r2_trials"],
                "rms_true": full["effect_rms_true"] * per_s,
                "rms_pred": full["effect_rms_pred"] * per_s,
            }
        )
    return rows


def communication_row(member: str, run_dir: Path, draw: int) -> dict:
    """The fit's communication read-outs against the truth (``dsid analyze``'s), beside the linear
    baseline's where it has one."""
    from dsid.evaluation.multiarea.edges import edge_scores
    from dsid.evaluation.multiarea.summary import communication
    from dsid.runs.load import load_run

    run = load_run(run_dir)
    data = run.sessions()[0]
    comm = communication(run.model, data)
    found = edge_scores(np.asarray(comm["rank"]), np.asarray(comm["lag_range"]), data)
    linear = (comm.get("linear") or {}).get("scores") or {}
    return {
        "member": member,
        "draw": draw,
        "effectome_cosine": run.metrics.get("val/effectome_cosine"),
        "evidence_auroc": comm["scores"].get("evidence_auroc"),
        "rank_accuracy": found.get("edge_rank_accuracy"),
        "linear_rank_accuracy": linear.get("edge_rank_accuracy"),
        "delay_coverage": found.get("delay_coverage"),
        "lag_range_width": found.get("lag_range_width"),
    }


COMM_COLUMNS = [
    ("effectome cos", "effectome_cosine"),
    ("bits AUROC", "evidence_auroc"),
    ("rank acc", "rank_accuracy"),
    ("linear rank acc", "linear_rank_accuracy"),
    ("delay cover", "delay_coverage"),
    ("lag width", "lag_range_width"),
]


def print_communication(rows: list) -> None:
    print(
        "\nedges against the truth (rank acc: share of true edges whose rank is recovered; "
        "delay cover: share whose delay lies in the model's lag range; lag width: its mean width "
        "in bins; bits AUROC: the bits each edge carries, as an edge detector):"
    )
    print(f"{'member':<20}{'draw':>4}" + "".join(f"{c:>16}" for c, _ in COMM_COLUMNS))
    for r in rows:
        print(
            f"{r['member']:<20}{r['draw']:>4}"
            + "".join(f"{fmt(r.get(k)):>16}" for _, k in COMM_COLUMNS)
        )


COLUMNS = [
    ("R2 mean", "r2_mean"),
    ("R2 trials", "r2_trials"),
    (f"R2 mean {EARLY_BINS}b", "r2_mean_early"),
    (f"R2 trials {EARLY_BINS}b", "r2_trials_early"),
    ("RMS true", "rms_true"),
    ("RMS pred", "rms_pred"),
]


def fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def print_table(rows: list) -> None:
    head = f"\n{'member':<20}{'draw':>4}  {'intervention':<18}"
    print(head + "".join(f"{c:>15}" for c, _ in COLUMNS))
    for r in rows:
        print(
            f"{r['member']:<20}{r['draw']:>4}  {r['intervention']:<18}"
            + "".join(f"{fmt(r.get(k)):>15}" for _, k in COLUMNS)
        )
    for member in dict.fromkeys(r["member"] for r in rows):
        mine = [r for r in rows if r["member"] == member]
        for name, agg in (("mean", np.nanmean), ("worst", np.nanmin)):
            vals = [agg([r[k] for r in mine]) if k.startswith("r2") else None for _, k in COLUMNS]
            print(f"{member:<20}{'':>4}  {name:<18}" + "".join(f"{fmt(v):>15}" for v in vals))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fits", required=True, help="the --out folder of benchmarks/zoo_benchmark.py")
    p.add_argument("--members", default=",".join(MEMBERS), help="comma-separated (default: all)")
    p.add_argument("--draws", default="0,1,2", help="comma-separated data seeds (default 0,1,2)")
    p.add_argument("--from-bin", type=int, default=None, help="default: the middle of the trial")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args()
    members = [m for m in args.members.split(",") if m]
    unknown = sorted(set(members) - set(MEMBERS))
    if unknown:
        p.error(f"--members: {', '.join(unknown)}: expected some of {', '.join(MEMBERS)}")
    rows, comm_rows, missing = [], [], []
    for member in members:
        for draw in (int(d) for d in args.draws.split(",")):
            run_dir = Path(args.fits) / f"{member}_d{draw}"
            if not (run_dir / "config.yaml").exists():
                missing.append(str(run_dir))
                continue
            print(f"scoring {run_dir} ...", flush=True)
            rows += score_draw(member, run_dir, draw, args.from_bin)
            comm_rows.append(communication_row(member, run_dir, draw))
    if missing:
        print(
            f"no fit in {', '.join(missing)}: fit first with benchmarks/zoo_benchmark.py "
            f"--members {','.join(members)} --out {args.fits}"
        )
    if not rows:
        return 1
    print_communication(comm_rows)
    print_table(rows)
    worst = min(r["r2_mean"] for r in rows)
    print(
        f"\ntarget: trial-averaged effect R2 >= {TARGET} on every intervention: "
        + ("met" if worst >= TARGET else f"NOT met (worst {worst:.3f})")
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"effects": rows, "edges": comm_rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
