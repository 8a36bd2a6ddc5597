"""2-D maps of an embedding space: PCA, UMAP, t-SNE, and any method registered later.

A map is fitted once per (space, method, seed) and then *places new points* (an uploaded
song) through the fitted reducer, never refitting, so an upload lands on the map the user is
already looking at::

    fitted = fit_map(vectors, method="umap", seed=0)   # (n_tracks, dim) -> FittedMap
    fitted.coords_                                      # (n_tracks, 2) float32
    fitted.transform(new_vectors)                       # (m, dim) -> (m, 2) float32

Geometry
--------
A map shows the geometry the neighbour index uses. With ``metric="cosine"`` (the default,
like :mod:`songsim.neighbours`) every row is L2-normalised before fitting and before
``transform``, and the reducers then work in Euclidean distance on the unit sphere, which
ranks neighbours exactly as cosine similarity does. With ``metric="euclidean"`` vectors are
used as they are. No other scaling is applied: the space's own geometry is what is shown.

Quality
-------
``trustworthiness_`` is :func:`sklearn.manifold.trustworthiness` with ``n_neighbors=5``
(fewer for tiny maps), computed between the *space* under the space's metric (cosine by
default) and the map under Euclidean distance: 1.0 means every map neighbour of a point
is also one of its neighbours in the space. It is computed on at most 2 000 rows (a seeded
sample) because the computation needs two ``n x n`` distance matrices.

Methods
-------
``"pca"``  scikit-learn ``PCA(n_components=2, svd_solver="full")``: linear, exact transform.
``"umap"`` umap-learn with ``random_state=seed`` (deterministic; this also makes UMAP run
           single-threaded), ``n_neighbors=min(15, n - 1)``. The first UMAP fit in a process
           costs ~15 s and the first ``transform`` several seconds (numba compiling): call
           :func:`warm_up` where the fitted map is cached.
``"tsne"`` openTSNE (Barnes-Hut below 10 000 rows, FFT above), ``perplexity=min(30,
           (n - 1) / 3)``. New points are placed at the median of their ``k`` nearest
           training points' positions and then optimised for ``transform_n_iter=50``
           iterations against the fixed map (openTSNE ``prepare_partial`` + ``optimize``).

Further methods (e.g. a 2-D autoencoder) are added from other modules with
:func:`register_map_method`, without editing this file.
"""

from __future__ import annotations

import pickle
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from songsim.errors import NotBuiltError, SongsimError
from songsim.files import atomic_write

__all__ = [
    "MIN_ROWS",
    "TRUST_N_NEIGHBORS",
    "TRUST_MAX_ROWS",
    "Reducer",
    "MapMethod",
    "FittedMap",
    "fit_map",
    "register_map_method",
    "map_methods",
    "get_map_method",
    "trustworthiness",
    "save_map",
    "load_map",
    "warm_up",
]

MIN_ROWS = 5  # fewer songs than this make no map worth looking at
TRUST_N_NEIGHBORS = 5  # neighbourhood size of trustworthiness_
TRUST_MAX_ROWS = 2_000  # trustworthiness_ is computed on at most this many rows
METRICS = ("cosine", "euclidean")
_FORMAT = "songsim.map/1"


# --------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------
@runtime_checkable
class Reducer(Protocol):
    """A fitted 2-D reducer: places new points without refitting.

    ``transform(x)`` takes ``(m, dim) float32`` (already preprocessed as described in the
    module docstring) and returns ``(m, 2)``. It must not modify the reducer, and the
    reducer must pickle (:func:`save_map`).
    """

    def transform(self, x: np.ndarray) -> np.ndarray: ...


FitFn = Callable[..., tuple[Reducer, np.ndarray]]
"""``fit_fn(x, *, seed, **params) -> (reducer, coords)``: ``x`` is ``(n, dim) float32``,
``coords`` the ``(n, 2)`` positions of the training rows."""


