"""Ray Tune callbacks run by the PBT driver: a JSON-lines history of every report and one offline
W&B run per member (all in one group).

They are pickled with the experiment (``Tuner.restore`` brings them back), so live objects (W&B
runs) are dropped from their pickled state and reopened on demand.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from pathlib import Path
from typing import Any, Dict, Mapping

from ray import tune

from dsid.tuning.trainable import META_FILE

# what a member reports that is worth keeping (Ray adds timing and bookkeeping keys)
KEEP_PREFIXES = ("train/", "val/", "hp/")
KEEP_KEYS = ("objective", "epoch", "failed", "lr_now", "member")


def reported_metrics(result: Mapping[str, Any]) -> Dict[str, float]:
    out = {}
    for k, v in result.items():
        if (
            (k.startswith(KEEP_PREFIXES) or k in KEEP_KEYS)
            and isinstance(v, (int, float))
            and not isinstance(v, bool)
        ):
            out[k] = float(v)
    return out


class HistoryCallback(tune.Callback):
    """Appends ``{trial, member, epoch, objective, failed, hp, metrics, time, node}`` per report
    (``node``: the Ray node that trained the member)."""

    def __init__(self, path: str):
        self.path = str(path)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        metrics = reported_metrics(result)
        row = {
            "trial": trial.trial_id,
            "member": trial.config.get("member"),
            "epoch": metrics.get("epoch"),
            "objective": metrics.get("objective"),
            "failed": bool(metrics.get("failed", 0.0)),
            "hp": trial.config.get("hp"),
            "time": time.time(),
            "metrics": metrics,
            "node": result.get("node_id"),
        }
        if result.get("error"):
            row["error"] = str(result["error"])
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


class SelectionCallback(tune.Callback):
    """Keeps a copy of the member checkpoint with the best objective in ``path`` (the model that
    is exported), preferring checkpoints from epoch ``select_after`` on. Ray keeps only each
    member's latest checkpoints, so the best one is copied when it appears."""

    def __init__(self, path: str, select_after: int = 0):
        self.path, self.select_after = str(path), int(select_after)

    def _key(self, meta: Mapping[str, Any]):
        return (int(meta["epoch"]) >= self.select_after, -float(meta["objective"]))

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        dest = Path(self.path)
        current = dest / META_FILE
        with checkpoint.as_directory() as d:
            meta = json.loads((Path(d) / META_FILE).read_text())
            if not math.isfinite(float(meta.get("objective", math.inf))):
                return
            if current.exists() and self._key(json.loads(current.read_text())) >= self._key(meta):
                return
            tmp = dest.with_name(dest.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(d, tmp)
        meta.update(trial=trial.trial_id, source=str(checkpoint.path))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)


def read_history(path) -> list:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class WandbPopulationCallback(tune.Callback):
    """One W&B run per PBT member (``job_type=pbt-member``) in ``group``; offline by default."""

    def __init__(
        self,
        run_dir: str,
        group: str,
        project: str = "dsid",
        mode: str = "offline",
        entity=None,
        tags=(),
    ):
        self.run_dir, self.group, self.project = str(run_dir), group, project
        self.mode, self.entity, self.tags = mode, entity, list(tags or [])
        self._runs: Dict[str, Any] = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_runs"] = {}
        return state

    def _run(self, trial):
        run = self._runs.get(trial.trial_id)
        if run is None:
            import wandb

            member = trial.config.get("member")
            run_id = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{self.group}-{trial.trial_id}")[-120:]
            run = wandb.init(
                project=self.project,
                entity=self.entity,
                group=self.group,
                name=f"member{member}-{trial.trial_id}",
                id=run_id,
                resume="allow",
                dir=self.run_dir,
                mode=self.mode,
                reinit="create_new",
                job_type="pbt-member",
                tags=self.tags,
                config={
                    "member": member,
                    "trial_id": trial.trial_id,
                    "initial_hp": dict(trial.config.get("hp") or {}),
                },
            )
            self._runs[trial.trial_id] = run
        return run

    def on_trial_result(self, iteration, trials, trial, result, **info):
        metrics = reported_metrics(result)
        if not math.isfinite(metrics.get("objective", 0.0)):
            metrics.pop("objective")
        self._run(trial).log(metrics)

    def _finish(self, trial):
        run = self._runs.pop(trial.trial_id, None)
        if run is not None:
            run.finish()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial)

    def on_experiment_end(self, trials, **info):
        for run in list(self._runs.values()):
            run.finish()
        self._runs.clear()
