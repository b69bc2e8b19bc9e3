"""Transformer encoder (NDT-style): self-attention over time bins."""

from __future__ import annotations

import torch
from torch import nn

from dsid.modules.encoders.attention import AttentionStack
from dsid.modules.encoders.bigru import EncoderOutput
from dsid.registry import ENCODERS


@ENCODERS.register("transformer")
class TransformerEncoder(nn.Module):
    """Each bin's held-in counts become a token (linear embedding plus a sinusoidal position) and
    the tokens attend to each other over the whole trial (Ye & Pandarinath, 2021). The
    initial-condition posterior (mean, log-variance) comes from the pooled outputs: their mean over
    bins (``pool: mean``, the default) or a learned CLS token prepended to the bins
    (``pool: cls``). Every bin's output, mapped to ``ci_size`` features, gives the controller's
    per-step encoding (``ci_output_size = ci_size``; 0 disables it).

    Inside a sequential autoencoder the pooled initial condition starts out nearly the same for
    every trial, and a KL penalty that ramps up from the first epoch can collapse it for good; mean
    pooling recovers faster than a CLS token, and a few epochs without KL (``train.kl_start_epoch``,
    see experiments/lorenz_transformer.yaml) avoid the collapse.
    """

    def __init__(
        self,
        *,
        input_size: int,
        ic_size: int,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        ff_size: int = 128,
        ci_size: int = 32,
        dropout: float = 0.1,
        ic_logvar_floor: float = 1e-4,
        pool: str = "mean",
    ):
        super().__init__()
        if pool not in ("mean", "cls"):
            raise ValueError(f"transformer encoder: pool must be 'mean' or 'cls', got {pool!r}")
        self.pool = pool
        self.ci_output_size = ci_size
        self.ic_logvar_floor = ic_logvar_floor
        self.embed = nn.Linear(input_size, d_model)
        self.cls = nn.Parameter(0.02 * torch.randn(1, 1, d_model)) if pool == "cls" else None
        self.stack = AttentionStack(
            d_model=d_model, n_heads=n_heads, n_layers=n_layers, ff_size=ff_size, dropout=dropout
        )
        self.ic_head = nn.Linear(d_model, 2 * ic_size)
        self.ci_head = nn.Linear(d_model, ci_size) if ci_size else None

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        """Encode held-in input.

        Shape:
            x: (B, T, N) held-in observations
            returns ic_mean, ic_logvar: (B, I); ci: (B, T, ci_size) or None
        """
        tokens = self.embed(x)
        if self.cls is not None:
            tokens = torch.cat([self.cls.expand(x.shape[0], 1, -1), tokens], dim=1)
        h = self.stack(tokens, n_prefix=int(self.cls is not None))
        if self.cls is not None:
            pooled, h = h[:, 0], h[:, 1:]
        else:
            pooled = h.mean(dim=1)
        mean, logvar = self.ic_head(pooled).chunk(2, dim=-1)
        logvar = torch.log(torch.exp(logvar) + self.ic_logvar_floor)
        ci = self.ci_head(h) if self.ci_head is not None else None
        return EncoderOutput(mean, logvar, ci)
