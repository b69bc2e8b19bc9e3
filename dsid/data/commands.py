"""The data commands: ``dsid synth lorenz``, ``dsid synth multiarea`` (synthetic data with known
ground truth) and ``dsid convert nwb`` (recordings into DSID tensor files)."""

from __future__ import annotations

import argparse
from typing import Tuple

import numpy as np

from dsid.data.multiarea.system import EVENT_SIZE, EVENTS_PER_TRIAL


def register_cli(top, synth) -> None:
    """Add ``dsid synth lorenz``, ``dsid synth multiarea`` and ``dsid convert nwb``."""
    _register_lorenz(synth)
    _register_multiarea(synth)
    _register_convert(top)


def _cmd_lorenz(args) -> int:
    from dsid.data.synth_lorenz import write_lorenz_benchmark

    trials = tuple(int(x) for x in args.trials.split(","))
    if len(trials) != 3:
        raise SystemExit(
            f"--trials: expected three comma-separated counts (train,valid,test), got {args.trials}"
        )
    path = write_lorenz_benchmark(
        args.out,
        seed=args.seed,
        n_trials=trials,
        n_time=args.bins,
        n_neurons=args.neurons,
        n_heldout=args.heldout,
        observation=args.observation,
        calcium_tau_ms=args.calcium_tau_ms,
        calcium_noise=args.calcium_noise,
    )
    kind = (
        ""
        if args.observation == "spikes"
        else f", calcium traces (tau {args.calcium_tau_ms} ms, "
        f"noise {args.calcium_noise}; load with counts=False)"
    )
    print(
        f"wrote Lorenz benchmark to {path} (seed {args.seed}, trials {trials}, {args.bins} bins, "
        f"{args.neurons} neurons, {args.heldout} held out{kind})"
    )
    return 0


def _register_lorenz(synth) -> None:
    """``dsid synth lorenz``."""
    p = synth.add_parser("lorenz", help="the Lorenz benchmark (Poisson neurons on Lorenz latents)")
    p.add_argument("--out", required=True, help="DSID tensor file to write (.h5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trials", default="800,200,200", help="train,valid,test trial counts")
    p.add_argument("--bins", type=int, default=100, help="bins of 10 ms per trial")
    p.add_argument("--neurons", type=int, default=50)
    p.add_argument("--heldout", type=int, default=10)
    p.add_argument(
        "--observation",
        choices=("spikes", "calcium"),
        default="spikes",
        help="spikes: Poisson counts (default); calcium: the same spikes as calcium-like "
        "traces (exponential transients plus noise, small values zeroed)",
    )
    p.add_argument("--calcium-tau-ms", type=float, default=50.0, help="calcium transient decay")
    p.add_argument(
        "--calcium-noise",
        type=float,
        default=0.05,
        help="noise sd, in spikes per bin (also the threshold below which values become 0)",
    )
    p.set_defaults(func=_cmd_lorenz)


def _trials(text: str) -> Tuple[int, int, int]:
    try:
        n = tuple(int(x) for x in text.split(","))
    except ValueError:
        n = ()
    if len(n) != 3 or min(n) < 1:
        raise argparse.ArgumentTypeError(
            f"expected three positive counts 'train,valid,test', got {text!r}"
        )
    return n


def _cmd_multiarea(args) -> int:
    from dsid.data.multiarea.report import coupling_report
    from dsid.data.multiarea.synth import synth_multiarea
    from dsid.data.tensor_file import load_tensor_file

    path = synth_multiarea(
        args.out,
        seed=args.seed,
        n_areas=args.areas,
        n_trials=args.trials,
        neurons_per_area=args.neurons_per_area,
        events_per_trial=args.events_per_trial,
        event_size=args.event_size,
        unrecorded_driver=args.unrecorded_driver,
        external_input=args.external_input,
    )
    d = load_tensor_file(path)
    print(
        f"wrote {path}: {d.n_areas} areas, {d.n_neurons} neurons "
        f"({int(d.heldout.sum())} held out), "
        f"trials {args.trials}, T={d.n_time}, bin {d.bin_ms:g} ms"
    )
    report = coupling_report(
        seed=args.seed,
        n_areas=args.areas,
        events_per_trial=args.events_per_trial,
        event_size=args.event_size,
        unrecorded_driver=args.unrecorded_driver,
        external_input=args.external_input,
    )
    for s, t in zip(*np.nonzero(d.delay_bins >= 0)):
        k = d.splits["train"].truth_messages[f"{s}_{t}"].shape[-1]
        loss = report["edges"][f"{s}_{t}"]["one_bin_off_loss"]
        print(
            f"  edge {d.area_names[s]}->{d.area_names[t]}: delay {d.delay_bins[s, t]} bins, "
            f"rank {k}, "
            f"strength {d.effectome[s, t]:.3f}; one bin off, the source's latents explain "
            f"{100 * loss:.1f}% less of the message"
        )
    for a, r in report["areas"].items():
        print(
            f"  {d.area_names[a]}: {100 * r['input_determined']:.0f}% of its latent variance "
            "is set by "
            "its incoming messages"
        )
    if args.unrecorded_driver:
        print(
            f"  hidden driver -> {d.area_names[0]}, {d.area_names[-1]} "
            "(delay 2, rank 1; not in effectome)"
        )
    if args.external_input:
        print(f"  external pulses -> {d.area_names[0]}")
    return 0


