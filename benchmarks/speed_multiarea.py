"""Training-step speed of the multi-area model: areas stepped as one group vs one area at a time.

DSID advances all areas of a ``MultiAreaSAE`` together: their generator parameters are stacked and
every weight is one batched matrix product per bin for all areas. The reference here is the same
model (same parameters, same coupling) unrolled the plain way: at every bin each area's generator
steps on its own (``generator.step``), with its messages assembled edge by edge. Both compute the same
function (tests/test_multiarea.py checks it); a step is forward + backward of the reconstruction
loss. Sizes: ``experiments/multiarea_delay.yaml`` on the default 3-area system (80 neurons per area,
100 bins), batch ``--batch``; one torch thread; the two variants alternate, so machine noise hits
both alike, and the ratio is measured in one run. Pooled single-area LFADS at the same total size
(``experiments/multiarea_pooled_lfads.yaml``) is timed too, for scale.

    .venv/bin/python benchmarks/speed_multiarea.py [--steps 5] [--batch 64]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch


def reference_forward(model, x):
    """The area-by-area unroll (no sampling); returns per-area factors (B, T, F) in a list."""
    cpl = model.coupling
    B, T = x.shape[:2]
    encs = [ar.encoder(x[..., model.area_in_pos[a]]) for a, ar in enumerate(model.areas)]
    states = [ar.generator.initial_state(e.ic_mean) for ar, e in zip(model.areas, encs)]
    window = cpl.start([model._signal(a, s) for a, s in enumerate(states)])
    step = cpl(window, [s["g"] for s in states], False)
    factors = [[] for _ in model.areas]
    for t in range(T):
        outs = []
        for a, ar in enumerate(model.areas):
            inputs = [step.messages[e] for e in cpl.incoming(a)]
            width = sum(m.shape[-1] for m in inputs)
            ext_t = torch.cat(inputs + [x.new_zeros(B, model.msg_width - width)], -1)
            states[a], out = ar.generator.step(states[a], encs[a].ci[:, t], ext_t, sample=False)
            outs.append(out)
            factors[a].append(out["f"])
        window = cpl.push(window, [model._signal(a, o) for a, o in enumerate(outs)])
        step = cpl(window, [s["g"] for s in states], False)
    return [torch.stack(f, 1) for f in factors]


def recon(model, factors, spikes) -> torch.Tensor:
    nll = [ar.observation(ar.readout(f), spikes[..., idx]).sum()
           for ar, f, idx in zip(model.areas, factors, model.area_idx)]
    return sum(nll) / spikes.shape[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=5, help="timed steps per variant (after one warm-up)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--data", default="data/multiarea.h5", help="the 3-area file (written when missing)")
    args = p.parse_args(argv)
    from pathlib import Path

    from omegaconf import OmegaConf

    from dsid.data.datamodule import data_info
    from dsid.data.synth_multiarea import synth_multiarea
    from dsid.data.tensor_file import load_tensor_file
    from dsid.models import build_model
    from dsid.training.commands import compose

    torch.set_num_threads(1)
    torch.manual_seed(0)
    if not Path(args.data).exists():
        synth_multiarea(args.data, seed=0)
    data = load_tensor_file(args.data)
    info = data_info(data)
    spikes = torch.as_tensor(data.splits["train"].spikes[:args.batch], dtype=torch.float32)
    cfg = OmegaConf.to_container(compose(["experiment=multiarea_delay"]).model, resolve=True)
    model = build_model(cfg, info)
    pooled = build_model(OmegaConf.to_container(compose(["experiment=multiarea_pooled_lfads"]).model,
                                                resolve=True), info)
    x = model.augment(spikes, "predict")[0]

    def grouped():
        out = model(x, sample=False)
        F = out["factors"].shape[-1] // model.n_areas
        return recon(model, [out["factors"][..., a * F:(a + 1) * F] for a in range(model.n_areas)], spikes)

    def by_area():
        return recon(model, reference_forward(model, x), spikes)

    def pooled_lfads():
        out = pooled(pooled.augment(spikes, "predict")[0], sample=False)
        return pooled.observation(out["params"], spikes).sum() / spikes.shape[0]

    variants = {"grouped (DSID)": grouped, "area by area": by_area, "pooled LFADS": pooled_lfads}
    times = {k: [] for k in variants}
    with torch.no_grad():
        ref = by_area()
        diff = ((grouped() - ref).abs() / ref.abs()).item()
    for i in range(args.steps + 1):
        for name, fn in variants.items():
            model.zero_grad(set_to_none=True)
            pooled.zero_grad(set_to_none=True)
            start = time.perf_counter()
            fn().backward()
            if i:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"multi-area training step (forward + backward), batch {args.batch}, T={data.n_time}, "
          f"{data.n_areas} areas, 1 thread, median of {args.steps}:")
    for name, t in med.items():
        print(f"  {name:<16}{t:8.3f} s/step")
    print(f"grouped vs area by area: {med['area by area'] / med['grouped (DSID)']:.2f}x faster "
          f"(losses agree to a relative {diff:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
