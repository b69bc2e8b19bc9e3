"""The whole ground-truth zoo: the tensor-file members of :data:`dsid.zoo.members.ZOO` and
rotational reaching in the NLB NWB layout (MC_Maze-like) at three sizes, prepared into DSID
files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Optional

from dsid.nlb.prepare import prepare
from dsid.nlb.synth import write_synthetic_nlb
from dsid.zoo.members import MAZE_BIN_MS, MAZE_SIZES, ZOO, members


def write_member(
    name: str, out_dir, seed: int = 0, log: Optional[Callable[[str], None]] = None
) -> Path:
    """Write zoo member ``name`` into ``out_dir`` as ``<name>.h5`` (NLB-layout members also keep
    their NWB files in ``<name>_nwb/``); return the DSID tensor file."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if name in ZOO:
        return ZOO[name].write(out_dir / f"{name}.h5", seed=seed)
    if name not in MAZE_SIZES:
        raise ValueError(f"zoo member {name!r}: expected one of {', '.join(members())}")
    nwb_dir = out_dir / f"{name}_nwb"
    if nwb_dir.exists():
        shutil.rmtree(nwb_dir)
    write_synthetic_nlb("mc_maze", nwb_dir, seed=seed, n_trials=MAZE_SIZES[name])
    return prepare(
        "mc_maze", nwb_dir, MAZE_BIN_MS, "val", out_dir / f"{name}.h5", seed=seed, log=log
    )
