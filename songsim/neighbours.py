"""Top-k neighbour search in an embedding space: exact (numpy) and approximate (annoy).

Every index answers the same two questions with the same interface
(:class:`NeighbourIndex`)::

    index.query(vector, k=5, exclude=mask)   # a new song (an upload) against the catalogue
    index.query_row(row, k=5, exclude=mask)  # a catalogue song; never returns ``row`` itself

and returns a :class:`Neighbours` record: row indices into the space (row order follows
``tracks.csv``) and scores in rank order.

Metrics and scores
------------------
Scores are always *similarities*: **higher = more similar**, sorted descending.

``"cosine"``
    score = cosine similarity in ``[-1, 1]``; distance = ``1 - score`` (in ``[0, 2]``).
    A zero vector has similarity 0 to everything (it is not NaN); its direction is undefined.
``"euclidean"``
    score = ``-distance`` (so ``<= 0``), distance = L2 distance in the space's units.
``"precomputed"`` (:data:`PRECOMPUTED`)
    a space that gives distances, not vectors (an imported distance matrix, Musly): its
    "vectors" are rows of an ``(n_rows, n_rows)`` distance matrix (row = query; smaller =
    closer) and :class:`PrecomputedIndex` ranks them; score = ``-distance`` in the system's
    own units. Not one of :data:`METRICS`, which are the similarities of *vector* spaces.

:attr:`Neighbours.distances` gives the distance for every metric. Ties are broken by the
lower row index, so results are deterministic.

Which index
-----------
:func:`make_index` picks :class:`ExactIndex` up to ``annoy_above`` rows (exact top-5 costs
~0.1 ms at 10 k rows and 2-8 ms at 100 k on a laptop core) and :class:`AnnoyIndex` above, a
memory-mapped file shared by every process (every app session) that opens it. Annoy's own
default ``search_k`` gives poor recall on hard 64-d data; this module always passes an
explicit ``search_k`` (:data:`DEFAULT_SEARCH_K`), chosen from measurements with
``python -m songsim bench index`` (see :class:`AnnoyIndex`).

Exclusion (the MIREX artist filter)
-----------------------------------
``exclude`` is a boolean mask ``(n_rows,)``: rows that are ``True`` are never returned. Build
it with :func:`exclusion_mask`, which excludes the query row and, optionally, every row of the
query's artist, so a system is not rewarded for finding the same artist.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from songsim.errors import NotBuiltError, SongsimError
from songsim.files import write_json

__all__ = [
    "METRICS",
    "DEFAULT_N_TREES",
    "DEFAULT_SEARCH_K",
    "DEFAULT_ANNOY_ABOVE",
    "Neighbours",
    "NeighbourIndex",
    "ExactIndex",
    "PRECOMPUTED",
    "PrecomputedIndex",
    "HUBNESS_METHODS",
    "HubnessReducedIndex",
    "AnnoyIndex",
    "make_index",
    "exclusion_mask",
    "artist_keys",
    "ArtistKeys",
    "vectors_fingerprint",
]

METRICS = ("cosine", "euclidean")  # the similarities a vector space can be searched with
#: the metric of a space that gives distances, not vectors (:class:`PrecomputedIndex`)
PRECOMPUTED = "precomputed"
DEFAULT_N_TREES = 50  # annoy trees: more = better recall, bigger file, slower build
DEFAULT_SEARCH_K = 5_000  # annoy nodes inspected per query (annoy's default is n_trees * k)
DEFAULT_ANNOY_ABOVE = 50_000  # make_index: exact search up to this many rows

_ANNOY_METRIC = {"cosine": "angular", "euclidean": "euclidean"}
_META_SUFFIX = ".meta.json"
_META_FORMAT = "songsim.annoy/1"


# --------------------------------------------------------------------------------------
# result record
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Neighbours:
    """The top-k neighbours of one query, in rank order.

    Attributes
    ----------
    indices : np.ndarray [shape=(k,), dtype=int64]
        Row indices into the space (row order of ``tracks.csv``), best first.
    scores : np.ndarray [shape=(k,), dtype=float32]
        Similarities, sorted descending: cosine similarity for ``"cosine"``, minus the L2
        distance for ``"euclidean"``, minus the given distance for ``"precomputed"``.
    metric : str
        ``"cosine"``, ``"euclidean"`` or ``"precomputed"``.

    Both arrays are read-only.
    """

    indices: np.ndarray
    scores: np.ndarray
    metric: str = field(default="cosine")

    def __post_init__(self) -> None:
        indices = np.array(self.indices, dtype=np.int64)
        scores = np.array(self.scores, dtype=np.float32)
        if indices.ndim != 1 or indices.shape != scores.shape:
            raise SongsimError(
                f"Neighbours needs 1-D indices and scores of equal length; got shapes "
                f"{indices.shape} and {scores.shape}."
            )
        indices.setflags(write=False)
        scores.setflags(write=False)
        object.__setattr__(self, "indices", indices)
        object.__setattr__(self, "scores", scores)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @property
    def distances(self) -> np.ndarray:
        """np.ndarray [shape=(k,), dtype=float32]: ``1 - score`` (cosine) or ``-score``
        (euclidean, precomputed); ascending."""
        if self.metric == "cosine":
            return (np.float32(1.0) - self.scores).astype(np.float32)
        return (-self.scores).astype(np.float32)

    def as_pairs(self) -> list[tuple[int, float]]:
        """``[(row, score), ...]`` as plain Python numbers, best first."""
        return [(int(i), float(s)) for i, s in zip(self.indices, self.scores)]


@runtime_checkable
class NeighbourIndex(Protocol):
    """What every index offers (:class:`ExactIndex`, :class:`AnnoyIndex`, :class:`PrecomputedIndex`,
    :class:`HubnessReducedIndex`)."""

    metric: str

    @property
    def n_items(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def query(
        self, vector: np.ndarray, *, k: int = 5, exclude: np.ndarray | None = None
    ) -> Neighbours: ...

    def query_row(
        self, row: int, *, k: int = 5, exclude: np.ndarray | None = None
    ) -> Neighbours: ...


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------
def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise SongsimError(f"Unknown metric {metric!r}; use one of {', '.join(METRICS)}.")
    return metric


def _check_vectors(vectors: np.ndarray) -> np.ndarray:
    """Validate ``(n, d)`` finite vectors and return them as C-contiguous float32."""
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise SongsimError(f"Vectors must be a numeric (n_rows, dim) array: {exc}") from exc
    if arr.ndim != 2:
        raise SongsimError(
            f"Vectors must be a 2-D (n_rows, dim) array; got shape {arr.shape}."
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise SongsimError(f"Vectors must hold at least one row and one column; got {arr.shape}.")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(str(r) for r in rows[:10]) + (" ..." if rows.size > 10 else "")
        raise SongsimError(
            f"{rows.size} vector(s) contain NaN or infinity (rows {shown}); rebuild the space "
            f"or drop those tracks before indexing."
        )
    return np.ascontiguousarray(arr)


def _check_query(vector: np.ndarray, dim: int) -> np.ndarray:
    arr = np.asarray(vector, dtype=np.float32)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1 or arr.shape[0] != dim:
        raise SongsimError(
            f"Query vector must have shape ({dim},) to match the index; got {np.shape(vector)}. "
            f"Embed the query with the same space the index was built from."
        )
    if not np.isfinite(arr).all():
        raise SongsimError("Query vector contains NaN or infinity; re-embed the query song.")
    return arr


def _check_exclude(exclude: np.ndarray | None, n: int) -> np.ndarray:
    """Return a fresh boolean mask ``(n,)`` (never the caller's array)."""
    if exclude is None:
        return np.zeros(n, dtype=bool)
    mask = np.asarray(exclude)
    if mask.dtype != np.bool_:
        raise SongsimError(
            f"exclude must be a boolean mask of shape ({n},), got dtype {mask.dtype}; "
            f"build it with songsim.neighbours.exclusion_mask()."
        )
    if mask.shape != (n,):
        raise SongsimError(f"exclude must have shape ({n},) (one flag per row); got {mask.shape}.")
    return mask.copy()


def _check_k(k: int, available: int, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise SongsimError(f"k must be an integer >= 1; got {k!r}.")
    k = int(k)
    if k < 1:
        raise SongsimError(f"k must be >= 1; got {k}.")
    if k > available:
        raise SongsimError(
            f"k={k} neighbours requested but only {available} of {n} rows may be returned "
            f"(the others are excluded); lower k or relax the artist filter."
        )
    return k


def _check_row(row: int, n: int) -> int:
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)):
        raise SongsimError(f"row must be an integer row index; got {row!r}.")
    row = int(row)
    if not 0 <= row < n:
        raise SongsimError(f"row {row} is out of range for an index of {n} rows (0..{n - 1}).")
    return row


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    """L2-normalise rows; zero rows stay zero (norm treated as 1), so nothing becomes NaN."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32)


def _rank(indices: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort candidates by score descending, ties by lower index; keep the first ``k``."""
    order = np.lexsort((indices, -scores.astype(np.float64)))[:k]
    return indices[order].astype(np.int64), scores[order].astype(np.float32)