@dataclass(frozen=True)
class MapMethod:
    """A registered map method.

    Attributes
    ----------
    name : str
        Key used in :func:`fit_map` (``method=``) and in file names.
    fit : callable
        ``fit(x, *, seed, **params) -> (reducer, coords)``. ``x`` is ``(n, dim) float32``
        with ``n >= MIN_ROWS``, already L2-normalised for cosine spaces; ``coords`` is
        ``(n, 2)``; ``reducer`` satisfies :class:`Reducer`. Must be deterministic for a
        given ``seed`` and must handle small ``n`` (clip its neighbourhood sizes).
    label : str
        Human-readable name for the UI.
    description : str
        One sentence for the UI.
    """

    name: str
    fit: FitFn
    label: str
    description: str = ""


_REGISTRY: dict[str, MapMethod] = {}


def register_map_method(
    name: str,
    fit_fn: FitFn,
    *,
    label: str | None = None,
    description: str = "",
    replace: bool = False,
) -> MapMethod:
    """Make a map method available to :func:`fit_map`.

    Call it at import time of the module that defines the method (e.g.
    ``register_map_method("ae2d", fit_ae2d, label="2-D autoencoder")`` at the bottom of
    that module); the reducer's class must be importable for :func:`load_map` to unpickle it.

    Parameters
    ----------
    name : str
        Method key, lower-case letters, digits and ``_`` (e.g. ``"ae2d"``).
    fit_fn : callable
        See :class:`MapMethod`.
    label : str or None
        UI label; defaults to ``name``.
    description : str
    replace : bool
        Allow replacing an existing method (otherwise a clash is an error).

    Returns
    -------
    MapMethod
    """
    if not isinstance(name, str) or not name or not all(
        c.islower() or c.isdigit() or c == "_" for c in name
    ):
        raise SongsimError(
            f"Map method name {name!r} must be lower-case letters, digits or '_'."
        )
    if not callable(fit_fn):
        raise SongsimError(f"fit_fn for map method {name!r} is not callable.")
    if name in _REGISTRY and not replace and _REGISTRY[name].fit is not fit_fn:
        raise SongsimError(
            f"Map method {name!r} is already registered; pass replace=True to override it."
        )
    method = MapMethod(name=name, fit=fit_fn, label=label or name, description=description)
    _REGISTRY[name] = method
    return method


def map_methods() -> Mapping[str, MapMethod]:
    """Read-only view of the registered methods, in registration order.

    Returns
    -------
    Mapping[str, MapMethod]
    """
    return MappingProxyType(_REGISTRY)


def get_map_method(name: str) -> MapMethod:
    """The registered method ``name``; a clear error lists the known ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise SongsimError(
            f"Unknown map method {name!r}; use one of {', '.join(_REGISTRY)}."
        ) from None


# --------------------------------------------------------------------------------------
# built-in methods
# --------------------------------------------------------------------------------------
def _fit_pca(x: np.ndarray, *, seed: int) -> tuple[Reducer, np.ndarray]:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, svd_solver="full", random_state=seed).fit(x)
    return pca, pca.transform(x)


def _fit_umap(
    x: np.ndarray,
    *,
    seed: int,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
) -> tuple[Reducer, np.ndarray]:
    import umap

    n = x.shape[0]
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=max(2, min(int(n_neighbors), n - 1)),
        min_dist=float(min_dist),
        metric="euclidean",
        random_state=seed,
        transform_seed=seed,
        # spectral initialisation needs a well-connected graph; tiny maps start random
        init="spectral" if n > 30 else "random",
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"n_jobs value .* overridden")
        reducer.fit(x)
    return reducer, reducer.embedding_


class TSNEReducer:
    """openTSNE embedding that places new points against the fixed map.

    Parameters
    ----------
    embedding : openTSNE.TSNEEmbedding
        The fitted map (training rows).
    n_iter : int
        Optimisation iterations for new points (50: ~10-30 ms per call).
    """

    def __init__(self, embedding: Any, *, n_iter: int = 50) -> None:
        self.embedding = embedding
        self.n_iter = int(n_iter)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Place ``x`` ``(m, dim)``; returns ``(m, 2)``. Does not modify the map."""
        n = int(self.embedding.shape[0])
        partial = self.embedding.prepare_partial(
            np.asarray(x, dtype=np.float64),
            initialization="median",
            k=min(25, n),
            perplexity=min(5.0, (n - 1) / 3),
        )
        if self.n_iter > 0:
            partial.optimize(
                n_iter=self.n_iter,
                learning_rate=0.1,
                exaggeration=1.5,
                momentum=0.8,
                max_grad_norm=0.25,
                inplace=True,
            )
        return np.asarray(partial)


