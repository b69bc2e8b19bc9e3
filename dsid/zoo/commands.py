"""``dsid synth <member>``: write one zoo data set (every member of :data:`~dsid.zoo.members.ZOO`
but ``lorenz``, which ``dsid synth lorenz`` writes with more options)."""

from __future__ import annotations

from dsid.data.tensor_file import load_tensor_file
from dsid.zoo.members import ZOO, ZooMember


def _handler(member: ZooMember):
    def run(args) -> int:
        path = member.write(args.out, seed=args.seed)
        d = load_tensor_file(path)
        trials = tuple(sd.n_trials for sd in d.splits.values())
        print(
            f"wrote {member.name} to {path} (seed {args.seed}, trials {trials}, {d.n_time} bins of "
            f"{d.bin_ms:g} ms, {d.n_neurons} neurons, {int(d.heldout.sum())} held out, "
            f"{d.latent_size} latent dims)"
        )
        return 0

    return run


def register_cli(top, synth) -> None:
    """Add ``dsid synth <member> --out FILE [--seed S]`` for each zoo member except ``lorenz``."""
    for name, member in ZOO.items():
        if name == "lorenz":
            continue
        p = synth.add_parser(name, help=member.summary)
        p.add_argument("--out", required=True, help="DSID tensor file to write (.h5)")
        p.add_argument("--seed", type=int, default=0)
        p.set_defaults(func=_handler(member))
