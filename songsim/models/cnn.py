"""A small 2-D CNN over log-mel spectrograms: the trunk of the genre and emotion spaces.

Input: batches of log-mel crops ``(batch, n_mels, n_frames)`` in dB, as returned by
:func:`songsim.features.log_mel_spectrogram` (64 bands, 23 ms frames). The network
standardises every mel band with statistics stored in the model (buffers set from the
training songs by :meth:`MelCNN.set_input_stats`), so a checkpoint carries everything it
needs to embed a new clip.

Layout (``channels=(16, 32, 64, 128)``, the default):

- a stride-2 3×3 stem (16 channels) halves frequency and time at once: the full-resolution
  layer is the costliest on a CPU, so it stays one convolution;
- one block per further channel count: 3×3 convolution, batch norm, ReLU, 2×2 max pooling;
- global mean and max pooling over frequency and time, concatenated (``2 × 128``);
- a dense ``embedding_dim`` layer with ReLU: **the embedding** (the penultimate layer);
- dropout, then one linear head per task (e.g. emotion, and genre as an auxiliary task).

The network is fully convolutional up to the global pooling, so it accepts any crop length
of at least ``2 ** len(channels)`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["CNNConfig", "MelCNN"]


@dataclass(frozen=True)
class CNNConfig:
    """Shape of a :class:`MelCNN`.

    Attributes
    ----------
    n_mels : int
        Mel bands of the input (64).
    n_classes : tuple of int
        Classes of each head, main task first (e.g. ``(4, 8)``: emotion, then genre).
    channels : tuple of int
        Channels of the stride-2 stem, then of each conv block.
    embedding_dim : int
        Width of the penultimate layer, the embedding.
    dropout : float
        Dropout before the heads (training only).
    """

    n_mels: int = 64
    n_classes: tuple[int, ...] = (8,)
    channels: tuple[int, ...] = (16, 32, 64, 128)
    embedding_dim: int = 256
    dropout: float = 0.3


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class MelCNN(nn.Module):
    """2-D CNN classifier whose penultimate layer is a song embedding.

    Parameters
    ----------
    config : CNNConfig
    """

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        first, *rest = config.channels
        self.register_buffer("band_mean", torch.zeros(config.n_mels))
        self.register_buffer("band_std", torch.ones(config.n_mels))
        layers: list[nn.Module] = [
            nn.Conv2d(1, first, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(first),
            nn.ReLU(inplace=True),
        ]
        widths = [first, *rest]
        layers += [_block(a, b) for a, b in zip(widths[:-1], widths[1:])]
        self.trunk = nn.Sequential(*layers)
        self.embedding = nn.Sequential(nn.Linear(2 * widths[-1], config.embedding_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleList(nn.Linear(config.embedding_dim, n) for n in config.n_classes)

    @torch.no_grad()
    def set_input_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the per-band standardisation of the input.

        Parameters
        ----------
        mean, std : torch.Tensor [shape=(n_mels,)]
            Mean and standard deviation of each mel band over the training frames, in dB.
        """
        self.band_mean.copy_(mean)
        self.band_std.copy_(torch.clamp(std, min=1e-3))

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """Embed log-mel crops.

        Parameters
        ----------
        mel : torch.Tensor [shape=(batch, n_mels, n_frames), float32]
            Log-mel crops in dB; ``n_frames >= 2 ** len(channels)``.

        Returns
        -------
        torch.Tensor [shape=(batch, embedding_dim), float32]
            The penultimate layer (non-negative: after a ReLU).
        """
        x = (mel - self.band_mean[:, None]) / self.band_std[:, None]
        h = self.trunk(x[:, None])
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.embedding(pooled)

    def forward(self, mel: torch.Tensor) -> list[torch.Tensor]:
        """Class logits of every head.

        Parameters
        ----------
        mel : torch.Tensor [shape=(batch, n_mels, n_frames), float32]
            Log-mel crops in dB.

        Returns
        -------
        list of torch.Tensor, one per head, each [shape=(batch, n_classes[i]), float32]
            Unnormalised logits, main task first.
        """
        h = self.dropout(self.embed(mel))
        return [head(h) for head in self.heads]
