"""Plug-in classes that import but are wrong: not a space, incomplete, clashing, or giving
vectors of the wrong shape."""

from typing import Any

import numpy as np

from songsim.spaces.base import Space, register_space


class NotASpace:
    """Has the methods of a space but is no ``Space`` subclass."""

    name = "toy-not-a-space"

    def fit(self, inputs, *, labels, seed=0):
        return self


class MissingAttributesSpace(Space):
    """No ``description``; ``inputs`` names an input songsim does not have."""

    name = "toy-no-inputs"
    inputs = ("lyrics",)

    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> "MissingAttributesSpace":
        return self

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        return np.zeros((1, 1), dtype=np.float32)


@register_space  # registering itself on import must not replace the built-in space
class ClashingSpace(Space):
    """Takes the name of a built-in space."""

    name = "handcrafted"
    description = "a second handcrafted"
    inputs = ("key",)

    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> "ClashingSpace":
        self.vectors_ = self.transform(inputs)
        return self

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        return np.ones((len(inputs["key"]), 3), dtype=np.float32)


class WrongFitShapeSpace(Space):
    """Fits one number per song: vectors_ is (n_tracks,) instead of (n_tracks, dim)."""

    name = "toy-wrong-fit"
    description = "one number per song (a bug: vectors must be 2-D)"
    inputs = ("handcrafted",)

    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> "WrongFitShapeSpace":
        self.vectors_ = inputs["handcrafted"].mean(axis=1)
        return self

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        return inputs["handcrafted"].mean(axis=1)


class WrongUploadShapeSpace(Space):
    """Fits well, but embeds a new song with one column too many."""

    name = "toy-wrong-upload"
    description = "the first 8 handcrafted statistics (a bug: uploads get 9)"
    inputs = ("handcrafted",)

    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> "WrongUploadShapeSpace":
        self.vectors_ = np.asarray(inputs["handcrafted"][:, :8], dtype=np.float32)
        return self

    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        return np.asarray(inputs["handcrafted"][:, :9], dtype=np.float32)
