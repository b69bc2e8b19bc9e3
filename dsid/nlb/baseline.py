"""NLB's spike-smoothing baseline on a prepared DSID file.

Held-in rates are Gaussian-smoothed held-in spikes; held-out rates come from a Poisson GLM (one per
held-out neuron) fit on NLB's training trials (DSID train + valid) from the log of the smoothed
held-in spikes, as in nlb_tools' ``examples/baselines/smoothing``; the evaluation trials are DSID's
``test``. That baseline makes no forward predictions; here the forward rates are each neuron's mean
rate in the training trials' forward windows (fp-bps near 0: with ~100 trials, a trial's last bins
or a ridge map from them predicted worse than this constant).
"""

from __future__ import annotations

import warnings
from typing import Dict, Optional

import numpy as np
from scipy.signal import convolve
from scipy.signal.windows import gaussian
from threadpoolctl import threadpool_limits

from dsid.data.tensor_file import load_tensor_file
from dsid.nlb.scoring import make_submission, read_nlb_info, read_train_order, to_nlb_train_order
from dsid.nlb.specs import get_spec


def smooth_spikes(spikes: np.ndarray, kern_sd_ms: float, bin_ms: float) -> np.ndarray:
    """Convolve (trials, T, N) counts along T with a unit-area Gaussian of ``kern_sd_ms``."""
    sd = kern_sd_ms / bin_ms
    window = gaussian(max(int(6 * sd), 1), sd, sym=True)
    window /= window.sum()
    return convolve(spikes.astype(np.float64), window[None, :, None], mode="same", method="direct")


def fit_poisson(x_train: np.ndarray, y_train: np.ndarray, x_pred, alpha: float):
    """Fit one PoissonRegressor per column of ``y_train``; return predictions for each array in
    ``x_pred``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import PoissonRegressor

    preds = [np.empty((len(x), y_train.shape[1])) for x in x_pred]
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        for n in range(y_train.shape[1]):
            glm = PoissonRegressor(alpha=alpha, max_iter=1000).fit(x_train, y_train[:, n])
            for out, x in zip(preds, x_pred):
                out[:, n] = glm.predict(x)
    return [np.clip(p, 1e-9, 1e20) for p in preds]


def smoothing_baseline(
    dsid_file,
    kern_sd: Optional[float] = None,
    alpha: Optional[float] = None,
    log_offset: float = 1e-4,
) -> Dict[str, Dict[str, np.ndarray]]:
    """The smoothing baseline's submission for a file written by ``prepare`` (defaults per
    dataset)."""
    info = read_nlb_info(dsid_file)
    spec = get_spec(info["dataset"])
    kern_sd = spec.baseline_kern_sd if kern_sd is None else kern_sd
    alpha = spec.baseline_alpha if alpha is None else alpha
    order = read_train_order(dsid_file)
    data = load_tensor_file(dsid_file, require_splits=("train", "valid", "test"))
    k, bin_ms = info["n_heldin"], data.bin_ms
    train, valid, test = (data.splits[s] for s in ("train", "valid", "test"))
    spikes = to_nlb_train_order(order, train.spikes, valid.spikes)  # every NLB training trial
    sm_train = smooth_spikes(spikes[..., :k], kern_sd, bin_ms)
    sm_eval = smooth_spikes(test.spikes[..., :k], kern_sd, bin_ms)
    flat = lambda x: x.reshape(-1, x.shape[-1])  # noqa: E731
    x_train, x_eval = np.log(flat(sm_train) + log_offset), np.log(flat(sm_eval) + log_offset)
    p_train, p_eval = fit_poisson(x_train, flat(spikes[..., k:]), [x_train, x_eval], alpha)
    rates_train = np.concatenate([sm_train, p_train.reshape(sm_train.shape[:2] + (-1,))], -1)
    rates_eval = np.concatenate([sm_eval, p_eval.reshape(sm_eval.shape[:2] + (-1,))], -1)
    fwd = np.concatenate([train.forward_spikes, valid.forward_spikes]).astype(np.float64)
    forward = np.broadcast_to(np.maximum(fwd.mean((0, 1)), 1e-9), (test.n_trials,) + fwd.shape[1:])
    return make_submission(spec.name, info["bin_ms"], rates_train, rates_eval, forward, n_heldin=k)
