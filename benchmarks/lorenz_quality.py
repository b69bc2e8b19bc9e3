"""The Lorenz benchmark's quality targets, measured on a fresh default fit (what `dsid demo` runs).

Targets (validation split, ground truth known): latent R2 >= 0.90, rate R2 >= 0.85, co-bps >= 0.90 x
the oracle co-bps (co-bps of the true rates), within 10 minutes of training on a 2-core CPU
(``experiments/lorenz_lfads.yaml`` caps training with ``trainer.max_time``).

    .venv/bin/python benchmarks/lorenz_quality.py [hydra overrides ...]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

from dsid.runs.config import compose  # noqa: E402
from dsid.runs.report import LORENZ_TARGETS, format_table  # noqa: E402
from dsid.runs.train import train  # noqa: E402


def main(argv=None) -> int:
    overrides = list(sys.argv[1:] if argv is None else argv)
    run_dir = tempfile.mkdtemp(prefix="dsid_lorenz_quality_")
    cfg = compose(
        ["experiment=lorenz_lfads", "logger=csv", "trainer.enable_progress_bar=false", *overrides]
    )
    t0 = time.time()
    metrics = train(cfg, run_dir=run_dir)
    wall = time.time() - t0
    print(f"\nLorenz benchmark, experiment=lorenz_lfads {' '.join(overrides)}")
    print(
        f"epochs {metrics.get('epochs')}, wall time {wall / 60:.1f} min (training capped at "
        f"{cfg.trainer.max_time}), run dir {run_dir}"
    )
    print(format_table(metrics, LORENZ_TARGETS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
