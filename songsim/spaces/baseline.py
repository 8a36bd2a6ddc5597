"""The baselines every comparison needs: the librosa statistics and the chance floor.

- ``handcrafted`` (input ``"handcrafted"``): the standardised handcrafted statistics, reduced by
  PCA to the components explaining 99 % of the variance;
- ``random`` (input ``"key"``): a seeded Gaussian vector per song, independent of the audio.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from songsim.spaces.base import Space, register_space


@register_space
class HandcraftedSpace(Space):
    """The librosa baseline: standardised handcrafted statistics reduced by PCA.

    PCA keeps the smallest number of components explaining ``variance`` of the variance.
    """

    name = "handcrafted"
    description = "librosa statistics (MFCC, chroma, tonnetz, spectral shape) · standardise + PCA 99 %"
    inputs = ("handcrafted",)

    def __init__(self, *, variance: float = 0.99) -> None:
        self.variance = variance

    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> "HandcraftedSpace":
        """``inputs["handcrafted"]``: (n_tracks, D) float32 handcrafted features."""
        features = inputs["handcrafted"]
        self.pipeline_ = Pipeline(
            [("scale", StandardScaler()), ("pca", PCA(n_components=self.variance, svd_solver="full", random_state=seed))]
        ).fit(features)
        self.vectors_ = self.pipeline_.transform(features).astype(np.float32)
        return self

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        """``inputs["handcrafted"]``: (m, D) handcrafted features → (m, n_components) float32."""
        self._fitted()
        return self.pipeline_.transform(np.atleast_2d(inputs["handcrafted"])).astype(np.float32)


@register_space
class RandomSpace(Space):
    """The floor of every comparison: a seeded Gaussian vector per song, independent of audio.

    A song's vector depends only on its key (track id, or an upload's content fingerprint)
    and the seed, so it is reproducible and an upload gets a stable random position.
    """

    name = "random"
    description = "seeded random vectors · the chance floor of every comparison"
    inputs = ("key",)

    def __init__(self, *, dim: int = 64) -> None:
        self.dim_ = dim

    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> "RandomSpace":
        """``inputs["key"]``: track ids in row order."""
        self.seed_ = seed
        self.vectors_ = self.transform(inputs)
        return self

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        """``inputs["key"]``: m keys → (m, dim) float32."""
        rows = []
        for key in inputs["key"]:
            digest = hashlib.sha256(f"{self.seed_}:{key}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
            rows.append(rng.standard_normal(self.dim_))
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dim_)
