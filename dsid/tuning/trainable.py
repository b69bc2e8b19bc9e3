"""One PBT member as a Ray Tune function trainable: a Lightning fit that reports every epoch.

A member (re)starts from ``ray.tune.get_checkpoint()`` when there is one: its own latest checkpoint
after an interruption, or, after an exploit, the checkpoint of the member it copies. Weights,
optimizer and loop state come from that checkpoint; the hyperparameters come from this member's
(explored) config: the module is built with them and the learning rate is written into the restored
optimizer.

A member that crashes (non-finite loss or objective, or any exception) reports an infinite objective
until the scheduler replaces it with a copy of a healthy member, so one bad member never ends the
search.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Dict, Mapping

from dsid.runs.assemble import build_run
from dsid.training.callbacks import MetricsCallback
from dsid.tuning.hparams import apply_hparams, module_settings
from dsid.tuning.live import set_hyperparameters
from dsid.tuning.pbt_logic import parse_space

CKPT_FILE = "model.ckpt"
META_FILE = "dsid.json"


def trial_config(
    base_cfg: Mapping[str, Any], hp: Mapping[str, float], member: int, options: Mapping[str, Any]
) -> Dict[str, Any]:
    """The DSID config of one member: the base config with its hyperparameters written in."""
    cfg = apply_hparams(base_cfg, hp, parse_space(options["hyperparameters"]))
    cfg["seed"] = int(cfg.get("seed", 0)) + int(member)
    return cfg


def _scalar_metrics(metrics: Mapping[str, Any]) -> Dict[str, float]:
    out = {}
    for k, v in metrics.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def _quiet() -> None:
    """Keep members' logs to what matters (their reports reach the driver's table anyway)."""
    import logging
    import warnings

    for name in (
        "pytorch_lightning",
        "lightning.pytorch",
        "lightning_fabric",
        "ray.train",
        "ray.tune",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (
        ".*weights_only.*",
        ".*LeafSpec.*",
        ".*does not have many workers.*",
        ".*litlogger.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def run_member(config: Dict[str, Any], base_cfg: Dict[str, Any], options: Dict[str, Any]) -> None:
    """The Ray Tune trainable (used through ``tune.with_parameters``)."""
    import pytorch_lightning as pl
    import torch
    from ray import tune

    _quiet()
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    hp, member = dict(config["hp"]), int(config["member"])
    space = parse_space(options["hyperparameters"])
    total = int(options["total_epochs"])
    objective_key = options["objective"]
    cfg = trial_config(base_cfg, hp, member, options)
    torch.set_num_threads(max(1, int(options.get("threads", 1))))
    workdir = Path(tempfile.mkdtemp(prefix="dsid_member_"))
    state = {"epoch": 0}

    def report_failure(err: BaseException) -> None:
        """Report an infinite objective until the scheduler replaces this member with a copy of a
        healthy one (the function is then stopped and restarted) or stops it."""
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        print(f"[dsid tune] member {member} crashed after epoch {state['epoch']}: {err!r}\n{text}")
        deadline = time.time() + float(options.get("failed_wait_s", 3600))
        while time.time() < deadline:
            tune.report(
                {
                    "objective": math.inf,
                    "failed": 1.0,
                    "epoch": state["epoch"],
                    "member": member,
                    "error": repr(err)[:300],
                    **{f"hp/{k}": float(v) for k, v in hp.items()},
                }
            )
            time.sleep(float(options.get("failed_poll_s", 1.0)))

    class Report(pl.Callback):
        def on_train_start(self, trainer, module):
            # the restored optimizer holds the copied member's learning rate: write ours in
            set_hyperparameters(module, **module_settings(hp, space))

        def on_train_epoch_end(self, trainer, module):
            if trainer.sanity_checking:
                return
            epoch = trainer.current_epoch + 1
            metrics = _scalar_metrics(trainer.callback_metrics)
            if objective_key not in metrics:
                raise KeyError(
                    f"the objective {objective_key} was not logged (logged: "
                    f"{', '.join(sorted(metrics))}); set tune.objective to a logged "
                    "validation metric"
                )
            value = metrics[objective_key]
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"non-finite objective {objective_key}={value} at epoch {epoch}"
                )
            opt_lr = (
                trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else hp.get("lr")
            )
            result = {
                **metrics,
                "objective": value,
                "failed": 0.0,
                "epoch": epoch,
                "member": member,
                "lr_now": float(opt_lr),
                **{f"hp/{k}": float(v) for k, v in hp.items()},
            }
            state["epoch"] = epoch
            # a checkpoint every epoch: Ray may pause a member after any report (synchronous PBT,
            # more members than resources) and it must restart where it was
            ckpt_dir = Path(tempfile.mkdtemp(dir=workdir))
            trainer.save_checkpoint(str(ckpt_dir / CKPT_FILE))
            (ckpt_dir / META_FILE).write_text(
                json.dumps(
                    {
                        "hp": hp,
                        "member": member,
                        "epoch": epoch,
                        "objective": value,
                        "objective_key": objective_key,
                        "metrics": metrics,
                    },
                    indent=1,
                )
            )
            result["node_id"] = node_id  # which machine of a Ray cluster trained this member
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(str(ckpt_dir)))
            shutil.rmtree(ckpt_dir, ignore_errors=True)

    ckpt_path = None
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as d:
            meta = json.loads((Path(d) / META_FILE).read_text())
            ckpt_path = str(workdir / "restore.ckpt")
            shutil.copy(Path(d) / CKPT_FILE, ckpt_path)
        state["epoch"] = int(meta["epoch"])
        if state["epoch"] >= total:  # nothing left to train: report the copied state once
            tune.report(
                {
                    **_scalar_metrics(meta.get("metrics", {})),
                    "objective": meta["objective"],
                    "failed": 0.0,
                    "epoch": state["epoch"],
                    "member": member,
                    **{f"hp/{k}": float(v) for k, v in hp.items()},
                },
                checkpoint=restored,
            )
            return
    try:
        pl.seed_everything(
            int(cfg.get("seed", 0)) + 1000 * state["epoch"], workers=True, verbose=False
        )
        dm, module = build_run(cfg)
        trainer_kwargs = {k: v for k, v in (cfg.get("trainer") or {}).items() if v is not None}
        gpus = float(options.get("gpus_per_trial", 0) or 0)
        trainer_kwargs.update(
            accelerator="gpu" if gpus > 0 else "cpu",
            devices=1,
            max_epochs=total,
            max_time=None,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=str(workdir),
        )
        trainer_kwargs.pop("strategy", None)
        every = int(module.train_cfg["metrics_every_n_steps"] or 0)
        trainer = pl.Trainer(callbacks=[MetricsCallback(every), Report()], **trainer_kwargs)
        trainer.fit(module, dm, ckpt_path=ckpt_path)
    except Exception as err:  # noqa: BLE001  (any crash of one member: replace it, keep searching)
        report_failure(err)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