def _fit_tsne(
    x: np.ndarray,
    *,
    seed: int,
    perplexity: float = 30.0,
    transform_n_iter: int = 50,
    n_jobs: int = 1,
) -> tuple[Reducer, np.ndarray]:
    from openTSNE import TSNE

    n = x.shape[0]
    tsne = TSNE(
        n_components=2,
        perplexity=min(float(perplexity), (n - 1) / 3),
        metric="euclidean",
        initialization="pca",
        negative_gradient_method="bh" if n < 10_000 else "fft",
        random_state=seed,
        n_jobs=n_jobs,
        verbose=False,
    )
    embedding = tsne.fit(np.asarray(x, dtype=np.float64))
    # centre once, so that the map and any later openTSNE centring agree
    embedding -= (embedding.max(axis=0) + embedding.min(axis=0)) / 2
    return TSNEReducer(embedding, n_iter=transform_n_iter), np.asarray(embedding)


register_map_method(
    "pca", _fit_pca, label="PCA", description="Linear projection on the two main axes."
)
register_map_method(
    "umap",
    _fit_umap,
    label="UMAP",
    description="Preserves local neighbourhoods and some global layout (umap-learn).",
)
register_map_method(
    "tsne",
    _fit_tsne,
    label="t-SNE",
    description="Preserves local neighbourhoods; distances between clusters mean little.",
)


# --------------------------------------------------------------------------------------
# validation and quality
# --------------------------------------------------------------------------------------
def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise SongsimError(f"Unknown metric {metric!r}; use one of {', '.join(METRICS)}.")
    return metric


