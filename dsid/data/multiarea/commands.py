"""``dsid synth multiarea``: write the synthetic multi-area system and report its ground truth."""
from __future__ import annotations

import argparse
import sys
from typing import Tuple

import numpy as np

from dsid.data.multiarea.report import coupling_report
from dsid.data.multiarea.synth import EVENT_SIZE, EVENTS_PER_TRIAL, synth_multiarea
from dsid.data.tensor_file import load_tensor_file


def _trials(text: str) -> Tuple[int, int, int]:
    try:
        n = tuple(int(x) for x in text.split(","))
    except ValueError:
        n = ()
    if len(n) != 3 or min(n) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive counts 'train,valid,test', got {text!r}")
    return n


def _cmd_multiarea(args) -> int:
    try:
        path = synth_multiarea(args.out, seed=args.seed, n_areas=args.areas, n_trials=args.trials,
                               neurons_per_area=args.neurons_per_area, events_per_trial=args.events_per_trial,
                               event_size=args.event_size, unrecorded_driver=args.unrecorded_driver,
                               external_input=args.external_input)
    except ValueError as err:
        print(f"dsid synth multiarea: {err}", file=sys.stderr)
        return 2
    d = load_tensor_file(path)
    print(f"wrote {path}: {d.n_areas} areas, {d.n_neurons} neurons ({int(d.heldout.sum())} held out), "
          f"trials {args.trials}, T={d.n_time}, bin {d.bin_ms:g} ms")
    report = coupling_report(seed=args.seed, n_areas=args.areas, events_per_trial=args.events_per_trial,
                             event_size=args.event_size, unrecorded_driver=args.unrecorded_driver,
                             external_input=args.external_input)
    for s, t in zip(*np.nonzero(d.delay_bins >= 0)):
        k = d.splits["train"].truth_messages[f"{s}_{t}"].shape[-1]
        loss = report["edges"][f"{s}_{t}"]["one_bin_off_loss"]
        print(f"  edge {d.area_names[s]}->{d.area_names[t]}: delay {d.delay_bins[s, t]} bins, rank {k}, "
              f"strength {d.effectome[s, t]:.3f}; one bin off, the source's latents explain "
              f"{100 * loss:.1f}% less of the message")
    for a, r in report["areas"].items():
        print(f"  {d.area_names[a]}: {100 * r['input_determined']:.0f}% of its latent variance is set by "
              "its incoming messages")
    if args.unrecorded_driver:
        print(f"  hidden driver -> {d.area_names[0]}, {d.area_names[-1]} (delay 2, rank 1; not in effectome)")
    if args.external_input:
        print(f"  external pulses -> {d.area_names[0]}")
    return 0


def register_cli(top, synth) -> None:
    """Add ``dsid synth multiarea``."""
    p = synth.add_parser("multiarea", help="multi-area system with known delayed low-rank communication")
    p.add_argument("--out", required=True, help="output DSID tensor file (.h5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--areas", type=int, default=3)
    p.add_argument("--neurons-per-area", type=int, default=80)
    p.add_argument("--trials", type=_trials, default=(600, 150, 150), help="train,valid,test trial counts")
    p.add_argument("--events-per-trial", type=float, default=EVENTS_PER_TRIAL,
                   help="private input events per area and trial (mean)")
    p.add_argument("--event-size", type=float, default=EVENT_SIZE, help="norm of each event's kick of the latents")
    p.add_argument("--unrecorded-driver", action="store_true", help="add a hidden area driving two areas")
    p.add_argument("--external-input", action="store_true", help="add pulse inputs to area 0")
    p.set_defaults(func=_cmd_multiarea)
