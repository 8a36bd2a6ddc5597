"""A WaveNet-style encoder trained as a similarity model, and its ranking losses.

The network (van den Oord et al., "WaveNet: a generative model for raw audio", 2016, used
here as an *encoder*, not a generator) reads log-mel frames: the 64 mel bands are the input
channels of 1-D convolutions over time (raw audio would cost ~500 times more steps on a CPU).

Layout (the defaults):

- the mel bands, standardised by statistics stored in the model (``standardise``, a
  :class:`~songsim.models.standardise.BandStandardiser`),
  then a 1×1 convolution to ``channels`` (32) residual channels;
- ``n_stacks`` (3) stacks of ``layers_per_stack`` (4) gated residual layers with dilations
  1, 2, 4, 8: a causal dilated convolution (kernel 2, left padding only) giving
  ``tanh(f) · sigmoid(g)``, a 1×1 residual convolution added to the layer's input, and a 1×1
  *skip* convolution (``skip_channels``, 64) summed over every layer;
- average pooling by ``pool`` (2) over time between stacks, applied to the residual stream and
  to the running skip sum alike (so later stacks see coarser, longer context: the receptive
  field is 16 + 30 + 60 ≈ 106 frames ≈ 2.5 s);
- ReLU, a final 1×1 convolution, ReLU, global mean and max pooling over time (concatenated),
  and two dense layers (``hidden``, ReLU) to the ``embedding_dim`` (64) embedding, not
  normalised, so Euclidean and cosine similarity rank differently.

Losses, over similarities ``s`` (higher = more similar; :func:`similarity`):

:func:`pairwise_hinge_loss`
    ``max(0, margin − s(q, m⁺) + s(q, m⁻))`` for (query, more-similar, less-similar) triples;
    with ``s = −‖a − b‖`` and margin 1 this is ``max(0, 1 − d(q, m⁻) + d(q, m⁺))``.
:func:`lambda_ndcg_loss`
    The LambdaLoss framework's NDCG-Loss2 (Wang, Li, Golbandi, Bendersky & Najork, "The
    LambdaLoss framework for ranking metric optimization", CIKM 2018) over a list of
    candidates with graded relevance: a bound on ``1 − NDCG`` whose pairwise weights depend
    on the current ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from songsim.models.standardise import BandStandardiser

__all__ = ["SIMILARITIES", "WaveNetConfig", "WaveNetEncoder", "lambda_ndcg_loss", "pairwise_hinge_loss", "similarity"]

SIMILARITIES = ("euclidean", "cosine")


@dataclass(frozen=True)
class WaveNetConfig:
    """Shape of a :class:`WaveNetEncoder`.

    Attributes
    ----------
    n_mels : int
        Mel bands of the input (the input channels).
    channels : int
        Residual channels.
    skip_channels : int
        Channels of the skip connections and of the final convolution.
    n_stacks : int
        Stacks of dilated layers, with average pooling between them.
    layers_per_stack : int
        Layers per stack; layer ``i`` has dilation ``2 ** i``.
    kernel_size : int
        Taps of the dilated causal convolutions.
    pool : int
        Time pooling factor between stacks.
    hidden : int
        Width of the dense layer before the embedding.
    embedding_dim : int
    """

    n_mels: int = 64
    channels: int = 32
    skip_channels: int = 64
    n_stacks: int = 3
    layers_per_stack: int = 4
    kernel_size: int = 2
    pool: int = 2
    hidden: int = 128
    embedding_dim: int = 64


class _GatedLayer(nn.Module):
    """A dilated causal convolution with a tanh·sigmoid gate, residual and skip outputs."""

    def __init__(self, channels: int, skip_channels: int, *, dilation: int, kernel_size: int) -> None:
        super().__init__()
        self.left_pad = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(channels, 2 * channels, kernel_size, dilation=dilation)
        self.residual = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (batch, channels, t) → (residual output (batch, channels, t), skip (batch, skip_channels, t))."""
        filtered, gate = self.conv(F.pad(x, (self.left_pad, 0))).chunk(2, dim=1)
        z = torch.tanh(filtered) * torch.sigmoid(gate)
        return x + self.residual(z), self.skip(z)


