"""Ray Tune's PopulationBasedTraining with DSID's own exploit/explore decisions (``pbt_logic``).

Ray's scheduler does the bookkeeping (when a member is due, pausing it, handing it the copied
checkpoint); which members copy whom and the explored hyperparameters come from
:mod:`dsid.tuning.pbt_logic`. Every decision is appended to ``decisions_path`` (JSON lines).
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler

from dsid.tuning import pbt_logic
from dsid.tuning.pbt_logic import HyperParam


class DSIDPopulationBasedTraining(PopulationBasedTraining):
    """PBT on the config entry ``hp`` (a dict of tuned hyperparameters) of each trial, minimizing
    ``metric`` reported against ``time_attr="epoch"``."""

    def __init__(
        self,
        *,
        space: Mapping[str, HyperParam],
        perturbation_interval: int,
        burn_in: int = 0,
        quantile: float = 0.25,
        resample_probability: float = 0.25,
        factors: Sequence[float] = (0.8, 1.25),
        synch: bool = False,
        seed: int = 0,
        metric: str = "objective",
        decisions_path: Optional[str] = None,
    ):
        mutations = {
            "hp": {
                name: (
                    tune.loguniform(s.low, s.high)
                    if s.scale == "log"
                    else tune.uniform(s.low, s.high)
                )
                for name, s in space.items()
            }
        }
        super().__init__(
            time_attr="epoch",
            metric=metric,
            mode="min",
            perturbation_interval=perturbation_interval,
            burn_in_period=burn_in,
            hyperparam_mutations=mutations,
            quantile_fraction=quantile,
            resample_probability=resample_probability,
            perturbation_factors=tuple(factors),
            synch=synch,
        )
        self._space = dict(space)
        self._rng = random.Random(seed)
        self._decisions_path = decisions_path

    # --- crashed members --------------------------------------------------------------------
    def on_trial_result(self, tune_controller, trial, result: Dict) -> str:
        """A crashed member (``failed`` in its result, objective infinite) is due for replacement at
        every report, burn-in or not; it is stopped once no live healthy member is left to copy."""
        if not result.get("failed") or trial not in self._trial_state:
            return super().on_trial_result(tune_controller, trial, result)
        self._trial_state[trial].last_perturbation_time = -math.inf
        burn_in, self._burn_in_period = self._burn_in_period, 0
        try:
            decision = super().on_trial_result(tune_controller, trial, result)
        finally:
            self._burn_in_period = burn_in
        if trial.status == Trial.PAUSED:  # replaced: it restarts from the copied checkpoint
            return decision
        healthy = [
            t
            for t, st in self._trial_state.items()
            if t is not trial
            and not t.is_finished()
            and (st.last_score is None or math.isfinite(st.last_score))
        ]
        return decision if healthy else TrialScheduler.STOP

    # --- which members copy which ------------------------------------------------------------
    def _quantiles(self) -> Tuple[List, List]:
        trials = {
            t: s.last_score
            for t, s in self._trial_state.items()
            if s.last_score is not None and not t.is_finished()
        }
        # Ray stores metric_op * value (higher is better); pbt_logic takes the objective itself
        scores = {t.trial_id: (-v if not math.isnan(v) else math.nan) for t, v in trials.items()}
        bottom, top = pbt_logic.quantiles(scores, self._quantile_fraction, mode="min")
        by_id = {t.trial_id: t for t in trials}
        return [by_id[i] for i in bottom], [by_id[i] for i in top]

    def _checkpoint_or_exploit(self, trial, tune_controller, upper_quantile, lower_quantile):
        if trial in lower_quantile and upper_quantile:
            donor = pbt_logic.choose_donor([t.trial_id for t in upper_quantile], self._rng)
            upper_quantile = [t for t in upper_quantile if t.trial_id == donor]
        return super()._checkpoint_or_exploit(
            trial, tune_controller, upper_quantile, lower_quantile
        )

    # --- the explored hyperparameters --------------------------------------------------------
    def _get_new_config(self, trial, trial_to_clone) -> Tuple[Dict, Dict]:
        new_hp, ops = pbt_logic.explore(
            trial_to_clone.config["hp"],
            self._space,
            self._rng,
            self._resample_probability,
            self._perturbation_factors,
        )
        new_config = copy.deepcopy(trial_to_clone.config)
        new_config["hp"] = new_hp
        new_config["member"] = trial.config.get("member")
        self._log_decision(trial, trial_to_clone, new_hp, ops)
        return new_config, {"hp": ops}

    def _log_decision(self, trial, donor, new_hp, ops) -> None:
        if not self._decisions_path:
            return
        mine, theirs = self._trial_state[trial], self._trial_state[donor]
        row = {
            "time": time.time(),
            "trial": trial.trial_id,
            "member": trial.config.get("member"),
            "donor": donor.trial_id,
            "donor_member": donor.config.get("member"),
            "epoch": mine.last_train_time,
            "donor_epoch": theirs.last_train_time,
            "objective": -mine.last_score if mine.last_score is not None else None,
            "donor_objective": -theirs.last_score if theirs.last_score is not None else None,
            "old_hp": trial.config.get("hp"),
            "donor_hp": donor.config.get("hp"),
            "new_hp": new_hp,
            "ops": ops,
        }
        Path(self._decisions_path).parent.mkdir(parents=True, exist_ok=True)
        with open(self._decisions_path, "a") as f:
            f.write(json.dumps(row, default=str) + "\n")
