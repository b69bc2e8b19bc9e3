"""Forward predictions (the bins past the observed window) shrunk toward the neurons' mean rates by
a weight chosen on the validation trials.

A model predicts the future of a trial by running its dynamics on without data. Whatever it could
not learn about the future (inputs that arrive after the window, trial-specific noise it fitted on
the training trials) makes those predictions vary more across trials than the truth does, and with
few training trials they can be worse than each neuron's mean rate. The remedy of a statistician:
mix them with the mean rate, ``w * rates + (1 - w) * mean``, with the weight ``w`` that predicts the
validation trials' forward spikes best. Only held-in neurons choose it (model selection never sees
held-out neurons); the mean rates are the training trials' forward bins'. Where the forward
predictions are good, ``w`` is 1 and nothing changes.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from dsid.data.tensor_file import DSIDData
from dsid.evaluation.metrics import poisson_nll

WEIGHTS = np.linspace(0.0, 1.0, 21)


def forward_weight(rates: np.ndarray, spikes: np.ndarray, mean: np.ndarray) -> float:
    """The weight ``w`` in 0..1 (steps of 0.05) whose mix ``w * rates + (1 - w) * mean`` has the
    lowest Poisson NLL of ``spikes`` (the largest ``w`` among equals).

    Shape:
        rates, spikes: (trials, T_fwd, N); mean: (N,)
    """
    rates, spikes = np.asarray(rates, np.float64), np.asarray(spikes, np.float64)
    nll = [poisson_nll(w * rates + (1 - w) * mean, spikes) for w in WEIGHTS]
    best = min(nll)
    return float(max(w for w, v in zip(WEIGHTS, nll) if v <= best))


def calibrate_forward(outputs: Dict[str, Dict[str, np.ndarray]], data: DSIDData) -> Optional[float]:
    """Mix every split's ``rates_forward`` in ``outputs`` (in place) with the training trials' mean
    forward rates, by the weight that predicts the validation trials' held-in forward spikes best.
    Returns the weight, or None (nothing changed) when the data have no forward bins in their train
    and valid splits or ``outputs`` has no validation forward rates.

    Shape:
        outputs[split]["rates_forward"]: (trials, T_fwd, N)
    """
    train, valid = data.splits.get("train"), data.splits.get("valid")
    if (
        train is None
        or valid is None
        or train.forward_spikes is None
        or valid.forward_spikes is None
    ):
        return None
    if "rates_forward" not in outputs.get("valid", {}):
        return None
    mean = np.asarray(train.forward_spikes, np.float64).mean(axis=(0, 1))
    heldin = np.asarray(data.heldin, bool)
    w = forward_weight(
        outputs["valid"]["rates_forward"][..., heldin],
        valid.forward_spikes[..., heldin],
        mean[heldin],
    )
    for res in outputs.values():
        if "rates_forward" in res:
            res["rates_forward"] = (w * res["rates_forward"] + (1 - w) * mean).astype(
                res["rates_forward"].dtype
            )
    return w
