"""A zoo of synthetic data sets with known ground truth, each written as a DSID tensor file.

:data:`ZOO` maps a member's name to a :class:`ZooMember`; ``ZOO[name].write(path, seed=0)`` writes
it at full size (train/valid/test trials, ``neurons/heldout`` about 20-25% held-in first, true rates
and latents per split). Each member's module has a ``make_<name>`` function
(``write_multiarea_feedback`` for the multi-area one) whose keyword arguments set the size.
``lorenz`` is :func:`~dsid.data.synth_lorenz.make_lorenz_benchmark` with its defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict

from dsid.data.synth_lorenz import make_lorenz_benchmark
from dsid.data.tensor_file import DSIDData, write_tensor_file
from dsid.zoo.members.chaotic_rnn import make_chaotic_rnn
from dsid.zoo.members.context_integration import make_context_integration
from dsid.zoo.members.high_rate import make_high_rate
from dsid.zoo.members.integrator import make_integrator
from dsid.zoo.members.low_rate import make_low_rate
from dsid.zoo.members.multiarea_feedback import write_multiarea_feedback
from dsid.zoo.members.multiregion_rnn import make_multiregion_rnn
from dsid.zoo.members.multiregion_task import make_multiregion_task
from dsid.zoo.members.sensory import make_sensory


@dataclass(frozen=True)
class ZooMember:
    """One zoo data set: ``write(out_path, seed=0) -> Path`` writes it, at full size, as a DSID
    tensor file."""

    name: str
    summary: str  # one line: what it stands for and why it is in the zoo
    write: Callable[..., Path]


def _writer(make: Callable[..., DSIDData]) -> Callable[..., Path]:
    def write(out_path, seed: int = 0) -> Path:
        return write_tensor_file(out_path, make(seed=seed))

    write.__doc__ = f"Write ``{make.__name__}(seed=seed)`` to ``out_path``; return the path."
    return write


def _write_multiarea(out_path, seed: int = 0) -> Path:
    return write_multiarea_feedback(out_path, seed=seed)


_MEMBERS = (
    ZooMember(
        "lorenz",
        "Poisson neurons on the 3-D Lorenz attractor: the standard smooth chaotic "
        "low-dimensional benchmark",
        _writer(make_lorenz_benchmark),
    ),
    ZooMember(
        "chaotic_rnn",
        "Poisson neurons reading a 50-unit chaotic RNN from 40 initial conditions: the "
        "classic LFADS benchmark, high-dimensional autonomous dynamics",
        _writer(make_chaotic_rnn),
    ),
    ZooMember(
        "integrator",
        "an evidence accumulator (2-D) driven by unobserved random clicks: tests "
        "inferring unobserved inputs",
        _writer(make_integrator),
    ),
    ZooMember(
        "context_integration",
        "200 neurons, 300 trials: an unobserved context cue selects which of two noisy evidence "
        "streams a bounded accumulator integrates (a cognitive task with few trials)",
        _writer(make_context_integration),
    ),
    ZooMember(
        "sensory",
        "damped oscillators and a leaky filter driven by known stimuli (ext_inputs): tests "
        "using external inputs",
        _writer(make_sensory),
    ),
    ZooMember(
        "low_rate",
        "100 neurons at 1-5 spikes/s on a noisy van der Pol cycle: tests inference from "
        "sparse spiking",
        _writer(make_low_rate),
    ),
    ZooMember(
        "high_rate",
        "50 neurons at 20-100 spikes/s on the Rossler attractor: tests dense counts on "
        "another chaotic system",
        _writer(make_high_rate),
    ),
    ZooMember(
        "multiarea_feedback",
        "three areas with a delayed A0<->A1 feedback loop and A1->A2: tests "
        "recovering directed, delayed communication",
        _write_multiarea,
    ),
    ZooMember(
        "multiregion_rnn",
        "four coupled 50-unit chaotic rate RNNs (CURBD-style) with sparse low-rank, delayed links "
        "and a feedback loop: tests recovering communication between chaotic regions",
        _writer(make_multiregion_rnn),
    ),
    ZooMember(
        "multiregion_task",
        "a context-dependent decision over three regions (sensory, integrator, context) with "
        "delayed gating and feedback channels, every input unobserved: tests communication "
        "in a task-performing network",
        _writer(make_multiregion_task),
    ),
)

ZOO: Dict[str, ZooMember] = {m.name: m for m in _MEMBERS}

# NLB-layout members (written by :func:`dsid.zoo.catalog.write_member`): (NWB training-file trials,
# evaluation trials). A quarter of the training file is NLB's 'val' part and 20% of the rest is
# held back as DSID's valid split, so these give about 75, 250 and 1,000 DSID training trials (like
# MC_Maze small / medium / full).
MAZE_SIZES = {"maze_small": (125, 40), "maze_medium": (417, 100), "maze_large": (1667, 300)}
MAZE_BIN_MS = 20


def members() -> Dict[str, str]:
    """Every zoo member's name and one-line summary, the NLB-layout ones included."""
    out = {name: m.summary for name, m in ZOO.items()}
    for name, (n, _) in MAZE_SIZES.items():
        out[name] = (
            f"condition-structured rotational reaching in the NLB NWB layout ({n} trials in the "
            f"training file, {MAZE_BIN_MS} ms bins): NLB's four metrics on data of that size"
        )
    return out


__all__ = ["MAZE_BIN_MS", "MAZE_SIZES", "ZOO", "ZooMember", "members"]
