"""The registry of embedding spaces.

A *space* turns every catalogue song into a vector and can embed a new song through the same
fitted objects (never a refit). Each space declares the *inputs* it consumes, by name; its
``fit`` and ``transform`` receive a dict from those names to values for m songs:

- ``"handcrafted"``: (m, D) float32, :func:`songsim.features.handcrafted_features`;
- ``"mel"``: m log-mel spectrograms, each (N_MELS, n_frames) float32 (memory-mapped);
- ``"chroma"``: m chromagrams, each (12, n_frames) float32 (memory-mapped);
- ``"metadata"``: (m, 11) float, the Spotify-style features (NaN where unknown; uploads are
  measured by :mod:`songsim.measure`);
- ``"key"``: m strings (track ids, or uploads' content fingerprints) — for controls that
  ignore the audio;
- ``"space:<name>"``: (m, dim) float32, the songs' vectors in another space (built first).

:func:`songsim.build.space_inputs` computes them, for catalogue songs and uploads alike. The
learned spaces register themselves in :mod:`songsim.learned`, the literature's other models
in :mod:`songsim.literature`. A fitted space is stored in
``<catalogue>/.songsim/spaces/<name>/`` as ``space.joblib`` plus ``meta.json`` holding the
fingerprint of what it was fitted on, so a rebuild refits only what changed.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from songsim.errors import NotBuiltError, SongsimError, UnknownSpaceError
from songsim.files import atomic_write, read_json, write_json

SPACE_FILE = "space.joblib"
META_FILE = "meta.json"


class Space(ABC):
    """An embedding space, scikit-learn style: nothing in ``__init__`` but settings,
    fitted attributes end in ``_``, :meth:`fit` returns ``self``.

    Attributes
    ----------
    vectors_ : np.ndarray [shape=(n_tracks, dim), float32]
        The catalogue's embedding, rows in ``tracks.csv`` order (set by :meth:`fit`).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    #: names of the inputs ``fit`` and ``transform`` receive (see the module docstring)
    inputs: ClassVar[tuple[str, ...]]
    #: catalogue label columns the space needs (it is skipped when they are missing)
    required_labels: ClassVar[tuple[str, ...]] = ()
    #: bump when the space's algorithm changes, so stored fits become stale
    version: ClassVar[int] = 1
    #: the similarity its vectors are made for, the default wherever neighbours are searched:
    #: "cosine" (direction) or "euclidean" (−distance, for vectors whose length means something)
    metric: ClassVar[str] = "cosine"

    vectors_: np.ndarray

    @abstractmethod
    def fit(self, inputs: dict[str, Any], *, labels: dict[str, np.ndarray], seed: int = 0) -> "Space":
        """Fit on the catalogue's ``inputs`` (row order of ``tracks.csv``) and set ``vectors_``.

        ``labels`` maps every column of ``tracks.csv`` to an (n_tracks,) object array.
        """

    @abstractmethod
    def transform(self, inputs: dict[str, Any]) -> np.ndarray:
        """Embed new songs: ``inputs`` for m songs → (m, dim) float32, through the fitted objects."""

    @property
    def dim(self) -> int:
        """Embedding size."""
        return int(self._fitted().shape[1])

    def _fitted(self) -> np.ndarray:
        vectors = getattr(self, "vectors_", None)
        if vectors is None:
            raise NotBuiltError(f"Space {self.name!r} is not fitted yet: run `python -m songsim build DIR`.")
        return vectors


_SPACE_TYPES: dict[str, type[Space]] = {}


def register_space(cls: type[Space]) -> type[Space]:
    """Class decorator adding a space type to the registry under ``cls.name``."""
    _SPACE_TYPES[cls.name] = cls
    return cls


def space_names() -> list[str]:
    """Names of every registered space, in registration order."""
    return list(_SPACE_TYPES)


def space_type(name: str) -> type[Space]:
    """The registered class for ``name``; :class:`UnknownSpaceError` names the valid ones."""
    try:
        return _SPACE_TYPES[name]
    except KeyError:
        raise UnknownSpaceError(f"Unknown space {name!r}: choose one of {', '.join(_SPACE_TYPES)}.") from None


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


def space_dir(derived_dir: Path, name: str) -> Path:
    """Folder of one fitted space inside ``<catalogue>/.songsim``."""
    return Path(derived_dir) / "spaces" / name


def space_fit_key(space_cls: type[Space], inputs_fingerprint: str, seed: int) -> str:
    """The fingerprint a stored fit must carry to be current."""
    return f"{space_cls.name}-v{space_cls.version}-seed{seed}-{inputs_fingerprint}"


def is_current_version(space_cls: type[Space], fit_key: str | None) -> bool:
    """Whether a stored fit key was made by this version of the space's algorithm (a fit of an
    older version may take other inputs: it cannot embed uploads, and counts as not built)."""
    return fit_key is not None and fit_key.startswith(f"{space_cls.name}-v{space_cls.version}-")


def save_space(space: Space, folder: Path, *, fit_key: str, fit_seconds: float) -> None:
    """Store a fitted space atomically (a crash never leaves a half-written fit behind)."""
    with atomic_write(folder / SPACE_FILE) as handle:
        joblib.dump(space, handle)
    write_json(
        folder / META_FILE,
        {
            "name": space.name,
            "fit_key": fit_key,
            "dim": space.dim,
            "n_tracks": int(space.vectors_.shape[0]),
            "fit_seconds": round(fit_seconds, 3),
            "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )


def stored_meta(folder: Path) -> dict:
    """What :func:`save_space` recorded (fit key, dim, n_tracks, fit_seconds, fitted_at);
    empty when nothing is stored."""
    return read_json(folder / META_FILE) or {}


def stored_fit_key(folder: Path) -> str | None:
    """The fit key of the space stored in ``folder``, or ``None`` if there is none."""
    return stored_meta(folder).get("fit_key")


def load_space(folder: Path) -> Space:
    """Load a fitted space stored by :func:`save_space`."""
    path = folder / SPACE_FILE
    if not path.is_file():
        raise NotBuiltError(f"No fitted space in {folder}: run `python -m songsim build` on the catalogue.")
    try:
        return joblib.load(path)
    except Exception as exc:  # a truncated or foreign file
        raise SongsimError(f"{path} is unreadable ({exc}): delete it and run `python -m songsim build` again.") from None
