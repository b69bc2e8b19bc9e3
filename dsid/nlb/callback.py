"""NLB scores during training: ``nlb.eval_every_n_steps: N`` (configs/train.yaml; 0 = off).

At the first validation after every N optimizer steps (and at the last epoch or step) the model's
rates for every split are scored with ``nlb_tools.evaluation.evaluate`` against the val-phase
targets of the data file, and logged as
``val/nlb_co_bps``, ``val/nlb_vel_r2`` (``val/nlb_tp_corr`` for dmfc_rsg), ``val/nlb_psth_r2`` and
``val/nlb_fp_bps``. These scores look at NLB's evaluation trials (DSID ``test``): they are for
watching a fit, not for choosing checkpoints (that is what DSID ``valid`` is for). A test-phase file
has no targets: the callback says so once and scores nothing.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, Mapping, Optional

import pytorch_lightning as pl

from dsid.data.tensor_file import DataFileError
from dsid.evaluation.inference import infer_data
from dsid.nlb.scoring import (
    evaluate_submission,
    load_targets,
    read_nlb_info,
    read_train_order,
    submission_from_rates,
)
from dsid.training.callbacks import due_every
from dsid.training.schedules import check_renamed


class NLBEvalCallback(pl.Callback):
    """Score the model on NLB every ``every_n_steps`` optimizer steps (``n_samples`` posterior
    samples; 0 uses the posterior means, the fastest)."""

    def __init__(self, every_n_steps: int = 50, n_samples: int = 0, batch_size: int = 256):
        if int(every_n_steps) <= 0:
            raise ValueError(
                f"nlb.eval_every_n_steps={every_n_steps}: expected a positive interval"
            )
        self.every, self.n_samples, self.batch_size = (
            int(every_n_steps),
            int(n_samples),
            int(batch_size),
        )
        self.last_step = 0
        self.targets = self.info = self.order = None
        self.last_scores: Dict[str, float] = {}

    @classmethod
    def from_config(cls, nlb_cfg: Optional[Mapping[str, Any]]) -> Optional["NLBEvalCallback"]:
        """The callback described by the ``nlb:`` config block, or None when it is off."""
        nlb_cfg = dict(nlb_cfg or {})
        check_renamed("nlb", nlb_cfg)
        every = int(nlb_cfg.get("eval_every_n_steps") or 0)
        if every <= 0:
            return None
        return cls(
            every,
            n_samples=int(nlb_cfg.get("n_samples") or 0),
            batch_size=int(nlb_cfg.get("batch_size") or 256),
        )

    def setup(self, trainer, pl_module, stage: Optional[str] = None) -> None:
        if self.info is not None:
            return
        path = getattr(trainer.datamodule, "path", None)
        if path is None:
            raise ValueError(
                "nlb.eval_every_n_steps > 0: NLB scores need one NLB data file "
                "(data.path written by "
                "`dsid nlb prepare`); set nlb.eval_every_n_steps=0 for other data"
            )
        try:
            self.info = read_nlb_info(path)
        except DataFileError as err:
            raise DataFileError(
                path,
                "nlb/dataset",
                "an NLB file written by `dsid nlb prepare` "
                "(nlb.eval_every_n_steps > 0 scores NLB data only; set it to 0)",
                "no nlb group",
            ) from err
        self.order = read_train_order(path)
        if self.info["heldout_unknown"]:
            warnings.warn(
                f"{path}: a test-phase NLB file has no evaluation targets; "
                "nlb.eval_every_n_steps scores nothing "
                "(score a val-phase run with `dsid nlb evaluate`)"
            )
            return
        self.targets = load_targets(path)

    def score(self, pl_module, data) -> Dict[str, float]:
        """NLB metrics of ``pl_module``'s rates on ``data`` (a DSIDData from the prepared file)."""
        out = infer_data(
            pl_module.model,
            data,
            n_samples=self.n_samples,
            batch_size=self.batch_size,
            splits=("train", "valid", "test"),
        )  # forward rates calibrated as in inference.h5
        rates = {split: out[split]["rates"] for split in ("train", "valid", "test")}
        if "rates_forward" in out["test"]:
            rates["forward"] = out["test"]["rates_forward"]
        return evaluate_submission(
            submission_from_rates(self.info, self.order, rates), self.targets
        )

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self.targets is None or trainer.sanity_checking:
            return
        if not due_every(trainer, self.every, self.last_step):
            return
        self.last_step = trainer.global_step
        self.last_scores = self.score(pl_module, trainer.datamodule.data)
        pl_module.log_dict({f"val/nlb_{k}": v for k, v in self.last_scores.items()}, on_epoch=True)
