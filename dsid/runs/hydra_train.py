"""``dsid train`` under Hydra's own entry point (multirun sweeps, Hydra's output folders).

This file is also a script: multi-process training (``trainer.strategy=ddp``) starts its other
processes by running ``python <this file> <the same overrides>``, which must work without the
``dsid`` command's own argument parsing in front.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: its folder must not shadow top-level modules
    sys.path[:] = [
        p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
    ]

import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
from typing import Iterator, List  # noqa: E402

from dsid.runs.assemble import check_settings  # noqa: E402
from dsid.runs.config import config_dir, quoted_paths  # noqa: E402
from dsid.runs.errors import one_line  # noqa: E402
from dsid.runs.report import LORENZ_TARGETS, first_time_targets_met, format_table  # noqa: E402
from dsid.runs.train import train  # noqa: E402
from dsid.training.callbacks import HISTORY_FILE  # noqa: E402


def remove_if_empty(run_dir) -> None:
    """Remove a run directory a failed launch left with nothing but Hydra's own ``.hydra``
    folder."""
    path = Path(run_dir)
    if path.is_dir() and {p.name for p in path.iterdir()} <= {".hydra"}:
        shutil.rmtree(path)
        for parent in (path.parent, path.parent.parent):  # runs/<date>/ and runs/, when now empty
            try:
                parent.rmdir()
            except OSError:
                break


def time_to_targets_line(run_dir) -> str:
    """When training first met every Lorenz target (from the periodic metrics of the run)."""
    path = Path(run_dir) / HISTORY_FILE
    history = json.loads(path.read_text()) if path.exists() else []
    met = first_time_targets_met(history)
    if met is None:
        return f"targets: not all met at any of the {len(history)} evaluations while training"
    return f"targets: all first met after {met[0]:.0f} s of training (epoch {met[1]})"


@contextlib.contextmanager
def hydra_raises() -> Iterator[None]:
    """Hydra re-raises errors (``HYDRA_FULL_ERROR=1``) instead of printing its own traceback."""
    before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["HYDRA_FULL_ERROR"]
        else:
            os.environ["HYDRA_FULL_ERROR"] = before


def _train_job(cfg, run_dir, demo: bool) -> float:
    """Train one run and print its metrics (the first process of a run; the others return
    nothing); returns the validation co-bps."""
    metrics = train(cfg, run_dir=run_dir)
    if metrics:
        print(f"\nrun directory: {run_dir}")
        print(format_table(metrics, LORENZ_TARGETS if demo else None))
        if demo:
            print(time_to_targets_line(run_dir))
    return float(metrics.get("val/co_bps", float("nan")))


def hydra_train(overrides: List[str], demo: bool = False) -> int:
    """Compose the config from ``overrides`` with Hydra and train (``-m``: a sweep, one run per
    job); ``demo`` also prints when the training first met the demo's targets. An error (a
    sweep's first) is raised as ``SystemExit`` with its one line, from the error itself (see
    :mod:`dsid.runs.errors`): Hydra prints nothing of its own."""
    import hydra
    from hydra.core.hydra_config import HydraConfig

    failed: List[Exception] = []

    @hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")
    def _main(cfg) -> float:
        output_dir = HydraConfig.get().runtime.output_dir
        try:
            check_settings(cfg)  # before anything is written
            return _train_job(cfg, cfg.get("run_dir") or output_dir, demo)
        except BaseException as err:
            remove_if_empty(output_dir)
            if not isinstance(err, Exception):
                raise
            failed.append(err)  # raised once Hydra returns
            return float("nan")

    overrides = quoted_paths(overrides)  # a path with spaces or accents needs no quotes of yours
    multirun = any(o in ("-m", "--multirun") for o in overrides)
    given = [o.split("=", 1)[1] for o in overrides if o.startswith("run_dir=")]
    if given and not multirun and not any(o.startswith("hydra.run.dir=") for o in overrides):
        overrides = [*overrides, f"hydra.run.dir={given[-1]}"]  # Hydra's own files go into the run
    argv = sys.argv
    sys.argv = [str(Path(__file__).resolve()), *overrides]  # what other DDP processes re-run
    try:
        with hydra_raises():
            _main()
        if failed:
            raise failed[0]
    except Exception as err:  # noqa: BLE001  (reported as one line by the dsid command)
        raise SystemExit(one_line(err)) from err
    finally:
        sys.argv = argv
    return 0


if __name__ == "__main__":
    sys.exit(hydra_train(sys.argv[1:]))
