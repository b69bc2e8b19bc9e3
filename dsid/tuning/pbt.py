"""``dsid tune``: population-based training of a DSID model with Ray Tune, and export of the winner.

The tune directory (``RUN_DIR``) holds::

    tune_config.yaml          the composed config (train config + ``tune``), reused on resume
    ray/pbt/                  Ray Tune's experiment: state, one folder per member, checkpoints
    history.jsonl             every report of every member (epoch, objective, hyperparameters)
    decisions.jsonl           every exploit/explore decision (who copied whom, old and new values)
    pbt_trajectories.png      objective and hyperparameters of the population over epochs
    wandb/                    one offline W&B run per member plus a summary run, in one group
    best/                     the winner as an ordinary DSID run directory (config.yaml,
                              checkpoints/best.ckpt, inference.h5, metrics.json, figures/)
    summary.json              the winner, its objective and metrics, timings
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import OmegaConf

from dsid.runs.assemble import absolute_data_paths, steps_per_epoch
from dsid.runs.config import to_plain
from dsid.training.defaults import training_config
from dsid.training.schedules import ramps_end
from dsid.tuning.callbacks import (
    HistoryCallback,
    SelectionCallback,
    WandbPopulationCallback,
)
from dsid.tuning.export import EXPERIMENT, SELECTED, finish
from dsid.tuning.hparams import read_hparams
from dsid.tuning.pbt_logic import initial_population, parse_space
from dsid.tuning.scheduler import DSIDPopulationBasedTraining
from dsid.tuning.trainable import run_member

CONFIG_FILE = "tune_config.yaml"
LOCAL_ADDRESSES = (None, "", "local")


def default_run_dir(cfg: Dict[str, Any]) -> Path:
    """``cfg.run_dir`` or ``runs/tune/<date>_<time>_<experiment_name>``; on resume without a
    ``run_dir``, the newest tune directory of this experiment."""
    if cfg.get("run_dir"):
        return Path(cfg["run_dir"])
    name = cfg.get("experiment_name", "default")
    root = Path("runs") / "tune"
    if (cfg.get("tune") or {}).get("resume"):
        found = sorted(p for p in root.glob(f"*_{name}") if (p / CONFIG_FILE).exists())
        if not found:
            raise FileNotFoundError(
                f"tune.resume=true: no tune directory of experiment {name} "
                f"under {root}; pass run_dir=DIR of the run to resume"
            )
        return found[-1]
    return root / f"{datetime.now():%Y-%m-%d_%H-%M-%S}_{name}"


def tune_options(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """The ``tune`` section, checked and completed with defaults."""
    t = dict(cfg.get("tune") or {})
    if not t:
        raise ValueError("no tune config: compose with tune=pbt (dsid tune adds it by default)")
    space = parse_space(t.get("hyperparameters"))
    total = int(t.get("total_epochs") or (cfg.get("trainer") or {}).get("max_epochs") or 0)
    interval = int(t.get("perturbation_interval", 0))
    if total < 1 or interval < 1:
        raise ValueError(
            f"tune.total_epochs ({total}) and tune.perturbation_interval ({interval}) "
            "must be positive"
        )
    burn_in = int(t.get("burn_in") or 0)
    if burn_in % interval:
        raise ValueError(
            f"tune.burn_in ({burn_in}) must be a multiple of "
            f"tune.perturbation_interval ({interval})"
        )
    select_after = t.get(
        "select_after"
    )  # None: once the loss weights are full (select_after_ramps)
    res = dict(t.get("resources_per_trial") or {})
    cpus, gpus = float(res.get("cpu", 1)), float(res.get("gpu", 0) or 0)
    if cpus <= 0 or gpus < 0:
        raise ValueError(f"tune.resources_per_trial: need cpu > 0 and gpu >= 0, got {res}")
    return {
        "population": int(t.get("population", 8)),
        "total_epochs": total,
        "perturbation_interval": interval,
        "burn_in": burn_in,
        "quantile": float(t.get("quantile", 0.25)),
        "resample_probability": float(t.get("resample_probability", 0.25)),
        "perturbation_factors": [float(f) for f in t.get("perturbation_factors") or (0.8, 1.25)],
        "init": str(t.get("init", "sample")),
        "members": list(t.get("members") or []),
        "synch": bool(t.get("synch", False)),
        "seed": int(t["seed"] if t.get("seed") is not None else cfg.get("seed", 0) or 0),
        "objective": str(t.get("objective", "val/recon_heldin")),
        "select_after": None if select_after is None else min(int(select_after), total),
        "objective_cd_rate": t.get("objective_cd_rate"),
        "lr_scheduler": t.get("lr_scheduler", "none"),
        "hyperparameters": {k: dict(v) for k, v in t["hyperparameters"].items()},
        "space": space,
        "cpus_per_trial": cpus,
        "gpus_per_trial": gpus,
        "threads": max(1, int(cpus)),
        "checkpoints_to_keep": int(t.get("checkpoints_to_keep") or max(4, 2 * interval)),
        "max_failures": int(t.get("max_failures", 2)),
        "address": t.get("address"),
        "num_cpus": t.get("num_cpus"),
        "num_gpus": t.get("num_gpus"),
        "storage_path": t.get("storage_path"),
        "resume": bool(t.get("resume", False)),
        "verbose": int(t.get("verbose", 1)),
        "export": bool(t.get("export", True)),
        "wandb_group": t.get("wandb_group"),
    }


def select_after_ramps(cfg: Dict[str, Any], total_epochs: int) -> int:
    """The first epoch at which the KL and L2 weights have reached their full values (the ramps
    count optimizer steps; epochs have as many steps as training batches)."""
    return min(
        math.ceil(ramps_end(training_config(cfg.get("train"))) / steps_per_epoch(cfg)), total_epochs
    )


def base_config(cfg: Dict[str, Any], opts: Dict[str, Any]) -> Dict[str, Any]:
    """The config every member starts from: absolute data path, the PBT epoch budget, the learning
    rate scheduler of PBT runs, and a fixed coordinated-dropout rate for the objective's masks
    (``val_rate`` of every coordinated-dropout augmentation)."""
    base = absolute_data_paths(json.loads(json.dumps(cfg)))
    base.pop("tune", None)
    base.setdefault("trainer", {})["max_epochs"] = opts["total_epochs"]
    train = base.setdefault("train", {})
    if opts["lr_scheduler"] is not None:
        train["lr_scheduler"] = opts["lr_scheduler"]
    cd = [
        a
        for a in (base.get("model") or {}).get("augmentations") or []
        if a.get("name") == "coordinated_dropout"
    ]
    rate = opts["objective_cd_rate"]
    if rate is None and cd:
        rate = cd[0].get("rate", 0.3)
    if rate is not None:
        for entry in cd:
            entry["val_rate"] = float(rate)
    elif opts["objective"] == "val/recon_heldin":
        print(
            "[dsid tune] warning: no coordinated dropout, so val/recon_heldin scores held-in "
            "entries the encoder sees; prefer augmentation=coordinated_dropout for PBT"
        )
    return base


def _init_ray(opts: Dict[str, Any]) -> bool:
    """Connect to (or start) Ray; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the compact status table below
    address = opts["address"]
    if address in LOCAL_ADDRESSES:
        # workers inherit this environment: make sure they import this very package
        root = str(Path(__file__).resolve().parents[2])
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if root not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])
        ray.init(
            address="local",
            num_cpus=opts["num_cpus"],
            num_gpus=opts["num_gpus"],
            include_dashboard=False,
            object_store_memory=256 * 1024**2,
            logging_level="WARNING",
            log_to_driver=True,
        )
    else:
        ray.init(address=str(address), logging_level="WARNING")
    return True


