"""Process noise of known state-space models, for the particle smoother: a draw and a log density.

:class:`GaussianNoise` is white noise; :class:`GaussianWithKicks` adds rare kicks of a fixed size in
random directions (inputs from outside the modelled system, arriving as events), independently in
each block of dimensions (an area's latent state).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GaussianNoise:
    """``N(0, sd^2 I)``."""

    sd: float

    def sample(self, rng: np.random.Generator, shape) -> np.ndarray:
        return self.sd * rng.standard_normal(shape)

    def logpdf(self, r: np.ndarray) -> np.ndarray:
        """Log density of residuals (..., D), up to a constant. Shape: (..., D) -> (...)."""
        return -0.5 * (r**2).sum(-1) / self.sd**2


@dataclass(frozen=True)
class GaussianWithKicks:
    """``N(0, sd^2 I)`` plus, in each block of ``block`` consecutive dimensions, Poisson(``rate``)
    kicks per bin, each of norm ``size`` in a uniformly random direction of the block. With
    ``single`` at most one kick per bin and block, with probability ``rate`` (a proposal that tries
    kicks more often than the model has them: its density is then exact)."""

    sd: float
    rate: float
    size: float
    block: int
    single: bool = False

    def sample(self, rng: np.random.Generator, shape) -> np.ndarray:
        shape = tuple(shape)
        if shape[-1] % self.block:
            raise ValueError(
                f"GaussianWithKicks: {shape[-1]} dimensions are not blocks of {self.block}"
            )
        blocks = shape[:-1] + (shape[-1] // self.block, self.block)
        kicks = np.zeros(blocks)
        count = (
            (rng.random(blocks[:-1]) < self.rate)
            if self.single
            else rng.poisson(self.rate, blocks[:-1])
        )
        for c in range(1, int(count.max(initial=0)) + 1):  # a bin's c-th kick, where there are >= c
            where = count >= c
            v = rng.standard_normal((int(where.sum()), self.block))
            kicks[where] += self.size * v / np.linalg.norm(v, axis=-1, keepdims=True)
        return self.sd * rng.standard_normal(shape) + kicks.reshape(shape)

    def logpdf(self, r: np.ndarray) -> np.ndarray:
        """Log density of residuals (..., D) but for the Gaussian's constant ``-D/2 log(2 pi)``: per
        block, no kick (Gaussian) or one kick (the sphere of radius ``size`` blurred by the
        Gaussian, for ``sd`` well below ``size``); two kicks in one bin and block are left out
        (probability ``rate^2 / 2``, and none with ``single``). Shape: (..., D) -> (...)."""
        d = self.block
        rb = r.reshape(r.shape[:-1] + (r.shape[-1] // d, d))
        norm2 = (rb**2).sum(-1)
        p_none, p_one = (
            (1 - self.rate, self.rate)
            if self.single
            else (math.exp(-self.rate), self.rate * math.exp(-self.rate))
        )
        gauss = math.log(p_none) - 0.5 * norm2 / self.sd**2 - d * math.log(self.sd)
        if p_one <= 0:
            return gauss.sum(-1)
        sphere = 2 * math.pi ** (d / 2) / math.gamma(d / 2) * self.size ** (d - 1)
        # one kick: the sphere's uniform density blurred radially by the Gaussian
        kick = (
            math.log(p_one)
            - math.log(sphere)
            - 0.5 * (np.sqrt(norm2) - self.size) ** 2 / self.sd**2
            - math.log(self.sd)
            + 0.5 * (d - 1) * math.log(2 * math.pi)
        )
        return np.logaddexp(gauss, kick).sum(-1)