# --------------------------------------------------------------------------------------
# exact search
# --------------------------------------------------------------------------------------
def _validated_query(index, vector: np.ndarray, *, k: int, exclude: np.ndarray | None) -> Neighbours:
    """Validate a query against ``index`` (shape, mask, k) and run its ``_query``."""
    q = _check_query(vector, index.dim)
    mask = _check_exclude(exclude, index.n_items)
    k = _check_k(k, index.n_items - int(np.count_nonzero(mask)), index.n_items)
    return index._query(q, k, mask)


def _validated_row(index, row: int, *, k: int, exclude: np.ndarray | None) -> tuple[int, int, np.ndarray]:
    """Validate a query by catalogue row against ``index`` (row, mask, k), for ``query_row``.

    Returns
    -------
    row : int
        The validated 0-based row.
    k : int
        Checked against the rows that may be returned.
    mask : np.ndarray [shape=(n_items,), dtype=bool]
        A fresh copy of ``exclude`` with ``row`` itself set: the query is excluded by
        position, so an exact duplicate of it elsewhere is still returned.
    """
    row = _check_row(row, index.n_items)
    mask = _check_exclude(exclude, index.n_items)
    mask[row] = True
    k = _check_k(k, index.n_items - int(np.count_nonzero(mask)), index.n_items)
    return row, k, mask


class _InMemoryIndex:
    """The shared part of the exact indexes over one read-only in-memory float32 array
    ``_data`` [shape=(n_rows, width)]: :class:`ExactIndex` (its vectors, normalised or
    centred) and :class:`PrecomputedIndex` (its distances, width = n_rows)."""

    _data: np.ndarray

    @property
    def n_items(self) -> int:
        """int: number of rows."""
        return int(self._data.shape[0])

    @property
    def dim(self) -> int:
        """int: the length of a query: the vector dimension, or for :class:`PrecomputedIndex`
        one distance per row (= :attr:`n_items`)."""
        return int(self._data.shape[1])