def _trainable(base: Dict[str, Any], opts: Dict[str, Any]):
    from ray import tune

    worker_opts = {k: v for k, v in opts.items() if k != "space"}
    fn = tune.with_parameters(run_member, base_cfg=base, options=worker_opts)
    return tune.with_resources(fn, {"cpu": opts["cpus_per_trial"], "gpu": opts["gpus_per_trial"]})


def _scheduler(opts: Dict[str, Any], run_dir: Path):
    return DSIDPopulationBasedTraining(
        space=opts["space"],
        perturbation_interval=opts["perturbation_interval"],
        burn_in=opts["burn_in"],
        quantile=opts["quantile"],
        resample_probability=opts["resample_probability"],
        factors=opts["perturbation_factors"],
        synch=opts["synch"],
        seed=opts["seed"],
        decisions_path=str(run_dir / "decisions.jsonl"),
    )


def _logger_settings(cfg: Dict[str, Any], run_dir: Path, opts: Dict[str, Any]) -> Optional[Dict]:
    log = dict(cfg.get("logger") or {})
    if log.get("kind", "wandb") != "wandb" or log.get("mode") == "disabled":
        return None
    group = opts["wandb_group"] or log.get("group") or f"pbt-{run_dir.resolve().name}"
    return {
        "project": log.get("project", "dsid"),
        "entity": log.get("entity"),
        "mode": log.get("mode", "offline"),
        "group": group,
        "tags": list(log.get("tags") or []) + ["pbt"],
    }


