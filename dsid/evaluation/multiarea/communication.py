"""Ground-truth recovery metrics and figures of models of interacting areas
(:class:`~dsid.models.protocol.CommunicationModel`)."""

from __future__ import annotations

import warnings
from typing import Any, Dict

import numpy as np

from dsid.evaluation.multiarea import metrics as mam
from dsid.evaluation.multiarea.edges import edge_ranks, edge_scores, lag_ranges
from dsid.evaluation.multiarea.plots import plot_delays, plot_effectomes, plot_messages


def communication_metrics(
    model, data, outputs: Dict[str, Dict[str, np.ndarray]]
) -> Dict[str, float]:
    """Per-area ``val/rate_r2_area{a}`` and ``val/co_bps_area{a}``; with the data's ground truth
    ``val/effectome_cosine`` and ``val/edge_auroc`` (effectome measured on the validation spikes),
    ``val/delay_error`` with the inferred delay of every true edge ``val/delay_{src}_{dst}``,
    ``val/delay_cycle_error`` (total delays around the true graph's cycles, nan without cycles),
    ``val/message_r2`` (mean over true edges; 0 for an edge the model lacks) and
    ``val/message_r2_{src}_{dst}``; ``val/edge_rank_accuracy``, ``val/delay_coverage`` and
    ``val/lag_range_width`` (:mod:`dsid.evaluation.multiarea.edges`). ``outputs[split]`` has rates,
    factors and messages."""
    metrics: Dict[str, float] = {}
    va = data.splits.get("valid")
    if va is None or "valid" not in outputs:
        return metrics
    rates = outputs["valid"]["rates"][:, : va.spikes.shape[1]]
    area, heldout = np.asarray(data.area), np.asarray(data.heldout, bool)
    edges = model.edges
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if va.truth_rates is not None:
            for a, v in enumerate(mam.per_area_rate_r2(rates, va.truth_rates, area)):
                metrics[f"val/rate_r2_area{a}"] = v
        if heldout.any():
            for a, v in enumerate(mam.per_area_co_bps(rates, va.spikes, heldout, area)):
                metrics[f"val/co_bps_area{a}"] = v
        if data.effectome is not None:
            eff = model.effectome(va.spikes)
            metrics["val/effectome_cosine"] = mam.effectome_cosine(eff, data.effectome)
            metrics["val/edge_auroc"] = mam.edge_auroc(eff, data.effectome)
        if data.delay_bins is not None and edges:
            inferred = model.delays()
            metrics["val/delay_error"] = mam.delay_error(inferred, data.delay_bins)
            metrics["val/delay_cycle_error"] = mam.cycle_delay_error(inferred, data.delay_bins)
            for s, d in zip(*np.nonzero(data.delay_bins >= 0)):
                if s != d:
                    metrics[f"val/delay_{s}_{d}"] = float(inferred[s, d])
        tr = data.splits.get("train")
        if (
            edges
            and tr is not None
            and va.truth_messages
            and "messages" in outputs.get("train", {})
        ):
            index, r2s = model.message_index(), []
            for key in sorted(va.truth_messages):
                r2 = 0.0
                if key in index and key in tr.truth_messages:
                    sl = index[key]
                    r2 = mam.message_r2(
                        outputs["train"]["messages"][..., sl],
                        tr.truth_messages[key],
                        outputs["valid"]["messages"][..., sl],
                        va.truth_messages[key],
                    )
                metrics[f"val/message_r2_{key}"] = r2
                r2s.append(r2)
            metrics["val/message_r2"] = float(np.mean(r2s))
        if edges and (data.delay_bins is not None or va.truth_messages):
            msgs = outputs["valid"].get("messages")
            ranks = None if msgs is None else edge_ranks(model, msgs[:, : va.spikes.shape[1]])
            for k, v in edge_scores(ranks, lag_ranges(model), data).items():
                metrics[f"val/{k}"] = v
    return metrics


def communication_figures(model, data, outputs: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, Any]:
    """``{name: Figure}``: true vs inferred effectome (measured on the validation spikes), delays
    and per-edge message traces (validation trial 0) for what the data has ground truth of; the
    inferred effectome alone otherwise."""
    names = data.area_names or model.area_names
    va = data.splits.get("valid")
    eff = model.effectome(va.spikes if va is not None else None)
    figs = {"effectome": plot_effectomes(data.effectome, eff, names)}
    edges = model.edges
    if data.delay_bins is not None and edges:
        figs["delays"] = plot_delays(model.delays(), data.delay_bins, names)
    msgs = outputs.get("valid", {}).get("messages")
    if edges and va is not None and msgs is not None:
        index = model.message_index()
        keys = [k for k in sorted(va.truth_messages) if k in index]
        if keys:
            figs["messages"] = plot_messages(
                [va.truth_messages[k] for k in keys],
                [msgs[..., index[k]] for k in keys],
                keys,
                area_names=names,
                bin_ms=data.bin_ms,
                start_ms=data.time_start_ms,
            )
    return figs
