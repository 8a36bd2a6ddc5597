"""The inputs a space consumes, each computed by a resolver registered under its name.

A space lists input names in ``Space.inputs`` (:mod:`songsim.spaces.base` describes them);
:func:`space_inputs` looks each name up here and computes it for m songs — catalogue tracks
during a build, or an uploaded song — so both go down one path:

==================  ==========================================================================
name                resolver
==================  ==========================================================================
``handcrafted``     the per-track feature cache (:func:`songsim.features.extract_features`),
``mel``, ``chroma``  computing missing tracks locally or on a Dask cluster; the per-frame
                    kinds are memory-mapped
``metadata``        the catalogue's Spotify-style row (by track id or identical audio), else
                    measured from the audio (:func:`songsim.measure.metadata_matrix`)
``key``             the songs' keys (track ids; uploads' content fingerprints)
``space:<name>``    the songs' vectors in another space (a prefix resolver)
==================  ==========================================================================

A new kind of input is one :func:`register_input` call; a space that asks for a name nobody
registered is refused when its inputs are computed, with the names that exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from songsim.catalogue import Catalogue
from songsim.errors import SongsimError
from songsim.features import FEATURE_KINDS, extract_features
from songsim.measure import metadata_matrix
from songsim.spaces.base import SPACE_INPUT_PREFIX, Space
from songsim.spaces.store import features_cache_dir

@dataclass(frozen=True)
class Songs:
    """The m songs whose inputs are wanted, and how to compute what is missing.

    Attributes
    ----------
    catalogue : Catalogue
        The catalogue they are embedded in (its feature cache, its metadata).
    paths, fingerprints : sequence
        The songs' audio files and their content fingerprints (the feature cache key).
    keys : sequence of str
        Track ids for catalogue songs, content fingerprints for uploads.
    dependency_vectors : callable
        ``dependency_vectors(space_name) -> (m, dim)``: the songs in another space, for
        ``"space:<name>"`` inputs (catalogue vectors, or an upload embedded there).
    n_jobs, dask_address : optional
        Where missing features are computed: ``n_jobs`` local processes (default: every
        core), or the Dask cluster whose scheduler is at ``dask_address``.
    on_progress : callable, optional
        ``on_progress(feature_kind, n_tracks_done, n_tracks)`` during feature extraction; its
        first call for a kind counts the tracks already in the cache as done.
    """

    catalogue: Catalogue
    paths: Sequence[Path]
    fingerprints: Sequence[str]
    keys: Sequence[str]
    dependency_vectors: Callable[[str], np.ndarray]
    n_jobs: int | None = None
    dask_address: str | None = None
    on_progress: Callable[[str, int, int], None] | None = None


#: resolver(input name, songs) -> the input's value for those songs
InputResolver = Callable[[str, Songs], Any]

_RESOLVERS: dict[str, InputResolver] = {}
_PREFIX_RESOLVERS: dict[str, InputResolver] = {}


def register_input(name: str, resolver: InputResolver, *, prefix: bool = False) -> None:
    """Make input ``name`` available to spaces; with ``prefix``, every name starting with it."""
    (_PREFIX_RESOLVERS if prefix else _RESOLVERS)[name] = resolver


def input_names() -> list[str]:
    """Every registered input name (prefix resolvers as ``"space:<name>"``)."""
    return [*_RESOLVERS, *(f"{prefix}<name>" for prefix in _PREFIX_RESOLVERS)]


def input_resolver(name: str) -> InputResolver:
    """The resolver of input ``name``; :class:`SongsimError` lists the names that exist."""
    if name in _RESOLVERS:
        return _RESOLVERS[name]
    for prefix, resolver in _PREFIX_RESOLVERS.items():
        if name.startswith(prefix):
            return resolver
    raise SongsimError(f"Unknown space input {name!r}: use one of {', '.join(input_names())}.")


def space_inputs(
    space_cls: type[Space],
    catalogue: Catalogue,
    *,
    paths: Sequence[Path],
    fingerprints: Sequence[str],
    keys: Sequence[str],
    dependency_vectors: Callable[[str], np.ndarray],
    n_jobs: int | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    dask_address: str | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The inputs ``space_cls`` consumes, for m songs (the fields of :class:`Songs`).

    ``names``: the inputs to compute — for a build, :func:`songsim.spaces.store.used_inputs`
    (required and available optional ones); for an upload, the fitted space's
    :func:`songsim.spaces.base.fitted_inputs`; default ``space_cls.inputs``.

    Returns
    -------
    dict
        ``{input name: value}`` for every name in ``names``, in that order.
    """
    songs = Songs(
        catalogue=catalogue, paths=paths, fingerprints=fingerprints, keys=keys, dependency_vectors=dependency_vectors,
        n_jobs=n_jobs, dask_address=dask_address, on_progress=on_progress,
    )  # fmt: skip
    resolvers = {}
    for name in space_cls.inputs if names is None else names:
        try:
            resolvers[name] = input_resolver(name)
        except SongsimError as exc:
            raise SongsimError(f"Space {space_cls.name!r}: {exc}") from None
    return {name: resolver(name, songs) for name, resolver in resolvers.items()}


def _cached_features(kind: str, songs: Songs) -> np.ndarray | list[np.ndarray]:
    on_progress = songs.on_progress
    return extract_features(
        list(songs.paths),
        list(songs.fingerprints),
        kind=kind,
        cache_dir=features_cache_dir(songs.catalogue),
        n_jobs=songs.n_jobs,
        dask_address=songs.dask_address,
        on_progress=None if on_progress is None else (lambda done, total: on_progress(kind, done, total)),
        mmap_mode=None if kind == "handcrafted" else "r",  # per-frame kinds are large
    )


def _metadata(name: str, songs: Songs) -> np.ndarray:
    return metadata_matrix(
        songs.catalogue, paths=songs.paths, fingerprints=songs.fingerprints, keys=songs.keys,
        cache_dir=features_cache_dir(songs.catalogue),
    )  # fmt: skip


for _kind in FEATURE_KINDS:
    register_input(_kind, _cached_features)
register_input("metadata", _metadata)
register_input("key", lambda name, songs: list(songs.keys))
register_input(SPACE_INPUT_PREFIX, lambda name, songs: songs.dependency_vectors(name.removeprefix(SPACE_INPUT_PREFIX)), prefix=True)
