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

Spaces that give distances (``metric="precomputed"``)
-----------------------------------------------------
A space whose "vectors" are rows of a distance matrix (an imported distance matrix, Musly;
:data:`songsim.neighbours.PRECOMPUTED`) is mapped from the distances themselves: ``fit_map``
takes the ``(n, n)`` matrix (row = query, smaller = closer, non-negative; or ``(n, N)`` rows
with ``columns`` naming each row's own column, for a space that covers only some tracks) and
each method's ``fit_precomputed``: ``"pca"`` becomes **classical (Torgerson) MDS** of the
symmetrised matrix ``(D + Dᵀ)/2`` (:class:`ClassicalMDS`; new points by Gower's
add-a-point formula), ``"umap"`` is umap-learn with ``metric="precomputed"`` (new points by
its own transform of their distances to the fitted rows), ``"tsne"`` is openTSNE with
``metric="precomputed"`` started from the classical-MDS layout (new points: median of
their 25 nearest fitted rows, then optimised, as for vectors), and ``"ae2d"`` trains the
2-D autoencoder on a 16-d classical-MDS embedding of the distances (new points: Gower, then
its encoder). ``transform`` takes a new point's distances to every row the map was fitted
from (``(m, N)``). Trustworthiness is computed against the given distances.

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

``"ae2d"`` a deep autoencoder (… → 16 → 2, :func:`songsim.spaces.learned.fit_ae2d_map`);
           new points go through its encoder.

Further methods are added from other modules with :func:`register_map_method`, without
editing this file.

Large catalogues: fit on a sample, place the rest
--------------------------------------------------
UMAP, t-SNE and the 2-D autoencoder cost more than linearly in the number of rows and hold
``n x k`` graphs in memory, whereas placing a point on a fitted map is cheap and is what every
upload already does. So above ``sample_size`` rows (:data:`MAP_SAMPLE_SIZE`, 20 000, a
:func:`fit_map` argument) a method is fitted on a seeded random sample of ``sample_size`` rows
(:func:`sample_rows`; stratified when ``strata`` labels are given) and every other row is
placed by the fitted reducer's ``transform``, in batches of :data:`TRANSFORM_BATCH_ROWS` rows
(bounding the memory of the ``batch x k`` neighbour graphs) -- exactly as an uploaded song
would be placed.

Measured with ``python -m bench.bench_maps`` (64-d clustered vectors, one core, warm): at
10 000 rows (fitted whole) UMAP takes 24 s and t-SNE 86 s; at 100 000 rows UMAP takes 66 s
(19 s to fit 20 000 rows, 47 s to place 80 000) and t-SNE 137 s (121 s + 16 s), where a whole
fit would take tens of minutes. The price is local detail for the placed rows: in a 20 %
sample experiment at 10 000 rows, 10-nearest-neighbour agreement between space and map was
0.34 for fitted and 0.19 for placed rows with t-SNE (0.39 when fitting all rows), 0.12 and
0.07 with UMAP (0.19). Placed rows land in the right region but are not optimised against
each other. 20 000 keeps the sample dense (every style of more than ~0.1 % of a 100 k
catalogue keeps tens of songs) and the fit within minutes; pass a larger ``sample_size`` (or
``None``) for more fidelity at more cost. :attr:`FittedMap.trustworthiness_` scores fitted and
placed rows alike.

Methods registered with ``fit_on_all=True`` -- PCA, whose cost is linear in ``n`` (one
``dim x dim`` covariance) -- always fit every row. :attr:`FittedMap.sample_rows_` records
which rows a map was fitted on (``None``: all of them).
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
from songsim.neighbours import PRECOMPUTED
from songsim.signed import dump_signed, load_signed

__all__ = [
    "MIN_ROWS",
    "MAP_SAMPLE_SIZE",
    "TRANSFORM_BATCH_ROWS",
    "TRUST_N_NEIGHBORS",
    "TRUST_MAX_ROWS",
    "Reducer",
    "MapMethod",
    "FittedMap",
    "ClassicalMDS",
    "fit_map",
    "map_label",
    "register_map_method",
    "map_methods",
    "get_map_method",
    "trustworthiness",
    "sample_rows",
    "save_map",
    "load_map",
    "warm_up",
]

MIN_ROWS = 5  # fewer songs than this make no map worth looking at
TRUST_N_NEIGHBORS = 5  # neighbourhood size of trustworthiness_
TRUST_MAX_ROWS = 2_000  # trustworthiness_ is computed on at most this many rows
MAP_SAMPLE_SIZE = 20_000  # above this many rows, non-linear maps fit on a sample (module doc)
TRANSFORM_BATCH_ROWS = 10_000  # rows placed per reducer.transform call
METRICS = ("cosine", "euclidean", PRECOMPUTED)
#: dimensions of the classical-MDS embedding the 2-D autoencoder map of a distance space trains on
AE2D_MDS_DIMS = 16
_FORMAT = "songsim.map/1"
#: what a map file is signed as (:mod:`songsim.signed`)
MAP_PURPOSE = "map"


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
    fit_on_all : bool
        Fit every row however many there are (for methods whose cost is linear in the
        number of rows, like PCA). Otherwise large spaces are fitted on a sample of
        ``sample_size`` rows and the other rows are placed with ``transform`` (module
        docstring).
    fit_precomputed : callable or None
        The method for a space that gives distances: ``fit_precomputed(d, *, seed, **params)
        -> (reducer, coords)`` with ``d`` the ``(n, n)`` non-negative distances between the
        rows fitted (row = query); the reducer's ``transform`` takes ``(m, n)`` distances
        from new points to those rows. ``None``: the method cannot map a distance space.
    precomputed_label : str or None
        UI label when it maps a distance space (e.g. ``"classical MDS"`` for ``"pca"``);
        default :attr:`label`.
    """

    name: str
    fit: FitFn
    label: str
    description: str = ""
    fit_on_all: bool = False
    fit_precomputed: FitFn | None = None
    precomputed_label: str | None = None


_REGISTRY: dict[str, MapMethod] = {}


def register_map_method(
    name: str,
    fit_fn: FitFn,
    *,
    label: str | None = None,
    description: str = "",
    fit_on_all: bool = False,
    replace: bool = False,
    fit_precomputed: FitFn | None = None,
    precomputed_label: str | None = None,
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
    fit_on_all : bool
        See :class:`MapMethod`: ``True`` only for methods that scale linearly with rows.
    replace : bool
        Allow replacing an existing method (otherwise a clash is an error).
    fit_precomputed, precomputed_label
        How the method maps a space that gives distances, and its label then (see
        :class:`MapMethod`); without ``fit_precomputed`` such spaces are refused.

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
    method = MapMethod(
        name=name, fit=fit_fn, label=label or name, description=description, fit_on_all=bool(fit_on_all),
        fit_precomputed=fit_precomputed, precomputed_label=precomputed_label,
    )  # fmt: skip
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


def _fitted_umap(data: np.ndarray, *, metric: str, seed: int, n_neighbors: int, min_dist: float) -> Any:
    """umap-learn's 2-D map of ``data``, fitted (its ``embedding_`` the coordinates).

    Parameters
    ----------
    data : np.ndarray
        ``(n, dim)`` vectors with ``metric="euclidean"``, or the ``(n, n)`` float32 distances
        between the rows (row = query) with ``metric="precomputed"``.
    metric : {"euclidean", "precomputed"}
    seed : int
        Seeds the fit and umap-learn's ``transform`` of new points.
    n_neighbors : int
        Neighbourhood size, clipped to ``2 .. n - 1``.
    min_dist : float
        How tightly points may pack in the map (umap-learn's units).

    Returns
    -------
    umap.UMAP
        Fitted; its ``embedding_`` is ``(n, 2)`` float32. A small map (30 rows or fewer)
        starts from a random layout: spectral initialisation needs a well-connected graph.
    """
    import umap

    n = data.shape[0]
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=max(2, min(int(n_neighbors), n - 1)),
        min_dist=float(min_dist),
        metric=metric,
        random_state=seed,
        transform_seed=seed,
        init="spectral" if n > 30 else "random",
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"n_jobs value .* overridden")
        warnings.filterwarnings("ignore", message=r"using precomputed metric")
        reducer.fit(data)
    return reducer


def _fit_umap(x: np.ndarray, *, seed: int, n_neighbors: int = 15, min_dist: float = 0.1) -> tuple[Reducer, np.ndarray]:
    reducer = _fitted_umap(x, metric="euclidean", seed=seed, n_neighbors=n_neighbors, min_dist=min_dist)
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


def _fitted_tsne(data: np.ndarray, *, metric: str, initialization: Any, seed: int, perplexity: float, n_jobs: int) -> Any:
    """openTSNE's 2-D map of ``data``, centred.

    Parameters
    ----------
    data : np.ndarray
        ``(n, dim)`` vectors with ``metric="euclidean"``, or the ``(n, n)`` distances between
        the rows with ``metric="precomputed"``; fitted in float64.
    metric : {"euclidean", "precomputed"}
    initialization : str or np.ndarray [shape=(n, 2)]
        openTSNE's start: ``"pca"``, ``"random"`` or a layout.
    seed : int
    perplexity : float
        Clipped to ``(n - 1) / 3``, the most openTSNE accepts.
    n_jobs : int
        openTSNE's threads.

    Returns
    -------
    openTSNE.TSNEEmbedding [shape=(n, 2), float64]
        Centred once on the middle of its bounding box, so that the map and any later
        openTSNE centring agree; Barnes-Hut gradients below 10 000 rows, FFT above.
    """
    from openTSNE import TSNE

    n = data.shape[0]
    tsne = TSNE(
        n_components=2,
        perplexity=min(float(perplexity), (n - 1) / 3),
        metric=metric,
        initialization=initialization,
        negative_gradient_method="bh" if n < 10_000 else "fft",
        random_state=seed,
        n_jobs=n_jobs,
        verbose=False,
    )
    embedding = tsne.fit(np.asarray(data, dtype=np.float64))
    embedding -= (embedding.max(axis=0) + embedding.min(axis=0)) / 2
    return embedding


def _fit_tsne(
    x: np.ndarray,
    *,
    seed: int,
    perplexity: float = 30.0,
    transform_n_iter: int = 50,
    n_jobs: int = 1,
) -> tuple[Reducer, np.ndarray]:
    embedding = _fitted_tsne(x, metric="euclidean", initialization="pca", seed=seed, perplexity=perplexity, n_jobs=n_jobs)
    return TSNEReducer(embedding, n_iter=transform_n_iter), np.asarray(embedding)


# --------------------------------------------------------------------------------------
# built-in methods for spaces that give distances (module docstring)
# --------------------------------------------------------------------------------------
#: up to this many rows classical MDS solves the dense eigenproblem; above, ARPACK (eigsh)
_DENSE_MDS_MAX_ROWS = 3_000


class ClassicalMDS:
    """Classical (Torgerson) multidimensional scaling of a distance matrix, with Gower's
    out-of-sample formula for new points (Gower, "Adding a point to vector diagrams in
    multivariate analysis", Biometrika 55(3), 1968).

    Fit: ``D`` is symmetrised, ``S = (D + Dᵀ) / 2``; ``B = −½ J S² J`` (``S²`` elementwise,
    ``J = I − 11ᵀ/n`` the centring matrix); the coordinates are ``X = V Λ^½`` over the top
    ``n_components`` eigenpairs ``(Λ, V)`` of ``B``. For Euclidean distances this recovers the
    configuration up to rotation, reflection and translation (it equals PCA of the points).
    Axes whose eigenvalue is not positive (a non-Euclidean matrix) are set to 0. Each axis's
    sign is fixed so that its largest loading is positive, so a fit is deterministic.

    Transform: a new point with distances ``d`` (n,) to the fitted rows gets
    ``y = Λ^−½ Vᵀ b`` with ``b = −½ (d² − mean(d²) − c + g)``, ``c`` the column means of
    ``S²`` and ``g`` their mean; a fitted row's own distances give back its coordinates.

    Parameters
    ----------
    distances : np.ndarray [shape=(n, n)]
        Non-negative, finite (row = query).
    n_components : int
        Output dimensions (2 for a map).
    seed : int
        Start vector of ARPACK above :data:`_DENSE_MDS_MAX_ROWS` rows.

    Attributes
    ----------
    coords_ : np.ndarray [shape=(n, n_components), float64]
    eigenvalues_ : np.ndarray [shape=(n_components,), float64]
        In squared distance units, descending (0 where an axis was not positive).
    """

    def __init__(self, distances: np.ndarray, *, n_components: int = 2, seed: int = 0) -> None:
        d = np.asarray(distances, dtype=np.float32)
        n = d.shape[0]
        k = int(min(n_components, max(n - 1, 1)))
        squared = (d + d.T) * np.float32(0.5)
        np.square(squared, out=squared)
        means = squared.mean(axis=0, dtype=np.float64)
        grand = float(means.mean())
        if n <= _DENSE_MDS_MAX_ROWS:
            from scipy.linalg import eigh

            b = -0.5 * (squared.astype(np.float64) - means[None, :] - means[:, None] + grand)
            values, vectors = eigh(b, subset_by_index=[n - k, n - 1])
        else:
            from scipy.sparse.linalg import LinearOperator, eigsh

            def centred_product(v: np.ndarray) -> np.ndarray:
                v = np.asarray(v, dtype=np.float64).ravel()
                u = (squared @ (v - v.mean()).astype(np.float32)).astype(np.float64)
                return -0.5 * (u - u.mean())

            operator = LinearOperator((n, n), matvec=centred_product, dtype=np.float64)
            start = np.random.default_rng(seed).standard_normal(n)
            values, vectors = eigsh(operator, k=k, which="LA", v0=start)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
        positive = values > 1e-12 * max(float(np.abs(values).max(initial=0.0)), 1e-300)
        values = np.where(positive, values, 0.0)
        signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(k)])
        vectors = vectors * np.where(signs == 0, 1.0, signs)
        root = np.sqrt(values)
        self.coords_ = vectors * root
        self.eigenvalues_ = values
        self._projection = np.where(positive, vectors / np.where(positive, root, 1.0), 0.0)
        self._means = means
        self._grand = grand
        if k < n_components:  # a map of fewer rows than axes: pad with zeros
            pad = n_components - k
            self.coords_ = np.hstack([self.coords_, np.zeros((n, pad))])
            self.eigenvalues_ = np.concatenate([self.eigenvalues_, np.zeros(pad)])
            self._projection = np.hstack([self._projection, np.zeros((n, pad))])

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Place new points from their distances ``x`` (m, n) to the fitted rows → (m, n_components)."""
        squared = np.square(np.asarray(x, dtype=np.float64))
        b = -0.5 * (squared - squared.mean(axis=1, keepdims=True) - self._means[None, :] + self._grand)
        return b @ self._projection


def _fit_classical_mds(d: np.ndarray, *, seed: int) -> tuple[Reducer, np.ndarray]:
    mds = ClassicalMDS(d, n_components=2, seed=seed)
    return mds, mds.coords_


class PrecomputedUMAP:
    """A umap-learn map fitted with ``metric="precomputed"``: ``transform`` takes the new
    points' distances to the fitted rows (umap-learn's own precomputed transform).

    The fitted reducer keeps no copy of the distance matrix (umap-learn would pickle all
    n² of them with the map; its precomputed transform only checks their row count)."""

    def __init__(self, reducer: Any) -> None:
        reducer._raw_data = np.empty((int(reducer._raw_data.shape[0]), 0), dtype=np.float32)
        self.reducer = reducer

    def transform(self, x: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Transforming new data with precomputed metric")
            return self.reducer.transform(np.ascontiguousarray(x, dtype=np.float32))


def _fit_umap_precomputed(d: np.ndarray, *, seed: int, n_neighbors: int = 15, min_dist: float = 0.1) -> tuple[Reducer, np.ndarray]:
    reducer = _fitted_umap(
        np.ascontiguousarray(d, dtype=np.float32), metric="precomputed", seed=seed, n_neighbors=n_neighbors, min_dist=min_dist
    )
    coords = np.asarray(reducer.embedding_)
    return PrecomputedUMAP(reducer), coords


def _fit_tsne_precomputed(
    d: np.ndarray, *, seed: int, perplexity: float = 30.0, transform_n_iter: int = 50, n_jobs: int = 1
) -> tuple[Reducer, np.ndarray]:
    start = ClassicalMDS(d, n_components=2, seed=seed).coords_
    spread = float(start[:, 0].std())
    # openTSNE's advice: an initial layout with a standard deviation of 1e-4 (as its "pca" start)
    initialization = start / spread * 1e-4 if spread > 0 else "random"
    embedding = _fitted_tsne(d, metric="precomputed", initialization=initialization, seed=seed, perplexity=perplexity, n_jobs=n_jobs)
    return TSNEReducer(embedding, n_iter=transform_n_iter), np.asarray(embedding)


class ChainedReducer:
    """``second.transform(first.transform(x))``: a distance space's autoencoder map, placed
    through its classical-MDS embedding (Gower) and then the encoder."""

    def __init__(self, first: Reducer, second: Reducer) -> None:
        self.first, self.second = first, second

    def transform(self, x: np.ndarray) -> np.ndarray:
        return self.second.transform(np.asarray(self.first.transform(x), dtype=np.float32))


def _fit_ae2d_precomputed(d: np.ndarray, *, seed: int) -> tuple[Reducer, np.ndarray]:
    """The 2-D autoencoder of a distance space, trained on the rows' classical-MDS embedding
    in :data:`AE2D_MDS_DIMS` dimensions (the best Euclidean picture of the distances)."""
    from songsim.spaces.learned import fit_ae2d_map

    mds = ClassicalMDS(d, n_components=AE2D_MDS_DIMS, seed=seed)
    encoder, coords = fit_ae2d_map(mds.coords_.astype(np.float32), seed=seed)
    return ChainedReducer(mds, encoder), coords


register_map_method(
    "umap",
    _fit_umap,
    label="UMAP",
    description="Preserves local neighbourhoods and some global layout (umap-learn).",
    fit_precomputed=_fit_umap_precomputed,
)
register_map_method(
    "tsne",
    _fit_tsne,
    label="t-SNE",
    description="Preserves local neighbourhoods; distances between clusters mean little.",
    fit_precomputed=_fit_tsne_precomputed,
)
register_map_method(
    "pca",
    _fit_pca,
    label="PCA",
    description="Linear projection on the two main axes (classical MDS for a space that gives distances).",
    fit_on_all=True,  # one dim x dim covariance: linear in rows, no sample needed
    fit_precomputed=_fit_classical_mds,
    precomputed_label="classical MDS",
)


def _fit_ae2d(x: np.ndarray, *, seed: int) -> tuple[Reducer, np.ndarray]:
    """The 2-D autoencoder (:func:`songsim.spaces.learned.fit_ae2d_map`; torch is imported
    only when this map is fitted)."""
    from songsim.spaces.learned import fit_ae2d_map

    return fit_ae2d_map(x, seed=seed)


register_map_method(
    "ae2d",
    _fit_ae2d,
    label="2-D autoencoder",
    description="A deep autoencoder squeezed to 2 dimensions; places new songs through its encoder.",
    fit_precomputed=_fit_ae2d_precomputed,
)


def map_label(method: str, metric: str = "cosine") -> str:
    """The UI label of map ``method`` for a space of ``metric`` (``"classical MDS"`` for the
    ``"pca"`` map of a space that gives distances)."""
    found = get_map_method(method)
    return (found.precomputed_label or found.label) if metric == PRECOMPUTED else found.label


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


def sample_rows(
    n_rows: int,
    size: int,
    *,
    seed: int = 0,
    strata: np.ndarray | None = None,
    min_per_stratum: int = 0,
) -> np.ndarray:
    """A seeded random sample of row indices, optionally stratified.

    Used to fit large maps (:func:`fit_map`) and to thin the points a map draws
    (:func:`songsim.plots.map_layers`).

    Without ``strata`` every row has the same chance. With ``strata`` (one label per row)
    each stratum first gets ``min(count, min_per_stratum)`` rows -- so a small genre is
    never thinned away -- and the rest of ``size`` is shared in proportion to what each
    stratum has left (largest remainders), so the sample keeps the strata's proportions.

    Parameters
    ----------
    n_rows : int
        Rows to choose from (``0 .. n_rows - 1``).
    size : int
        Rows to choose; ``>= n_rows`` returns every row. With ``min_per_stratum`` the sample
        can exceed ``size`` when there are more than ``size / min_per_stratum`` strata.
    seed : int
        The same arguments give the same rows.
    strata : np.ndarray [shape=(n_rows,)] or None
        Any hashable labels (e.g. genres; ``None`` is a stratum of its own).
    min_per_stratum : int
        Rows every stratum keeps (all of them if it has fewer).

    Returns
    -------
    np.ndarray [shape=(m,), dtype=int64]
        Sorted, distinct row indices, ``m = min(n_rows, size)`` (see ``min_per_stratum``).
    """
    n_rows, size = int(n_rows), int(size)
    if n_rows < 0 or size < 0:
        raise SongsimError(f"sample_rows needs n_rows and size >= 0; got {n_rows} and {size}.")
    if size >= n_rows:
        return np.arange(n_rows, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if strata is None:
        return np.sort(rng.choice(n_rows, size=size, replace=False)).astype(np.int64)
    labels = np.asarray(strata, dtype=object)
    if labels.shape != (n_rows,):
        raise SongsimError(f"strata must hold one label per row ({n_rows}); got shape {labels.shape}.")
    _, codes = np.unique(labels.astype(str), return_inverse=True)  # str: None and numbers sort
    counts = np.bincount(codes)
    floors = np.minimum(counts, max(int(min_per_stratum), 0))
    spare = counts - floors
    budget = max(size - int(floors.sum()), 0)
    share = budget * spare / max(int(spare.sum()), 1)
    extra = np.floor(share).astype(np.int64)
    leftover = budget - int(extra.sum())
    if leftover > 0:  # largest remainders, ties by stratum order
        order = np.lexsort((np.arange(counts.size), -(share - extra)))
        extra[order[:leftover]] += 1
    take = floors + np.minimum(extra, spare)  # extra <= spare already: share < spare
    members = np.split(np.argsort(codes, kind="stable"), np.cumsum(counts)[:-1])
    chosen = [rng.choice(rows, size=int(t), replace=False) for rows, t in zip(members, take) if t]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


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
        The space; with ``metric="precomputed"`` its ``(n, n)`` distances (row = query).
    coords : np.ndarray [shape=(n, 2)]
        The map of the same rows.
    metric : str
        Distance in the space (``"cosine"``, ``"euclidean"``, ``"precomputed"`` or any
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

    vectors = np.asarray(vectors)
    coords = np.asarray(coords, dtype=np.float64)
    if vectors.shape[0] != coords.shape[0]:
        raise SongsimError(
            f"vectors ({vectors.shape[0]} rows) and coords ({coords.shape[0]} rows) differ."
        )
    n = vectors.shape[0]
    if n > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
        vectors = vectors[np.ix_(rows, rows)] if metric == PRECOMPUTED else vectors[rows]
        coords, n = coords[rows], max_rows
    vectors = np.array(vectors, dtype=np.float64)  # a copy: scikit-learn fills a precomputed diagonal
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
    metric : {"cosine", "euclidean", "precomputed"}
        The space's metric (see the module docstring; ``"precomputed"``: the space gives
        distances and the map is fitted on them).
    params : mapping or None
        Extra keyword arguments for the method's fit function (e.g. ``{"n_neighbors": 30}``
        for UMAP, ``{"perplexity": 50}`` for t-SNE).
    sample_size : int or None
        Above this many rows, methods not registered ``fit_on_all`` fit on a seeded sample
        of this many rows and place the others with ``transform`` (module docstring);
        ``None`` fits every row whatever the size. Default :data:`MAP_SAMPLE_SIZE`.

    Attributes
    ----------
    coords_ : np.ndarray [shape=(n_rows, 2), dtype=float32]
        Map position of every row of the space (row order of the space): fitted rows where
        the reducer put them, the others where its ``transform`` placed them. Read-only.
    trustworthiness_ : float
        See :func:`trustworthiness` (space metric vs. map, ``n_neighbors=5``), over a seeded
        sample of all rows, fitted and placed alike.
    reducer_ : Reducer
        The fitted reducer; :meth:`transform` uses it and never refits.
    n_features_in_ : int
        Dimension of the space (for ``"precomputed"``: the length of a distance row, one
        distance per track of the space).
    columns_ : np.ndarray [shape=(n_rows,), dtype=int64] or None
        ``"precomputed"`` only, when the space covers some tracks only: the column of a
        distance row that is each map row's own track (``None``: row ``i`` is column ``i``).
    n_samples_fit_ : int
        Rows the reducer was fitted on (``n_rows`` unless sampled).
    sample_rows_ : np.ndarray [shape=(n_samples_fit_,), dtype=int64] or None
        The rows fitted, sorted, when the map was fitted on a sample; ``None`` when it was
        fitted on every row.
    fit_time_s_ : float
        Wall-clock seconds of the reducer's fit (without trustworthiness).
    transform_time_s_ : float
        Wall-clock seconds spent placing the rows outside the sample (0 when none).
    """

    def __init__(
        self,
        method: str = "pca",
        *,
        seed: int = 0,
        metric: str = "cosine",
        params: Mapping[str, Any] | None = None,
        sample_size: int | None = MAP_SAMPLE_SIZE,
    ) -> None:
        self.method = method
        self.seed = seed
        self.metric = metric
        self.params = dict(params or {})
        self.sample_size = sample_size
        self._lock = threading.Lock()

    # -- pickling: a lock does not pickle -----------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # maps saved before sample fitting existed were fitted on every row
        state = {"sample_size": None, "sample_rows_": None, "transform_time_s_": 0.0, "columns_": None, **state}
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
        """str: the method's UI label (its distance-space label for ``"precomputed"``)."""
        return map_label(self.method, self.metric) if self.method in _REGISTRY else self.method

    def fit(self, vectors: np.ndarray, *, strata: np.ndarray | None = None, columns: np.ndarray | None = None) -> "FittedMap":
        """Fit the map on ``vectors`` (on a sample of them above ``sample_size`` rows).

        Parameters
        ----------
        vectors : np.ndarray [shape=(n_rows, dim), dtype=float32]
            The space, ``n_rows >= MIN_ROWS`` (5), finite. For ``metric="precomputed"``
            the distances from each row to every track of the space, non-negative:
            ``(n_rows, n_rows)``, or ``(n_rows, n_tracks)`` with ``columns``.
        strata : np.ndarray [shape=(n_rows,)] or None
            Labels (e.g. genre) to stratify the fitting sample by, so every label keeps its
            share of the sample; ignored when every row is fitted.
        columns : np.ndarray [shape=(n_rows,), int] or None
            ``"precomputed"`` only: the column of ``vectors`` that is each row's own track
            (the rows of a space that covers some tracks only); ``None``: square, row ``i``
            is column ``i``.

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
        sample_size = self.sample_size
        if sample_size is not None and (
            isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) or sample_size < MIN_ROWS
        ):
            raise SongsimError(
                f"sample_size must be None or an integer >= {MIN_ROWS}; got {sample_size!r}."
            )
        precomputed = self.metric == PRECOMPUTED
        if precomputed:
            fit_fn = method.fit_precomputed
            if fit_fn is None:
                usable = [m.name for m in _REGISTRY.values() if m.fit_precomputed is not None]
                raise SongsimError(
                    f"The {method.label} map needs vectors, and this space gives distances: choose "
                    f"{', '.join(usable) or 'another map'}."
                )
            self.columns_ = None
            xp = x if columns is None else x[:, self._check_columns(columns, n, dim)]
            if xp.shape[1] != n:
                raise SongsimError(
                    f"A map of a space that gives distances needs a square (n, n) matrix; got {x.shape}. "
                    f"Import the distance matrix again."
                )
            if (xp < 0).any():
                raise SongsimError("A distance matrix holds negative values; distances are >= 0 (smaller = closer).")
        else:
            fit_fn, xp = method.fit, _preprocess(x, self.metric)
            self.columns_ = None
        sampled = not method.fit_on_all and sample_size is not None and n > sample_size
        rows = sample_rows(n, int(sample_size), seed=int(self.seed), strata=strata) if sampled else None
        fit_x = (xp[np.ix_(rows, rows)] if precomputed else xp[rows]) if sampled else xp
        start = time.perf_counter()
        try:
            reducer, fit_coords = fit_fn(fit_x, seed=int(self.seed), **self.params)
        except TypeError as exc:
            if "unexpected keyword" in str(exc):
                raise SongsimError(
                    f"Map method {self.method!r} does not accept the option(s) "
                    f"{sorted(self.params)}: {exc}"
                ) from exc
            raise
        fit_time = time.perf_counter() - start
        fit_coords = np.array(fit_coords, dtype=np.float32)
        m = fit_x.shape[0]
        if fit_coords.shape != (m, 2) or not np.isfinite(fit_coords).all():
            raise SongsimError(
                f"Map method {self.method!r} returned coordinates of shape {fit_coords.shape} "
                f"(finite: {bool(np.isfinite(fit_coords).all())}); expected ({m}, 2), finite."
            )
        self.reducer_ = reducer
        self.n_features_in_ = int(dim)
        self.n_samples_fit_ = int(m)
        self.sample_rows_ = rows
        self.fit_time_s_ = float(fit_time)
        start = time.perf_counter()
        if sampled:
            coords = np.empty((n, 2), dtype=np.float32)
            coords[rows] = fit_coords
            rest = np.ones(n, dtype=bool)
            rest[rows] = False
            coords[rest] = self._place(xp[rest][:, rows] if precomputed else xp[rest])
            rows.setflags(write=False)
        else:
            coords = fit_coords
        self.transform_time_s_ = float(time.perf_counter() - start)
        coords.setflags(write=False)
        self.coords_ = coords
        self.trustworthiness_ = trustworthiness(
            xp if precomputed else x, coords, metric=self.metric, seed=int(self.seed)
        )
        self._warm_rows = x[:2].copy()  # what warm_up() transforms
        return self

    def _check_columns(self, columns: np.ndarray, n: int, dim: int) -> np.ndarray:
        """``columns`` as (n,) int64 distinct indices into a distance row of ``dim`` values."""
        cols = np.asarray(columns)
        if cols.shape != (n,) or not np.issubdtype(cols.dtype, np.integer) or (cols.size and (cols.min() < 0 or cols.max() >= dim)):
            raise SongsimError(f"columns must be ({n},) integers in 0..{dim - 1}, one per row; got shape {cols.shape}.")
        if np.unique(cols).size != n:
            raise SongsimError("columns must name each row's own column once.")
        cols = cols.astype(np.int64)
        cols.setflags(write=False)
        self.columns_ = cols
        return cols

    def _reducer_input(self, arr: np.ndarray) -> np.ndarray:
        """Rows of the space as the fitted reducer takes them: normalised for cosine; for
        ``"precomputed"`` their distances to the rows the reducer was fitted on."""
        if self.metric != PRECOMPUTED:
            return _preprocess(arr, self.metric)
        if getattr(self, "columns_", None) is not None:
            arr = arr[:, self.columns_]
        return arr if self.sample_rows_ is None else arr[:, self.sample_rows_]

    def _place(self, xp: np.ndarray) -> np.ndarray:
        """Run the reducer's ``transform`` on preprocessed rows, ``TRANSFORM_BATCH_ROWS`` at a
        time: ``(m, dim)`` -> ``(m, 2) float32`` (checked shape, under the map's lock).

        Batches bound the memory of the neighbour graph a UMAP or t-SNE transform builds
        (``batch x k``); new points never interact in either method's transform, so
        batching places each point as one big call would, up to the methods' seeded noise.
        """
        out = np.empty((xp.shape[0], 2), dtype=np.float32)
        for start in range(0, xp.shape[0], TRANSFORM_BATCH_ROWS):
            batch = xp[start:start + TRANSFORM_BATCH_ROWS]
            with self._lock:  # reducers are not all documented as thread-safe
                placed = np.asarray(self.reducer_.transform(batch), dtype=np.float32)
            if placed.shape != (batch.shape[0], 2):
                raise SongsimError(
                    f"Map method {self.method!r} returned shape {placed.shape} from transform; "
                    f"expected ({batch.shape[0]}, 2)."
                )
            out[start:start + batch.shape[0]] = placed
        return out

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Place new points on the fitted map (never refits).

        Parameters
        ----------
        x : np.ndarray [shape=(m, dim) or (dim,)]
            Embeddings in the same space; a single vector gives one row. For
            ``"precomputed"``: each new point's distances to every track of the space.

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
        return self._place(self._reducer_input(arr))

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
    sample_size: int | None = MAP_SAMPLE_SIZE,
    strata: np.ndarray | None = None,
    columns: np.ndarray | None = None,
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
    metric : {"cosine", "euclidean", "precomputed"}
        The space's metric; cosine spaces are L2-normalised first; ``"precomputed"``: the
        space gives distances and ``vectors`` is its distance matrix (module docstring).
    params : mapping or None
        Extra options for the method (see :class:`FittedMap`).
    sample_size : int or None
        Above this many rows, UMAP, t-SNE and other non-linear methods fit on a seeded
        sample of this many rows and place the rest with ``transform`` (module docstring);
        PCA always fits every row. ``None``: always fit every row.
    strata : np.ndarray [shape=(n_rows,)] or None
        Labels to stratify that sample by (e.g. genres); uniform when ``None``.
    columns : np.ndarray [shape=(n_rows,), int] or None
        ``"precomputed"`` only: each row's own column (see :meth:`FittedMap.fit`).

    Returns
    -------
    FittedMap
        With ``coords_ (n_rows, 2) float32`` for every row and ``trustworthiness_``.

    Raises
    ------
    SongsimError
        Unknown method or metric, too few rows, NaN vectors, bad options.

    Notes
    -----
    Typical cost on one laptop core: PCA milliseconds; t-SNE ~1 s at 240 rows, ~5 s at
    1 000; UMAP ~3 s at 1 000 once numba has compiled (the first UMAP fit in a process
    adds ~15 s). ``python -m bench.bench_maps`` measures fits at 10 000 and 100 000 rows.
    """
    fitted = FittedMap(method, seed=seed, metric=metric, params=params, sample_size=sample_size)
    return fitted.fit(vectors, strata=strata, columns=columns)


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
    dump_signed(payload, path, purpose=MAP_PURPOSE)
    return path


def load_map(path: Path | str) -> FittedMap:
    """Read a map written by :func:`save_map` on this installation.

    The format is a pickle, so it is unpickled only after its signature shows this installation
    wrote it (:mod:`songsim.signed`): a map from anywhere else is refused, never run.

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
    UntrustedFileError
        Not signed by this installation (unsigned, another installation's, or changed since):
        refit it (``python -m songsim build DIR``).
    SongsimError
        The file is not a songsim map, is damaged, or needs a method whose module is not
        importable.
    """
    path = Path(path)
    if not path.is_file():
        raise NotBuiltError(f"No map at {path}; build it with fit_map() and save_map() first.")
    try:
        payload = load_signed(path, purpose=MAP_PURPOSE)
    except SongsimError:
        raise
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
