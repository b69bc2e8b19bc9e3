"""The prepared GPU check: DSID's LFADS at NLB MC_Maze sizes on one accelerator, a few minutes.

Synthetic Poisson data of MC_Maze's shape (1377 trials x 140 bins, 137 held-in + 45 held-out
neurons) and the model of ``benchmarks/speed_lfads.py`` (encoders 64 per direction, controller 64,
generator 100, initial condition 100, inferred inputs 4, factors 40). For each variant it prints
seconds per training epoch (batch 128; forward, loss, backward, AdamW), seconds to infer every trial
with 20 posterior samples, and the peak accelerator memory:

- ``fp32``: as trained by default;
- ``bf16``: the step under ``torch.autocast(dtype=torch.bfloat16)``;
- ``compile``: the model's forward through ``torch.compile`` (reported as unavailable when it
  fails).

    .venv/bin/python benchmarks/gpu_check.py [--device cuda] [--quick]

``--quick`` shrinks everything (64 trials, 20 bins) to check the script itself, e.g. on a CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed_lfads import CO, ENC, FAC, GEN, IC, N_IN, N_OUT  # noqa: E402

from dsid.evaluation.inference import infer_split  # noqa: E402
from dsid.models.sae import SequentialAutoencoder  # noqa: E402


def build(device: str) -> SequentialAutoencoder:
    cfg = {
        "ic_size": IC,
        "co_size": CO,
        "factor_size": FAC,
        "encoder": {"name": "bigru", "hidden_size": ENC, "ci_size": ENC, "dropout": 0.05},
        "generator": {"name": "lfads", "hidden_size": GEN, "controller_size": ENC, "dropout": 0.05},
        "observation": {"name": "poisson"},
        "augmentations": [{"name": "coordinated_dropout", "rate": 0.3}],
    }
    return SequentialAutoencoder.from_config(cfg, {"heldout": [False] * N_IN + [True] * N_OUT}).to(
        device
    )


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def epoch(model, forward, opt, spikes, batch: int, device: str, autocast) -> float:
    """Seconds for one training epoch over ``spikes``."""
    sync(device)
    t0 = time.perf_counter()
    for start in range(0, spikes.shape[0], batch):
        x = spikes[start : start + batch]
        opt.zero_grad(set_to_none=True)
        with autocast:
            xin, mask = model.augment(x, "train")
            out = forward(xin)
            terms = model.loss_terms(out, x, mask)
            loss = terms["recon"] + terms["kl_ic"] + terms["kl_co"]
        loss.backward()
        opt.step()
    sync(device)
    return time.perf_counter() - t0


def run_variant(name: str, spikes, device: str, batch: int, samples: int) -> dict:
    torch.manual_seed(0)
    model = build(device).train()
    forward = model
    autocast = nullcontext()
    if name == "bf16":
        autocast = torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
    if name == "compile":
        forward = torch.compile(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    first = epoch(model, forward, opt, spikes, batch, device, autocast)  # warm-up (and compilation)
    seconds = epoch(model, forward, opt, spikes, batch, device, autocast)
    sync(device)
    t0 = time.perf_counter()
    infer_split(model, spikes.cpu().numpy(), n_samples=samples, batch_size=batch)
    sync(device)
    infer_s = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else float("nan")
    return {
        "variant": name,
        "first_epoch_s": first,
        "epoch_s": seconds,
        "infer_s": infer_s,
        "peak_mb": peak,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, to check the script itself")
    ap.add_argument(
        "--samples", type=int, default=20, help="posterior samples for the inference timing"
    )
    args = ap.parse_args(argv)
    trials, bins, batch = (64, 20, 32) if args.quick else (1377, 140, 128)
    torch.manual_seed(0)
    spikes = torch.poisson(torch.full((trials, bins, N_IN + N_OUT), 0.3)).to(args.device)
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    print(
        f"DSID GPU check: {name}, torch {torch.__version__}, {trials} trials x {bins} bins, "
        f"{N_IN}+{N_OUT} neurons, batch {batch}"
    )
    print(
        f"{'variant':<9}{'first epoch s':>15}{'epoch s':>10}"
        f"{f'infer {args.samples} samples s':>26}{'peak MB':>10}"
    )
    for variant in ("fp32", "bf16", "compile"):
        try:
            r = run_variant(variant, spikes, args.device, batch, args.samples)
        except Exception as err:  # noqa: BLE001  (an unavailable path is reported, the others still run)
            print(
                f"{variant:<9} unavailable: {type(err).__name__}: {str(err).splitlines()[0][:100]}"
            )
            continue
        peak = "-" if r["peak_mb"] != r["peak_mb"] else f"{r['peak_mb']:.0f}"  # no figure on a CPU
        print(
            f"{r['variant']:<9}{r['first_epoch_s']:>15.2f}{r['epoch_s']:>10.2f}{r['infer_s']:>26.2f}{peak:>10}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