class ExactIndex(_InMemoryIndex):
    """Brute-force top-k over all rows (numpy matrix-vector product).

    Parameters
    ----------
    vectors : np.ndarray [shape=(n_rows, dim), dtype=float32]
        One embedding per track, row order of ``tracks.csv``. Must be finite. Copied.
    metric : {"cosine", "euclidean"}
        See the module docstring for the score of each metric.

    Notes
    -----
    Cosine scores are dot products of L2-normalised rows (a zero row scores 0). Euclidean
    candidates are found with ``|x|^2 - 2 x.q + |q|^2`` on mean-centred rows and the best
    ``2k + 16`` are re-scored directly in float64, so near-ties rank as a direct
    computation would.
    The index is read-only after construction and safe to share between threads.
    """

    def __init__(self, vectors: np.ndarray, *, metric: str = "cosine") -> None:
        self.metric = _check_metric(metric)
        vecs = _check_vectors(vectors)
        if metric == "cosine":
            self._data = _normalise_rows(vecs)
            self._centre = None
            self._sq_norms = None
        else:
            # distances are translation-invariant: centring keeps |x|^2 - 2x.q + |q|^2 from
            # cancelling catastrophically when the data sit far from the origin
            self._centre = vecs.mean(axis=0, dtype=np.float64)
            self._data = (vecs - self._centre).astype(np.float32)
            self._sq_norms = np.einsum("ij,ij->i", self._data, self._data)
        self._data.setflags(write=False)

    def __repr__(self) -> str:
        return f"ExactIndex(n_items={self.n_items}, dim={self.dim}, metric={self.metric!r})"

    def scores(self, vector: np.ndarray) -> np.ndarray:
        """Similarity of ``vector`` to every row.

        Parameters
        ----------
        vector : np.ndarray [shape=(dim,)]

        Returns
        -------
        np.ndarray [shape=(n_rows,), dtype=float32]
            Cosine similarity, or minus the L2 distance.
        """
        q = _check_query(vector, self.dim)
        return self._scores(q)

    def _prepare(self, q: np.ndarray) -> np.ndarray:
        """A validated query in the stored frame: normalised (cosine) or centred (euclidean)."""
        if self.metric == "cosine":
            return _normalise_rows(q)
        return (q - self._centre).astype(np.float32)

    def _scores(self, q: np.ndarray) -> np.ndarray:
        q = self._prepare(q)
        if self.metric == "cosine":
            return self._data @ q
        sq = self._sq_norms - 2.0 * (self._data @ q) + float(q @ q)
        return -np.sqrt(np.maximum(sq, 0.0)).astype(np.float32)

    def query(
        self, vector: np.ndarray, *, k: int = 5, exclude: np.ndarray | None = None
    ) -> Neighbours:
        """The ``k`` rows most similar to ``vector``.

        Parameters
        ----------
        vector : np.ndarray [shape=(dim,)]
            A query embedding in the same space (a ``(1, dim)`` array is accepted too).
        k : int >= 1
            Number of neighbours; must not exceed the number of rows not excluded.
        exclude : np.ndarray [shape=(n_rows,), dtype=bool] or None
            Rows never returned (see :func:`exclusion_mask`).

        Returns
        -------
        Neighbours
            ``k`` indices and scores, scores descending.

        Raises
        ------
        SongsimError
            Wrong vector shape, NaN in the query, bad mask, ``k < 1`` or ``k`` too large.
        """
        return _validated_query(self, vector, k=k, exclude=exclude)

    def query_row(
        self, row: int, *, k: int = 5, exclude: np.ndarray | None = None
    ) -> Neighbours:
        """The ``k`` rows most similar to row ``row``, never ``row`` itself.

        The row is excluded by position, so an exact duplicate of it elsewhere in the
        catalogue *is* returned (with the top score) while the row itself is not.

        Parameters
        ----------
        row : int
            0-based row of the query track.
        k : int >= 1
        exclude : np.ndarray [shape=(n_rows,), dtype=bool] or None
            Further rows never returned (e.g. the query's artist).

        Returns
        -------
        Neighbours
        """
        row, k, mask = _validated_row(self, row, k=k, exclude=exclude)
        if self.metric == "cosine":
            q = self._data[row]
        else:
            q = (self._data[row] + self._centre).astype(np.float32)
        return self._query(q, k, mask)

    def _query(self, q: np.ndarray, k: int, mask: np.ndarray) -> Neighbours:
        scores = self._scores(q)
        candidates = np.flatnonzero(~mask)
        cand_scores = scores[candidates]
        # pre-select more than k so that ties at the cut and euclidean re-scoring are exact
        take = min(candidates.size, 2 * k + 16)
        if take < candidates.size:
            part = np.argpartition(-cand_scores, take - 1)[:take]
            candidates, cand_scores = candidates[part], cand_scores[part]
        if self.metric == "euclidean":
            diff = self._data[candidates].astype(np.float64) - (q - self._centre)
            cand_scores = -np.sqrt(np.einsum("ij,ij->i", diff, diff))
        indices, top = _rank(candidates, cand_scores, k)
        return Neighbours(indices, top, self.metric)


def _check_distances(distances: np.ndarray) -> np.ndarray:
    """Validate an ``(n, n)`` finite distance matrix; returns a read-only float32 view (a
    copy only when the input is not already C-contiguous float32)."""
    arr = _check_vectors(distances)
    if arr.shape[0] != arr.shape[1]:
        raise SongsimError(
            f"A distance space needs a square (n_rows, n_rows) matrix, one row of distances per "
            f"track to every track; got shape {arr.shape}. Import the matrix again."
        )
    view = arr.view()
    view.setflags(write=False)
    return view


