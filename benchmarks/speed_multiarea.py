"""Training-step speed of the multi-area model: the compiled scan vs stepping the areas bin by bin.

DSID runs a ``MultiAreaSAE`` with LFADS areas and linear lagged messages on the compiled scan: the
areas as one block-structured generator, the coupling as a feedback inside the loop
(``dsid.models.multiarea.scan``). Two references compute the same function (tests/test_multiarea.py
and tests/test_multiarea_scan.py check it): the areas stepped as one group bin by bin in Python
(stacked parameters, one batched product per weight and bin: ``MultiAreaSAE.stepwise_forward``,
what runs where the scan does not apply, and the only path before the scan), and the plain
unroll, each area's generator stepping on its own with its messages assembled edge by edge
(``tests.area_by_area.area_by_area_forward``). A step is forward + backward of the
reconstruction loss. Sizes: ``experiments/multiarea_delay.yaml`` on the default 3-area system (80
neurons per area, 100 bins), batch ``--batch``; one torch thread; the two variants alternate, so
machine noise hits both alike, and the ratio is measured in one run. Pooled single-area LFADS at the
same total size (``experiments/multiarea_pooled_lfads.yaml``) is timed too, for scale. Last, the
scan's step time and the memory autograd keeps for its backward with 2, 4 and 8 areas (``--areas``).

    .venv/bin/python benchmarks/speed_multiarea.py [--steps 5] [--batch 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch


def recon(model, factors, spikes) -> torch.Tensor:
    """Summed Poisson NLL per trial of every area; factors (B, T, A * F)."""
    F = factors.shape[-1] // model.n_areas
    nll = [
        ar.observation(ar.readout(factors[..., a * F : (a + 1) * F]), spikes[..., idx]).sum()
        for a, (ar, idx) in enumerate(zip(model.areas, model.area_idx))
    ]
    return sum(nll) / spikes.shape[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--steps", type=int, default=5, help="timed steps per variant (after one warm-up)"
    )
    p.add_argument("--batch", type=int, default=64)
    p.add_argument(
        "--data", default="data/multiarea.h5", help="the 3-area file (written when missing)"
    )
    p.add_argument(
        "--areas",
        nargs="*",
        type=int,
        default=[2, 4, 8],
        help="area counts at which the scan's step time and backward memory are printed",
    )
    args = p.parse_args(argv)
    from omegaconf import OmegaConf

    from dsid.data.datamodule import data_info
    from dsid.data.multiarea.synth import synth_multiarea
    from dsid.data.tensor_file import load_tensor_file
    from dsid.models import build_model
    from dsid.runs.config import compose
    from tests.area_by_area import area_by_area_forward

    torch.set_num_threads(1)
    torch.manual_seed(0)
    if not Path(args.data).exists():
        synth_multiarea(args.data, seed=0)
    data = load_tensor_file(args.data)
    info = data_info(data)
    spikes = torch.as_tensor(data.splits["train"].spikes[: args.batch], dtype=torch.float32)
    cfg = OmegaConf.to_container(compose(["experiment=multiarea_delay"]).model, resolve=True)
    model = build_model(cfg, info)
    pooled = build_model(
        OmegaConf.to_container(compose(["experiment=multiarea_pooled_lfads"]).model, resolve=True),
        info,
    )
    x = model.augment(spikes, "predict")[0]

    def grouped():
        return recon(model, model(x, sample=False)["factors"], spikes)

    def grouped_loop():
        return recon(model, model.stepwise_forward(x, sample=False)["factors"], spikes)

    def by_area():
        return recon(model, area_by_area_forward(model, x)[0], spikes)

    def pooled_lfads():
        out = pooled(pooled.augment(spikes, "predict")[0], sample=False)
        return pooled.observation(out["params"], spikes).sum() / spikes.shape[0]

    variants = {
        "compiled scan": grouped,
        "grouped loop": grouped_loop,
        "area by area": by_area,
        "pooled LFADS": pooled_lfads,
    }
    times = {k: [] for k in variants}
    with torch.no_grad():
        ref = by_area()
        diff = max(((fn() - ref).abs() / ref.abs()).item() for fn in (grouped, grouped_loop))
    for i in range(args.steps + 1):
        for name, fn in variants.items():
            model.zero_grad(set_to_none=True)
            pooled.zero_grad(set_to_none=True)
            start = time.perf_counter()
            fn().backward()
            if i:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"multi-area training step (forward + backward), batch {args.batch}, T={data.n_time}, "
        f"{data.n_areas} areas, 1 thread, median of {args.steps}:"
    )
    for name, t in med.items():
        print(f"  {name:<16}{t:8.3f} s/step")
    scan = med["compiled scan"]
    print(
        f"compiled scan vs grouped loop: {med['grouped loop'] / scan:.2f}x faster "
        "(target 3x); vs area by "
        f"area: {med['area by area'] / scan:.2f}x; grouped loop vs area by area: "
        f"{med['area by area'] / med['grouped loop']:.2f}x (losses agree to a relative {diff:.1e})"
    )
    if args.areas:
        area_scaling(cfg, args.batch, data.n_time, args.areas, args.steps)
    return 0


def area_scaling(cfg, batch: int, n_time: int, counts, steps: int) -> None:
    """Seconds per compiled-scan step and the memory autograd keeps for its backward, for models of
    the same config with ``counts`` areas of 80 neurons each (random spikes: speed and memory
    only)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from speed_lfads import saved_for_backward

    from dsid.models import build_model

    print(
        "\nthe compiled scan against the number of areas (80 neurons each, "
        f"batch {batch}, T={n_time}):"
    )
    rows = []
    for n_areas in counts:
        n = 80 * n_areas
        info = {
            "n_neurons": n,
            "heldout": [i % 5 == 4 for i in range(n)],
            "area": [i // 80 for i in range(n)],
            "n_areas": n_areas,
            "area_names": [f"A{a}" for a in range(n_areas)],
            "bin_ms": 10.0,
            "n_time": n_time,
            "n_forward": 0,
            "ext_input_size": 0,
            "mean_counts": [0.1] * n,
        }
        torch.manual_seed(0)
        model = build_model(cfg, info)
        spikes = torch.poisson(torch.full((batch, n_time, n), 0.1))
        x = model.augment(spikes, "predict")[0]

        def loss(_=None):
            return recon(model, model(x, sample=False)["factors"], spikes)

        times = []
        for i in range(steps + 1):
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            loss().backward()
            if i:
                times.append(time.perf_counter() - start)
        kept = saved_for_backward(loss, None) / 2**20
        rows.append((n_areas, statistics.median(times), kept))
        print(
            f"  {n_areas:>2} areas: {rows[-1][1]:7.3f} s/step, kept for the backward {kept:7.1f} MB"
        )
    per_area = [(b[2] - a[2]) / (b[0] - a[0]) for a, b in zip(rows, rows[1:])]
    print(
        "  MB per added area between successive counts: "
        + ", ".join(f"{x:.1f}" for x in per_area)
        + " (equal values: memory linear in the number of areas)"
    )


if __name__ == "__main__":
    sys.exit(main())