def _register_multiarea(synth) -> None:
    """``dsid synth multiarea``."""
    p = synth.add_parser(
        "multiarea", help="multi-area system with known delayed low-rank communication"
    )
    p.add_argument("--out", required=True, help="output DSID tensor file (.h5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--areas", type=int, default=3)
    p.add_argument("--neurons-per-area", type=int, default=80)
    p.add_argument(
        "--trials", type=_trials, default=(600, 150, 150), help="train,valid,test trial counts"
    )
    p.add_argument(
        "--events-per-trial",
        type=float,
        default=EVENTS_PER_TRIAL,
        help="private input events per area and trial (mean)",
    )
    p.add_argument(
        "--event-size",
        type=float,
        default=EVENT_SIZE,
        help="norm of each event's kick of the latents",
    )
    p.add_argument(
        "--unrecorded-driver", action="store_true", help="add a hidden area driving two areas"
    )
    p.add_argument("--external-input", action="store_true", help="add pulse inputs to area 0")
    p.set_defaults(func=_cmd_multiarea)


def _window(text: str):
    try:
        start, end = (float(x) for x in text.split(","))
    except ValueError:
        raise SystemExit(
            f"--window {text!r}: expected START,END in ms around the alignment, e.g. -200,600"
        )
    return start, end


def _nwb(args) -> int:
    """Errors (a missing or non-NWB file, a bad option) are reported by ``dsid`` as one line."""
    if not args.bin_ms > 0:
        raise ValueError(f"--bin-ms {args.bin_ms:g}: expected a positive bin width in ms")
    from dsid.data.convert_nwb import convert_nwb
    from dsid.data.validation import check_nwb_file

    check_nwb_file(args.file)
    data = convert_nwb(
        args.file,
        bin_ms=args.bin_ms,
        align=args.align,
        window_ms=_window(args.window) if args.window else None,
        heldout=args.heldout,
        area_column=args.area_column,
        condition_column=args.condition_column,
        valid_fraction=args.valid_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        out=args.out,
    )
    trials = {k: sd.n_trials for k, sd in data.splits.items()}
    print(
        f"wrote {args.out}: trials {trials}, {data.n_time} bins of {data.bin_ms:g} ms, "
        f"{data.n_neurons} neurons "
        f"({int(data.heldout.sum())} held out) in {data.n_areas} area(s)"
    )
    return 0


def _register_convert(top) -> None:
    """``dsid convert nwb``."""
    convert = top.add_parser("convert", help="convert recordings (NWB) into a DSID tensor file")
    sub = convert.add_subparsers(dest="convert_kind", metavar="FORMAT")
    convert.set_defaults(func=lambda a: convert.print_help() or 2)
    p = sub.add_parser("nwb", help="an NWB file with a units table and a trials table")
    p.add_argument("file", help="the .nwb file")
    p.add_argument("--out", required=True, help="DSID tensor file to write (.h5)")
    p.add_argument("--bin-ms", type=float, default=10.0, help="bin width (default 10 ms)")
    p.add_argument(
        "--align", default="start_time", help="trials-table column to align on (default start_time)"
    )
    p.add_argument(
        "--window",
        default=None,
        help="START,END in ms around the alignment (default 0 to the shortest trial)",
    )
    p.add_argument(
        "--heldout",
        type=int,
        default=None,
        help="held-out neurons, chosen at random (default a fifth)",
    )
    p.add_argument("--area-column", default=None, help="units-table column naming each unit's area")
    p.add_argument(
        "--condition-column", default=None, help="trials-table column with each trial's condition"
    )
    p.add_argument("--valid-fraction", type=float, default=0.2)
    p.add_argument("--test-fraction", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_nwb)
