"""Metric learning: an embedding network and triplet margin losses with in-batch mining.

Distances are Euclidean between L2-normalised embeddings (so they lie in ``[0, 2]`` and a
margin of 0.2 is about a tenth of the diameter). For a triplet (anchor ``a``, positive
``p`` sharing its label, negative ``n`` with another label) the margin loss is
``max(d(a, p) - d(a, n) + margin, 0)`` (Weinberger & Saul 2009; Schroff et al. 2015).

Mining, among the songs of one batch:

``"semi-hard"`` (Schroff et al., "FaceNet", CVPR 2015)
    For every (anchor, positive) pair, the closest negative that is still farther than the
    positive (``d(a, n) > d(a, p)``); when no negative is farther, the farthest negative
    (as TensorFlow Addons' ``triplet_semihard_loss``). Averaged over all pairs.
``"hard"`` (batch-hard, Hermans et al., "In defense of the triplet loss", 2017)
    For every anchor, its farthest positive and its closest negative. Averaged over anchors
    that have both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["EmbeddingNetConfig", "EmbeddingNet", "MINING", "batch_triplet_loss", "pairwise_distances", "triplet_margin_loss"]

MINING = ("semi-hard", "hard")


@dataclass(frozen=True)
class EmbeddingNetConfig:
    """Shape of an :class:`EmbeddingNet`.

    Attributes
    ----------
    input_dim : int
        Width of the input features.
    hidden : tuple of int
        Hidden widths (ReLU, dropout after each).
    output_dim : int
        Width of the (L2-normalised) embedding.
    dropout : float
    """

    input_dim: int
    hidden: tuple[int, ...] = (256,)
    output_dim: int = 64
    dropout: float = 0.1


class EmbeddingNet(nn.Module):
    """A dense network mapping feature vectors onto the unit sphere.

    Parameters
    ----------
    config : EmbeddingNetConfig
    """

    def __init__(self, config: EmbeddingNetConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.input_dim
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, config.output_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed feature vectors.

        Parameters
        ----------
        x : torch.Tensor [shape=(batch, input_dim), float32]

        Returns
        -------
        torch.Tensor [shape=(batch, output_dim), float32]
            Unit-norm rows.
        """
        return F.normalize(self.net(x), dim=1)


def pairwise_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between all rows.

    Parameters
    ----------
    embeddings : torch.Tensor [shape=(batch, dim)]

    Returns
    -------
    torch.Tensor [shape=(batch, batch)]
        Symmetric, zero on the diagonal; the square root is taken of values clamped at
        1e-12, so the gradient stays finite for identical rows.
    """
    squared = (embeddings[:, None, :] - embeddings[None, :, :]).pow(2).sum(dim=-1)
    eye = torch.eye(len(embeddings), dtype=torch.bool, device=embeddings.device)
    return torch.sqrt(squared.clamp_min(1e-12)).masked_fill(eye, 0.0)


def triplet_margin_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, *, margin: float
) -> torch.Tensor:
    """Mean margin loss of explicit triplets.

    Parameters
    ----------
    anchor, positive, negative : torch.Tensor [shape=(n_triplets, dim)]
    margin : float
        Required gap between ``d(a, n)`` and ``d(a, p)``, in embedding units.

    Returns
    -------
    torch.Tensor [shape=()]
        ``mean(max(||a - p|| - ||a - n|| + margin, 0))``.
    """
    d_ap = (anchor - positive).norm(dim=1)
    d_an = (anchor - negative).norm(dim=1)
    return F.relu(d_ap - d_an + margin).mean()


def batch_triplet_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    *,
    margin: float,
    mining: Literal["semi-hard", "hard"] = "semi-hard",
) -> torch.Tensor:
    """Triplet margin loss over the triplets mined in a batch (see the module docstring).

    Parameters
    ----------
    embeddings : torch.Tensor [shape=(batch, dim), float32]
    labels : torch.Tensor [shape=(batch,), int64]
        Songs with equal labels are positives of each other.
    margin : float
    mining : {"semi-hard", "hard"}

    Returns
    -------
    torch.Tensor [shape=()]
        The mean loss; 0 (with a gradient path) when the batch has no valid triplet.
    """
    if mining not in MINING:
        raise ValueError(f"mining must be one of {MINING}, got {mining!r}")
    distances = pairwise_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & ~eye
    negative = ~same
    if not positive.any() or not negative.any():
        return embeddings.sum() * 0.0
    if mining == "hard":
        hardest_positive = distances.masked_fill(~positive, float("-inf")).amax(dim=1)
        hardest_negative = distances.masked_fill(~negative, float("inf")).amin(dim=1)
        valid = positive.any(dim=1) & negative.any(dim=1)
        return F.relu(hardest_positive[valid] - hardest_negative[valid] + margin).mean()
    # semi-hard: for each (a, p), the closest negative beyond d(a, p), else the farthest one
    d_ap = distances[:, :, None]  # (anchor, positive, 1)
    d_an = distances[:, None, :]  # (anchor, 1, negative)
    is_negative = negative[:, None, :]
    beyond = is_negative & (d_an > d_ap)
    closest_beyond = d_an.expand(-1, len(labels), -1).masked_fill(~beyond, float("inf")).amin(dim=2)
    farthest = distances.masked_fill(~negative, float("-inf")).amax(dim=1, keepdim=True).expand_as(distances)
    chosen = torch.where(beyond.any(dim=2), closest_beyond, farthest)
    losses = F.relu(distances - chosen + margin)
    return losses[positive].mean()