class PrecomputedIndex(_InMemoryIndex):
    """Exact top-k over a space that gives distances, not vectors (metric :data:`PRECOMPUTED`).

    Parameters
    ----------
    distances : np.ndarray [shape=(n_rows, n_rows), dtype=float32]
        ``distances[i, j]``: how far track ``j`` is from query track ``i``, in the system's
        own units (smaller = closer; row order of ``tracks.csv``). Need not be symmetric (row
        = query) nor have a zero diagonal (a track is never its own neighbour by position).
        Must be finite. Not copied when already C-contiguous float32 (a 10 000-track matrix
        is 400 MB): the index keeps a read-only view.

    Notes
    -----
    A query "vector" is a row of distances to every catalogue track: for a catalogue track
    its row of the matrix (:meth:`query_row`), for an upload what the space's ``transform``
    gives (its distances to every catalogue track). Scores are ``-distance`` and ties are
    broken by the lower row, as in :class:`ExactIndex`. A query costs one pass over its row.
    """

    metric = PRECOMPUTED

    def __init__(self, distances: np.ndarray) -> None:
        self._data = _check_distances(distances)

    def __repr__(self) -> str:
        return f"PrecomputedIndex(n_items={self.n_items})"

    def row(self, row: int) -> np.ndarray:
        """np.ndarray [shape=(n_rows,), float32]: the distances of track ``row`` to every track (read-only)."""
        return self._data[_check_row(row, self.n_items)]

    def _scores(self, q: np.ndarray) -> np.ndarray:
        return -np.asarray(q, dtype=np.float32)

    def query(self, vector: np.ndarray, *, k: int = 5, exclude: np.ndarray | None = None) -> Neighbours:
        """The ``k`` rows closest to a query given as its distances to every row.

        Parameters
        ----------
        vector : np.ndarray [shape=(n_rows,)]
            The query's distance to every row (a ``(1, n_rows)`` array is accepted too).
        k : int >= 1
        exclude : np.ndarray [shape=(n_rows,), dtype=bool] or None
            Rows never returned (see :func:`exclusion_mask`).

        Returns
        -------
        Neighbours
            ``k`` indices and scores (``-distance``), scores descending.
        """
        return _validated_query(self, vector, k=k, exclude=exclude)

    def query_row(self, row: int, *, k: int = 5, exclude: np.ndarray | None = None) -> Neighbours:
        """The ``k`` rows closest to track ``row`` by its row of the matrix, never ``row`` itself."""
        row, k, mask = _validated_row(self, row, k=k, exclude=exclude)
        return self._query(self._data[row], k, mask)

    def _query(self, q: np.ndarray, k: int, mask: np.ndarray) -> Neighbours:
        candidates = np.flatnonzero(~mask)
        cand_scores = self._scores(q)[candidates]
        if k < candidates.size:  # every candidate scoring at least the k-th best: ties at the cut rank by row
            kth = np.partition(cand_scores, candidates.size - k)[candidates.size - k]
            keep = cand_scores >= kth
            candidates, cand_scores = candidates[keep], cand_scores[keep]
        indices, top = _rank(candidates, cand_scores, k)
        return Neighbours(indices, top, self.metric)


# --------------------------------------------------------------------------------------
# hubness reduction
# --------------------------------------------------------------------------------------
#: ``search(..., hubness=...)``: none, mutual proximity (empirical or Gaussian), local scaling
HUBNESS_METHODS = ("none", "mp", "mp-gauss", "ls")
#: the neighbour whose distance is a song's local scale in local scaling (Schnitzer et al. 2012)
LOCAL_SCALING_K = 10
#: empirical mutual proximity keeps every song's sorted distances: n² floats, so it is refused
#: above this many rows (Gaussian mutual proximity keeps two numbers per song)
EMPIRICAL_MP_MAX_ROWS = 10_000


def _distances(index: "ExactIndex | PrecomputedIndex", q: np.ndarray) -> np.ndarray:
    """(n_rows,) float64 distances of a validated query (in the space's frame): ``1 - cosine``,
    L2, or the given row of a precomputed space. The 32 smallest L2 distances are computed
    again directly in float64: ``|x|² − 2x·q + |q|²`` in float32 leaves a catalogue query
    ~1e-3 from itself instead of 0, so that it would count among its own "other songs"."""
    if index.metric == "euclidean":
        d = -index._scores(q).astype(np.float64)
        near = np.argpartition(d, min(31, d.size - 1))[:32]
        diff = index._data[near].astype(np.float64) - index._prepare(q).astype(np.float64)
        d[near] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        return d
    scores = index._scores(q).astype(np.float64)
    return np.maximum(1.0 - scores, 0.0) if index.metric == "cosine" else -scores


def _others(distances: np.ndarray) -> np.ndarray:
    """A song's distances to the others: without the single smallest one when it is 0 (the
    song itself, as a catalogue query scores itself)."""
    smallest = int(np.argmin(distances))
    return np.delete(distances, smallest) if distances[smallest] <= 1e-7 else distances


