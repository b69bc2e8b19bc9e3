"""Read-in maps that start a stitched model's sessions in one common space."""

from __future__ import annotations

from typing import List, Sequence

import numpy as np


def _unit_variance(z: np.ndarray) -> np.ndarray:
    return z / np.maximum(z.std(0, keepdims=True), 1e-8)


def readin_maps(sessions: Sequence, size: int, ridge: float = 1e-2) -> List[tuple]:
    """Per-session affine read-in maps (W (N_in, k), b (k,), k <= size) onto a common space.

    When every session labels its training trials with ``condition`` and they share conditions,
    the common space is the top principal components of the concatenated condition-averaged
    held-in activity of all sessions, and each session's map is a ridge regression onto it
    (Pandarinath et al., 2018). Otherwise each session's map is its own top principal components.
    Projections have unit variance on the training data.
    """
    heldin = [np.asarray(~np.asarray(d.heldout, bool)) for d in sessions]
    trains = [
        np.asarray(d.splits["train"].spikes, np.float64)[..., h] for d, h in zip(sessions, heldin)
    ]
    conds = [d.splits["train"].condition for d in sessions]
    shared = None
    if all(c is not None for c in conds):
        shared = sorted(set.intersection(*(set(np.asarray(c).tolist()) for c in conds)))
    maps = []
    if shared:
        psths = [
            np.concatenate([x[np.asarray(c) == k].mean(0) for k in shared])
            for x, c in zip(trains, conds)
        ]
        means = [p.mean(0) for p in psths]
        joint = np.concatenate([p - m for p, m in zip(psths, means)], axis=1)
        u, s, _ = np.linalg.svd(joint, full_matrices=False)
        k = min(size, int((s > 1e-8 * s[0]).sum()))
        z = _unit_variance(u[:, :k] * s[:k])
        for p, m in zip(psths, means):
            pc = p - m
            gram = pc.T @ pc
            reg = ridge * max(np.trace(gram) / gram.shape[0], 1e-8) * np.eye(gram.shape[0])
            w = np.linalg.solve(gram + reg, pc.T @ z)
            scale = np.maximum((pc @ w).std(0), 1e-8)
            maps.append((w / scale, -(m @ w) / scale))
        return maps
    for x in trains:
        flat = x.reshape(-1, x.shape[-1])
        mean = flat.mean(0)
        _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
        k = min(size, int((s > 1e-8 * max(s[0], 1e-12)).sum()))
        w = vt[:k].T / np.maximum(s[:k] / np.sqrt(flat.shape[0]), 1e-8)
        maps.append((w, -(mean @ w)))
    return maps
