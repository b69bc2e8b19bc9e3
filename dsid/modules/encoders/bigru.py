"""Bidirectional GRU encoder: initial-condition posterior and per-step controller encodings."""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import nn

from dsid.modules.recurrent import native
from dsid.modules.recurrent.gru_scan import gru_scan
from dsid.registry import ENCODERS


class EncoderOutput(NamedTuple):
    ic_mean: torch.Tensor  # (B, I)
    ic_logvar: torch.Tensor  # (B, I)
    ci: Optional[torch.Tensor]  # (B, T, ci_output_size) or None


def directions(rnn: nn.GRU) -> List[Tuple[torch.Tensor, ...]]:
    """(w_ih, w_hh, b_ih, b_hh, reverse) of a one-layer bidirectional ``nn.GRU``'s two
    directions."""
    return [
        (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0, False),
        (
            rnn.weight_ih_l0_reverse,
            rnn.weight_hh_l0_reverse,
            rnn.bias_ih_l0_reverse,
            rnn.bias_hh_l0_reverse,
            True,
        ),
    ]


def scan_directions(
    x_tm: torch.Tensor, dirs: List[Tuple[torch.Tensor, ...]]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Every direction's states and last states from one :func:`gru_scan` (all directions share a
    hidden size).

    Shape:
        x_tm: (T, B, N) time-major -> states (T, B, G, H), last states (G, B, H); G = len(dirs)
    """
    stack = lambda i: torch.stack([d[i] for d in dirs])  # noqa: E731
    return gru_scan(x_tm, stack(0), stack(2), stack(1), stack(3), [d[4] for d in dirs])


@ENCODERS.register("bigru")
class BiGRUEncoder(nn.Module):
    """Two bidirectional GRUs over the held-in input.

    The initial-condition GRU's last states (both directions) map to the posterior mean and
    log-variance of the generator's initial condition. When ``ci_size > 0`` a second bidirectional
    GRU gives per-time-step encodings for the controller (``ci_output_size = 2 * ci_size``).

    On a CPU every direction of both GRUs with the same hidden size runs in one compiled
    :func:`~dsid.modules.recurrent.gru_scan.gru_scan` (hand-written backward pass); on a GPU, or
    without the compiled module, they run as ``nn.GRU`` (cuDNN on a GPU). Both compute the same
    function with the same parameters.
    """

    def __init__(
        self,
        *,
        input_size: int,
        ic_size: int,
        hidden_size: int = 64,
        ci_size: int = 32,
        dropout: float = 0.1,
        ic_logvar_floor: float = 1e-4,
    ):
        super().__init__()
        self.ic_size = ic_size
        self.ci_output_size = 2 * ci_size
        self.ic_logvar_floor = ic_logvar_floor
        self.dropout = nn.Dropout(dropout)
        self.ic_rnn = nn.GRU(input_size, hidden_size, batch_first=True, bidirectional=True)
        self.ic_head = nn.Linear(2 * hidden_size, 2 * ic_size)
        self.ci_rnn = (
            nn.GRU(input_size, ci_size, batch_first=True, bidirectional=True) if ci_size else None
        )

    def run_rnns(
        self, x: torch.Tensor, time_major: bool = False
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The IC GRU's last states of both directions and the CI GRU's outputs (time-major when
        ``time_major``: then ``x`` is too).

        Shape:
            x: (B, T, N) [(T, B, N)] -> (B, 2 * hidden_size),
                (B, T, 2 * ci_size) [(T, B, ...)] or None
        """
        if not native.usable(x, self.ic_rnn.weight_hh_l0):  # GPU (cuDNN), other dtypes, no compiler
            x_bf = x.transpose(0, 1) if time_major else x
            _, h_last = self.ic_rnn(x_bf)
            ci = self.ci_rnn(x_bf)[0] if self.ci_rnn is not None else None
            if ci is not None and time_major:
                ci = ci.transpose(0, 1)
            return torch.cat([h_last[0], h_last[1]], dim=-1), ci
        x_tm = x if time_major else x.transpose(0, 1)
        ic_dirs = directions(self.ic_rnn)
        ci_dirs = directions(self.ci_rnn) if self.ci_rnn is not None else []
        if ci_dirs and self.ci_rnn.hidden_size == self.ic_rnn.hidden_size:
            hs, last = scan_directions(x_tm, ic_dirs + ci_dirs)
            ci_hs = hs[:, :, 2:]
        else:
            last = scan_directions(x_tm, ic_dirs)[1]
            ci_hs = scan_directions(x_tm, ci_dirs)[0] if ci_dirs else None
        h_last = torch.cat([last[0], last[1]], dim=-1)
        if ci_hs is None:
            return h_last, None
        ci = ci_hs.reshape(ci_hs.shape[0], ci_hs.shape[1], -1)  # (T, B, 2 * ci_size), a view
        return h_last, ci if time_major else ci.transpose(0, 1)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        """Encode held-in input.

        Shape:
            x: (B, T, N) held-in observations
            returns ic_mean, ic_logvar: (B, I); ci: (B, T, 2 * ci_size) or None
        """
        # time-major inside (the scan's layout): the dropout masks are drawn in that layout, so the
        # encodings come out time-major and contiguous, the layout the controller reads them in
        h_last, ci = self.run_rnns(native.dropout(self.dropout, x.transpose(0, 1)), time_major=True)
        if ci is not None:
            ci = native.dropout(self.dropout, ci).transpose(0, 1)
        mean, logvar = self.ic_head(self.dropout(h_last)).chunk(2, dim=-1)
        logvar = torch.log(torch.exp(logvar) + self.ic_logvar_floor)
        return EncoderOutput(mean, logvar, ci)
