"""Per-band standardisation of log-mel input, stored in the model (so a checkpoint carries
everything it needs to embed a new clip)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BandStandardiser"]


class BandStandardiser(nn.Module):
    """``(mel - mean) / std`` per mel band, with the statistics as buffers.

    Parameters
    ----------
    n_bands : int
    """

    def __init__(self, n_bands: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_bands))
        self.register_buffer("std", torch.ones(n_bands))

    @torch.no_grad()
    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the statistics.

        Parameters
        ----------
        mean, std : torch.Tensor [shape=(n_bands,)]
            Mean and standard deviation of each band over the training frames, in dB (the
            deviation is clamped at 1e-3 dB: no division by zero for a constant band).
        """
        self.mean.copy_(mean)
        self.std.copy_(torch.clamp(std, min=1e-3))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``mel`` [shape=(batch, n_bands, n_frames), dB] → the same shape, unitless."""
        return (mel - self.mean[:, None]) / self.std[:, None]
