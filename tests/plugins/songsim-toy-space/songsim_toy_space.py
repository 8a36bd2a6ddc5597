"""A songsim plug-in space: each song's mean log-mel spectrum and its spread over time."""

from typing import Any

import numpy as np

from songsim.spaces.base import Space


class MelMeanSpace(Space):
    name = "toy-mel-mean"         # also the entry point's name
    description = "mean and standard deviation of every log-mel band over the excerpt"
    inputs = ("mel",)             # m spectrograms, each (n_mels, n_frames) float32
    metric = "cosine"

    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> "MelMeanSpace":
        self.vectors_ = self.transform(inputs)       # (n_tracks, 2 * n_mels) float32, tracks.csv order
        return self

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        """m songs → (m, 2 * n_mels) float32; an upload goes through here too."""
        return np.stack([np.concatenate([mel.mean(axis=1), mel.std(axis=1)]) for mel in inputs["mel"]]).astype(np.float32)
