"""``musly``: Musly's ``timbre`` similarity with mutual proximity, a distance-based space.

Musly (Schnitzer, Flexer, Schedl & Widmer; https://www.musly.org, through the ``pymusly``
binding) gives distances, not vectors: each song is a Gaussian over 25 MFCCs, two songs are as
far apart as the Jensen-Shannon divergence of their Gaussians, normalised by mutual proximity
against the catalogue's *style* tracks (all of them up to 1 000). :mod:`songsim.models.musly`
runs Musly's own pipeline on songsim's decoding; nothing is trained and no label is needed.

As every distance-based space (``metric = "precomputed"``), its ``vectors_`` is the
(n_tracks, n_tracks) distance matrix in ``tracks.csv`` order (row i: from track i to every
track; 0 for itself; in [0, 1]), so ``dim == n_tracks``, and :meth:`MuslySpace.transform` gives
an uploaded song's row: its distances to every catalogue track, through the stored jukebox.

The per-track Musly analysis is the cached ``"musly"`` feature
(:func:`songsim.features.musly_features`): computed once per audio file, by content, locally or
on a Dask cluster. The jukebox state lives in the fitted space (``space.joblib``) as plain bytes
and arrays -- Musly's own ``serialize_to_stream`` bytes, the catalogue's serialised tracks and
the style rows -- never as pickled pymusly objects; an upload opens a fresh jukebox from them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from songsim.neighbours import PRECOMPUTED
from songsim.spaces.base import Space, register_space

__all__ = ["MuslySpace"]


@register_space
class MuslySpace(Space):
    """Musly ``timbre`` distances (MFCC Gaussians, Jensen-Shannon, mutual proximity).

    Attributes
    ----------
    vectors_ : np.ndarray [shape=(n_tracks, n_tracks), float32]
        Musly's distances: row i from track i to every track, 0 on the diagonal, in [0, 1].
    tracks_ : np.ndarray [shape=(n_tracks, 351), float32]
        Every track's Musly analysis (the ``"musly"`` feature), in ``tracks.csv`` order.
    style_rows_ : np.ndarray [shape=(n_style,), int64]
        The rows whose tracks set the jukebox's style (every row up to 1 000 tracks).
    jukebox_ : bytes
        The jukebox as Musly serialises it (style tracks, each track's normalisation).
    """

    name = "musly"
    description = (
        "Musly's timbre similarity (Schnitzer et al.): a Gaussian over 25 MFCCs per song, "
        "Jensen-Shannon divergence, mutual proximity; distances, no training on the catalogue"
    )
    inputs = ("musly",)
    required_labels = ()
    metric = PRECOMPUTED
    family = "pretrained"
    trainable = False
    embeds_uploads = True
    version = 1

    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> MuslySpace:
        from songsim.models.musly import build_collection

        tracks = self._tracks(inputs)
        collection = build_collection(tracks, seed=seed)
        self.tracks_ = tracks
        self.style_rows_ = collection.style_rows
        self.jukebox_ = collection.jukebox
        self.vectors_ = collection.distances
        return self

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        """Uploads' distances to every catalogue track: ``inputs["musly"]`` (m, 351) →
        (m, n_tracks) float32 (:func:`songsim.models.musly.upload_distances`)."""
        from songsim.models.musly import upload_distances

        self._fitted()
        return upload_distances(self._tracks(inputs), state=self.jukebox_, track_values=self.tracks_, rows=self.style_rows_)

    @staticmethod
    def _tracks(inputs: dict[str, Any]) -> np.ndarray:
        return np.ascontiguousarray(inputs["musly"], dtype=np.float32)
