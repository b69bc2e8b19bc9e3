"""Training-step and inference speed of DSID's LFADS at NLB MC_Maze sizes vs a naive reference, in one run.

Sizes: 182 neurons (137 held-in as encoder input, 45 held-out), 140 bins, batch 128, encoders 64 units
per direction, controller 64, generator 100, initial condition 100, inferred inputs 4, factors 40.

The naive reference is written here: every RNN (both encoder directions of both encoders, the
controller and the generator) is an ``nn.GRUCell`` stepped in a Python loop. DSID runs its encoders
as fused ``nn.GRU`` calls and only loops where the model is sequential by nature (controller ->
generator -> factors feedback).

Each model is timed in its own subprocess (so the peak resident memory of each is its own) after
warm-up steps; a step is forward + backward + AdamW update. Inference is the posterior average over
``--samples`` samples for the batch's trials (DSID: ``dsid.evaluation.inference.infer_split``, every
sample of a trial in one pass; the reference: one forward pass per sample, as public implementations do). On a GPU (``--device cuda``) the fused
encoder calls become cuDNN kernels and the gap to the loop grows, since each Python-loop step costs a
kernel launch; peak memory is then ``torch.cuda.max_memory_allocated``.

    .venv/bin/python benchmarks/speed_lfads.py [--steps 5] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time

import torch
from torch import nn

N_IN, N_OUT, T, B = 137, 45, 140, 128
ENC, CON, GEN, IC, CO, FAC = 64, 64, 100, 100, 4, 40


def dsid_model():
    from dsid.models.sae import SequentialAutoencoder

    cfg = {"ic_size": IC, "co_size": CO, "factor_size": FAC,
           "encoder": {"name": "bigru", "hidden_size": ENC, "ci_size": ENC, "dropout": 0.05},
           "generator": {"name": "lfads", "hidden_size": GEN, "controller_size": CON, "dropout": 0.05},
           "observation": {"name": "poisson"}, "ic_prior": {"name": "gaussian"},
           "co_prior": {"name": "ar1"}, "augmentations": []}
    info = {"heldout": [False] * N_IN + [True] * N_OUT}
    model = SequentialAutoencoder.from_config(cfg, info)

    def loss_fn(spikes):
        out = model(spikes[..., :N_IN])
        terms = model.loss_terms(out, spikes)
        return terms["recon"] + terms["kl_ic"] + terms["kl_co"]

    return model, loss_fn


class NaiveLFADS(nn.Module):
    """The reference: the same architecture with every recurrence a Python loop of GRUCells."""

    def __init__(self):
        super().__init__()
        self.ic_f, self.ic_b = nn.GRUCell(N_IN, ENC), nn.GRUCell(N_IN, ENC)
        self.ci_f, self.ci_b = nn.GRUCell(N_IN, ENC), nn.GRUCell(N_IN, ENC)
        self.ic_head = nn.Linear(2 * ENC, 2 * IC)
        self.ic_to_g = nn.Linear(IC, GEN)
        self.controller = nn.GRUCell(2 * ENC + FAC, CON)
        self.co_head = nn.Linear(CON, 2 * CO)
        self.gen = nn.GRUCell(CO, GEN)
        self.fac = nn.Linear(GEN, FAC, bias=False)
        self.readout = nn.Linear(FAC, N_IN + N_OUT)

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
        x = spikes[..., :N_IN]
        _, hf = self.run(self.ic_f, x)
        _, hb = self.run(self.ic_b, x, reverse=True)
        mean, logvar = self.ic_head(torch.cat([hf, hb], -1)).chunk(2, -1)
        ic = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        cf, _ = self.run(self.ci_f, x)
        cb, _ = self.run(self.ci_b, x, reverse=True)
        ci = torch.cat([cf, cb], -1)
        g = self.ic_to_g(ic)
        f = self.fac(g)
        c = g.new_zeros(g.shape[0], CON)
        log_rates, kl_co = [], 0.0
        for t in range(x.shape[1]):
            c = self.controller(torch.cat([ci[:, t], f], -1), c)
            m, lv = self.co_head(c).chunk(2, -1)
            u = m + torch.exp(0.5 * lv) * torch.randn_like(m)
            kl_co = kl_co + 0.5 * (m ** 2 + lv.exp() - 1 - lv).sum(-1)
            g = self.gen(u, g)
            f = self.fac(g)
            log_rates.append(self.readout(f))
        log_rates = torch.stack(log_rates, 1)
        nll = (log_rates.exp() - spikes * log_rates).sum((1, 2))
        kl_ic = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum(-1)
        return (nll + kl_ic + kl_co).mean()


def naive_model():
    model = NaiveLFADS()
    return model, model


def measure(name: str, steps: int, device: str, samples: int, queue) -> None:
    torch.manual_seed(0)
    model, loss_fn = dsid_model() if name == "dsid" else naive_model()
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    spikes = torch.poisson(torch.full((B, T, N_IN + N_OUT), 0.3, device=device))
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
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    model.eval()
    t0 = time.perf_counter()
    if name == "dsid":
        from dsid.evaluation.inference import infer_split

        infer_split(model, spikes.cpu().numpy(), n_samples=samples, batch_size=B)
    else:
        with torch.inference_mode():
            for _ in range(samples):
                loss_fn(spikes)
    if device == "cuda":
        torch.cuda.synchronize()
    infer_s = time.perf_counter() - t0
    queue.put({"name": name, "steps_per_s": steps / elapsed, "peak_mb": peak / 2 ** 20, "infer_s": infer_s,
               "rss_before_mb": rss0 / 1024, "params": sum(p.numel() for p in model.parameters())})


def run_isolated(name, steps, device, samples):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=measure, args=(name, steps, device, samples, q))
    p.start()
    res = q.get()
    p.join()
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--samples", type=int, default=20, help="posterior samples averaged in the inference timing")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    print(f"LFADS training step at MC_Maze sizes (B={B}, T={T}, N={N_IN}+{N_OUT}), device {args.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = [run_isolated(n, args.steps, args.device, args.samples) for n in ("naive", "dsid")]
    print(f"{'model':<8}{'params':>10}{'steps/s':>10}{'s/step':>9}{'peak MB':>10}"
          f"{f'infer {args.samples} samples (s)':>28}")
    for r in rows:
        print(f"{r['name']:<8}{r['params']:>10}{r['steps_per_s']:>10.3f}{1 / r['steps_per_s']:>9.2f}"
              f"{r['peak_mb']:>10.0f}{r['infer_s']:>28.2f}")
    ratio = rows[1]["steps_per_s"] / rows[0]["steps_per_s"]
    infer_ratio = rows[0]["infer_s"] / rows[1]["infer_s"]
    print(f"training step, dsid / naive: {ratio:.2f}x (target >= 3x): {'PASS' if ratio >= 3 else 'MISS'}")
    print(f"inference, dsid / naive: {infer_ratio:.2f}x (target >= 5x): {'PASS' if infer_ratio >= 5 else 'MISS'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "ratio": ratio, "infer_ratio": infer_ratio, "device": args.device}, f,
                      indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
