"""``dsid convert nwb FILE.nwb --out FILE.h5``: recordings from other formats into DSID tensor files."""
from __future__ import annotations

import sys

from dsid.data.convert_nwb import convert_nwb
from dsid.data.tensor_file import DataFileError


def _window(text: str):
    try:
        start, end = (float(x) for x in text.split(","))
    except ValueError:
        raise SystemExit(f"--window {text!r}: expected START,END in ms around the alignment, e.g. -200,600")
    return start, end


def _nwb(args) -> int:
    try:
        data = convert_nwb(args.file, bin_ms=args.bin_ms, align=args.align,
                           window_ms=_window(args.window) if args.window else None,
                           heldout=args.heldout, area_column=args.area_column,
                           condition_column=args.condition_column, valid_fraction=args.valid_fraction,
                           test_fraction=args.test_fraction, seed=args.seed, out=args.out)
    except (DataFileError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    trials = {k: sd.n_trials for k, sd in data.splits.items()}
    print(f"wrote {args.out}: trials {trials}, {data.n_time} bins of {data.bin_ms:g} ms, {data.n_neurons} neurons "
          f"({int(data.heldout.sum())} held out) in {data.n_areas} area(s)")
    return 0


def register_cli(top, synth) -> None:
    convert = top.add_parser("convert", help="convert recordings (NWB) into a DSID tensor file")
    sub = convert.add_subparsers(dest="convert_kind", metavar="FORMAT")
    convert.set_defaults(func=lambda a: convert.print_help() or 2)
    p = sub.add_parser("nwb", help="an NWB file with a units table and a trials table")
    p.add_argument("file", help="the .nwb file")
    p.add_argument("--out", required=True, help="DSID tensor file to write (.h5)")
    p.add_argument("--bin-ms", type=float, default=10.0, help="bin width (default 10 ms)")
    p.add_argument("--align", default="start_time", help="trials-table column to align on (default start_time)")
    p.add_argument("--window", default=None, help="START,END in ms around the alignment (default 0 to the "
                                                  "shortest trial)")
    p.add_argument("--heldout", type=int, default=None, help="held-out neurons, chosen at random (default a fifth)")
    p.add_argument("--area-column", default=None, help="units-table column naming each unit's area")
    p.add_argument("--condition-column", default=None, help="trials-table column with each trial's condition")
    p.add_argument("--valid-fraction", type=float, default=0.2)
    p.add_argument("--test-fraction", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_nwb)
