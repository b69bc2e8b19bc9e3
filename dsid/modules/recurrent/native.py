"""The compiled recurrent scans (``csrc/``; also dropout masks and a log-factorial for count
likelihoods), built with the machine's C++ compiler on first use.

Building takes about a minute once per machine and environment (cached by PyTorch under
``$TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``, one build per PyTorch install,
Python and version of the sources: :func:`build_key`), with OpenMP where the compiler
has it (the element-wise passes then use PyTorch's threads; with a compiler without it, such as
Apple's clang, the failed OpenMP attempt is remembered in that cache, next to the builds, and later
processes load the single-threaded build directly until the sources change). Without a compiler, or
with ``DSID_NATIVE=0``, models fall back to their step-by-step unrolls (same maths, several times
slower on a CPU) after one warning naming the cause.

Loading it also asks the C library's allocator (glibc) to keep freed large blocks for reuse
(``DSID_KEEP_FREED_MEMORY=0`` leaves the allocator alone): a training step allocates the same large
buffers again and again, and memory fresh from the system costs a page fault per page on first
touch. The process's peak memory is unchanged; it is returned to the system when the process ends.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import warnings
from pathlib import Path
from types import ModuleType
from typing import Optional

import torch

_SOURCES = ("bindings.cpp", "dropout.cpp", "gru_scan.cpp", "lfads_scan.cpp", "log_factorial.cpp")
_state = {"tried": False, "module": None}
log = logging.getLogger(__name__)


def native_scans() -> Optional[ModuleType]:
    """The compiled module, or None when it is disabled (``DSID_NATIVE=0``) or cannot be built."""
    if os.environ.get("DSID_NATIVE", "1") == "0":
        return None
    if not _state["tried"]:
        _state["tried"] = True
        _state["module"] = _build()
        if _state["module"] is not None and os.environ.get("DSID_KEEP_FREED_MEMORY", "1") != "0":
            _state["module"].keep_freed_memory()
    return _state["module"]


def _build() -> Optional[ModuleType]:
    from torch.utils.cpp_extension import load

    src = Path(__file__).parent / "csrc"
    if (
        shutil.which("ninja") is None
    ):  # PyTorch calls `ninja` from PATH; the pip package has its own copy
        try:
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except ImportError:
            pass
    log.info("loading DSID's compiled recurrent core (built once, about a minute)")
    # one build per instruction set (a cache shared by machines with different CPUs stays valid);
    # with OpenMP the element-wise passes are split across PyTorch's threads (its parallel_for is
    # compiled into the module), without it (a compiler lacking OpenMP) they run on one thread
    wide = torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
    isa = ["-mavx2", "-mfma"] if wide else []
    name = f"dsid_recurrent_{'avx2' if wide else 'base'}_{build_key()}"
    first_error = None
    omp_failed = _omp_failure_marker(name)
    for suffix, cflags, ldflags in (
        ("_omp", ["-fopenmp"], ["-fopenmp"]),
        ("", ["-fopenmp-simd"], []),
    ):
        if suffix and omp_failed.exists():
            continue
        try:
            return load(
                name=name + suffix,
                sources=[str(src / s) for s in _SOURCES],
                extra_cflags=["-O3", "-fno-trapping-math", *cflags, *isa],
                extra_ldflags=ldflags,
                verbose=False,
            )
        except Exception as exc:  # no compiler, no headers, no OpenMP, a failed build
            text = str(exc).strip()
            first_error = first_error or (text.splitlines()[0] if text else type(exc).__name__)
            if suffix:
                _remember(omp_failed, text)
    warnings.warn(
        f"DSID's compiled recurrent core could not be built ({first_error}); training runs on the "
        "slower step-by-step path. Install a C++ compiler (g++ or clang) to get it, or set "
        "DSID_NATIVE=0 to silence this.",
        RuntimeWarning,
        stacklevel=3,
    )
    return None


def build_key() -> str:
    """A digest of what a build depends on: the sources, this PyTorch (version and install
    location) and this Python. Built modules are cached under a name holding it, so environments
    sharing one cache (two virtual environments, a checkout beside an installed wheel) each keep
    their own build instead of rebuilding in turn, and a change of the sources builds anew."""
    import sys

    digest = hashlib.sha1()
    for part in (torch.__version__, str(Path(torch.__file__).resolve().parent), sys.version):
        digest.update(part.encode() + b"\0")
    for f in sorted((Path(__file__).parent / "csrc").iterdir()):
        digest.update(f.name.encode() + f.read_bytes())
    return digest.hexdigest()[:12]


def _omp_failure_marker(name: str) -> Path:
    """Where a failed OpenMP build of ``name`` (which holds :func:`build_key`) is remembered: the
    extensions cache, beside the builds."""
    from torch.utils.cpp_extension import get_default_build_root

    root = os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()
    return Path(root) / f"{name}_omp.failed"


def _remember(marker: Path, error: str) -> None:
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(error + "\n")
    except OSError:  # a read-only cache: try again next time
        pass


def usable(*tensors: Optional[torch.Tensor]) -> bool:
    """Whether the compiled scans can run on these tensors: CPU, float32/float64, no CPU autocast
    (it would hand them bfloat16 products), module built."""
    if torch.is_autocast_enabled("cpu"):
        return False
    for x in tensors:
        if x is not None and (
            x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64)
        ):
            return False
    return native_scans() is not None


def dropout_mask(drop: torch.nn.Dropout, shape, like: torch.Tensor) -> torch.Tensor:
    """``drop``'s mask for a tensor of ``shape`` (kept entries 1 / (1 - p), dropped 0); empty in
    eval mode or with p = 0. Compiled (a counter-based hash seeded from PyTorch's generator, several
    times faster than ``bernoulli_``) where :func:`usable`, else ``bernoulli_``; the same
    distribution."""
    if not drop.training or drop.p == 0:
        return like.new_empty(0)
    if drop.p >= 1:
        return like.new_zeros(shape)
    if usable(like):
        seed = int(torch.randint(-(2**63), 2**63 - 1, (), dtype=torch.int64))
        return native_scans().dropout_mask(list(shape), float(drop.p), seed, like)
    return like.new_empty(shape).bernoulli_(1 - drop.p).div_(1 - drop.p)


def dropout(drop: torch.nn.Dropout, x: torch.Tensor) -> torch.Tensor:
    """``drop(x)`` with the mask of :func:`dropout_mask`, contiguous when dropout is active
    (whatever ``x``'s strides). Shape: any -> same."""
    mask = dropout_mask(drop, x.shape, x)
    return mask * x if mask.numel() else x


def log_factorial(x: torch.Tensor) -> torch.Tensor:
    """``lgamma(x + 1)`` (no gradient), compiled where :func:`usable` (a table for small whole
    numbers: several times faster on spike counts), else ``torch.lgamma``. Shape: any -> same."""
    if usable(x) and not x.requires_grad:
        return native_scans().log_factorial(x)
    return torch.lgamma(x + 1.0)
