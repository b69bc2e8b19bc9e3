"""Numerical integration of the synthetic systems' ODEs."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np


def rk4(
    f: Callable[[np.ndarray], np.ndarray],
    z0: np.ndarray,
    n_steps: int,
    dt: float,
    substeps: int = 4,
    noise: float = 0.0,
    rng: Optional[np.random.Generator] = None,
) -> np.ndarray:
    """Integrate ``dz/dt = f(z)`` from ``z0`` (K, D) with RK4; returns (K, n_steps, D), the first
    being z0.

    ``noise > 0`` adds ``noise * sqrt(dt) * N(0, 1)`` to the state after each step (a diffusion)."""
    h = dt / substeps
    out = np.empty((z0.shape[0], n_steps, z0.shape[1]))
    z = np.asarray(z0, np.float64)
    for t in range(n_steps):
        out[:, t] = z
        for _ in range(substeps):
            k1 = f(z)
            k2 = f(z + 0.5 * h * k1)
            k3 = f(z + 0.5 * h * k2)
            z = z + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + f(z + h * k3))
        if noise > 0:
            z = z + noise * np.sqrt(dt) * rng.standard_normal(z.shape)
    return out
