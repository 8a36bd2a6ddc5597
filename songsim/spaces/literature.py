"""The rest of the literature's similarity models as spaces: the raw-spectrogram baselines, a
WaveNet-style ranking model, a chroma LSTM and an ALI adversarial encoder.

===============  =======================================  ========================================
space            input                                    model and embedding
===============  =======================================  ========================================
spectrogram-pca  ``"mel"``: 64 bands × 30 s, averaged     PCA to 64 components (fewer when the
                 over 4-frame (93 ms) cells, flattened    catalogue has fewer songs)
                 (20 672 values; song2vec's baseline)
spectrogram-l2   the same flattened spectrogram           unreduced, centred on the catalogue
                                                          mean (20 672-d): the L2 baseline
wavenet          ``"mel"``, 128-frame (3 s) crops         :class:`~songsim.models.WaveNetEncoder`
                                                          (dilated causal gated convolutions,
                                                          skips, pooling between stacks) → 64-d,
                                                          pairwise hinge or listwise NDCG loss
chroma-lstm      ``"chroma"`` (12 × 1 292 frames)          :class:`~songsim.models.ChromaLSTM`
                                                          predicting the next frame (L1) on
                                                          1 000-frame sections; 64-d state
ali              ``"mel"``, 216-frame (5 s) segments      :class:`~songsim.models.ALI` (LSGAN);
                                                          encoder mean averaged over segments
===============  =======================================  ========================================

Every space is trained on the catalogue's **shared split** (:func:`songsim.spaces.learned.catalogue_split`)
and sets ``test_rows_``: evaluation queries only the held-out songs, the same ones for every
learned space. Models are trained on short crops and embed whole clips: a song's vector is
the mean of the embeddings of its fixed crops (every crop length, the last one aligned to the
clip's end, :func:`songsim.spaces.learned.crop_starts`), one forward pass per song, so an upload
gets exactly the vector of the same audio in the catalogue.

spectrogram-pca / spectrogram-l2
    The clip's log-mel spectrogram (dB), padded to :data:`SPECTROGRAM_FRAMES` (30 s) with its
    quietest level, averaged over :data:`SPECTROGRAM_TIME_POOL`-frame cells and flattened.
    It keeps the song's time course, so it compares songs moment by moment: the weak raw
    baseline. The unreduced variant is a space of its own (selectable in Explore, with the
    ``euclidean`` metric for the L2 distance), stored whole, so it refuses catalogues whose
    flattened matrix exceeds :data:`MAX_SPECTROGRAM_BYTES` (about 13 000 songs): use
    ``spectrogram-pca`` there.
wavenet
    Trained as a similarity model on (query, more similar, less similar) lists of the
    training songs: *more similar* shares the query's genre (its album when the genre is
    missing), *less similar* does not. ``loss="pairwise"`` (default): one similar and one
    dissimilar song, the hinge loss ``max(0, 1 − s(q, m⁺) + s(q, m⁻))`` with
    ``s = −‖a − b‖`` (or cosine, ``similarity="cosine"``); ``loss="listwise"``: 3 similar and 3
    dissimilar songs, LambdaLoss NDCG-Loss2. Early stopping on the validation songs' loss.
    The embedding is not normalised, so Euclidean and cosine retrieval differ.
chroma-lstm
    Next-frame chroma prediction with an L1 loss on random 1 000-frame sections (23 s; a
    30 s clip has 1 292 frames). The state ``concat(h_t, c_t)`` (64 values) is read over a
    song's sections (the crop rule: 0–1 000 and 292–1 292 for 30 s) and reduced three ways:
    ``mean`` and ``max`` over every frame of every section, and ``last``, the state at each
    section's end averaged over sections. All three are computed; the space keeps the one
    with the best genre P@5 on the validation songs (``"mean"`` without genres). The test
    metrics also give the L1 error of repeating the previous frame, the trivial predictor
    the LSTM has to beat. A known weak baseline of the literature.
ali
    Adversarially Learned Inference on random 5 s segments of the training songs: LSGAN
    objective, one-sided label smoothing (0.9), Gaussian noise on the discriminator's inputs
    (σ = 0.1, annealed linearly to 0) and two generator steps per discriminator step; no
    early stopping (:func:`songsim.train.fit_adversarial`). The Models page shows both
    losses and the validation reconstruction error. ``test_metrics["converged"]`` applies a
    stated rule (:data:`ALI_EQUILIBRIUM_D_LOSS`).

Registered on import (:mod:`songsim.spaces` imports this module).
Torch is imported only when a model is trained or used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from songsim.config import HOP_LENGTH, N_MELS, SAMPLE_RATE_HZ
from songsim.errors import SongsimError
from songsim.spaces.base import Space, TrainingOptions, register_space
from songsim.spaces.learned import (
    LearnedSpace,
    TrainConfig,
    _band_stats,
    _class_targets,
    _device_of,
    _fixed_crops,
    _labelled,
    _pad_frames,
    _triplet_labels,
)

if TYPE_CHECKING:
    import torch

    from songsim.models import ALIConfig, WaveNetConfig
    from songsim.train import History

__all__ = [
    "ALI_EQUILIBRIUM_D_LOSS",
    "LSTM_REDUCTIONS",
    "MAX_SPECTROGRAM_BYTES",
    "ALISpace",
    "ALISpaceConfig",
    "ChromaLSTMSpace",
    "ChromaLSTMSpaceConfig",
    "SpectrogramL2Space",
    "SpectrogramPCASpace",
    "WaveNetSpace",
    "WaveNetSpaceConfig",
    "flatten_spectrogram",
    "lstm_song_states",
    "ranking_loss",
]

#: frames of the fixed-size spectrogram (30 s at 23 ms per frame)
SPECTROGRAM_FRAMES = 1292
#: frames averaged into one cell of the flattened spectrogram (4 × 23 ms ≈ 93 ms)
SPECTROGRAM_TIME_POOL = 4
#: largest flattened-spectrogram matrix (n_tracks × 20 672 float32) the spectrogram spaces hold
MAX_SPECTROGRAM_BYTES = 2**30
#: how chroma-lstm reduces a song's states, in order of preference on ties
LSTM_REDUCTIONS = ("mean", "max", "last")
#: the LSGAN discriminator loss when it cannot tell the pairs apart (outputs c = 0.45 for both,
#: targets 0.9 and 0): ½ (0.45 − 0.9)² + ½ 0.45² = 0.2025
ALI_EQUILIBRIUM_D_LOSS = 0.2025


# ============================================================================================
# shared helpers


def _random_crops(arrays: Sequence[np.ndarray], rows: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    """(len(rows), n_bins, frames) float32: one random crop of each row's array (each
    (n_bins, t) with t >= frames)."""
    offsets = [rng.integers(0, arrays[r].shape[1] - frames + 1) for r in rows]
    return np.stack([arrays[r][:, o : o + frames] for r, o in zip(rows, offsets)]).astype(np.float32, copy=False)


def _middle_crops(arrays: Sequence[np.ndarray], rows: np.ndarray, frames: int) -> np.ndarray:
    """(len(rows), n_bins, frames) float32: the middle crop of each row's array (fixed
    validation and test inputs)."""
    starts = [(arrays[r].shape[1] - frames) // 2 for r in rows]
    return np.stack([arrays[r][:, s : s + frames] for r, s in zip(rows, starts)]).astype(np.float32, copy=False)


def _embed_crops(
    embed: Callable[["torch.Tensor"], "torch.Tensor"], device: "torch.device", arrays: Sequence[np.ndarray], *, frames: int, dim: int
) -> np.ndarray:
    """Mean embedding of each song's fixed crops (:func:`songsim.spaces.learned.crop_starts`).

    One forward pass per song (its crops as one batch), so a song gets the same numbers
    whichever other songs are embedded with it.

    Parameters
    ----------
    embed : callable
        ``(n_crops, n_bins, frames)`` tensor → ``(n_crops, dim)`` tensor, in eval mode.
    device : torch.device
    arrays : sequence of np.ndarray [each shape=(n_bins, n_frames)]
    frames : int
        Crop length.
    dim : int

    Returns
    -------
    np.ndarray [shape=(m, dim), float32]
    """
    import torch

    vectors = []
    with torch.no_grad():
        for array in arrays:
            crops = torch.from_numpy(_fixed_crops(array, frames)).to(device)
            vectors.append(embed(crops).mean(dim=0).cpu().numpy())
    return np.asarray(vectors, dtype=np.float32).reshape(len(arrays), dim)


def _genre_precision(vectors: np.ndarray, labels: dict[str, np.ndarray], rows: np.ndarray, *, metric: str = "cosine") -> float | None:
    """Genre P@5 of ``rows`` as queries among every other song with a genre (None when the
    catalogue has no genres or no query can be scored)."""
    from songsim.evaluate import label_precision

    genre = labels.get("genre")
    if genre is None or all(g is None for g in genre):
        return None
    return label_precision(vectors, genre, rows, k=5, metric=metric)


def _keep_model(
    space: LearnedSpace,
    model: "torch.nn.Module",
    *,
    history: "History",
    options: TrainingOptions,
    test_metrics: dict[str, Any],
    kind: str,
    **settings: Any,
) -> None:
    """Store a trained model in ``space`` as a checkpoint: its config and weights, the feature
    settings (input ``kind``, its frame grid and ``settings``), the catalogue fingerprint, the
    history and the test metrics."""
    from songsim.train import Checkpoint

    grid = {"kind": kind, "sr_hz": SAMPLE_RATE_HZ, "hop_length": HOP_LENGTH, **({"n_mels": N_MELS} if kind == "mel" else {})}
    checkpoint = Checkpoint(
        config=model.config,
        state_dict=model.state_dict(),
        feature_settings={**grid, **settings},
        catalogue_fingerprint=options.catalogue_fingerprint,
        history=history,
        test_metrics=test_metrics,
    )
    space._keep(checkpoint, model)


# ============================================================================================
# raw spectrogram baselines


def flatten_spectrogram(mel: np.ndarray, *, n_frames: int = SPECTROGRAM_FRAMES, time_pool: int = SPECTROGRAM_TIME_POOL) -> np.ndarray:
    """A clip's fixed-size, time-pooled log-mel spectrogram as one vector.

    Parameters
    ----------
    mel : np.ndarray [shape=(N_MELS, t), dB]
        Log-mel spectrogram (:func:`songsim.features.log_mel_spectrogram`).
    n_frames : int
        Fixed length: shorter clips are padded at the end with their quietest level, longer
        ones cut.
    time_pool : int
        Frames averaged per cell.

    Returns
    -------
    np.ndarray [shape=(N_MELS * (n_frames // time_pool),), float32]
        dB, band-major (all cells of band 0, then band 1, …).
    """
    fixed = _pad_frames(mel, n_frames)[:, : n_frames - n_frames % time_pool]
    return fixed.reshape(fixed.shape[0], -1, time_pool).mean(axis=2, dtype=np.float32).ravel()


class _SpectrogramSpace(Space):
    """Flattened fixed-size log-mel spectrograms, PCA-reduced or only centred."""

    inputs = ("mel",)
    family = "literature"

    def __init__(self, *, n_components: int | None, time_pool: int = SPECTROGRAM_TIME_POOL) -> None:
        self.n_components = n_components
        self.time_pool = time_pool

    def _flatten(self, mels: Sequence[np.ndarray]) -> np.ndarray:
        width = N_MELS * (SPECTROGRAM_FRAMES // self.time_pool)
        if len(mels) * width * 4 > MAX_SPECTROGRAM_BYTES:
            raise SongsimError(
                f"{self.name}: {len(mels)} songs × {width} spectrogram values would need "
                f"{len(mels) * width * 4 / 2**30:.1f} GiB, over the {MAX_SPECTROGRAM_BYTES / 2**30:.0f} GiB limit of the "
                f"spectrogram spaces: leave them out of the build (`--spaces`), or give them a coarser time_pool."
            )
        out = np.empty((len(mels), width), dtype=np.float32)
        for i, mel in enumerate(mels):
            out[i] = flatten_spectrogram(mel, time_pool=self.time_pool)
        return out

    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> "_SpectrogramSpace":
        """``inputs["mel"]``: n_tracks log-mel arrays [each shape=(N_MELS, n_frames), dB]."""
        from sklearn.decomposition import PCA

        x = self._flatten(inputs["mel"])
        self.mean_ = x.mean(axis=0, dtype=np.float64)
        self.pca_ = None
        if self.n_components is not None:
            n_components = min(self.n_components, *x.shape)
            self.pca_ = PCA(n_components=n_components, svd_solver="randomized", random_state=seed).fit(x)
        self.vectors_ = self._project(x)
        return self

    def _project(self, x: np.ndarray) -> np.ndarray:
        """Flattened spectrograms (m, D) float32 → (m, dim) float32: centred on the catalogue
        mean, then onto the principal axes. The products run in float64, a few hundred rows
        at a time: float32 sums over 20 672 values would round differently for one song (an
        upload) and for the whole catalogue (about 1e-4 relative)."""
        chunks = []
        for start in range(0, len(x), 256):
            centred = x[start : start + 256].astype(np.float64) - self.mean_
            chunks.append(centred if self.pca_ is None else centred @ self.pca_.components_.T.astype(np.float64))
        dim = x.shape[1] if self.pca_ is None else self.pca_.n_components_
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, dim), dtype=np.float32)

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        """``inputs["mel"]``: m log-mel arrays → (m, dim) float32."""
        self._fitted()
        return self._project(self._flatten(inputs["mel"]))


@register_space
class SpectrogramPCASpace(_SpectrogramSpace):
    """The raw baseline: a flattened fixed-size log-mel spectrogram reduced by PCA to 64."""

    name = "spectrogram-pca"
    #: 2: the class moved to songsim.spaces.literature (fits pickled by older versions name the old module)
    version = 2
    description = "raw log-mel spectrogram (30 s, 93 ms cells) flattened · PCA 64 (song2vec baseline)"

    def __init__(self, *, n_components: int = 64, time_pool: int = SPECTROGRAM_TIME_POOL) -> None:
        super().__init__(n_components=n_components, time_pool=time_pool)


@register_space
class SpectrogramL2Space(_SpectrogramSpace):
    """The same flattened spectrogram unreduced (centred): compare with the euclidean metric."""

    name = "spectrogram-l2"
    #: 2: the class moved to songsim.spaces.literature (fits pickled by older versions name the old module)
    version = 2
    description = "raw log-mel spectrogram (30 s, 93 ms cells) flattened · unreduced, for L2 distance"
    metric = "euclidean"

    def __init__(self, *, time_pool: int = SPECTROGRAM_TIME_POOL) -> None:
        super().__init__(n_components=None, time_pool=time_pool)


# ============================================================================================
# wavenet


@dataclass(frozen=True)
class WaveNetSpaceConfig:
    """Settings of the wavenet space (see the module docstring).

    Attributes
    ----------
    crop_frames : int
        Training crop in frames (128 ≈ 3 s); songs embed as the mean over their crops.
    loss : {"pairwise", "listwise"}
        Hinge loss on (query, similar, dissimilar) triples, or LambdaLoss NDCG-Loss2 on lists.
    similarity : {"euclidean", "cosine"}
        ``s(a, b)`` in the loss: ``−‖a − b‖`` or ``cos(a, b)``.
    margin : float
        Hinge margin, in similarity units.
    n_similar, n_dissimilar : int
        Candidates per list for ``"listwise"`` (``"pairwise"`` always uses 1 and 1).
    lists_per_song : int
        Lists drawn per training (and validation) song and epoch, each with fresh crops.
    network : WaveNetConfig, optional
        The encoder's shape (default :class:`~songsim.models.WaveNetConfig`).
    train : TrainConfig
        ``batch_size`` counts lists (queries).
    """

    crop_frames: int = 128
    loss: str = "pairwise"
    similarity: str = "euclidean"
    margin: float = 1.0
    n_similar: int = 3
    n_dissimilar: int = 3
    lists_per_song: int = 2
    network: "WaveNetConfig | None" = None
    train: TrainConfig = field(default_factory=lambda: TrainConfig(max_epochs=30, patience=10, learning_rate=2e-3, batch_size=16))

    def list_shape(self) -> tuple[int, int]:
        """(similar, dissimilar) candidates per query."""
        return (1, 1) if self.loss == "pairwise" else (self.n_similar, self.n_dissimilar)


def _draw_lists(
    queries: np.ndarray, pool: np.ndarray, targets: np.ndarray, rng: np.random.Generator, *, n_similar: int, n_dissimilar: int
) -> np.ndarray:
    """Ranking lists ``[query, similar…, dissimilar…]`` (one row each) for the queries that have
    a same-label and a different-label song in ``pool`` (drawn with replacement only when the
    pool has too few).

    Returns
    -------
    np.ndarray [shape=(m, 1 + n_similar + n_dissimilar), int64]
    """
    pool_targets = targets[pool]
    lists = []
    for q in queries:
        same = pool[(pool_targets == targets[q]) & (pool != q)]
        other = pool[pool_targets != targets[q]]
        if same.size == 0 or other.size == 0:
            continue
        similar = rng.choice(same, n_similar, replace=same.size < n_similar)
        dissimilar = rng.choice(other, n_dissimilar, replace=other.size < n_dissimilar)
        lists.append([q, *similar, *dissimilar])
    return np.asarray(lists, dtype=np.int64).reshape(len(lists), 1 + n_similar + n_dissimilar)


def ranking_loss(embeddings: "torch.Tensor", config: WaveNetSpaceConfig) -> "torch.Tensor":
    """The configured ranking loss of embedded lists.

    Parameters
    ----------
    embeddings : torch.Tensor [shape=(n_lists, 1 + n_similar + n_dissimilar, dim)]
        Query first, then the similar, then the dissimilar candidates.
    config : WaveNetSpaceConfig

    Returns
    -------
    torch.Tensor [shape=()]
        Pairwise: the mean hinge loss over every (similar, dissimilar) pair of each list;
        listwise: NDCG-Loss2 with relevance 1 for the similar and 0 for the dissimilar ones.
    """
    import torch

    from songsim.models import lambda_ndcg_loss, pairwise_hinge_loss, similarity

    n_similar, _ = config.list_shape()
    scores = similarity(embeddings[:, :1], embeddings[:, 1:], config.similarity)
    if config.loss == "pairwise":
        similar, dissimilar = scores[:, :n_similar], scores[:, n_similar:]
        pairs = torch.broadcast_tensors(similar[:, :, None], dissimilar[:, None, :])
        return pairwise_hinge_loss(pairs[0].flatten(), pairs[1].flatten(), margin=config.margin)
    relevance = torch.zeros_like(scores)
    relevance[:, :n_similar] = 1.0
    return lambda_ndcg_loss(scores, relevance)


@register_space
class WaveNetSpace(LearnedSpace):
    """A WaveNet-style dilated CNN on log-mel frames trained with a ranking loss; 64-d."""

    name = "wavenet"
    family = "literature"
    #: 2: the class moved to songsim.spaces.literature (fits pickled by older versions name the old module)
    version = 2
    description = "WaveNet-style dilated causal CNN on log-mel · hinge ranking loss on genre triples · 64-d"
    inputs = ("mel",)
    metric = "euclidean"  # trained on distances −‖a − b‖: genre P@5 0.725 euclidean, 0.70 cosine
    required_labels = ("genre",)

    def __init__(self, *, config: WaveNetSpaceConfig | None = None) -> None:
        self.config = config

    def fit(
        self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0, training: TrainingOptions | None = None
    ) -> "WaveNetSpace":
        """Train on lists of training songs and set ``vectors_`` (whole clips).

        Parameters
        ----------
        inputs : dict
            ``"mel"``: n_tracks log-mel arrays [each shape=(N_MELS, n_frames), dB].
        labels : dict of str to np.ndarray
            The catalogue's columns; ``genre`` (``album`` where a genre is missing) decides
            which songs are similar.
        seed : int
        training : TrainingOptions, optional
        """
        import torch

        from songsim.models import WaveNetConfig, WaveNetEncoder
        from songsim.train import mean_loss, seeded

        config = self.config_ = self.config or WaveNetSpaceConfig()
        if config.loss not in ("pairwise", "listwise"):
            raise SongsimError(f"{self.name}: loss must be 'pairwise' or 'listwise', not {config.loss!r}.")
        options = training or TrainingOptions()
        network = config.network or WaveNetConfig(n_mels=N_MELS)
        crop = self.crop_frames_ = max(config.crop_frames, network.pool ** (network.n_stacks - 1))
        mels = [_pad_frames(m, crop) for m in inputs["mel"]]
        n = len(mels)
        split = self._set_split(labels, n, seed, options.fold)
        self.classes_, targets = _class_targets(_triplet_labels(labels, n))
        train_rows, val_rows, test_rows = (_labelled(r, targets) for r in (split.train, split.val, split.test))
        if len(train_rows) == 0:
            raise SongsimError(f"{self.name}: no training song has a genre or album label; label some songs and build again.")
        n_similar, n_dissimilar = config.list_shape()
        rng = np.random.default_rng(seed)
        band_mean, band_std = _band_stats([mels[i] for i in train_rows])

        def lists_of(queries: np.ndarray, pool: np.ndarray, draw: np.random.Generator) -> np.ndarray:
            return _draw_lists(queries, pool, targets, draw, n_similar=n_similar, n_dissimilar=n_dissimilar)

        def batches(lists: np.ndarray, crops: Callable[[np.ndarray], np.ndarray]):
            for start in range(0, len(lists), config.train.batch_size):
                chunk = lists[start : start + config.train.batch_size]
                yield (torch.from_numpy(crops(chunk.ravel()).reshape(*chunk.shape, N_MELS, crop)),)

        def train_batches():
            queries = rng.permutation(np.repeat(train_rows, config.lists_per_song))
            return batches(lists_of(queries, train_rows, rng), lambda rows: _random_crops(mels, rows, crop, rng))

        def fixed_batches(queries: np.ndarray, pool: np.ndarray) -> list:
            lists = lists_of(np.repeat(queries, config.lists_per_song), pool, np.random.default_rng([seed, 1]))
            return list(batches(lists, lambda rows: _middle_crops(mels, rows, crop)))

        def loss_fn(model: WaveNetEncoder, batch: tuple["torch.Tensor", ...]) -> "torch.Tensor":
            x = batch[0]
            return ranking_loss(model(x.flatten(0, 1)).view(*x.shape[:2], -1), config)

        with seeded(seed):
            model = WaveNetEncoder(network)
            model.standardise.set_stats(torch.from_numpy(band_mean), torch.from_numpy(band_std))
            history = self._fit_module(
                model,
                loss_fn=loss_fn,
                train_batches=train_batches,
                val_batches=fixed_batches(val_rows, np.concatenate([train_rows, val_rows])),
                config=config.train,
                options=options,
                rng=rng,
            )
        self.vectors_ = _embed_crops(model, _device_of(model), mels, frames=crop, dim=network.embedding_dim)
        test_metrics: dict[str, Any] = {
            "ranking_loss": mean_loss(model, loss_fn, fixed_batches(test_rows, _labelled(np.arange(n), targets)), _device_of(model)),
            "loss": config.loss,
            "similarity": config.similarity,
            "n": int(len(test_rows)),
        }
        for metric in ("euclidean", "cosine"):
            test_metrics[f"genre_p@5_{metric}"] = _genre_precision(self.vectors_, labels, split.test, metric=metric)
        _keep_model(
            self, model, history=history, options=options, test_metrics=test_metrics, kind="mel",
            crop_frames=crop, loss=config.loss, similarity=config.similarity, margin=config.margin,
            list_shape=[n_similar, n_dissimilar], positives="same genre, else same album",
            embedding_rule="mean of non-overlapping crop embeddings",
        )  # fmt: skip
        return self

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        """``inputs["mel"]``: m log-mel arrays [shape=(N_MELS, n_frames)] → (m, 64) float32."""
        self._fitted()
        module = self._module()
        mels = [_pad_frames(m, self.crop_frames_) for m in inputs["mel"]]
        return _embed_crops(module, _device_of(module), mels, frames=self.crop_frames_, dim=module.config.embedding_dim)


# ============================================================================================
# chroma LSTM


@dataclass(frozen=True)
class ChromaLSTMSpaceConfig:
    """Settings of the chroma-lstm space (see the module docstring).

    Attributes
    ----------
    section_frames : int
        Frames per section (1 000 ≈ 23 s), in training and when embedding; shortened to the
        longest clip's length when every clip is shorter (no section of padding only).
    hidden : int
        LSTM units; the embedding has ``2 * hidden`` values (hidden and cell state).
    reduction : {"best", "mean", "max", "last"}
        How a song's states become its vector; ``"best"`` picks by validation genre P@5.
    sections_per_song : int
        Random sections drawn per training song and epoch.
    train : TrainConfig
        ``batch_size`` counts sections.
    """

    section_frames: int = 1000
    hidden: int = 32
    reduction: str = "best"
    sections_per_song: int = 4
    train: TrainConfig = field(default_factory=lambda: TrainConfig(max_epochs=30, patience=6, learning_rate=3e-3, weight_decay=0.0, batch_size=32))


def lstm_song_states(model: "torch.nn.Module", chroma: np.ndarray, *, section_frames: int) -> dict[str, np.ndarray]:
    """One song's LSTM state reduced every way of :data:`LSTM_REDUCTIONS`.

    Parameters
    ----------
    model : ChromaLSTM
    chroma : np.ndarray [shape=(12, n_frames)]
        At least ``section_frames`` frames (pad first).
    section_frames : int

    Returns
    -------
    dict of str to np.ndarray [shape=(2 * hidden,), float32]
        ``"mean"``/``"max"``: over every frame of every section; ``"last"``: the state at
        each section's end, averaged over sections.
    """
    import torch

    sections = torch.from_numpy(np.ascontiguousarray(_fixed_crops(chroma, section_frames))).to(_device_of(model))
    states = model.states(sections).cpu().numpy()  # (n_sections, section_frames, 2 * hidden)
    return {"mean": states.mean(axis=(0, 1)), "max": states.max(axis=(0, 1)), "last": states[:, -1].mean(axis=0)}


@register_space
class ChromaLSTMSpace(LearnedSpace):
    """An LSTM over the chromagram trained to predict the next frame; its state, 64-d."""

    name = "chroma-lstm"
    family = "literature"
    #: 2: the class moved to songsim.spaces.literature (fits pickled by older versions name the old module)
    version = 2
    description = "LSTM over the chromagram, next-frame prediction (L1) · hidden+cell state · 64-d (weak baseline)"
    inputs = ("chroma",)

    def __init__(self, *, config: ChromaLSTMSpaceConfig | None = None) -> None:
        self.config = config

    def _states(self, model: "torch.nn.Module", chromas: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Every reduction of every song: {reduction: (m, 2 * hidden) float32}."""
        section = self.section_frames_
        per_song = [lstm_song_states(model, _pad_frames(c, section), section_frames=section) for c in chromas]
        width = 2 * model.config.hidden
        return {r: np.asarray([s[r] for s in per_song], dtype=np.float32).reshape(len(chromas), width) for r in LSTM_REDUCTIONS}

    def fit(
        self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0, training: TrainingOptions | None = None
    ) -> "ChromaLSTMSpace":
        """Train on random sections of the training songs; set ``vectors_`` and ``reduction_``.

        Parameters
        ----------
        inputs : dict
            ``"chroma"``: n_tracks chromagrams [each shape=(12, n_frames)].
        labels : dict of str to np.ndarray
            Only ``genre`` is read, to choose the reduction (validation songs).
        seed : int
        training : TrainingOptions, optional

        Attributes set
        --------------
        section_frames_ : int
            The section length used (see :class:`ChromaLSTMSpaceConfig`).
        reduction_ : str
            The reduction kept.
        reduction_scores_ : dict of str to float or None
            Validation genre P@5 of each reduction.
        """
        import torch

        from songsim.models import ChromaLSTM, ChromaLSTMConfig, next_frame_l1
        from songsim.train import mean_loss, seeded

        config = self.config_ = self.config or ChromaLSTMSpaceConfig()
        if config.reduction not in ("best", *LSTM_REDUCTIONS):
            raise SongsimError(f"{self.name}: reduction must be 'best' or one of {LSTM_REDUCTIONS}, not {config.reduction!r}.")
        options = training or TrainingOptions()
        section = self.section_frames_ = max(2, min(config.section_frames, max((c.shape[1] for c in inputs["chroma"]), default=2)))
        chromas = [_pad_frames(c, section) for c in inputs["chroma"]]
        split = self._set_split(labels, len(chromas), seed, options.fold)
        rng = np.random.default_rng(seed)

        def batches(rows: np.ndarray, crops: Callable[[np.ndarray], np.ndarray]):
            for start in range(0, len(rows), config.train.batch_size):
                yield (torch.from_numpy(crops(rows[start : start + config.train.batch_size])),)

        def loss_fn(model: ChromaLSTM, batch: tuple["torch.Tensor", ...]) -> "torch.Tensor":
            return next_frame_l1(model, batch[0])

        with seeded(seed):
            model = ChromaLSTM(ChromaLSTMConfig(hidden=config.hidden))
            history = self._fit_module(
                model,
                loss_fn=loss_fn,
                train_batches=lambda: batches(
                    rng.permutation(np.repeat(split.train, config.sections_per_song)), lambda rows: _random_crops(chromas, rows, section, rng)
                ),
                val_batches=list(batches(split.val, lambda rows: _middle_crops(chromas, rows, section))),
                config=config.train,
                options=options,
                rng=rng,
            )
        reductions = self._states(model, chromas)
        self.reduction_scores_ = {r: _genre_precision(v, labels, split.val) for r, v in reductions.items()}
        if config.reduction != "best":
            self.reduction_ = config.reduction
        elif any(s is not None for s in self.reduction_scores_.values()):
            self.reduction_ = max(LSTM_REDUCTIONS, key=lambda r: (self.reduction_scores_[r] or 0.0, -LSTM_REDUCTIONS.index(r)))
        else:
            self.reduction_ = "mean"
        self.vectors_ = reductions[self.reduction_]
        test = _middle_crops(chromas, split.test, section)
        test_metrics = {
            "next_frame_l1": mean_loss(model, loss_fn, [(torch.from_numpy(test),)], _device_of(model)),
            "repeat_previous_frame_l1": float(np.abs(test[:, :, 1:] - test[:, :, :-1]).mean()),
            "reduction": self.reduction_,
            "val_genre_p@5_by_reduction": self.reduction_scores_,
            "n": int(len(split.test)),
        }
        _keep_model(
            self, model, history=history, options=options, test_metrics=test_metrics, kind="chroma",
            n_chroma=12, section_frames=section, reduction=self.reduction_,
            embedding_rule="concat(h, c) reduced over the sections' frames",
        )  # fmt: skip
        return self

    def embed_all(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """Every reduction of m songs: ``inputs["chroma"]`` → {reduction: (m, 64) float32}
        (what the reduction comparison in the bench reads)."""
        self._fitted()
        return self._states(self._module(), inputs["chroma"])

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        """``inputs["chroma"]``: m chromagrams [shape=(12, n_frames)] → (m, 64) float32."""
        return self.embed_all(inputs)[self.reduction_]


# ============================================================================================
# ALI


@dataclass(frozen=True)
class ALISpaceConfig:
    """Settings of the ali space (see the module docstring).

    Attributes
    ----------
    network : ALIConfig, optional
        The networks' shape and the segment length (default :class:`~songsim.models.ALIConfig`).
    segments_per_song : int
        Random segments drawn per training song and epoch.
    batch_size : int
    max_epochs : int
    learning_rate : float
    betas : (float, float)
        Adam's moment decays for both players.
    generator_steps : int
        Encoder/decoder steps per discriminator step.
    real_target : float
        The discriminator's target for encoder pairs (one-sided label smoothing).
    input_noise : float
        Standard deviation of the noise on the discriminator's inputs at the start,
        annealed linearly to 0 over the epochs.
    """

    network: "ALIConfig | None" = None
    segments_per_song: int = 4
    batch_size: int = 64
    max_epochs: int = 60
    learning_rate: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    generator_steps: int = 2
    real_target: float = 0.9
    input_noise: float = 0.1


@register_space
class ALISpace(LearnedSpace):
    """Adversarially Learned Inference on 5 s log-mel segments; the encoder's mean, 64-d."""

    name = "ali"
    family = "literature"
    #: 2: the class moved to songsim.spaces.literature (fits pickled by older versions name the old module)
    version = 2
    description = "ALI adversarial encoder (LSGAN) on 5 s log-mel segments · mean over segments · 64-d"
    inputs = ("mel",)

    def __init__(self, *, config: ALISpaceConfig | None = None) -> None:
        self.config = config

    def fit(
        self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0, training: TrainingOptions | None = None
    ) -> "ALISpace":
        """Train ALI on random segments of the training songs and set ``vectors_``.

        Parameters
        ----------
        inputs : dict
            ``"mel"``: n_tracks log-mel arrays [each shape=(N_MELS, n_frames), dB].
        labels : dict of str to np.ndarray
            Only for the shared split (ALI uses no label).
        seed : int
        training : TrainingOptions, optional
            ``max_epochs`` overrides the config's.
        """
        import torch

        from songsim.models import ALI, ALIConfig, ali_loss
        from songsim.train import choose_device, fit_adversarial, seeded

        config = self.config_ = self.config or ALISpaceConfig()
        options = training or TrainingOptions()
        network = config.network or ALIConfig(n_mels=N_MELS)
        segment = network.segment_frames
        mels = [_pad_frames(m, segment) for m in inputs["mel"]]
        split = self._set_split(labels, len(mels), seed, options.fold)
        rng = np.random.default_rng(seed)
        band_mean, band_std = _band_stats([mels[i] for i in split.train])
        max_epochs = options.max_epochs or config.max_epochs

        def train_batches():
            rows = rng.permutation(np.repeat(split.train, config.segments_per_song))
            for start in range(0, len(rows), config.batch_size):
                yield (torch.from_numpy(_random_crops(mels, rows[start : start + config.batch_size], segment, rng)),)

        def player_loss(player: str) -> Callable:
            def loss(model: ALI, batch: tuple["torch.Tensor", ...], progress: float) -> "torch.Tensor":
                noise = config.input_noise * (1.0 - progress)
                return ali_loss(model, batch[0], player=player, noise_std=noise, real_target=config.real_target)

            return loss

        def reconstruction(model: ALI, segments: np.ndarray) -> tuple[float, float]:
            """Mean squared error of x → E → G on prepared segments, and their variance."""
            x = model.prepare(torch.from_numpy(segments).to(_device_of(model)))
            return float(((model.decode(model.encode_distribution(x)[0]) - x) ** 2).mean()), float(x.var())

        val_segments = _middle_crops(mels, split.val, segment)
        on_epoch = options.on_epoch
        with seeded(seed):
            model = ALI(network)
            model.standardise.set_stats(torch.from_numpy(band_mean), torch.from_numpy(band_std))
            history = fit_adversarial(
                model,
                discriminator_loss=player_loss("discriminator"),
                generator_loss=player_loss("generator"),
                discriminator_parameters=model.discriminator_parameters,
                generator_parameters=model.generator_parameters,
                train_batches=train_batches,
                max_epochs=max_epochs,
                generator_steps=config.generator_steps,
                learning_rate=config.learning_rate,
                betas=config.betas,
                device=choose_device(options.device),
                monitor=(lambda m: {"validation reconstruction (MSE)": reconstruction(m, val_segments)[0]}) if len(split.val) else None,
                on_epoch=None if on_epoch is None else (lambda *args: on_epoch(self.name, *args)),
                resume=self._resume_file(options),
                rng=rng,
            )
        self.vectors_ = _embed_crops(model.encode, _device_of(model), mels, frames=segment, dim=network.latent_dim)
        with torch.no_grad():
            test_mse, test_variance = reconstruction(model, _middle_crops(mels, split.test, segment))
        last = slice(-min(5, len(history.train_loss)), None)
        d_loss = float(np.mean(history.extra_losses["discriminator"][last]))
        test_metrics = {
            "discriminator_loss": d_loss,
            "generator_loss": float(np.mean(history.train_loss[last])),
            "equilibrium_discriminator_loss": ALI_EQUILIBRIUM_D_LOSS,
            "reconstruction_mse": test_mse,
            "segment_variance": test_variance,
            # the discriminator neither wins (loss → 0) nor is lost, and x → E → G beats the mean segment
            "converged": bool(0.5 * ALI_EQUILIBRIUM_D_LOSS <= d_loss <= 1.5 * ALI_EQUILIBRIUM_D_LOSS and test_mse < test_variance),
            "n": int(len(split.test)),
        }
        _keep_model(
            self, model, history=history, options=options, test_metrics=test_metrics, kind="mel",
            segment_frames=segment, objective="LSGAN", real_target=config.real_target,
            input_noise=f"{config.input_noise} annealed linearly to 0", generator_steps=config.generator_steps,
            embedding_rule="mean of the encoder's mean over non-overlapping segments",
        )  # fmt: skip
        return self

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        """``inputs["mel"]``: m log-mel arrays [shape=(N_MELS, n_frames)] → (m, 64) float32."""
        self._fitted()
        module = self._module()
        segment = module.config.segment_frames
        mels = [_pad_frames(m, segment) for m in inputs["mel"]]
        return _embed_crops(module.encode, _device_of(module), mels, frames=segment, dim=module.config.latent_dim)