class HubnessReducedIndex:
    """Exact search whose distances are rescaled to reduce hubness (Schnitzer, Flexer, Schedl
    & Widmer, "Local and global scaling reduce hubs in space", JMLR 13, 2012).

    For distances ``d`` (``1 − cosine``, or L2) between a query x and a song y:

    ``"ls"``, local scaling
        ``1 − exp(−d² / (σ_x σ_y))``, σ the distance to a song's ``LOCAL_SCALING_K``-th
        nearest other song.
    ``"mp"``, empirical mutual proximity
        ``1 − P(D_x > d) · P(D_y > d)``, each probability the share of that song's distances
        to the other songs that exceed ``d``.
    ``"mp-gauss"``, Gaussian mutual proximity
        the same with each song's distances modelled as a normal distribution (mean, std).

    Scores are ``−`` the rescaled distance (in [−1, 0]; higher is closer), so a neighbour
    list reads like any other. Building costs one pass over all n² distances (in blocks).

    With ``metric="precomputed"`` (:data:`PRECOMPUTED`) ``vectors`` is the space's
    ``(n_rows, n_rows)`` distance matrix (row = query) and ``d`` its entries, used as given.
    ``covered`` ((n_rows,) bool, optional): the rows that have a vector (a partial import);
    the others are left out of every song's distance statistics (their filler values never
    shift a σ, mean or rank) and must never be returned (:func:`songsim.query.search`
    excludes them).
    """

    def __init__(
        self, vectors: np.ndarray, *, metric: str = "cosine", method: str = "mp-gauss", covered: np.ndarray | None = None
    ) -> None:
        if method not in HUBNESS_METHODS or method == "none":
            raise SongsimError(f"Unknown hubness reduction {method!r}: use one of {', '.join(HUBNESS_METHODS[1:])}.")
        self._vectors = _check_vectors(vectors)
        self._exact = PrecomputedIndex(self._vectors) if metric == PRECOMPUTED else ExactIndex(self._vectors, metric=metric)
        self.metric = metric
        self.method = method
        n = self._exact.n_items
        self._covered = np.ones(n, dtype=bool) if covered is None else np.asarray(covered, dtype=bool)
        if self._covered.shape != (n,):
            raise SongsimError(f"covered must hold one flag per row ({n},); got shape {self._covered.shape}.")
        m = int(self._covered.sum())
        if m < 2:
            raise SongsimError(f"Hubness reduction needs at least 2 songs with a vector; this space has {m}.")
        if method == "mp" and n > EMPIRICAL_MP_MAX_ROWS:
            raise SongsimError(
                f"Empirical mutual proximity keeps n² distances: refused for {n} songs (at most "
                f"{EMPIRICAL_MP_MAX_ROWS}); use the Gaussian variant (mp-gauss)."
            )
        k = min(LOCAL_SCALING_K, m - 1)
        self._scale = np.ones(n)
        self._mean = np.zeros(n)
        self._std = np.ones(n)
        self._sorted = np.zeros((n, m - 1)) if method == "mp" else None
        for row in np.flatnonzero(self._covered).tolist():
            others = self._covered.copy()
            others[row] = False
            self._describe(row, _distances(self._exact, self._vectors[row])[others], k)

    def _describe(self, row: int, others: np.ndarray, k: int) -> None:
        self._scale[row] = max(np.partition(others, k - 1)[k - 1], 1e-12)
        self._mean[row], self._std[row] = others.mean(), max(others.std(), 1e-12)
        if self._sorted is not None:
            self._sorted[row] = np.sort(others)

    @property
    def n_items(self) -> int:
        return self._exact.n_items

    @property
    def dim(self) -> int:
        return self._exact.dim

    def reduced_distances(self, vector: np.ndarray) -> np.ndarray:
        """(n_rows,) float64: the rescaled distance of ``vector`` to every row (class docstring)."""
        from scipy.stats import norm

        d = _distances(self._exact, _check_query(vector, self.dim))
        others = _others(d[self._covered])
        if self.method == "ls":
            k = min(LOCAL_SCALING_K, others.size)
            scale = max(np.partition(others, k - 1)[k - 1], 1e-12)
            return 1.0 - np.exp(-(d**2) / (scale * self._scale))
        if self.method == "mp-gauss":
            beyond_query = norm.sf(d, loc=others.mean(), scale=max(others.std(), 1e-12))
            beyond_song = norm.sf(d, loc=self._mean, scale=self._std)
        else:
            sorted_query = np.sort(others)
            beyond_query = 1.0 - np.searchsorted(sorted_query, d, side="right") / others.size
            beyond_song = np.array([1.0 - np.searchsorted(row, x, side="right") / row.size for row, x in zip(self._sorted, d)])
        return 1.0 - beyond_query * beyond_song

    def query(self, vector: np.ndarray, *, k: int = 5, exclude: np.ndarray | None = None) -> Neighbours:
        """The ``k`` rows closest to ``vector`` by the rescaled distance."""
        mask = _check_exclude(exclude, self.n_items)
        k = _check_k(k, self.n_items - int(np.count_nonzero(mask)), self.n_items)
        candidates = np.flatnonzero(~mask)
        scores = -self.reduced_distances(vector)[candidates]
        indices, top = _rank(candidates, scores, k)
        return Neighbours(indices, top, self.metric)

    def query_row(self, row: int, *, k: int = 5, exclude: np.ndarray | None = None) -> Neighbours:
        """The ``k`` rows closest to row ``row``, never ``row`` itself."""
        mask = _check_exclude(exclude, self.n_items).copy()
        mask[_check_row(row, self.n_items)] = True
        return self.query(self._vectors[row], k=k, exclude=mask)


# --------------------------------------------------------------------------------------
# annoy
# --------------------------------------------------------------------------------------
def vectors_fingerprint(vectors: np.ndarray) -> str:
    """A short content hash of ``vectors`` (shape, dtype float32 and bytes).

    Parameters
    ----------
    vectors : np.ndarray [shape=(n_rows, dim)]

    Returns
    -------
    str
        32 hex digits (blake2b); ~0.3 s per GB.
    """
    arr = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(arr.shape).encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + _META_SUFFIX)


