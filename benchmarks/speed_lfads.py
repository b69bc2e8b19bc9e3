"""Training-step and inference speed of DSID's LFADS vs a naive per-bin reference, in one run.

Two sizes: ``maze`` (NLB MC_Maze: 137 held-in + 45 held-out neurons, 140 bins, batch 128, encoders
64 per direction, controller 64, generator 100, initial condition 100, inferred inputs 4, factors
40) and ``lorenz`` (the demo: 40 + 10 neurons, 100 bins, batch 256, IC encoder 64 and
controller-input encoder 32 per direction, controller 32, generator 64, initial condition 64,
inferred inputs 4, factors 20).

The naive reference is written here: every RNN (both encoder directions of both encoders, the
controller and the generator) is an ``nn.GRUCell`` stepped in a Python loop, as in common public
LFADS implementations. DSID runs its compiled scans (``dsid/modules/recurrent``) when they are
built.

Each (size, threads, model) is timed in its own subprocess (so the peak resident memory of each is
its own) after warm-up steps; a step is forward + backward + AdamW update. Inference is the
posterior average over ``--samples`` samples for the batch's trials (DSID:
``dsid.evaluation.inference.infer_split``, every sample of a trial in one pass; the reference: one
forward pass per sample). The step's FLOPs (matrix products, multiply-add = 2) are counted from the
sizes, and the machine's dense matrix-product throughput is measured in the same run at the step's
shapes, so the achieved fraction can be read off. On a GPU (``--device cuda``) peak memory is
``torch.cuda.max_memory_allocated``.

Memory: ``peak MB`` is the process's peak resident memory, ``step MB`` that peak minus the resident
memory just before the first step (the libraries each side imports and the model excluded: what the
training step itself needs; it varies by tens of MB from run to run with the allocator's state),
``saved MB`` the tensors autograd keeps from the forward pass for the backward (deterministic). The
summary also prints the bound the hardware sets: the step's (and inference's) matrix products alone
at the throughput ``torch.mm`` reaches at their shapes here. Last,
the peak memory of DSID's training step at maze size for trials of 100, 200 and 400 bins.

    .venv/bin/python benchmarks/speed_lfads.py [--sizes maze lorenz] [--threads 1 2] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue
import resource
import sys
import time

import torch
from torch import nn

SIZES = {
    "maze": dict(
        N_IN=137, N_OUT=45, T=140, B=128, ENC=64, CI=64, CON=64, GEN=100, IC=100, CO=4, FAC=40
    ),
    "lorenz": dict(
        N_IN=40, N_OUT=10, T=100, B=256, ENC=64, CI=32, CON=32, GEN=64, IC=64, CO=4, FAC=20
    ),
}
# MC_Maze sizes as module constants (benchmarks/gpu_check.py builds the same model)
N_IN, N_OUT, T, B = 137, 45, 140, 128
ENC, CON, GEN, IC, CO, FAC = 64, 64, 100, 100, 4, 40


def products(z) -> list:
    """The step's matrix products as (M, K, N, times per step): forward, and the backward's two
    products per forward product (inputs' gradient where one is needed, and weights')."""
    BT, B_ = z["B"] * z["T"], z["B"]
    out = []
    for h in (
        z["ENC"],
        z["ENC"],
        z["CI"],
        z["CI"],
    ):  # encoder directions: data input needs no gradient
        out += [(BT, z["N_IN"], 3 * h, 2), (B_, h, 3 * h, 3 * z["T"])]
    out += [
        (B_, 2 * z["CI"] + z["FAC"], 3 * z["CON"], 3 * z["T"]),
        (B_, z["CON"], 3 * z["CON"], 3 * z["T"]),
        (B_, z["CON"], 2 * z["CO"], 3 * z["T"]),
        (B_, z["CO"], 3 * z["GEN"], 3 * z["T"]),
        (B_, z["GEN"], 3 * z["GEN"], 3 * z["T"]),
        (B_, z["GEN"], z["FAC"], 3 * z["T"]),
        (BT, z["FAC"], z["N_IN"] + z["N_OUT"], 3),
    ]
    return out


def inference_products(z, samples: int) -> list:
    """The matrix products of inferring ``samples`` posterior samples of a batch, as (M, K, N,
    times): each trial encoded once (encoders and the controller's input projection), then every
    sample's controller, inferred inputs, generator, factors and rates."""
    BT, R, T_ = z["B"] * z["T"], z["B"] * samples, z["T"]
    out = [(BT, z["N_IN"], 3 * h, 1) for h in (z["ENC"], z["ENC"], z["CI"], z["CI"])]
    out += [(z["B"], h, 3 * h, T_) for h in (z["ENC"], z["ENC"], z["CI"], z["CI"])]
    out += [
        (BT, 2 * z["CI"], 3 * z["CON"], 1),
        (R, z["FAC"], 3 * z["CON"], T_),
        (R, z["CON"], 3 * z["CON"], T_),
        (R, z["CON"], 2 * z["CO"], T_),
        (R, z["CO"], 3 * z["GEN"], T_),
        (R, z["GEN"], 3 * z["GEN"], T_),
        (R, z["GEN"], z["FAC"], T_),
        (R * T_, z["FAC"], z["N_IN"] + z["N_OUT"], 1),
    ]
    return out


def step_flops(z) -> float:
    return float(sum(2 * m * k * n * times for m, k, n, times in products(z)))


def gemm_seconds(prods, max_rows: int = 2**16) -> float:
    """Seconds ``torch.mm`` takes for the products ``prods`` (each timed at its shape, once per
    occurrence; a product of more than ``max_rows`` rows timed on that many and scaled)."""
    total_s = 0.0
    for m, k, n, times in prods:
        rows = min(m, max_rows)
        a, b = torch.randn(rows, k), torch.randn(k, n)
        a @ b
        reps = max(3, min(times, 50))
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        total_s += (time.perf_counter() - t0) / reps * times * m / rows
    return total_s


def gemm_throughput(z) -> float:
    """FLOP/s of ``torch.mm`` at the step's shapes."""
    return step_flops(z) / gemm_seconds(products(z))


def saved_for_backward(loss_fn, spikes) -> int:
    """Bytes of the distinct tensors (storages) autograd keeps from one forward pass for the
    backward: a deterministic measure of a step's activation memory, where the resident peak varies
    with the allocator."""
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss_fn(spikes)
    return sum(seen.values())


def dsid_model(z=None):
    from dsid.models.sae import SequentialAutoencoder

    z = z or SIZES["maze"]
    cfg = {
        "ic_size": z["IC"],
        "co_size": z["CO"],
        "factor_size": z["FAC"],
        "encoder": {"name": "bigru", "hidden_size": z["ENC"], "ci_size": z["CI"], "dropout": 0.05},
        "generator": {
            "name": "lfads",
            "hidden_size": z["GEN"],
            "controller_size": z["CON"],
            "dropout": 0.05,
        },
        "observation": {"name": "poisson"},
        "ic_prior": {"name": "gaussian"},
        "co_prior": {"name": "ar1"},
        "augmentations": [],
    }
    n_in = z["N_IN"]
    info = {"heldout": [False] * n_in + [True] * z["N_OUT"]}
    model = SequentialAutoencoder.from_config(cfg, info)

    def loss_fn(spikes):
        out = model(spikes[..., :n_in])
        terms = model.loss_terms(out, spikes)
        return terms["recon"] + terms["kl_ic"] + terms["kl_co"]

    return model, loss_fn


class NaiveLFADS(nn.Module):
    """The reference: the same architecture with every recurrence a Python loop of GRUCells."""

    def __init__(self, z):
        super().__init__()
        N, ENC, CI, CON, GEN, IC, CO, FAC = (
            z[k] for k in ("N_IN", "ENC", "CI", "CON", "GEN", "IC", "CO", "FAC")
        )
        self.n_in, self.con = N, CON
        self.ic_f, self.ic_b = nn.GRUCell(N, ENC), nn.GRUCell(N, ENC)
        self.ci_f, self.ci_b = nn.GRUCell(N, CI), nn.GRUCell(N, CI)
        self.ic_head = nn.Linear(2 * ENC, 2 * IC)
        self.ic_to_g = nn.Linear(IC, GEN)
        self.controller = nn.GRUCell(2 * CI + FAC, CON)
        self.co_head = nn.Linear(CON, 2 * CO)
        self.gen = nn.GRUCell(CO, GEN)
        self.fac = nn.Linear(GEN, FAC, bias=False)
        self.readout = nn.Linear(FAC, N + z["N_OUT"])

    @staticmethod
    def run(cell, x, reverse=False):
        h = x.new_zeros(x.shape[0], cell.hidden_size)
        outs = []
        steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
        for t in steps:
            h = cell(x[:, t], h)
            outs.append(h)
        if reverse:
            outs = outs[::-1]
        return torch.stack(outs, 1), h

    def forward(self, spikes):
        x = spikes[..., : self.n_in]
        _, hf = self.run(self.ic_f, x)
        _, hb = self.run(self.ic_b, x, reverse=True)
        mean, logvar = self.ic_head(torch.cat([hf, hb], -1)).chunk(2, -1)
        ic = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        cf, _ = self.run(self.ci_f, x)
        cb, _ = self.run(self.ci_b, x, reverse=True)
        ci = torch.cat([cf, cb], -1)
        g = self.ic_to_g(ic)
        f = self.fac(g)
        c = g.new_zeros(g.shape[0], self.con)
        log_rates, kl_co = [], 0.0
        for t in range(x.shape[1]):
            c = self.controller(torch.cat([ci[:, t], f], -1), c)
            m, lv = self.co_head(c).chunk(2, -1)
            u = m + torch.exp(0.5 * lv) * torch.randn_like(m)
            kl_co = kl_co + 0.5 * (m**2 + lv.exp() - 1 - lv).sum(-1)
            g = self.gen(u, g)
            f = self.fac(g)
            log_rates.append(self.readout(f))
        log_rates = torch.stack(log_rates, 1)
        nll = (log_rates.exp() - spikes * log_rates).sum((1, 2))
        kl_ic = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(-1)
        return (nll + kl_ic + kl_co).mean()


def naive_model(z):
    model = NaiveLFADS(z)
    return model, model


def measure(
    name: str,
    size: str,
    threads: int,
    steps: int,
    device: str,
    samples: int,
    out_queue,
    bins: int = 0,
) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    z = dict(SIZES[size], **({"T": bins} if bins else {}))
    model, loss_fn = dsid_model(z) if name == "dsid" else naive_model(z)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    spikes = torch.poisson(torch.full((z["B"], z["T"], z["N_IN"] + z["N_OUT"]), 0.3, device=device))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(spikes)
        loss.backward()
        opt.step()

    for _ in range(2):  # warm-up
        step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    peak = (
        torch.cuda.max_memory_allocated()
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    saved_mb = saved_for_backward(loss_fn, spikes) / 2**20  # (after the peak was read)
    model.eval()
    t0 = time.perf_counter()
    if name == "dsid":
        from dsid.evaluation.inference import infer_split

        infer_split(model, spikes.cpu().numpy(), n_samples=samples, batch_size=z["B"])
    else:
        with torch.inference_mode():
            for _ in range(samples):
                loss_fn(spikes)
    if device == "cuda":
        torch.cuda.synchronize()
    infer_s = time.perf_counter() - t0
    extra = (
        {
            "gemm_flops_per_s": gemm_throughput(z),
            "infer_mm_s": gemm_seconds(inference_products(z, samples)),
        }
        if name == "dsid" and device == "cpu"
        else {}
    )
    out_queue.put(
        {
            **extra,
            "name": name,
            "size": size,
            "threads": threads,
            "steps_per_s": steps / elapsed,
            "peak_mb": peak / 2**20,
            "saved_mb": saved_mb,
            "infer_s": infer_s,
            "rss_before_mb": rss0 / 1024,
            "params": sum(p.numel() for p in model.parameters()),
        }
    )


def run_isolated(name, size, threads, steps, device, samples, bins=0):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=measure, args=(name, size, threads, steps, device, samples, q, bins))
    p.start()
    while True:
        try:
            res = q.get(timeout=5)
            break
        except queue.Empty:
            if not p.is_alive():
                raise RuntimeError(
                    f"the {name} measurement ({size}, {threads} threads) died "
                    f"(exit code {p.exitcode}); run it alone to see its error"
                )
    p.join()
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", nargs="+", default=["maze", "lorenz"], choices=sorted(SIZES))
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--samples", type=int, default=20, help="posterior samples averaged in the inference timing"
    )
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument(
        "--memory-bins",
        nargs="*",
        type=int,
        default=[100, 200, 400],
        help=(
            "trial lengths at which the peak memory of DSID's training step (maze size) is printed"
        ),
    )
    args = ap.parse_args(argv)
    from dsid.modules.recurrent import native

    print(
        f"LFADS training step and inference vs a naive per-bin loop; device {args.device}, torch "
        f"{torch.__version__}, compiled scans: "
        f"{'yes' if native.native_scans() is not None else 'NO'}"
    )
    print(
        f"{'size':<8}{'thr':>4}{'model':>7}{'params':>9}{'s/step':>8}{'GFLOP':>7}"
        f"{'GFLOP/s':>9}{'of mm':>7}"
        f"{'peak MB':>9}{'step MB':>9}{'saved MB':>9}{f'infer {args.samples}x (s)':>16}"
    )
    results, summary = [], []
    for size in args.sizes:
        for threads in args.threads:
            rows = [
                run_isolated(n, size, threads, args.steps, args.device, args.samples)
                for n in ("naive", "dsid")
            ]
            flops = step_flops(SIZES[size])
            mm = rows[1].get("gemm_flops_per_s")
            for r in rows:
                rate = flops * r["steps_per_s"]
                frac = f"{rate / mm:>7.0%}" if mm else f"{'-':>7}"
                print(
                    f"{size:<8}{threads:>4}{r['name']:>7}{r['params']:>9}"
                    f"{1 / r['steps_per_s']:>8.3f}"
                    f"{flops / 1e9:>7.1f}{rate / 1e9:>9.1f}{frac}{r['peak_mb']:>9.0f}"
                    f"{r['peak_mb'] - r['rss_before_mb']:>9.0f}"
                    f"{r['saved_mb']:>9.0f}{r['infer_s']:>16.2f}"
                )
            ratio = rows[1]["steps_per_s"] / rows[0]["steps_per_s"]
            infer_ratio = rows[0]["infer_s"] / rows[1]["infer_s"]
            step_mb = [r["peak_mb"] - r["rss_before_mb"] for r in rows]
            summary.append(
                (
                    size,
                    threads,
                    ratio,
                    infer_ratio,
                    mm,
                    step_mb,
                    [r["saved_mb"] for r in rows],
                    1 / rows[0]["steps_per_s"],
                    flops,
                    rows[0]["infer_s"],
                    rows[1].get("infer_mm_s"),
                )
            )
            results.append(
                {
                    "size": size,
                    "threads": threads,
                    "rows": rows,
                    "ratio": ratio,
                    "infer_ratio": infer_ratio,
                    "step_flops": flops,
                }
            )
    print()
    for size, threads, ratio, infer_ratio, mm, (naive_mb, dsid_mb), (
        naive_kept,
        dsid_kept,
    ), naive_s, flops, naive_infer_s, infer_mm_s in summary:
        print(
            f"{size}, {threads} thread(s): training step dsid / naive {ratio:.2f}x (target >= 3x: "
            f"{'PASS' if ratio >= 3 else 'MISS'}); inference {infer_ratio:.2f}x (target >= 5x: "
            f"{'PASS' if infer_ratio >= 5 else 'MISS'}); the step's own memory "
            f"{dsid_mb:.0f} vs {naive_mb:.0f} MB "
            f"(no higher: {'PASS' if dsid_mb <= naive_mb else 'MISS'}), kept for the backward "
            f"{dsid_kept:.0f} vs "
            f"{naive_kept:.0f} MB (no higher: {'PASS' if dsid_kept <= naive_kept else 'MISS'})"
        )
        if (
            mm
        ):  # the ceiling: the step's matrix products alone, at this machine's measured throughput
            floor_s = flops / mm
            print(
                f"  mm throughput at the step's shapes {mm / 1e9:.0f} GFLOP/s: "
                "the step's products alone take "
                f"{floor_s:.3f} s there, so no implementation of this step can be more than "
                f"{naive_s / floor_s:.2f}x the naive one on this machine; DSID reaches "
                f"{ratio * floor_s / naive_s:.0%} of that bound"
            )
        if (
            infer_mm_s
        ):  # the same for inference: every trial encoded once, then each sample's products
            print(
                f"  inference's products alone (each trial encoded once) take "
                f"{infer_mm_s:.3f} s there: at most "
                f"{naive_infer_s / infer_mm_s:.2f}x the naive inference; DSID reaches "
                f"{infer_ratio * infer_mm_s / naive_infer_s:.0%} of that bound"
            )
    memory = []
    if args.memory_bins:
        print(
            "\npeak memory of a DSID training step (maze size, 1 thread) against the trial length; "
            "'step' is the peak minus the memory before the first step"
        )
        for bins in args.memory_bins:
            r = run_isolated("dsid", "maze", 1, 1, args.device, 1, bins)
            memory.append(
                {
                    "bins": bins,
                    "peak_mb": r["peak_mb"],
                    "step_mb": r["peak_mb"] - r["rss_before_mb"],
                }
            )
            print(
                f"  T = {bins:>4}: peak {r['peak_mb']:>6.0f} MB, "
                f"step {memory[-1]['step_mb']:>6.0f} MB"
            )
        if len(memory) >= 2:
            per_bin = [
                (b["step_mb"] - a["step_mb"]) / (b["bins"] - a["bins"])
                for a, b in zip(memory, memory[1:])
            ]
            print(
                "  MB per added bin between successive lengths: "
                + ", ".join(f"{x:.2f}" for x in per_bin)
                + " (equal values: memory linear in T)"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "memory": memory, "device": args.device}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
