"""The Bayes ceiling of the ``low_rate`` zoo member: the best co-bps any model can reach from its held-in spikes.

The member's state is a noisy van der Pol oscillator (a diffusion), so the true rates (the oracle) carry
noise the spikes do not fully reveal, the sparser they are the less. Knowing the generative model exactly
(its start distribution, its dynamics, its noise and the neurons' log-linear read-out, fitted here from
the file's true latents and rates), a particle smoother (``dsid.evaluation.particle_smoother``) gives
each validation trial's posterior mean rates from its held-in spikes: the best prediction of the
held-out neurons there is. Its co-bps, rate R2 and latent R2 are the ceilings a fitted model can be held
to; with ``--fit RUN_DIR`` (``dsid fit`` run directories) the models' figures are set against them.

    .venv/bin/python benchmarks/bayes_ceiling.py --zoo /tmp/zoo [--fit RUN_DIR ...]
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsid.autofit.zoo import write_member  # noqa: E402
from dsid.data.integrate import rk4  # noqa: E402
from dsid.data.tensor_file import load_tensor_file  # noqa: E402
from dsid.data.zoo.low_rate import bin_dt, initial_states, limit_cycle, make_low_rate, van_der_pol  # noqa: E402
from dsid.evaluation.metrics import bits_per_spike, fit_linear_map, latent_r2, rate_r2  # noqa: E402
from dsid.evaluation.particle_smoother import StateSpace, smoothed_rates  # noqa: E402


def low_rate_model(data) -> tuple:
    """The member's generative model as a :class:`StateSpace` (its parameters are ``make_low_rate``'s
    defaults; the read-out is fitted from the training split's truth) and the read-out's largest
    error in log-rate (float32 rounding when the fit is exact)."""
    p = {k: v.default for k, v in inspect.signature(make_low_rate).parameters.items()}
    f, dt = van_der_pol(p["mu"]), bin_dt(data.bin_ms, p["freq_hz"])
    cycle = limit_cycle(f, dt)
    tr = data.splits["train"]
    z = tr.truth_latents.reshape(-1, tr.truth_latents.shape[-1]).astype(np.float64)
    log_r = np.log(tr.truth_rates.reshape(-1, tr.truth_rates.shape[-1]).astype(np.float64))
    w = fit_linear_map(z, log_r, ridge=0.0)
    err = float(np.abs(np.c_[z, np.ones(len(z))] @ w - log_r).max())
    model = StateSpace(prior=lambda rng, n: initial_states(rng, n, cycle, p["amp_range"]),
                       step=lambda x: rk4(f, x, 2, dt)[:, 1], noise_sd=p["noise"] * np.sqrt(dt),
                       log_rates=lambda x: x @ w[:-1] + w[-1])
    return model, err


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zoo", default="runs/zoo", help="zoo directory (low_rate.h5 is written there if absent)")
    ap.add_argument("--fit", nargs="*", default=[], help="dsid fit run directories of the member to compare")
    ap.add_argument("--particles", type=int, default=1000)
    ap.add_argument("--paths", type=int, default=100, help="smoothed trajectories averaged per trial")
    ap.add_argument("--train-trials", type=int, default=200, help="training trials smoothed for the latent map")
    args = ap.parse_args(argv)
    path = Path(args.zoo) / "low_rate.h5"
    if not path.exists():
        write_member("low_rate", path)
    data = load_tensor_file(path, require_splits=("train", "valid"))
    model, err = low_rate_model(data)
    heldout = np.asarray(data.heldout, bool)
    observed = np.flatnonzero(~heldout)
    va, tr = data.splits["valid"], data.splits["train"]
    t0 = time.perf_counter()
    rates, states = smoothed_rates(model, va.spikes[..., observed], observed, args.particles, args.paths,
                                   desc="smoothing validation trials")
    n_tr = min(args.train_trials, tr.spikes.shape[0])
    _, states_tr = smoothed_rates(model, tr.spikes[:n_tr, :, observed], observed, args.particles, args.paths,
                                  seed=1, desc="smoothing training trials")
    oracle = bits_per_spike(va.truth_rates[..., heldout], va.spikes[..., heldout])
    ceiling = bits_per_spike(rates[..., heldout], va.spikes[..., heldout])
    lat = latent_r2(states_tr, tr.truth_latents[:n_tr], states, va.truth_latents)
    print(f"low_rate: {va.spikes.shape[0]} validation trials, {observed.size} held-in + {heldout.sum()} held-out "
          f"neurons; read-out fitted from the truth (largest log-rate error {err:.1e}); {args.particles} "
          f"particles, {args.paths} paths, {time.perf_counter() - t0:.0f} s")
    print(f"  oracle (true rates)          co-bps {oracle:.4f}")
    print(f"  Bayes ceiling (smoother)     co-bps {ceiling:.4f} = {ceiling / oracle:.3f} x oracle, "
          f"rate R2 {rate_r2(rates, va.truth_rates):.3f}, latent R2 {lat:.3f}")
    for run in args.fit:
        m = json.loads((Path(run) / "fit_report.json").read_text())["metrics"]
        co = m.get("val/co_bps", float("nan"))
        print(f"  {run}: co-bps {co:.4f} = {co / oracle:.3f} x oracle = {co / ceiling:.3f} x ceiling, "
              f"rate R2 {m.get('val/rate_r2', float('nan')):.3f}, latent R2 {m.get('val/latent_r2', float('nan')):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
