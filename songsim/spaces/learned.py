"""The learned embedding spaces: CNN genre and emotion, metadata, fusion autoencoder, 2-D
autoencoder and triplet metric learning, registered in :mod:`songsim.spaces.base`.

=============  ==========================================  =====================================
space          input                                       model and embedding
=============  ==========================================  =====================================
genre-cnn      ``"mel"`` (64-band log-mel, 30 s)            :class:`~songsim.models.MelCNN` on
                                                           genre; 256-d penultimate layer
emotion-cnn    ``"mel"``                                   the same family on the 4 Thayer
                                                           quadrants (+ genre as auxiliary task)
metadata       ``"metadata"`` (11 Spotify-style features)  standardised, k-NN-imputed; 11-d
fusion-ae      genre-cnn ⊕ the optional inputs the          dense autoencoder D → 248 → 128 →
               catalogue has: emotion-cnn, metadata,       64 (mirrored decoder); the 64-d code
               handcrafted, musicnn (below)
triplet        the same fused input                        MLP D → 256 → 64-d unit vectors,
                                                           triplet margin loss, semi-hard negatives
ae-2d          the triplet space's 64-d vectors            deep autoencoder 64 → 256 → 64 → 16
                                                           → 2 (mirrored) + genre head; the 2-d code
=============  ==========================================  =====================================

**Fused inputs.** ``fusion-ae`` and ``triplet`` need ``genre-cnn`` (their one required input)
and use each of ``emotion-cnn`` (emotion labels), ``metadata`` (Spotify-style features),
``handcrafted`` and ``musicnn`` where the catalogue has it (``optional_inputs``; the rule is
:func:`songsim.spaces.store.used_inputs`; musicnn only where built, or built by the same
build, as it is slow and not a default space). D, the fused width, is the sum of the used
blocks' widths: 523 with genre-cnn, emotion-cnn and metadata; 256 + handcrafted's + 200 on a
collection with genre labels only and musicnn built. The fitted space records them in
``used_inputs_``; an upload goes through those same spaces.

Training protocol
-----------------
One **shared split** per catalogue and seed (:func:`catalogue_split`): 80/10/10, stratified
by genre × emotion, so no learned space — nor a space built on top of another — ever trains
on a test song. Each supervised space (and every space fed by one) sets ``test_rows_``, the
catalogue rows it never trained on; evaluation queries only those. Models train on the train
rows, stop early on the validation loss (keeping the best epoch), and report test metrics.

CNNs see **random crops** of ``crop_frames`` = 128 frames (3 s) in training — full 30 s clips
make CPU training about ten times slower — and embed a song with a fixed rule: the mean of
the embeddings of its consecutive non-overlapping 128-frame crops (the last one aligned to the
clip's end).

Design choices, with the figures that decided them (demo catalogue, 240 songs, seed 0, genre /
emotion P@5 on the 24 held-out songs, ``bench/bench_train.py``):

- **Class imbalance** (emotion, and genre alike): a class-weighted cross-entropy (weight
  ``n / (k · n_c)`` per class, scikit-learn's "balanced"), not augmentation. It costs no
  training time, while pitch-shifted and noisy copies would multiply the epoch cost on a CPU
  and move the register and timbre cues that valence and arousal partly rest on.
- **Genre as an auxiliary task of the emotion CNN** (``aux_weight`` = 1, when the catalogue has
  genres): trained on the quadrants alone it reached 0.39 emotion / 0.30 genre P@5 (test
  accuracy 0.38); with the auxiliary genre head 0.50 / 0.87 (accuracy 0.50) — a few hundred
  songs in four mood classes are too few to learn timbre from.
- **Block-balanced fusion input**: after the ``StandardScaler`` each block is scaled by
  ``sqrt(n_blocks / width)`` so the 256-d CNN blocks and the 11-d metadata block weigh the
  same in the reconstruction loss and in cosine distance. Unscaled, metadata is 2 % of the
  input and the code scores 0.88 / 0.51 (mean 0.70, below the metadata space's 0.71 alone);
  balanced, 0.79 / 0.72 (mean 0.75).
- **Triplet on the fused features, not on mel spectrograms**: 0.90 / 0.49 P@5 in under 5 s,
  against 0.81 / 0.33 in 60 s for the same loss on a mel CNN (which would also push the
  all-models CPU budget past 3.5 minutes).
- **ae-2d over the triplet space, supervised by genre**: two dimensions keep little of the fused
  input's genre structure by reconstruction alone (genre P@5 0.36). Adding the genre
  cross-entropy of a linear classifier on the code gave 0.625 cosine / 0.725 euclidean on the
  fused input — no better than ``handcrafted`` (0.725 on the same 24 songs) — and 0.75 / 0.78
  on the triplet space's vectors (0.58 / 0.86 unsupervised there: fine by distance, poor by
  angle). Its input is therefore the triplet embedding: metric learning shapes the
  neighbourhoods, the autoencoder lays them out in a plane.

Weights are kept as checkpoint bytes (:func:`songsim.train.save_checkpoint`) inside the
pickled space, and the torch module is rebuilt lazily on first use with ``map_location`` (and
``weights_only=True``), so a space trained on a GPU embeds uploads on a laptop. This module
imports torch only when a model is trained or used.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.impute import KNNImputer
from sklearn.preprocessing import StandardScaler

from songsim.catalogue import SPOTIFY_FEATURES
from songsim.config import HOP_LENGTH, N_MELS, SAMPLE_RATE_HZ
from songsim.errors import NotBuiltError, SongsimError
from songsim.spaces.base import Fold, Space, TrainingOptions, register_space

if TYPE_CHECKING:
    import torch

    from songsim.measure import MetadataReading
    from songsim.train import Checkpoint, History, ResumeFile, Split

__all__ = [
    "AE2DSpace",
    "AutoencoderReducer",
    "AutoencoderSpaceConfig",
    "CNNSpaceConfig",
    "EmotionCNNSpace",
    "FusionAESpace",
    "GenreCNNSpace",
    "LearnedSpace",
    "MetadataSpace",
    "TrainConfig",
    "TripletConfig",
    "TripletSpace",
    "catalogue_split",
    "embed_mels",
    "fit_ae2d_map",
    "training_summary",
]

#: label columns the shared split is stratified on
SPLIT_LABELS = ("genre", "emotion")
#: share of the catalogue a fold model validates on (early stopping), drawn from the other folds
FOLD_VAL_FRACTION = 0.1
#: required input of the fused spaces (fusion-ae, triplet): the genre CNN is their core
FUSED_INPUTS = ("space:genre-cnn",)
#: their optional inputs, each used where the catalogue has it (:func:`songsim.spaces.store.used_inputs`:
#: emotion-cnn needs emotion labels, metadata Spotify-style features; musicnn, which is slow,
#: only where it is built or built by the same build); blocks are concatenated in this order
#: after :data:`FUSED_INPUTS`
FUSED_OPTIONAL_INPUTS = ("space:emotion-cnn", "space:metadata", "space:handcrafted", "space:musicnn")

# ============================================================================================
# settings


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one model (Adam, early stopping on the validation loss).

    Attributes
    ----------
    max_epochs : int
    patience : int
        Epochs without a lower validation loss before stopping.
    learning_rate : float
    weight_decay : float
    batch_size : int
        Crops (CNNs) or rows (dense models) per batch.
    """

    max_epochs: int = 20
    patience: int = 6
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32