def run_pbt(cfg, run_dir=None, callbacks: Optional[List] = None) -> Dict[str, Any]:
    """Run (or, with ``tune.resume=true``, continue) PBT described by ``cfg`` (a composed train
    config with a ``tune`` section) and export the best member to ``RUN_DIR/best``.

    ``callbacks``: extra Ray Tune callbacks (e.g. to watch results). Returns the summary (also
    ``RUN_DIR/summary.json``).
    """
    from ray import tune

    os.environ.setdefault("WANDB_SILENT", "true")
    cfg = to_plain(cfg)
    run_dir = (Path(run_dir) if run_dir else default_run_dir(cfg)).resolve()
    resume = bool((cfg.get("tune") or {}).get("resume"))
    saved = run_dir / CONFIG_FILE
    if resume:
        if not saved.exists():
            raise FileNotFoundError(
                f"tune.resume=true: {run_dir} holds no PBT run ({CONFIG_FILE} is missing)"
            )
        new_tune = cfg.get("tune") or {}
        cfg = to_plain(OmegaConf.load(saved))
        for key in ("address", "num_cpus", "num_gpus", "verbose"):  # where it runs may change
            if key in new_tune:
                cfg["tune"][key] = new_tune[key]
        cfg["tune"]["resume"] = True
    opts = tune_options(cfg)
    if opts["select_after"] is None:
        opts["select_after"] = select_after_ramps(cfg, opts["total_epochs"])
    storage = (
        Path(opts["storage_path"] or (run_dir / "ray")).resolve()
        if "://" not in str(opts["storage_path"] or "")
        else opts["storage_path"]
    )
    exp_path = f"{storage}/{EXPERIMENT}"
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        if (Path(str(exp_path)) / "tuner.pkl").exists():
            raise FileExistsError(
                f"{run_dir} already holds a PBT run: continue it with "
                "tune.resume=true, or choose another run_dir"
            )
        saved.write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
    base = base_config(cfg, opts)
    space = opts["space"]
    t0 = time.time()
    started = _init_ray(opts)
    try:
        trainable = _trainable(base, opts)
        cbs = [
            HistoryCallback(str(run_dir / "history.jsonl")),
            SelectionCallback(str(run_dir / SELECTED), opts["select_after"]),
        ]
        wb = _logger_settings(cfg, run_dir, opts)
        if wb:
            cbs.append(WandbPopulationCallback(str(run_dir), **wb))
        cbs += list(callbacks or [])
        if resume:
            if not tune.Tuner.can_restore(str(exp_path)):
                raise FileNotFoundError(f"tune.resume=true: no Ray Tune experiment at {exp_path}")
            print(f"[dsid tune] resuming {exp_path}")
            tuner = tune.Tuner.restore(
                str(exp_path), trainable=trainable, resume_unfinished=True, resume_errored=True
            )
            local = getattr(tuner, "_local_tuner", None)  # callbacks come pickled; use fresh ones
            if local is not None:
                local.get_run_config().callbacks = cbs
        else:
            base_hp = read_hparams(base, space)
            pop = initial_population(
                base_hp,
                space,
                opts["population"],
                opts["init"],
                random.Random(opts["seed"]),
                opts["members"],
                opts["perturbation_factors"],
            )
            (run_dir / "initial_population.json").write_text(json.dumps(pop, indent=1))
            param_space = {
                "member": tune.grid_search(list(range(len(pop)))),
                "hp": tune.sample_from(_initial_hp(pop)),
            }
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune.TuneConfig(
                    scheduler=_scheduler(opts, run_dir), num_samples=1, reuse_actors=True
                ),
                run_config=tune.RunConfig(
                    name=EXPERIMENT,
                    storage_path=str(storage),
                    callbacks=cbs,
                    stop={"epoch": opts["total_epochs"]},
                    verbose=opts["verbose"],
                    progress_reporter=tune.CLIReporter(
                        metric_columns=["epoch", "objective", "failed"],
                        parameter_columns=["member"],
                        max_report_frequency=60,
                    ),
                    failure_config=tune.FailureConfig(max_failures=opts["max_failures"]),
                    checkpoint_config=tune.CheckpointConfig(
                        num_to_keep=opts["checkpoints_to_keep"]
                    ),
                ),
            )
        results = tuner.fit()
        tune_s = time.time() - t0
    finally:
        if started:
            import ray

            ray.shutdown()
    # a member is done when it reached the epoch budget, crashed beyond replacement, or errored
    unfinished = sum(
        1
        for r in results
        if r.error is None
        and not (r.metrics or {}).get("failed")
        and (r.metrics or {}).get("epoch", 0) < opts["total_epochs"]
    )
    summary = finish(
        run_dir,
        cfg,
        base,
        opts,
        results,
        wb,
        tune_s=tune_s,
        export=opts["export"] and unfinished == 0,
        interrupted=unfinished > 0,
    )
    if unfinished:
        print(
            f"[dsid tune] interrupted with {unfinished} member(s) unfinished; continue with\n"
            f"  dsid tune run_dir={run_dir} tune.resume=true"
        )
    return summary


class _initial_hp:
    """``tune.sample_from`` function: the starting hyperparameters of a member (picklable)."""

    def __init__(self, population):
        self.population = population

    def __call__(self, config):
        return dict(self.population[int(config["member"])])
