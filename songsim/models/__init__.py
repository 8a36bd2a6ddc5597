"""Torch modules of the learned spaces (no I/O here: training and checkpoints live in
:mod:`songsim.train`, the spaces in :mod:`songsim.learned`).

:data:`MODEL_TYPES` maps the name stored in a checkpoint to the module class and its config
dataclass, so a checkpoint rebuilds its module without pickling code.
"""

from __future__ import annotations

from songsim.models.autoencoder import AutoencoderConfig, DenseAutoencoder
from songsim.models.cnn import CNNConfig, MelCNN
from songsim.models.metric import EmbeddingNet, EmbeddingNetConfig, batch_triplet_loss, triplet_margin_loss

__all__ = [
    "MODEL_TYPES",
    "AutoencoderConfig",
    "CNNConfig",
    "DenseAutoencoder",
    "EmbeddingNet",
    "EmbeddingNetConfig",
    "MelCNN",
    "batch_triplet_loss",
    "triplet_margin_loss",
]

#: checkpoint model name -> (module class, config dataclass)
MODEL_TYPES: dict[str, tuple[type, type]] = {
    "MelCNN": (MelCNN, CNNConfig),
    "DenseAutoencoder": (DenseAutoencoder, AutoencoderConfig),
    "EmbeddingNet": (EmbeddingNet, EmbeddingNetConfig),
}
