"""Torch modules of the learned spaces (no I/O here: training and checkpoints live in
:mod:`songsim.train`, the spaces in :mod:`songsim.spaces.learned` and :mod:`songsim.spaces.literature`).

Three modules are the exception, imported on their own (not from this package's namespace):
:mod:`songsim.models.tf_bundle`, a reader of TensorFlow checkpoints in numpy,
:mod:`songsim.models.musicnn`, the torch port of the pretrained MusiCNN tagger, which reads its
weights from the installed ``musicnn`` wheel through it, and :mod:`songsim.models.musly`,
Musly's timbre similarity through ``pymusly`` (no torch).

:data:`MODEL_TYPES` maps the name stored in a checkpoint to the module class and its config
dataclass, so a checkpoint rebuilds its module without pickling code.
"""

from __future__ import annotations

from songsim.models.ali import ALI, ALIConfig, ali_loss, lsgan_losses
from songsim.models.autoencoder import AutoencoderConfig, DenseAutoencoder
from songsim.models.cnn import CNNConfig, MelCNN
from songsim.models.lstm import ChromaLSTM, ChromaLSTMConfig, next_frame_l1
from songsim.models.metric import EmbeddingNet, EmbeddingNetConfig, batch_triplet_loss, triplet_margin_loss
from songsim.models.wavenet import WaveNetConfig, WaveNetEncoder, lambda_ndcg_loss, pairwise_hinge_loss, similarity

__all__ = [
    "MODEL_TYPES",
    "ALI",
    "ALIConfig",
    "ChromaLSTM",
    "ChromaLSTMConfig",
    "WaveNetConfig",
    "WaveNetEncoder",
    "ali_loss",
    "lambda_ndcg_loss",
    "lsgan_losses",
    "next_frame_l1",
    "pairwise_hinge_loss",
    "similarity",
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
    "WaveNetEncoder": (WaveNetEncoder, WaveNetConfig),
    "ChromaLSTM": (ChromaLSTM, ChromaLSTMConfig),
    "ALI": (ALI, ALIConfig),
}