def _check_matrix(x: np.ndarray, *, name: str, dim: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise SongsimError(f"{name} must be a numeric array: {exc}") from exc
    if arr.ndim != 2:
        raise SongsimError(f"{name} must be a 2-D (rows, dim) array; got shape {arr.shape}.")
    if dim is not None and arr.shape[1] != dim:
        raise SongsimError(
            f"{name} has {arr.shape[1]} dims but the map was fitted on {dim}; embed the "
            f"song with the same space the map was built from."
        )
    if not np.isfinite(arr).all():
        rows = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        raise SongsimError(
            f"{name} contains NaN or infinity in {rows.size} row(s) (first: {rows[0]}); "
            f"rebuild the space or drop those tracks."
        )
    return np.ascontiguousarray(arr)


def _preprocess(x: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        norms[norms == 0] = 1.0  # a zero vector stays at the origin, never NaN
        return (x / norms).astype(np.float32)
    return x


def trustworthiness(
    vectors: np.ndarray,
    coords: np.ndarray,
    *,
    metric: str = "cosine",
    n_neighbors: int = TRUST_N_NEIGHBORS,
    max_rows: int = TRUST_MAX_ROWS,
    seed: int = 0,
) -> float:
    """How far a map's neighbourhoods can be trusted (Venna & Kaski 2001).

    Parameters
    ----------
    vectors : np.ndarray [shape=(n, dim)]
        The space.
    coords : np.ndarray [shape=(n, 2)]
        The map of the same rows.
    metric : str
        Distance in the space (``"cosine"``, ``"euclidean"``, or any
        :func:`sklearn.metrics.pairwise_distances` metric); the map always uses Euclidean.
    n_neighbors : int
        Neighbourhood size; clipped to ``ceil(n / 2) - 1`` for tiny maps (scikit-learn
        requires ``n_neighbors < n / 2``).
    max_rows : int
        Above this many rows a seeded random sample of ``max_rows`` rows is scored
        (memory is ``O(n^2)``).
    seed : int
        Seed of that sample.

    Returns
    -------
    float
        In ``[0, 1]``, 1 = no intruders among the map's neighbours; NaN below 3 rows.
    """
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    vectors = np.asarray(vectors, dtype=np.float64)
    coords = np.asarray(coords, dtype=np.float64)
    if vectors.shape[0] != coords.shape[0]:
        raise SongsimError(
            f"vectors ({vectors.shape[0]} rows) and coords ({coords.shape[0]} rows) differ."
        )
    n = vectors.shape[0]
    if n > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
        vectors, coords, n = vectors[rows], coords[rows], max_rows
    k = min(int(n_neighbors), (n + 1) // 2 - 1)
    if k < 1:
        return float("nan")
    return float(sk_trustworthiness(vectors, coords, n_neighbors=k, metric=metric))


# --------------------------------------------------------------------------------------
# the fitted map
# --------------------------------------------------------------------------------------
class FittedMap:
    """A 2-D map of one embedding space, able to place new points.

    Use :func:`fit_map`; the constructor only stores settings (scikit-learn style).

    Parameters
    ----------
    method : str
        A registered method (:func:`map_methods`): ``"pca"``, ``"umap"``, ``"tsne"``, ...
    seed : int
        Random seed; the same seed and data give the same map.
    metric : {"cosine", "euclidean"}
        The space's metric (see the module docstring).
    params : mapping or None
        Extra keyword arguments for the method's fit function (e.g. ``{"n_neighbors": 30}``
        for UMAP, ``{"perplexity": 50}`` for t-SNE).

    Attributes
    ----------
    coords_ : np.ndarray [shape=(n_rows, 2), dtype=float32]
        Map position of every training row (row order of the space). Read-only.
    trustworthiness_ : float
        See :func:`trustworthiness` (space metric vs. map, ``n_neighbors=5``).
    reducer_ : Reducer
        The fitted reducer; :meth:`transform` uses it and never refits.
    n_features_in_ : int
        Dimension of the space.
    n_samples_fit_ : int
        Rows fitted.
    fit_time_s_ : float
        Wall-clock seconds of the fit (without trustworthiness).
    """

    def __init__(
        self,
        method: str = "pca",
        *,
        seed: int = 0,
        metric: str = "cosine",
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.method = method
        self.seed = seed
        self.metric = metric
        self.params = dict(params or {})
        self._lock = threading.Lock()

    # -- pickling: a lock does not pickle -----------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        if isinstance(getattr(self, "coords_", None), np.ndarray):
            self.coords_.setflags(write=False)

    def __repr__(self) -> str:
        fitted = (
            f", n_samples_fit_={self.n_samples_fit_}, trustworthiness_="
            f"{self.trustworthiness_:.3f}"
            if self.is_fitted
            else ""
        )
        return (
            f"FittedMap(method={self.method!r}, seed={self.seed}, "
            f"metric={self.metric!r}{fitted})"
        )

    @property
    def is_fitted(self) -> bool:
        """bool: whether :meth:`fit` has run."""
        return hasattr(self, "reducer_")

    @property
    def label(self) -> str:
        """str: the method's UI label."""
        return get_map_method(self.method).label if self.method in _REGISTRY else self.method

    def fit(self, vectors: np.ndarray) -> "FittedMap":
        """Fit the map on ``vectors``.

        Parameters
        ----------
        vectors : np.ndarray [shape=(n_rows, dim), dtype=float32]
            The space, ``n_rows >= MIN_ROWS`` (5), finite.

        Returns
        -------
        FittedMap
            ``self``.
        """
        method = get_map_method(self.method)
        _check_metric(self.metric)
        x = _check_matrix(vectors, name="vectors")
        n, dim = x.shape
        if n < MIN_ROWS:
            raise SongsimError(
                f"A map needs at least {MIN_ROWS} songs; this space has {n}. Add songs to "
                f"the catalogue."
            )
        if dim < 2:
            raise SongsimError(
                f"A 2-D map needs vectors of at least 2 dims; this space has {dim}."
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise SongsimError(f"seed must be an integer; got {self.seed!r}.")
        xp = _preprocess(x, self.metric)
        start = time.perf_counter()
        try:
            reducer, coords = method.fit(xp, seed=int(self.seed), **self.params)
        except TypeError as exc:
            if "unexpected keyword" in str(exc):
                raise SongsimError(
                    f"Map method {self.method!r} does not accept the option(s) "
                    f"{sorted(self.params)}: {exc}"
                ) from exc
            raise
        fit_time = time.perf_counter() - start
        coords = np.array(coords, dtype=np.float32)
        if coords.shape != (n, 2) or not np.isfinite(coords).all():
            raise SongsimError(
                f"Map method {self.method!r} returned coordinates of shape {coords.shape} "
                f"(finite: {bool(np.isfinite(coords).all())}); expected ({n}, 2), finite."
            )
        coords.setflags(write=False)
        self.reducer_ = reducer
        self.coords_ = coords
        self.n_features_in_ = int(dim)
        self.n_samples_fit_ = int(n)
        self.fit_time_s_ = float(fit_time)
        self.trustworthiness_ = trustworthiness(
            x, coords, metric=self.metric, seed=int(self.seed)
        )
        self._warm_rows = x[:2].copy()  # what warm_up() transforms
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Place new points on the fitted map (never refits).

        Parameters
        ----------
        x : np.ndarray [shape=(m, dim) or (dim,)]
            Embeddings in the same space; a single vector gives one row.

        Returns
        -------
        np.ndarray [shape=(m, 2), dtype=float32]

        Raises
        ------
        NotBuiltError
            The map is not fitted.
        SongsimError
            Wrong dimension or NaN in ``x``.
        """
        if not self.is_fitted:
            raise NotBuiltError(
                "This map is not fitted yet; build it with songsim.maps.fit_map(vectors, "
                "method=...) or load it with load_map(path)."
            )
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None, :]
        arr = _check_matrix(arr, name="x", dim=self.n_features_in_)
        if arr.shape[0] == 0:
            return np.zeros((0, 2), dtype=np.float32)
        xp = _preprocess(arr, self.metric)
        with self._lock:  # reducers are not all documented as thread-safe
            out = self.reducer_.transform(xp)
        out = np.asarray(out, dtype=np.float32)
        if out.shape != (arr.shape[0], 2):
            raise SongsimError(
                f"Map method {self.method!r} returned shape {out.shape} from transform; "
                f"expected ({arr.shape[0]}, 2)."
            )
        return out

    def extent(self) -> tuple[float, float]:
        """Width and height of the fitted map (``ptp`` of ``coords_`` per axis)."""
        if not self.is_fitted:
            raise NotBuiltError("This map is not fitted yet; call fit_map() first.")
        ptp = np.ptp(self.coords_, axis=0)
        return float(ptp[0]), float(ptp[1])


def fit_map(
    vectors: np.ndarray,
    *,
    method: str,
    seed: int = 0,
    metric: str = "cosine",
    params: Mapping[str, Any] | None = None,
) -> FittedMap:
    """Fit a 2-D map of a space.

    Parameters
    ----------
    vectors : np.ndarray [shape=(n_rows, dim), dtype=float32]
        One embedding per track (row order of ``tracks.csv``); ``n_rows >= 5``, finite.
    method : str
        ``"pca"``, ``"umap"``, ``"tsne"`` or any method added with
        :func:`register_map_method`.
    seed : int
        Random seed (deterministic output for a seed).
    metric : {"cosine", "euclidean"}
        The space's metric; cosine spaces are L2-normalised first.
    params : mapping or None
        Extra options for the method (see :class:`FittedMap`).

    Returns
    -------
    FittedMap
        With ``coords_ (n_rows, 2) float32`` and ``trustworthiness_``.

    Raises
    ------
    SongsimError
        Unknown method or metric, too few rows, NaN vectors, bad options.

    Notes
    -----
    Typical cost on one laptop core: PCA milliseconds; t-SNE ~1 s at 240 rows, ~5 s at
    1 000; UMAP ~3 s at 1 000 once numba has compiled (the first UMAP fit in a process
    adds ~15 s).
    """
    return FittedMap(method, seed=seed, metric=metric, params=params).fit(vectors)


# --------------------------------------------------------------------------------------
# persistence and warm-up
# --------------------------------------------------------------------------------------
def save_map(fitted: FittedMap, path: Path | str) -> Path:
    """Write a fitted map to ``path`` atomically (temp file + ``os.replace``).

    Parameters
    ----------
    fitted : FittedMap
    path : Path or str
        E.g. ``<catalogue>/.songsim/maps/<space>-umap-0.pkl``; parents are created.

    Returns
    -------
    Path
    """
    if not isinstance(fitted, FittedMap) or not fitted.is_fitted:
        raise NotBuiltError("save_map() needs a fitted map; call fit_map() first.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": _FORMAT, "method": fitted.method, "fitted": fitted}
    with atomic_write(path) as fh:
        pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def load_map(path: Path | str) -> FittedMap:
    """Read a map written by :func:`save_map`.

    Only load files songsim wrote: the format is a pickle.

    Parameters
    ----------
    path : Path or str

    Returns
    -------
    FittedMap

    Raises
    ------
    NotBuiltError
        No file at ``path``.
    SongsimError
        The file is not a songsim map, is damaged, or needs a method whose module is not
        importable.
    """
    path = Path(path)
    if not path.is_file():
        raise NotBuiltError(f"No map at {path}; build it with fit_map() and save_map() first.")
    try:
        with path.open("rb") as fh:
            payload = pickle.load(fh)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise SongsimError(
            f"Map {path} needs code that is not available ({exc}); install/import the module "
            f"that registers its method, or delete the file and refit."
        ) from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise SongsimError(f"Map {path} is damaged ({exc}); delete it and refit.") from exc
    if (
        not isinstance(payload, dict)
        or payload.get("format") != _FORMAT
        or not isinstance(payload.get("fitted"), FittedMap)
    ):
        raise SongsimError(f"{path} is not a songsim map file; delete it and refit.")
    return payload["fitted"]


def warm_up(fitted: FittedMap) -> float:
    """Run throwaway transforms so the first real one in this process is fast.

    UMAP's first ``transform`` in a process costs seconds (numba compiling); call this
    where the fitted map is created or loaded (e.g. inside the ``st.cache_resource``
    function), not in a request. Transforms one and then two training rows (both code
    paths). Does not change the map.

    Parameters
    ----------
    fitted : FittedMap

    Returns
    -------
    float
        Seconds spent.
    """
    if not fitted.is_fitted:
        raise NotBuiltError("warm_up() needs a fitted map; call fit_map() first.")
    start = time.perf_counter()
    rows = getattr(fitted, "_warm_rows", None)
    if rows is None:
        rows = np.zeros((2, fitted.n_features_in_), dtype=np.float32)
    fitted.transform(rows[:1])
    if rows.shape[0] > 1:
        fitted.transform(rows)
    return time.perf_counter() - start
