"""The whole ground-truth zoo: the tensor-file members of :data:`dsid.zoo.members.ZOO` and
rotational reaching in the NLB NWB layout (MC_Maze-like) at three sizes, prepared into DSID
files."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Dict, Optional

from dsid.nlb.prepare import prepare
from dsid.nlb.synth import write_synthetic_nlb
from dsid.zoo.members import ZOO

# NLB-layout members: (NWB training-file trials, evaluation trials). A quarter of the training file
# is NLB's 'val' part and 20% of the rest is held back as DSID's valid split, so these give about
# 75, 250 and 1,000 DSID training trials (like MC_Maze small / medium / full).
MAZE_SIZES = {"maze_small": (125, 40), "maze_medium": (417, 100), "maze_large": (1667, 300)}
MAZE_BIN_MS = 20


def members() -> Dict[str, str]:
    """Every zoo member's name and one-line summary."""
    out = {name: m.summary for name, m in ZOO.items()}
    for name, (n, _) in MAZE_SIZES.items():
        out[name] = (
            f"condition-structured rotational reaching in the NLB NWB layout ({n} trials in the "
            f"training file, {MAZE_BIN_MS} ms bins): NLB's four metrics on data of that size"
        )
    return out


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
