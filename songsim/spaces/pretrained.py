"""Spaces from pretrained models: nothing is fitted on the catalogue.

``musicnn``
    MusiCNN (Pons & Serra, ISMIR 2019 LBD) trained on the Million Song Dataset's 50 most
    frequent Last.fm tags (``MSD_musicnn`` from the ``musicnn==0.1.0`` wheel, ISC licence),
    run by songsim's torch port (:mod:`songsim.models.musicnn`, no TensorFlow): a song is the
    mean over its 3 s patches of the 200-d penultimate layer, compared by cosine. The per-track
    embedding is the cached ``"musicnn"`` feature (:func:`songsim.features.musicnn_features`):
    computed once per audio file, by content, locally or on a Dask cluster. The tagger's own
    output (the 50 tag probabilities, averaged the same way) is kept beside the vectors, so
    Explore can say what the tagger hears in a query (:func:`query_tags`).

The ``MTT_*`` models of the same wheel are left out: MagnaTagATune is built from Magnatune
audio, so on a Magnatune-derived collection they would have heard the songs being judged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from songsim.catalogue import Catalogue
from songsim.features import MUSICNN_EMBEDDING_DIM, extract_features
from songsim.spaces.base import Space, register_space
from songsim.spaces.store import features_cache_dir

__all__ = ["MusicnnSpace", "query_tags", "top_tags"]


@register_space
class MusicnnSpace(Space):
    """The pretrained MusiCNN (MSD) embedding: 200-d, cosine.

    Attributes
    ----------
    vectors_ : np.ndarray [shape=(n_tracks, 200), float32]
        The penultimate layer, mean over each song's patches.
    tags_ : np.ndarray [shape=(n_tracks, 50), float32]
        The tag probabilities, mean over each song's patches (``msd_tags()`` order).
    """

    name = "musicnn"
    description = (
        "MusiCNN pretrained on the Million Song Dataset (Pons & Serra 2019): its 200-d penultimate "
        "layer, mean over 3 s patches; no training on the catalogue"
    )
    inputs = ("musicnn",)
    required_labels = ()
    metric = "cosine"
    family = "pretrained"
    trainable = False
    embeds_uploads = True
    version = 1
    #: slow (0.6 s per clip on one core) and not a default space: the fused spaces use it as an
    #: optional input only where it is built, or built by the same build
    built_on_request = True

    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> MusicnnSpace:
        features = self._features(inputs)
        self.vectors_ = np.ascontiguousarray(features[:, :MUSICNN_EMBEDDING_DIM])
        self.tags_ = np.ascontiguousarray(features[:, MUSICNN_EMBEDDING_DIM:])
        return self

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        return np.ascontiguousarray(self._features(inputs)[:, :MUSICNN_EMBEDDING_DIM])

    @staticmethod
    def _features(inputs: dict[str, Any]) -> np.ndarray:
        return np.asarray(inputs["musicnn"], dtype=np.float32)


def top_tags(probabilities: np.ndarray, *, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable MSD tags: ``[(tag, probability), ...]``, most probable first
    (ties by tag order).

    Parameters
    ----------
    probabilities : np.ndarray [shape=(50,)]
        Tag probabilities in ``songsim.models.musicnn.msd_tags()`` order.
    """
    from songsim.models.musicnn import msd_tags

    probabilities = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(-probabilities, kind="stable")[: max(0, int(k))]
    tags = msd_tags()
    return [(tags[i], float(probabilities[i])) for i in order]


def query_tags(
    catalogue: Catalogue, space: Space, *, track_id: str | None = None, upload: Any = None, k: int = 5
) -> list[tuple[str, float]]:
    """What the tagger hears in a query: its ``k`` most probable MSD tags.

    Only a :class:`MusicnnSpace` tags; for any other space the answer is ``[]``.

    Parameters
    ----------
    catalogue : Catalogue
    space : Space
        The fitted space the query is searched in.
    track_id : str, optional
        A catalogue track: its tags come from the fitted space (no computation).
    upload : songsim.query.Upload, optional
        An uploaded song (``path``, ``fingerprint``): its cached ``"musicnn"`` feature, computed
        now if the upload was not embedded yet.

    Returns
    -------
    list of (str, float)
        ``(tag, probability)`` pairs, most probable first.
    """
    if not isinstance(space, MusicnnSpace):
        return []
    if (track_id is None) == (upload is None):
        raise ValueError("query_tags needs exactly one of track_id and upload")
    if track_id is not None:
        probabilities = space.tags_[catalogue.row_of(track_id)]
    else:
        features = extract_features(
            [upload.path], [upload.fingerprint], kind="musicnn", cache_dir=features_cache_dir(catalogue), n_jobs=1
        )
        probabilities = features[0, MUSICNN_EMBEDDING_DIM:]
    return top_tags(probabilities, k=k)