@dataclass(frozen=True)
class CNNSpaceConfig:
    """Settings of a CNN space (see the module docstring).

    Attributes
    ----------
    crop_frames : int
        Crop length in frames of ``HOP_LENGTH`` samples (128 frames ≈ 3.0 s).
    crops_per_song : int
        Random crops drawn per training song and epoch.
    channels, embedding_dim, dropout
        The :class:`~songsim.models.CNNConfig` of the network.
    aux_weight : float
        Weight of the auxiliary genre loss (emotion CNN only; 0 disables it).
    train : TrainConfig
    """

    crop_frames: int = 128
    crops_per_song: int = 4
    channels: tuple[int, ...] = (16, 32, 64, 128)
    embedding_dim: int = 256
    dropout: float = 0.3
    aux_weight: float = 1.0
    train: TrainConfig = field(default_factory=lambda: TrainConfig(max_epochs=30, patience=8, learning_rate=3e-3))


@dataclass(frozen=True)
class AutoencoderSpaceConfig:
    """Settings of an autoencoder space or map.

    Attributes
    ----------
    hidden : tuple of int
        Encoder hidden widths (the decoder mirrors them).
    code_dim : int
        Width of the code, the embedding.
    supervised_label : str or None
        A label column (e.g. ``"genre"``) whose classes a linear classifier predicts from the
        code, its cross-entropy added to the reconstruction error (a supervised autoencoder);
        ``None``: reconstruction only.
    label_weight : float
        Weight of that cross-entropy against the mean squared reconstruction error.
    train : TrainConfig
    """

    hidden: tuple[int, ...] = (248, 128)
    code_dim: int = 64
    supervised_label: str | None = None
    label_weight: float = 1.0
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(max_epochs=300, patience=30, learning_rate=1e-3, weight_decay=1e-5)
    )


#: the 2-D autoencoder map method: reconstruction only (a map of any space, no labels)
AE2D_MAP_CONFIG = AutoencoderSpaceConfig(hidden=(256, 64, 16), code_dim=2)
#: the ae-2d space: the code also predicts the genre (module docstring, "ae-2d over the
#: triplet space")
AE2D_SPACE_CONFIG = AutoencoderSpaceConfig(hidden=(256, 64, 16), code_dim=2, supervised_label="genre")


@dataclass(frozen=True)
class TripletConfig:
    """Settings of the triplet space.

    Attributes
    ----------
    hidden : tuple of int
        Hidden widths of the :class:`~songsim.models.EmbeddingNet`.
    output_dim : int
        Embedding width.
    margin : float
        Triplet margin, in distance between unit vectors (0–2).
    mining : {"semi-hard", "hard"}
        Negative mining in each batch (:func:`songsim.models.batch_triplet_loss`).
    dropout : float
    train : TrainConfig
    """

    hidden: tuple[int, ...] = (256,)
    output_dim: int = 64
    margin: float = 0.2
    mining: str = "semi-hard"
    dropout: float = 0.1
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(max_epochs=150, patience=20, learning_rate=1e-3, batch_size=64)
    )


# ============================================================================================
# shared pieces


def catalogue_split(labels: dict[str, np.ndarray], *, n_rows: int, seed: int, fold: Fold | None = None) -> "Split":
    """The split every learned space of a catalogue shares (80/10/10), or one fold's split.

    Stratified by the ``genre`` × ``emotion`` label pair (a missing label is a stratum of its
    own), seeded by ``seed``: the same catalogue and seed always give the same split.

    With ``fold`` (``evaluate --folds K``): the rows are dealt into K folds, stratified the
    same way (:func:`songsim.train.stratified_folds`: every genre spread over the folds as
    evenly as its size allows, the same folds for every ``index``), and fold ``index`` is the
    test part; the validation part — :data:`FOLD_VAL_FRACTION` of the catalogue, as in the
    shared split — is drawn, stratified, from the other folds, and the rest is trained on.
    With K = 10 the proportions are the shared split's.

    Parameters
    ----------
    labels : dict of str to np.ndarray [shape=(n_rows,), object]
        The catalogue's label columns (``None`` where missing).
    n_rows : int
    seed : int
    fold : songsim.spaces.base.Fold, optional

    Returns
    -------
    songsim.train.Split
    """
    from songsim.train import Split, stratified_folds, stratified_split

    columns = [labels.get(c, np.full(n_rows, None, dtype=object)) for c in SPLIT_LABELS]
    strata = ["|".join("" if col[i] is None else str(col[i]) for col in columns) for i in range(n_rows)]
    if fold is None:
        return stratified_split(strata, seed=seed)
    folds = stratified_folds(strata, k=fold.count, seed=seed)
    rest = np.flatnonzero(folds != fold.index)
    val_fraction = FOLD_VAL_FRACTION * n_rows / max(len(rest), 1)
    inner = stratified_split([strata[i] for i in rest], val_fraction=val_fraction, test_fraction=0.0, seed=seed + 1 + fold.index)
    return Split(train=rest[inner.train], val=rest[inner.val], test=np.flatnonzero(folds == fold.index))