class WaveNetEncoder(nn.Module):
    """Dilated causal convolution stacks over log-mel frames → a song-crop embedding.

    Parameters
    ----------
    config : WaveNetConfig
    """

    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__()
        self.config = config
        self.standardise = BandStandardiser(config.n_mels)
        self.input = nn.Conv1d(config.n_mels, config.channels, 1)
        self.stacks = nn.ModuleList(
            nn.ModuleList(
                _GatedLayer(config.channels, config.skip_channels, dilation=2**i, kernel_size=config.kernel_size)
                for i in range(config.layers_per_stack)
            )
            for _ in range(config.n_stacks)
        )
        self.final = nn.Conv1d(config.skip_channels, config.skip_channels, 1)
        self.head = nn.Sequential(
            nn.Linear(2 * config.skip_channels, config.hidden), nn.ReLU(inplace=True), nn.Linear(config.hidden, config.embedding_dim)
        )

    @property
    def min_frames(self) -> int:
        """Shortest input, in frames, that survives the pooling between stacks."""
        return self.config.pool ** (self.config.n_stacks - 1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Embed log-mel crops.

        Parameters
        ----------
        mel : torch.Tensor [shape=(batch, n_mels, n_frames), float32]
            Log-mel crops in dB; ``n_frames >= min_frames``.

        Returns
        -------
        torch.Tensor [shape=(batch, embedding_dim), float32]
        """
        x = self.input(self.standardise(mel))
        skip = x.new_zeros(x.shape[0], self.config.skip_channels, x.shape[2])
        for index, stack in enumerate(self.stacks):
            if index:
                x, skip = F.avg_pool1d(x, self.config.pool), F.avg_pool1d(skip, self.config.pool)
            for layer in stack:
                x, layer_skip = layer(x)
                skip = skip + layer_skip
        h = F.relu(self.final(F.relu(skip)))
        return self.head(torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1))


def similarity(a: torch.Tensor, b: torch.Tensor, kind: str = "euclidean") -> torch.Tensor:
    """Similarity of paired rows (higher = more similar).

    Parameters
    ----------
    a, b : torch.Tensor [shape=(..., dim)]
        Broadcastable embeddings.
    kind : {"euclidean", "cosine"}
        ``−‖a − b‖`` (the square root of a sum clamped at 1e-12, so the gradient stays finite
        for identical rows) or ``cos(a, b)``.

    Returns
    -------
    torch.Tensor [shape=(...)]
    """
    if kind == "euclidean":
        return -(a - b).pow(2).sum(dim=-1).clamp_min(1e-12).sqrt()
    if kind == "cosine":
        return F.cosine_similarity(a, b, dim=-1)
    raise ValueError(f"similarity must be one of {SIMILARITIES}, got {kind!r}")


def pairwise_hinge_loss(similar: torch.Tensor, dissimilar: torch.Tensor, *, margin: float = 1.0) -> torch.Tensor:
    """Mean hinge loss of (query, more-similar, less-similar) triples.

    Parameters
    ----------
    similar, dissimilar : torch.Tensor [shape=(n,)]
        ``s(q, m⁺)`` and ``s(q, m⁻)`` of each triple.
    margin : float
        Required gap between the two similarities.

    Returns
    -------
    torch.Tensor [shape=()]
        ``mean(max(0, margin − s(q, m⁺) + s(q, m⁻)))``.
    """
    return F.relu(margin - similar + dissimilar).mean()


def lambda_ndcg_loss(scores: torch.Tensor, relevance: torch.Tensor, *, sigma: float = 1.0) -> torch.Tensor:
    """LambdaLoss NDCG-Loss2 of scored lists (Wang et al., CIKM 2018, eq. 13).

    .. math:: l = -\\sum_{y_i > y_j} \\delta_{ij} \\, |G_i - G_j| \\,
              \\log_2 \\mathrm{sigmoid}(\\sigma (s_i - s_j))

    with gains ``G_i = (2^{y_i} − 1) / IDCG`` and
    ``δ_ij = |1 / D(|r_i − r_j|) − 1 / D(|r_i − r_j| + 1)|``, ``D(r) = log2(1 + r)``, where
    ``r`` are the items' current ranks (1 = highest score, treated as constants). Every
    (more relevant, less relevant) pair pushes the more relevant item's score up and the
    other's down, weighted by how much their rank distance matters to NDCG.

    Parameters
    ----------
    scores : torch.Tensor [shape=(n_lists, list_length), float]
        Similarity of each candidate to its list's query.
    relevance : torch.Tensor [shape=(n_lists, list_length)]
        Graded relevance (≥ 0), e.g. 1 for the similar and 0 for the dissimilar candidates.
    sigma : float
        Steepness of the pairwise sigmoid.

    Returns
    -------
    torch.Tensor [shape=()]
        Mean over lists; 0 for a list without a relevant item.
    """
    relevance = relevance.to(scores.dtype)
    ranks = scores.detach().argsort(dim=1, descending=True).argsort(dim=1).to(scores.dtype) + 1.0
    gains = torch.pow(2.0, relevance) - 1.0
    ideal = gains.sort(dim=1, descending=True).values
    discounts = torch.log2(torch.arange(2, scores.shape[1] + 2, dtype=scores.dtype, device=scores.device))
    idcg = (ideal / discounts).sum(dim=1, keepdim=True).clamp_min(1e-12)
    gains = gains / idcg
    rank_gap = (ranks[:, :, None] - ranks[:, None, :]).abs().clamp_min(1.0)
    delta = (1.0 / torch.log2(1.0 + rank_gap) - 1.0 / torch.log2(2.0 + rank_gap)).abs()
    weights = delta * (gains[:, :, None] - gains[:, None, :]).abs() * (relevance[:, :, None] > relevance[:, None, :])
    log_p = F.logsigmoid(sigma * (scores[:, :, None] - scores[:, None, :])) / math.log(2.0)
    return -(weights * log_p).sum(dim=(1, 2)).mean()