class AnnoyIndex:
    """Approximate top-k with annoy, same interface as :class:`ExactIndex`.

    Parameters
    ----------
    vectors : np.ndarray [shape=(n_rows, dim), dtype=float32]
        One embedding per track. Must be finite.
    metric : {"cosine", "euclidean"}
        Cosine uses annoy's ``"angular"`` metric; its distance ``sqrt(2 - 2 cos)`` is
        converted back to cosine similarity, so scores match :class:`ExactIndex` (to
        float32 rounding).
    n_trees : int
        Random-projection trees built (:data:`DEFAULT_N_TREES` = 50). More trees: better
        recall at the same ``search_k``, larger file, longer build (~8 s CPU per 100 k 64-d
        rows with one job, ~90 s and a 0.86 GB file at 1 M).
    search_k : int
        Tree nodes inspected per query (:data:`DEFAULT_SEARCH_K` = 5 000); the query time
        grows about linearly with it. Measured at 1 M rows of
        :func:`songsim.benchmarks.clustered_embeddings` (64-d, 50 trees, one busy core):
        3 000 → recall@5 0.988 at 0.7 ms, 5 000 → 0.994 at 1.0 ms, 10 000 → 0.998 at
        1.8 ms. On a noise-like space (isotropic Gaussian clusters filling all 64 dimensions,
        100 k rows) 5 000 gives only 0.84, 10 000 0.93 and 20 000 0.98 (7 ms): raise it for
        such spaces. Annoy's own default (``n_trees * k``, 250 for top-5) is far too low.
        When a query must over-fetch (many rows excluded) ``max(search_k, n_trees *
        n_fetched)`` is used.
    seed : int
        Seed of annoy's tree building (deterministic with ``n_jobs=1``).
    n_jobs : int
        Threads for building; ``-1`` = all cores (faster, not reproducible).

    Notes
    -----
    Exclusion: the index over-fetches ``k + (number of excluded rows)`` candidates (at most
    twice, doubling), and if still fewer than ``k`` admissible rows come back it answers by
    exact search, so it always returns exactly ``k`` rows. It searches exactly from the
    start when more than half the rows are excluded or when ``n_trees * (k + n_excluded)
    > n_items`` (annoy would then visit more nodes than a brute-force scan reads rows);
    a typical artist filter (tens of rows) stays on annoy. Exact fallback needs the
    vectors: they are kept when given (constructor or :meth:`load` ``vectors=``), else
    read back from the annoy file on first need.

    A saved index (:meth:`save`) is memory-mapped by :meth:`load`: every process that loads
    the same file shares one copy in the page cache. Queries only read, so one loaded index
    can serve many threads.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        *,
        metric: str = "cosine",
        n_trees: int = DEFAULT_N_TREES,
        search_k: int = DEFAULT_SEARCH_K,
        seed: int = 0,
        n_jobs: int = 1,
    ) -> None:
        import annoy

        self.metric = _check_metric(metric)
        vecs = _check_vectors(vectors)
        if int(n_trees) < 1:
            raise SongsimError(f"n_trees must be >= 1; got {n_trees}.")
        self.n_trees = int(n_trees)
        self.search_k = self._check_search_k(search_k)
        self.seed = int(seed)
        self._n, self._dim = vecs.shape
        self._vectors: np.ndarray | None = vecs
        self._fingerprint: str | None = None
        self._path: Path | None = None
        self._exact: ExactIndex | None = None
        index = annoy.AnnoyIndex(self._dim, _ANNOY_METRIC[metric])
        index.set_seed(self.seed)
        for i, v in enumerate(vecs):
            index.add_item(i, v)
        index.build(self.n_trees, n_jobs=int(n_jobs))
        self._index = index

    @staticmethod
    def _check_search_k(search_k: int) -> int:
        if isinstance(search_k, bool) or not isinstance(search_k, (int, np.integer)):
            raise SongsimError(f"search_k must be a positive integer; got {search_k!r}.")
        if int(search_k) < 1:
            raise SongsimError(
                f"search_k must be >= 1 (annoy's -1 default gives poor recall); got {search_k}."
            )
        return int(search_k)

    # -- properties ---------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        """int: number of rows."""
        return int(self._n)

    @property
    def dim(self) -> int:
        """int: vector dimension."""
        return int(self._dim)

    @property
    def path(self) -> Path | None:
        """Path or None: the file this index is memory-mapped from."""
        return self._path

    def __repr__(self) -> str:
        return (
            f"AnnoyIndex(n_items={self.n_items}, dim={self.dim}, metric={self.metric!r}, "
            f"n_trees={self.n_trees}, search_k={self.search_k}, path={self._path})"
        )

    # -- persistence --------------------------------------------------------------------
    def save(self, path: Path | str) -> Path:
        """Write the index to ``path`` atomically and memory-map it from there.

        Also writes ``<path>.meta.json`` (dim, metric, n_items, n_trees, seed and a
        fingerprint of the vectors) that :meth:`load` checks.

        Parameters
        ----------
        path : Path or str
            Target file, e.g. ``<catalogue>/.songsim/<space>.annoy``; parents are created.

        Returns
        -------
        Path
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            # annoy.save() writes the file and re-opens it memory-mapped; the mapping
            # follows the inode through the rename.
            if not self._index.save(tmp):
                raise SongsimError(f"annoy could not write {tmp}; check free disk space.")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        meta = {
            "format": _META_FORMAT,
            "dim": self.dim,
            "metric": self.metric,
            "n_items": self.n_items,
            "n_trees": self.n_trees,
            "seed": self.seed,
            "fingerprint": self.fingerprint(),
        }
        write_json(_meta_path(path), meta)
        self._path = path
        return path

    def fingerprint(self) -> str | None:
        """str or None: :func:`vectors_fingerprint` of the indexed vectors, if known."""
        if self._fingerprint is None and self._vectors is not None:
            self._fingerprint = vectors_fingerprint(self._vectors)
        return self._fingerprint

    @classmethod
    def load(
        cls,
        path: Path | str,
        dim: int,
        metric: str = "cosine",
        *,
        search_k: int = DEFAULT_SEARCH_K,
        vectors: np.ndarray | None = None,
    ) -> "AnnoyIndex":
        """Memory-map an index written by :meth:`save`.

        Parameters
        ----------
        path : Path or str
            The ``.annoy`` file.
        dim : int
            Vector dimension the index was built with (checked against the sidecar file).
        metric : {"cosine", "euclidean"}
            Metric it was built with (checked against the sidecar file).
        search_k : int
            Nodes inspected per query (see the class docstring).
        vectors : np.ndarray [shape=(n_rows, dim)] or None
            The indexed vectors, if the caller holds them: used for exact fallback
            instead of reading them back from the file. Their shape is checked.

        Returns
        -------
        AnnoyIndex

        Raises
        ------
        NotBuiltError
            ``path`` does not exist.
        SongsimError
            The sidecar disagrees with ``dim``/``metric``, or the file is unreadable.
        """
        import annoy

        path = Path(path)
        _check_metric(metric)
        if not path.is_file():
            raise NotBuiltError(
                f"No annoy index at {path}; build it with make_index(..., path=...) first."
            )
        meta = _read_meta(path)
        if meta is not None:
            for key, want in (("dim", int(dim)), ("metric", metric)):
                if meta.get(key) != want:
                    raise SongsimError(
                        f"Annoy index {path} was built with {key}={meta.get(key)!r}, not "
                        f"{want!r}; delete it and rebuild it from the current space."
                    )
        index = annoy.AnnoyIndex(int(dim), _ANNOY_METRIC[metric])
        try:
            index.load(str(path))  # memory-mapped (prefault=False)
        except OSError as exc:
            raise SongsimError(
                f"Cannot read annoy index {path} ({exc}); delete it and rebuild."
            ) from exc
        self = cls.__new__(cls)
        self.metric = metric
        self.n_trees = int(meta["n_trees"]) if meta else int(index.get_n_trees())
        self.search_k = cls._check_search_k(search_k)
        self.seed = int(meta["seed"]) if meta else 0
        self._n = int(index.get_n_items())
        self._dim = int(dim)
        self._index = index
        self._path = path
        self._exact = None
        self._fingerprint = meta.get("fingerprint") if meta else None
        self._vectors = None
        if vectors is not None:
            vecs = _check_vectors(vectors)
            if vecs.shape != (self._n, self._dim):
                raise SongsimError(
                    f"vectors of shape {vecs.shape} do not match annoy index {path} "
                    f"({self._n} rows x {self._dim} dims); rebuild the index."
                )
            self._vectors = vecs
        return self

    # -- querying -----------------------------------------------------------------------
    def query(
        self, vector: np.ndarray, *, k: int = 5, exclude: np.ndarray | None = None
    ) -> Neighbours:
        """The ``k`` rows most similar to ``vector`` (approximately); see
        :meth:`ExactIndex.query` for parameters, returns and errors."""
        return _validated_query(self, vector, k=k, exclude=exclude)

    def query_row(
        self, row: int, *, k: int = 5, exclude: np.ndarray | None = None
    ) -> Neighbours:
        """The ``k`` rows most similar to row ``row``, never ``row`` itself (excluded by
        position, so duplicates of it are still returned); see :meth:`ExactIndex.query_row`."""
        row, k, mask = _validated_row(self, row, k=k, exclude=exclude)
        if self._vectors is not None:
            q = self._vectors[row]
        else:
            q = np.asarray(self._index.get_item_vector(row), dtype=np.float32)
        return self._query(q, k, mask)

    def _distance_to_score(self, dist: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            # annoy angular distance = sqrt(2 - 2 cos) = |u/|u| - v/|v||
            return (1.0 - 0.5 * dist * dist).astype(np.float32)
        return (-dist).astype(np.float32)

    def _query(self, q: np.ndarray, k: int, mask: np.ndarray) -> Neighbours:
        n_excluded = int(np.count_nonzero(mask))
        fetch = min(self.n_items, k + n_excluded)
        # annoy pays ~n_trees node visits per candidate fetched: past n_items visits (or with
        # most rows excluded) a brute-force scan is as cheap and exact
        if n_excluded * 2 <= self.n_items and self.n_trees * fetch <= self.n_items:
            for _attempt in range(2):
                search_k = max(self.search_k, self.n_trees * fetch)
                ids, dists = self._index.get_nns_by_vector(
                    q, fetch, search_k=search_k, include_distances=True
                )
                ids = np.asarray(ids, dtype=np.int64)
                dists = np.asarray(dists, dtype=np.float64)
                keep = ~mask[ids]
                if int(keep.sum()) >= k:
                    indices, scores = _rank(ids[keep], self._distance_to_score(dists[keep]), k)
                    return Neighbours(indices, scores, self.metric)
                if fetch >= self.n_items:
                    break
                fetch = min(self.n_items, 2 * fetch)
        # too many exclusions for the trees to satisfy: answer exactly
        return self._exact_index()._query(q, k, mask)

    def _exact_index(self) -> ExactIndex:
        if self._exact is None:
            vecs = self._vectors
            if vecs is None:
                vecs = np.array(
                    [self._index.get_item_vector(i) for i in range(self.n_items)],
                    dtype=np.float32,
                ).reshape(self.n_items, self.dim)
            self._exact = ExactIndex(vecs, metric=self.metric)
        return self._exact


def _read_meta(path: Path) -> dict | None:
    meta_path = _meta_path(path)
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SongsimError(
            f"Cannot read {meta_path} ({exc}); delete {path} and its .meta.json and rebuild."
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != _META_FORMAT:
        raise SongsimError(f"{meta_path} is not a songsim annoy sidecar; delete it and rebuild.")
    return meta


# --------------------------------------------------------------------------------------
# factory
# --------------------------------------------------------------------------------------
def make_index(
    vectors: np.ndarray,
    *,
    metric: str = "cosine",
    annoy_above: int = DEFAULT_ANNOY_ABOVE,
    path: Path | str | None = None,
    n_trees: int = DEFAULT_N_TREES,
    search_k: int = DEFAULT_SEARCH_K,
    seed: int = 0,
) -> ExactIndex | AnnoyIndex | PrecomputedIndex:
    """The right index for ``vectors``: exact up to ``annoy_above`` rows, annoy above; for
    ``metric="precomputed"`` always a :class:`PrecomputedIndex` (a query is one row of the
    matrix, already every distance: nothing to approximate).

    Parameters
    ----------
    vectors : np.ndarray [shape=(n_rows, dim), dtype=float32]
        One embedding per track, row order of ``tracks.csv``; for ``"precomputed"`` the
        ``(n_rows, n_rows)`` distance matrix.
    metric : {"cosine", "euclidean", "precomputed"}
    annoy_above : int
        With ``n_rows <= annoy_above`` an :class:`ExactIndex` is returned; above it an
        :class:`AnnoyIndex`. Default 50 000 (exact top-5 at 50 k rows is ~1-4 ms).
    path : Path or str or None
        Annoy only: the index file. If it exists and its sidecar matches (dim, metric, row
        count and a fingerprint of ``vectors``) it is memory-mapped; otherwise the index is
        built and saved there atomically. ``None``: build in memory, save nothing.
    n_trees, search_k, seed
        Annoy settings, see :class:`AnnoyIndex`.

    Returns
    -------
    ExactIndex or AnnoyIndex or PrecomputedIndex
    """
    if metric == PRECOMPUTED:
        return PrecomputedIndex(vectors)
    vecs = _check_vectors(vectors)
    _check_metric(metric)
    n, dim = vecs.shape
    if n <= int(annoy_above):
        return ExactIndex(vecs, metric=metric)
    if path is not None:
        path = Path(path)
        if path.is_file():
            try:
                meta = _read_meta(path)
            except SongsimError:
                meta = None
            if (
                meta is not None
                and meta.get("dim") == dim
                and meta.get("metric") == metric
                and meta.get("n_items") == n
                and meta.get("n_trees") == int(n_trees)
                and meta.get("fingerprint") == vectors_fingerprint(vecs)
            ):
                return AnnoyIndex.load(path, dim, metric, search_k=search_k, vectors=vecs)
    index = AnnoyIndex(vecs, metric=metric, n_trees=n_trees, search_k=search_k, seed=seed)
    if path is not None:
        index.save(path)
    return index


# --------------------------------------------------------------------------------------
# exclusion
# --------------------------------------------------------------------------------------
def _artist_key(value: object) -> str | None:
    """Normalised artist key, or None for a missing artist (None, NaN, NA, "", blanks)."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
    elif type(value).__name__ in ("NAType", "NaTType"):  # pandas.NA / NaT without pandas
        return None
    key = str(value).strip().casefold()
    return key or None


class ArtistKeys(np.ndarray):
    """Normalised artist keys (an object ndarray) as returned by :func:`artist_keys`.

    :func:`exclusion_mask` uses them as they are, so a catalogue can normalise its artist
    column once (~2 us per row) instead of on every query.
    """


def artist_keys(artists: Sequence[object] | np.ndarray) -> ArtistKeys:
    """Normalise artist names for comparison.

    Parameters
    ----------
    artists : sequence [shape=(n_rows,)]
        Artist name (or id) per row; a list, numpy array or pandas Series.

    Returns
    -------
    ArtistKeys [shape=(n_rows,), dtype=object]
        ``str(name).strip().casefold()`` per row, or ``None`` where the artist is missing
        (None, NaN, pandas NA, empty or blank string). ``None`` never matches anything.
        Pass it to :func:`exclusion_mask` as ``artists`` to skip re-normalising.
    """
    if isinstance(artists, ArtistKeys):
        return artists
    values = artists.tolist() if hasattr(artists, "tolist") else list(artists)
    out = np.empty(len(values), dtype=object)
    out[:] = [_artist_key(v) for v in values]
    return out.view(ArtistKeys)


def exclusion_mask(
    n_rows: int,
    *,
    query_row: int | None = None,
    artists: Sequence[object] | np.ndarray | None = None,
    query_artist: object | None = None,
) -> np.ndarray:
    """Rows that a query must not return (the MIREX artist filter).

    Parameters
    ----------
    n_rows : int
        Rows in the space.
    query_row : int or None
        The query's own row (a catalogue query); ``None`` for an uploaded song.
    artists : sequence [shape=(n_rows,)] or ArtistKeys or None
        Artist per row; required when ``query_artist`` is given. For large catalogues
        pass ``artist_keys(artists)`` computed once.
    query_artist : object or None
        The query's artist. Every row whose artist equals it (after ``strip()`` and
        ``casefold()``) is excluded. A missing query artist (None/NaN/"") excludes nothing,
        and rows with a missing artist are never excluded by the artist filter: "unknown"
        is not an artist.

    Returns
    -------
    np.ndarray [shape=(n_rows,), dtype=bool]
        ``True`` = never return this row.

    Examples
    --------
    >>> mask = exclusion_mask(4, query_row=0, artists=["A", "B", "a ", None], query_artist="A")
    >>> mask.tolist()
    [True, False, True, False]
    """
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 0:
        raise SongsimError(f"n_rows must be a non-negative integer; got {n_rows!r}.")
    n_rows = int(n_rows)
    mask = np.zeros(n_rows, dtype=bool)
    if query_row is not None:
        mask[_check_row(query_row, n_rows)] = True
    if query_artist is not None:
        if artists is None:
            raise SongsimError("query_artist was given without artists (one artist per row).")
        keys = artist_keys(artists)
        if keys.shape[0] != n_rows:
            raise SongsimError(
                f"artists has {keys.shape[0]} entries but the space has {n_rows} rows; pass "
                f"the artist column of the same tracks.csv the space was built from."
            )
        qkey = _artist_key(query_artist)
        if qkey is not None:
            mask |= np.asarray(keys == qkey, dtype=bool)
    return mask