def _class_targets(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Sorted class names and each row's class index (-1 where the label is missing)."""
    classes = sorted({str(v) for v in values if v is not None})
    index = {c: i for i, c in enumerate(classes)}
    return classes, np.array([-1 if v is None else index[str(v)] for v in values], dtype=np.int64)


def _balanced_weights(targets: np.ndarray, n_classes: int) -> np.ndarray:
    """``n / (k · n_c)`` for the k classes present in ``targets`` (≥ 0), 0 for absent ones."""
    counts = np.bincount(targets[targets >= 0], minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


def _labelled(rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return rows[targets[rows] >= 0]


_CACHE_CREATION_LOCK = threading.Lock()


class _CheckpointHolder:
    """Keeps a trained module as checkpoint bytes (what pickles) and rebuilds it lazily.

    ``checkpoint_bytes_`` holds :func:`songsim.train.save_checkpoint` output; the module
    rebuilt from it is cached per object (thread-safe) and never pickled.
    """

    checkpoint_bytes_: bytes

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_module_cache", None)
        state.pop("_module_lock", None)
        return state

    def _lock(self) -> threading.Lock:
        with _CACHE_CREATION_LOCK:
            return self.__dict__.setdefault("_module_lock", threading.Lock())

    def _keep(self, checkpoint: "Checkpoint", module: "torch.nn.Module") -> None:
        """Store ``checkpoint`` as bytes and cache its live ``module``."""
        from songsim.train import save_checkpoint

        buffer = io.BytesIO()
        save_checkpoint(checkpoint, buffer)
        with self._lock():
            self.checkpoint_bytes_ = buffer.getvalue()
            self._module_cache = module.eval()

    def checkpoint(self, *, map_location: "str | torch.device" = "cpu") -> "Checkpoint":
        """The stored checkpoint: config, weights, feature settings, catalogue fingerprint,
        training history and test metrics, tensors on ``map_location``.

        Raises
        ------
        NotBuiltError
            Nothing was trained yet.
        """
        from songsim.train import load_checkpoint

        data = getattr(self, "checkpoint_bytes_", None)
        if data is None:
            raise NotBuiltError(f"{type(self).__name__} has no trained model: run `python -m songsim train DIR`.")
        return load_checkpoint(data, map_location=map_location)

    def _module(self) -> "torch.nn.Module":
        """The module on :func:`songsim.train.choose_device`, rebuilt once per object."""
        from songsim.train import choose_device

        with self._lock():
            if getattr(self, "_module_cache", None) is None:
                device = choose_device()
                self._module_cache = self.checkpoint(map_location=device).build_module(device)
            return self._module_cache


def _device_of(module: "torch.nn.Module") -> "torch.device":
    return next(module.parameters()).device


# ============================================================================================
# the learned-space base


class LearnedSpace(_CheckpointHolder, Space):
    """Base of the torch-backed spaces.

    ``fit`` takes one more keyword than :meth:`Space.fit`, ``training``
    (:class:`TrainingOptions`: device, epochs, progress, catalogue fingerprint).

    Attributes
    ----------
    checkpoint_bytes_ : bytes
        The trained model's checkpoint (read it with :meth:`checkpoint`).
    train_rows_, val_rows_, test_rows_ : np.ndarray [shape=(n,), int64]
        The shared split (:func:`catalogue_split`): rows trained on, used for early
        stopping, and held out (never trained on, by this space or its inputs) — or, for a
        fold model (``TrainingOptions.fold``), that fold's split.
    fold_ : Fold or None
        The fold held out, ``None`` for the shared split.
    """

    family = "learned"
    trainable = True
    held_out = True

    train_rows_: np.ndarray
    val_rows_: np.ndarray
    test_rows_: np.ndarray

    def _set_split(self, labels: dict[str, np.ndarray], n_rows: int, seed: int, fold: Fold | None = None) -> "Split":
        """The shared split, or with ``fold`` (``TrainingOptions.fold``) that fold held out."""
        split = catalogue_split(labels, n_rows=n_rows, seed=seed, fold=fold)
        self.train_rows_, self.val_rows_, self.test_rows_ = split.train, split.val, split.test
        self.fold_ = fold
        return split

    def _fit_module(
        self,
        module: "torch.nn.Module",
        *,
        loss_fn: Callable,
        train_batches: Callable,
        val_batches: Sequence,
        config: TrainConfig,
        options: TrainingOptions,
        rng: np.random.Generator | None = None,
    ) -> "History":
        """:func:`songsim.train.fit_model` with the options' device, epochs, progress and
        resume file; ``rng`` is the generator ``train_batches`` draws from."""
        from songsim.train import choose_device, fit_model

        on_epoch = options.on_epoch
        return fit_model(
            module,
            loss_fn=loss_fn,
            train_batches=train_batches,
            val_batches=val_batches,
            max_epochs=options.max_epochs or config.max_epochs,
            patience=config.patience,
            learning_rate=config.learning_rate,
            weight_decay=config.weight_decay,
            device=choose_device(options.device),
            on_epoch=None if on_epoch is None else (lambda *args: on_epoch(self.name, *args)),
            resume=self._resume_file(options),
            rng=rng,
        )

    def _fit_triplet_head(
        self,
        make_module: Callable[[], "torch.nn.Module"],
        x: np.ndarray,
        *,
        train_rows: np.ndarray,
        val_rows: np.ndarray,
        test_rows: np.ndarray,
        extra: Sequence[np.ndarray],
        loss_fn: Callable,
        config: TrainConfig,
        options: TrainingOptions,
        seed: int,
    ) -> tuple["torch.nn.Module", "History", float]:
        """Train a head with a loss mined within each batch (the triplet spaces) on rows of ``x``.

        The module is made by ``make_module()`` under ``seeded(seed)`` and trained by
        :meth:`_fit_module` on shuffled batches of ``config.batch_size`` training rows
        (shuffled with ``np.random.default_rng(seed)``); the validation rows are one batch, and so
        are the test rows: mining needs each of those sets together.

        Parameters
        ----------
        make_module : callable
            Builds the untrained module.
        x : np.ndarray [shape=(n_rows, input_dim), float32]
            The input of every catalogue row.
        train_rows, val_rows, test_rows : np.ndarray [shape=(n,), int64]
            Rows of ``x`` (labelled ones); ``val_rows`` empty: the training loss selects the epoch.
        extra : sequence of np.ndarray [each shape=(n_rows,), int64]
            Targets sliced with ``x`` into each batch (``batch[1:]`` for ``loss_fn``).
        loss_fn : callable
            ``loss_fn(module, batch) -> scalar tensor``.
        config : TrainConfig
        options : TrainingOptions
        seed : int

        Returns
        -------
        module : torch.nn.Module
            Trained (the best epoch's weights).
        history : History
        test_loss : float
            ``loss_fn`` on the test rows; NaN when there are none.
        """
        from songsim.train import mean_loss, seeded

        rng = np.random.default_rng(seed)
        batch_size = config.batch_size
        with seeded(seed):
            module = make_module()
            history = self._fit_module(
                module,
                loss_fn=loss_fn,
                train_batches=lambda: _row_batches(x, train_rows, batch_size=batch_size, rng=rng, extra=extra),
                val_batches=list(_row_batches(x, val_rows, batch_size=max(len(val_rows), 1), rng=None, extra=extra)),
                config=config,
                options=options,
                rng=rng,
            )
        test_batches = list(_row_batches(x, test_rows, batch_size=max(len(test_rows), 1), rng=None, extra=extra))
        return module, history, mean_loss(module, loss_fn, test_batches, _device_of(module))

    def _resume_file(self, options: TrainingOptions) -> "ResumeFile | None":
        """Where this space's training keeps its state (``None``: the options name no file)."""
        from songsim.train import ResumeFile

        return None if options.resume_path is None else ResumeFile(options.resume_path, f"{self.name}:{options.resume_key}")


# ============================================================================================
# CNN spaces


def _pad_frames(mel: np.ndarray, n_frames: int) -> np.ndarray:
    """``mel`` (n_mels, t) padded at the end to at least ``n_frames`` with its quietest level."""
    mel = np.asarray(mel, dtype=np.float32)
    if mel.shape[1] >= n_frames:
        return mel
    return np.pad(mel, ((0, 0), (0, n_frames - mel.shape[1])), constant_values=float(mel.min()))


def _band_stats(mels: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (dB) of each mel band over every frame of ``mels``:
    two (N_MELS,) float32 arrays, accumulated song by song (no big concatenation)."""
    total = sum(m.sum(axis=1, dtype=np.float64) for m in mels)
    squares = sum(np.square(m, dtype=np.float64).sum(axis=1) for m in mels)
    count = sum(m.shape[1] for m in mels)
    mean = total / count
    return mean.astype(np.float32), np.sqrt(np.maximum(squares / count - mean**2, 0.0)).astype(np.float32)


def crop_starts(n_frames: int, crop_frames: int) -> list[int]:
    """First frames of the fixed inference crops: every ``crop_frames``, the last one aligned
    to the end of the clip (``n_frames >= crop_frames``)."""
    starts = list(range(0, n_frames - crop_frames + 1, crop_frames))
    if starts[-1] + crop_frames < n_frames:
        starts.append(n_frames - crop_frames)
    return starts


def _fixed_crops(mel: np.ndarray, crop_frames: int) -> np.ndarray:
    """(n_crops, n_mels, crop_frames) float32: the inference crops of one song."""
    mel = _pad_frames(mel, crop_frames)
    return np.stack([mel[:, s : s + crop_frames] for s in crop_starts(mel.shape[1], crop_frames)])


def embed_mels(module: "torch.nn.Module", mels: Sequence[np.ndarray], *, crop_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Embed songs with a :class:`~songsim.models.MelCNN` by the fixed crop rule.

    One forward pass per song (its crops as one batch), so a song gets the same numbers
    whichever other songs are embedded with it.

    Parameters
    ----------
    module : MelCNN
    mels : sequence of np.ndarray [each shape=(N_MELS, n_frames), dB]
    crop_frames : int

    Returns
    -------
    vectors : np.ndarray [shape=(m, embedding_dim), float32]
        Mean crop embedding of each song.
    probabilities : np.ndarray [shape=(m, n_classes[0]), float32]
        Mean crop class probabilities of the main head.
    """
    import torch

    device = _device_of(module)
    vectors, probabilities = [], []
    module.eval()
    with torch.no_grad():
        for mel in mels:
            crops = torch.from_numpy(_fixed_crops(mel, crop_frames)).to(device)
            embedding = module.embed(crops)
            vectors.append(embedding.mean(dim=0).cpu().numpy())
            probabilities.append(module.heads[0](embedding).softmax(dim=1).mean(dim=0).cpu().numpy())
    dim = module.config.embedding_dim
    n_classes = module.config.n_classes[0]
    return (
        np.asarray(vectors, dtype=np.float32).reshape(len(mels), dim),
        np.asarray(probabilities, dtype=np.float32).reshape(len(mels), n_classes),
    )


class _CNNSpace(LearnedSpace):
    """A :class:`~songsim.models.MelCNN` trained to classify ``label``; see the module docstring."""

    inputs = ("mel",)
    label: ClassVar[str]
    #: a second label learned as an auxiliary task (weighted by ``aux_weight``), if present
    aux_label: ClassVar[str | None] = None

    def __init__(self, *, config: CNNSpaceConfig | None = None) -> None:
        self.config = config

    def fit(
        self,
        inputs: dict[str, Any],
        *,
        labels: dict[str, np.ndarray],
        seed: int = 0,
        training: TrainingOptions | None = None,
    ) -> "_CNNSpace":
        """Train on the catalogue's mel spectrograms and set ``vectors_``.

        Parameters
        ----------
        inputs : dict
            ``"mel"``: list of n_tracks arrays [shape=(N_MELS, n_frames), dB].
        labels : dict of str to np.ndarray
            The catalogue's columns; ``label`` (and ``aux_label``) are used.
        seed : int
        training : TrainingOptions, optional
        """
        import torch
        from torch.nn import functional as F

        from songsim.models import CNNConfig, MelCNN
        from songsim.train import Checkpoint, classification_metrics, seeded

        config = self.config_ = self.config or CNNSpaceConfig()
        options = training or TrainingOptions()
        mels = [_pad_frames(m, config.crop_frames) for m in inputs["mel"]]
        n = len(mels)
        split = self._set_split(labels, n, seed, options.fold)
        self.classes_, main = _class_targets(labels[self.label])
        targets, n_classes, task_weights = [main], [len(self.classes_)], [1.0]
        if self.aux_label and config.aux_weight > 0 and any(v is not None for v in labels.get(self.aux_label, [])):
            self.aux_classes_, aux = _class_targets(labels[self.aux_label])
            targets.append(aux)
            n_classes.append(len(self.aux_classes_))
            task_weights.append(config.aux_weight)
        train_rows, val_rows = _labelled(split.train, main), _labelled(split.val, main)
        if len(train_rows) == 0:
            raise SongsimError(f"{self.name}: no training song has a {self.label} label; label some songs and build again.")
        class_weights = [torch.from_numpy(_balanced_weights(t[train_rows], k)) for t, k in zip(targets, n_classes)]
        band_mean, band_std = _band_stats([mels[i] for i in train_rows])
        rng = np.random.default_rng(seed)
        crop = config.crop_frames

        def loss_fn(model: MelCNN, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            x, *ys = batch
            total = x.new_zeros(())
            for logits, y, weight, task_weight in zip(model(x), ys, class_weights, task_weights):
                if (y >= 0).any():
                    total = total + task_weight * F.cross_entropy(logits, y, weight=weight.to(x.device), ignore_index=-1)
            return total

        def train_batches():
            order = rng.permutation(np.repeat(train_rows, config.crops_per_song))
            for start in range(0, len(order), config.train.batch_size):
                rows = order[start : start + config.train.batch_size]
                offsets = [rng.integers(0, mels[r].shape[1] - crop + 1) for r in rows]
                x = np.stack([mels[r][:, o : o + crop] for r, o in zip(rows, offsets)])
                yield (torch.from_numpy(x), *(torch.from_numpy(t[rows]) for t in targets))

        val_x = [(_fixed_crops(mels[r], crop), r) for r in val_rows]
        val_batches = [
            (torch.from_numpy(c), *(torch.full((len(c),), int(t[r]), dtype=torch.int64) for t in targets)) for c, r in val_x
        ]
        with seeded(seed):
            model = MelCNN(
                CNNConfig(
                    n_mels=N_MELS,
                    n_classes=tuple(n_classes),
                    channels=config.channels,
                    embedding_dim=config.embedding_dim,
                    dropout=config.dropout,
                )
            )
            model.set_input_stats(torch.from_numpy(band_mean), torch.from_numpy(band_std))
            history = self._fit_module(
                model, loss_fn=loss_fn, train_batches=train_batches, val_batches=val_batches, config=config.train, options=options,
                rng=rng,
            )
        self.vectors_, probabilities = embed_mels(model, mels, crop_frames=crop)
        test = _labelled(split.test, main)
        metrics = classification_metrics(main[test], probabilities[test].argmax(axis=1), classes=self.classes_)
        feature_settings = {
            "kind": "mel", "sr_hz": SAMPLE_RATE_HZ, "hop_length": HOP_LENGTH, "n_mels": N_MELS,
            "crop_frames": crop, "label": self.label, "aux_label": self.aux_label if len(targets) > 1 else None,
            "classes": self.classes_, "embedding_rule": "mean of non-overlapping crop embeddings",
        }  # fmt: skip
        checkpoint = Checkpoint(
            config=model.config,
            state_dict=model.state_dict(),
            feature_settings=feature_settings,
            catalogue_fingerprint=options.catalogue_fingerprint,
            history=history,
            test_metrics=metrics,
        )
        self._keep(checkpoint, model)
        return self

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        """``inputs["mel"]``: m log-mel arrays [shape=(N_MELS, n_frames)] → (m, 256) float32."""
        self._fitted()
        return embed_mels(self._module(), inputs["mel"], crop_frames=self.config_.crop_frames)[0]


@register_space
class GenreCNNSpace(_CNNSpace):
    """A 2-D CNN on log-mel spectrograms trained on genre; its 256-d penultimate layer."""

    name = "genre-cnn"
    #: 2: the class moved to songsim.spaces.learned (fits pickled by older versions name the old module)
    version = 2
    description = "2-D CNN on log-mel spectrograms trained on genre · 256-d penultimate layer"
    required_labels = ("genre",)
    label = "genre"


@register_space
class EmotionCNNSpace(_CNNSpace):
    """The same CNN family trained on the Thayer quadrants (class-weighted), with genre as an
    auxiliary task when the catalogue has genres; its 256-d penultimate layer."""

    name = "emotion-cnn"
    #: 2: the class moved to songsim.spaces.learned (fits pickled by older versions name the old module)
    version = 2
    description = "2-D CNN on log-mel spectrograms trained on the 4 Thayer emotion quadrants · 256-d"
    required_labels = ("emotion",)
    label = "emotion"
    aux_label = "genre"


# ============================================================================================
# metadata


FEATURE_UNITS = {"loudness": "dB", "tempo": "bpm", "valence": "1–9 (DEAM)", "mode": "0 minor / 1 major", "time_signature": "beats per bar"}


@register_space
class MetadataSpace(Space):
    """The 11 Spotify-style features, standardised; missing values imputed from the catalogue.

    Missing values (in ``tracks.csv``, or not measurable for an upload) are imputed by
    k-nearest-neighbour imputation over the catalogue (scikit-learn ``KNNImputer``, on
    standardised values, using the features the song has).

    Attributes
    ----------
    scaler_ : StandardScaler
        Fitted on the catalogue, ignoring NaN.
    imputer_ : KNNImputer
        Fitted on the standardised catalogue.
    """

    name = "metadata"
    family = "learned"
    #: 2: the class moved to songsim.spaces.learned (fits pickled by older versions name the old module)
    version = 2
    description = "11 Spotify-style features (tempo, energy, …) standardised · uploads: measured + imputed"
    inputs = ("metadata",)
    required_labels = SPOTIFY_FEATURES

    def __init__(self, *, n_neighbors: int = 5) -> None:
        self.n_neighbors = n_neighbors

    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> "MetadataSpace":
        """``inputs["metadata"]``: (n_tracks, 11) float, NaN where missing."""
        values = np.asarray(inputs["metadata"], dtype=np.float64)
        self.scaler_ = StandardScaler().fit(values)
        scaled = self.scaler_.transform(values)
        self.imputer_ = KNNImputer(n_neighbors=min(self.n_neighbors, len(values)), keep_empty_features=True).fit(scaled)
        self.vectors_ = self.imputer_.transform(scaled).astype(np.float32)
        return self

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        """``inputs["metadata"]``: (m, 11) float, NaN where missing → (m, 11) float32."""
        self._fitted()
        values = np.atleast_2d(np.asarray(inputs["metadata"], dtype=np.float64))
        return self.imputer_.transform(self.scaler_.transform(values)).astype(np.float32)

    def explain(self, reading: "MetadataReading") -> pd.DataFrame:
        """The features of one song as the space sees them, with where each value came from.

        Parameters
        ----------
        reading : songsim.measure.MetadataReading
            From :func:`songsim.measure.song_metadata`.

        Returns
        -------
        pandas.DataFrame
            One row per feature: ``feature``, ``value`` (``tracks.csv`` units, imputed values
            filled in), ``unit`` and ``source`` (``"catalogue"``, ``"measured"`` or
            ``"imputed"``).
        """
        vector = self.transform({"metadata": reading.values[None, :]})
        imputed = self.scaler_.inverse_transform(vector.astype(np.float64))[0]
        filled = np.where(np.isnan(reading.values), imputed, reading.values)
        return pd.DataFrame(
            {
                "feature": list(SPOTIFY_FEATURES),
                "value": filled,
                "unit": [FEATURE_UNITS.get(c, "0–1") for c in SPOTIFY_FEATURES],
                "source": ["imputed" if s == "missing" else s for s in reading.sources],
            }
        )


# ============================================================================================
# fused spaces: fusion autoencoder, 2-D autoencoder, triplet


class BlockStandardiser:
    """StandardScaler over concatenated blocks, then each block scaled by
    ``sqrt(n_blocks / width)`` so every block has the same total variance.

    Attributes
    ----------
    scaler_ : StandardScaler
    weights_ : np.ndarray [shape=(total_width,), float64]
    """

    def fit(self, blocks: Sequence[np.ndarray], rows: np.ndarray) -> "BlockStandardiser":
        """Fit on ``rows`` of the blocks (each (n, width_i))."""
        widths = [b.shape[1] for b in blocks]
        self.scaler_ = StandardScaler().fit(np.concatenate(blocks, axis=1)[rows])
        self.weights_ = np.concatenate([np.full(w, np.sqrt(len(widths) / w)) for w in widths])
        return self

    def transform(self, blocks: Sequence[np.ndarray]) -> np.ndarray:
        """(m, total_width) float32 of the blocks (each (m, width_i))."""
        return (self.scaler_.transform(np.concatenate(blocks, axis=1)) * self.weights_).astype(np.float32)


def _row_batches(x: np.ndarray, rows: np.ndarray, *, batch_size: int, rng: np.random.Generator | None, extra: Sequence[np.ndarray] = ()):
    """Batches of ``x[rows]`` (and of each array in ``extra``) as tensors; shuffled if ``rng``."""
    import torch

    order = rows if rng is None else rng.permutation(rows)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        yield (torch.from_numpy(x[chunk]), *(torch.from_numpy(e[chunk]) for e in extra))


def _train_autoencoder(
    holder: _CheckpointHolder,
    x: np.ndarray,
    *,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    test_rows: np.ndarray,
    config: AutoencoderSpaceConfig,
    seed: int,
    fit_module: Callable[..., "History"],
    feature_settings: dict[str, Any],
    catalogue_fingerprint: str,
    classes: Sequence[str] = (),
    targets: np.ndarray | None = None,
) -> np.ndarray:
    """Train a :class:`~songsim.models.DenseAutoencoder` on ``x[train_rows]`` (MSE, Adam, early
    stopping on ``val_rows``), keep it in ``holder`` and return the codes.

    With ``classes`` and ``targets`` ((n_rows,) int64 class index, -1 where unlabelled) the
    loss adds ``config.label_weight`` × the cross-entropy of a linear classifier on the code
    (labelled rows of each batch only), and the test metrics report its accuracy.

    Returns
    -------
    np.ndarray [shape=(n_rows, code_dim), float32]
        The code of every row of ``x``.
    """
    from torch.nn import functional as F

    from songsim.models import AutoencoderConfig, DenseAutoencoder
    from songsim.train import Checkpoint, classification_metrics, mean_loss, seeded

    rng = np.random.default_rng(seed)
    supervised = targets is not None and len(classes) > 0
    extra = [targets] if supervised else []

    def reconstruction_loss(model, batch):
        return F.mse_loss(model(batch[0])[0], batch[0])

    def loss_fn(model, batch):
        reconstruction, code = model(batch[0])
        loss = F.mse_loss(reconstruction, batch[0])
        if supervised and bool((batch[1] >= 0).any()):
            labelled = batch[1] >= 0
            loss = loss + config.label_weight * F.cross_entropy(model.classify(code[labelled]), batch[1][labelled])
        return loss

    batch_size = config.train.batch_size
    with seeded(seed):
        model = DenseAutoencoder(
            AutoencoderConfig(
                input_dim=x.shape[1], hidden=config.hidden, code_dim=config.code_dim, n_classes=len(classes) if supervised else 0
            )
        )
        history = fit_module(
            model,
            loss_fn=loss_fn,
            train_batches=lambda: _row_batches(x, train_rows, batch_size=batch_size, rng=rng, extra=extra),
            val_batches=list(_row_batches(x, val_rows, batch_size=batch_size, rng=None, extra=extra)),
            config=config.train,
            rng=rng,
        )
    test_batches = list(_row_batches(x, test_rows, batch_size=batch_size, rng=None, extra=extra))
    test_metrics: dict[str, Any] = {
        "reconstruction_mse": mean_loss(model, reconstruction_loss, test_batches, _device_of(model)),
        "n": int(len(test_rows)),
    }
    codes = _encode(model, x)
    if supervised:
        import torch

        labelled = _labelled(test_rows, targets)
        with torch.no_grad():
            logits = model.classify(torch.from_numpy(codes[labelled]).to(_device_of(model)))
        predicted = logits.argmax(dim=1).cpu().numpy()
        test_metrics.update(classification_metrics(targets[labelled], predicted, classes=classes))
        test_metrics["label"] = config.supervised_label
    checkpoint = Checkpoint(
        config=model.config,
        state_dict=model.state_dict(),
        feature_settings=feature_settings,
        catalogue_fingerprint=catalogue_fingerprint,
        history=history,
        test_metrics=test_metrics,
    )
    holder._keep(checkpoint, model)
    return codes


def _encode(module: "torch.nn.Module", x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (m, input_dim) through ``module`` (an autoencoder's encoder or an
    :class:`~songsim.models.EmbeddingNet`) → (m, out) float32, in eval mode."""
    import torch

    module.eval()
    encode = module.encode if hasattr(module, "encode") else module
    with torch.no_grad():
        out = encode(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(_device_of(module)))
    return out.cpu().numpy().astype(np.float32)


class _FusedSpace(LearnedSpace):
    """A space over the concatenated vectors of the input spaces it uses, block-standardised:
    its required ``inputs`` (genre-cnn), then those of its ``optional_inputs`` (emotion-cnn,
    metadata, handcrafted, musicnn) that ``fit`` receives — what the catalogue has.

    Attributes
    ----------
    used_inputs_ : tuple of str
        The inputs fitted on, in concatenation order (``transform`` needs the same ones).
    standardiser_ : BlockStandardiser
    """

    inputs = FUSED_INPUTS
    optional_inputs = FUSED_OPTIONAL_INPUTS

    used_inputs_: tuple[str, ...]
    standardiser_: BlockStandardiser

    def _fused(self, inputs: dict[str, Any]) -> np.ndarray:
        missing = [k for k in self.used_inputs_ if k not in inputs]
        if missing:
            raise SongsimError(
                f"{self.name}: it was fitted on {', '.join(self.used_inputs_)} and is missing {', '.join(missing)}; "
                f"embed through the inputs it used (songsim.spaces.base.fitted_inputs)."
            )
        return self.standardiser_.transform([np.atleast_2d(np.asarray(inputs[k], dtype=np.float64)) for k in self.used_inputs_])

    def _prepare(
        self, inputs: dict[str, Any], labels: dict[str, np.ndarray], seed: int, fold: Fold | None = None
    ) -> tuple[np.ndarray, "Split"]:
        """Record the inputs given (required ones first, then the optional ones, in declared
        order), fit the block standardiser on the train and validation rows, and return the
        fused (n_tracks, Σ width) float32 matrix and the split."""
        lacking = [k for k in self.inputs if k not in inputs]
        if lacking:
            raise SongsimError(f"{self.name}: needs the input {', '.join(lacking)}; build it first (`python -m songsim build DIR`).")
        self.used_inputs_ = tuple(k for k in (*self.inputs, *self.optional_inputs) if k in inputs)
        blocks = [np.asarray(inputs[k], dtype=np.float64) for k in self.used_inputs_]
        split = self._set_split(labels, len(blocks[0]), seed, fold)
        self.standardiser_ = BlockStandardiser().fit(blocks, np.concatenate([split.train, split.val]))
        self.block_widths_ = tuple(int(b.shape[1]) for b in blocks)
        return self._fused(inputs), split

    def _feature_settings(self) -> dict[str, Any]:
        return {
            "inputs": list(self.used_inputs_),
            "block_widths": list(self.block_widths_),
            "optional_inputs_not_available": [k for k in self.optional_inputs if k not in self.used_inputs_],
            "scaling": "StandardScaler, then sqrt(n_blocks / width) per block",
        }

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        """``inputs``: the m songs' vectors in each input space it was fitted on
        (``used_inputs_``: genre-cnn (m, 256), then e.g. emotion-cnn (m, 256), metadata
        (m, 11), handcrafted (m, its dim), musicnn (m, 200)) → (m, dim) float32."""
        self._fitted()
        return _encode(self._module(), self._fused(inputs))


class _AutoencoderSpace(_FusedSpace):
    default_config: ClassVar[AutoencoderSpaceConfig]

    def __init__(self, *, config: AutoencoderSpaceConfig | None = None) -> None:
        self.config = config

    def fit(
        self,
        inputs: dict[str, Any],
        *,
        labels: dict[str, np.ndarray],
        seed: int = 0,
        training: TrainingOptions | None = None,
    ) -> "_AutoencoderSpace":
        """Train the autoencoder on the training rows' fused vectors; ``vectors_`` = codes.

        The test rows (``test_rows_``, also ``held_out_rows_``) are never trained on.
        """
        options = training or TrainingOptions()
        self.config_ = self.config or self.default_config
        x, split = self._prepare(inputs, labels, seed, options.fold)
        self.held_out_rows_ = split.test
        label = self.config_.supervised_label
        classes, targets = _class_targets(labels[label]) if label in labels else ([], None)
        self.vectors_ = _train_autoencoder(
            self,
            x,
            train_rows=split.train,
            val_rows=split.val,
            test_rows=split.test,
            config=self.config_,
            seed=seed,
            fit_module=lambda model, **kw: self._fit_module(model, options=options, **kw),
            feature_settings={**self._feature_settings(), "supervised_label": label},
            catalogue_fingerprint=options.catalogue_fingerprint,
            classes=classes,
            targets=targets,
        )
        return self


@register_space
class FusionAESpace(_AutoencoderSpace):
    """Dense autoencoder over the fused input — genre-cnn (256) ⊕ those of emotion-cnn (256),
    metadata (11), handcrafted and musicnn (200) the catalogue has: D → 248 → 128 → 64."""

    name = "fusion-ae"
    #: 3: optional inputs (emotion-cnn, metadata, handcrafted, musicnn where the catalogue has them)
    version = 3
    description = "autoencoder over genre-CNN ⊕ what the catalogue has of emotion-CNN, metadata, handcrafted, musicnn · 64-d code"
    default_config = AutoencoderSpaceConfig()


@register_space
class AE2DSpace(_AutoencoderSpace):
    """Deep supervised autoencoder down to 2 dimensions over the triplet space's 64-d vectors:
    64 → 256 → 64 → 16 → 2 (decoder mirrored), reconstruction error plus the cross-entropy of
    a linear genre classifier on the code. The map method ``"ae2d"`` is the unsupervised
    variant, for any space."""

    name = "ae-2d"
    description = "deep supervised autoencoder over the triplet embedding · 2-d code"
    inputs = ("space:triplet",)
    optional_inputs = ()  # the triplet space already uses what the catalogue has
    required_labels = ("genre",)
    default_config = AE2D_SPACE_CONFIG
    #: 4: the class moved to songsim.spaces.learned (fits pickled by older versions name the old module)
    version = 4
    metric = "euclidean"  # a point in the plane: genre P@5 0.78 euclidean, 0.75 cosine


def _triplet_labels(labels: dict[str, np.ndarray], n_rows: int) -> np.ndarray:
    """Genre, or ``album:<album>`` where the genre is missing, or None."""
    genre = labels.get("genre", np.full(n_rows, None, dtype=object))
    album = labels.get("album", np.full(n_rows, None, dtype=object))
    return np.array([g if g is not None else (None if a is None else f"album:{a}") for g, a in zip(genre, album)], dtype=object)


@register_space
class TripletSpace(_FusedSpace):
    """Metric learning on the fused features: an MLP onto the unit sphere trained with a
    triplet margin loss, positives sharing a genre (album where the genre is missing),
    semi-hard negatives mined in each batch; 64-d."""

    name = "triplet"
    #: 3: optional inputs (emotion-cnn, metadata, handcrafted, musicnn where the catalogue has them)
    version = 3
    description = "triplet metric learning on genre-CNN ⊕ what the catalogue has of emotion-CNN, metadata, handcrafted, musicnn · 64-d"
    required_labels = ("genre",)

    def __init__(self, *, config: TripletConfig | None = None) -> None:
        self.config = config

    def fit(
        self,
        inputs: dict[str, Any],
        *,
        labels: dict[str, np.ndarray],
        seed: int = 0,
        training: TrainingOptions | None = None,
    ) -> "TripletSpace":
        """Train on the training rows that have a genre (or album) label; ``vectors_`` for all."""
        from songsim.models import EmbeddingNet, EmbeddingNetConfig, batch_triplet_loss
        from songsim.train import Checkpoint

        config = self.config_ = self.config or TripletConfig()
        options = training or TrainingOptions()
        x, split = self._prepare(inputs, labels, seed, options.fold)
        self.classes_, targets = _class_targets(_triplet_labels(labels, len(x)))
        train_rows, val_rows, test_rows = (_labelled(r, targets) for r in (split.train, split.val, split.test))
        if len(train_rows) == 0:
            raise SongsimError(f"{self.name}: no training song has a genre or album label; label some songs and build again.")

        def loss_fn(model, batch):
            return batch_triplet_loss(model(batch[0]), batch[1], margin=config.margin, mining=config.mining)

        model, history, test_loss = self._fit_triplet_head(
            lambda: EmbeddingNet(
                EmbeddingNetConfig(input_dim=x.shape[1], hidden=config.hidden, output_dim=config.output_dim, dropout=config.dropout)
            ),
            x,
            train_rows=train_rows,
            val_rows=val_rows,
            test_rows=test_rows,
            extra=[targets],
            loss_fn=loss_fn,
            config=config.train,
            options=options,
            seed=seed,
        )
        self.vectors_ = _encode(model, x)
        checkpoint = Checkpoint(
            config=model.config,
            state_dict=model.state_dict(),
            feature_settings={**self._feature_settings(), "positives": "same genre, else same album", "mining": config.mining},
            catalogue_fingerprint=options.catalogue_fingerprint,
            history=history,
            test_metrics={"triplet_loss": test_loss, "margin": config.margin, "n": int(len(test_rows))},
        )
        self._keep(checkpoint, model)
        return self


# ============================================================================================
# the 2-D autoencoder as a map method


class AutoencoderReducer(_CheckpointHolder):
    """A fitted 2-D autoencoder placing new points on its map (a :class:`songsim.maps.Reducer`)."""

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``x`` (m, dim) float32 → (m, 2) float32 codes."""
        return _encode(self._module(), np.asarray(x, dtype=np.float32))


def fit_ae2d_map(x: np.ndarray, *, seed: int, val_fraction: float = 0.1) -> tuple[AutoencoderReducer, np.ndarray]:
    """Map method ``"ae2d"``: a deep autoencoder (… → 16 → 2) on a space's vectors.

    A seeded ``val_fraction`` of the rows decides early stopping; trains on the others, on
    :func:`songsim.train.choose_device`.

    Parameters
    ----------
    x : np.ndarray [shape=(n, dim), float32]
        The space's vectors (L2-normalised for cosine spaces, see :mod:`songsim.maps`).
    seed : int

    Returns
    -------
    reducer : AutoencoderReducer
    coords : np.ndarray [shape=(n, 2), float32]
    """
    from songsim.train import choose_device, fit_model

    rows = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(val_fraction * len(x))))
    reducer = AutoencoderReducer()

    def fit_module(model, *, config: TrainConfig, **kw):
        return fit_model(
            model, max_epochs=config.max_epochs, patience=config.patience, learning_rate=config.learning_rate,
            weight_decay=config.weight_decay, device=choose_device(), **kw,
        )  # fmt: skip

    coords = _train_autoencoder(
        reducer,
        np.ascontiguousarray(x, dtype=np.float32),
        train_rows=np.sort(rows[n_val:]),
        val_rows=np.sort(rows[:n_val]),
        test_rows=np.sort(rows[:n_val]),
        config=AE2D_MAP_CONFIG,
        seed=seed,
        fit_module=fit_module,
        feature_settings={"input": "a space's vectors", "val_fraction": val_fraction},
        catalogue_fingerprint="",
    )
    return reducer, coords


def training_summary(space: Space) -> dict[str, Any]:
    """What the Models page and reports show for a learned space (empty for other spaces).

    Returns
    -------
    dict
        Plain types: ``"config"`` (the model's), ``"history"`` (losses per epoch, best epoch,
        seconds, device), ``"test_metrics"``, ``"feature_settings"``,
        ``"catalogue_fingerprint"``, ``"dim"`` and ``"n_test"`` (held-out rows).
    """
    if not isinstance(space, LearnedSpace):
        return {}
    checkpoint = space.checkpoint()
    return {
        "config": asdict(checkpoint.config),
        "history": asdict(checkpoint.history),
        "test_metrics": checkpoint.test_metrics,
        "feature_settings": checkpoint.feature_settings,
        "catalogue_fingerprint": checkpoint.catalogue_fingerprint,
        "dim": space.dim,
        "n_test": int(len(space.test_rows_)),
    }
