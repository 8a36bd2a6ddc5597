"""Benchmarks run by ``python -m songsim bench …``; each returns a JSON-ready dict.

``bench index``: the neighbour indexes of :mod:`songsim.neighbours` on synthetic embeddings
(:func:`clustered_embeddings`) — annoy build time, top-k query latency (median and 95th
percentile, milliseconds), recall@k of annoy against exact search, and exact-search latency.

Conditions, stated once: queries are catalogue rows (``query_row``: the row itself is never
returned), as the Explore page asks them; each query is timed alone, in one thread (BLAS is
limited to one thread, annoy queries are single-threaded), after one warm-up query, with the
annoy index saved and memory-mapped from its file as the app loads it. The annoy index is
built with one job (``n_jobs=1``, reproducible), as :func:`songsim.build.build` does. Latencies include songsim's own validation and exclusion handling, not just the
library call.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from songsim.config import single_threaded_blas
from songsim.errors import SongsimError
from songsim.neighbours import DEFAULT_N_TREES, DEFAULT_SEARCH_K, METRICS, AnnoyIndex, ExactIndex, Neighbours

__all__ = ["GENERATOR", "bench_index", "clustered_embeddings", "format_index_table", "recall_at_k"]

#: Parameters of :func:`clustered_embeddings` used by :func:`bench_index` (reported in its JSON).
GENERATOR = {
    "n_clusters": 300,
    "cluster_size_sigma": 1.0,
    "intrinsic_dim": 16,
    "cluster_std_range": (0.3, 2.0),
    "ambient_noise_std": 0.1,
}

ProgressFn = Callable[[str, float, str], None]


def clustered_embeddings(
    n_rows: int,
    dim: int = 64,
    *,
    n_clusters: int = 300,
    cluster_size_sigma: float = 1.0,
    intrinsic_dim: int = 16,
    cluster_std_range: tuple[float, float] = (0.3, 2.0),
    ambient_noise_std: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic song embeddings: an anisotropic Gaussian mixture on a curved manifold.

    Real embedding spaces are neither uniform noise nor well-separated blobs: songs form
    styles of very different sizes that overlap (neighbouring genres share instruments and
    tempi), and a learned space has far fewer degrees of freedom than dimensions. So:

    1. **Cluster sizes** vary: weights are log-normal (``cluster_size_sigma``; with 1.0 the
       largest of 300 clusters holds ~20x the median one) and rows are drawn multinomially.
    2. **Clusters are anisotropic and overlap**: in an ``intrinsic_dim``-dimensional latent
       space each cluster has a centre ~ N(0, I), a random rotation and per-axis standard
       deviations log-uniform in ``cluster_std_range`` (wider than the spacing of centres).
    3. **A curved low-dimensional manifold**: latent points are mapped to ``dim`` dimensions
       by a random one-hidden-layer network ``tanh(z A + c) B``, then isotropic Gaussian noise
       of ``ambient_noise_std`` is added in every dimension (real vectors are full rank).

    With the defaults, a row's exact cosine top-5 shares its cluster ~49 % of the time at
    10 000 rows, ~66 % at 100 000 and ~73 % at 1 M (denser clusters), like genre precision@5
    on real corpora (0.5–0.8); the local intrinsic dimensionality (Levina–Bickel MLE over the 20 nearest
    neighbours) is ~12–13. Isotropic Gaussian clusters filling all 64 dimensions (the earlier
    generator of ``bench/bench_index.py``) measure ~34, close to uniform noise, on which every
    tree-based index degrades.

    Parameters
    ----------
    n_rows : int
        Number of vectors.
    dim : int
        Dimension of the embedding space.
    n_clusters, cluster_size_sigma, intrinsic_dim, cluster_std_range, ambient_noise_std
        See the steps above.
    seed : int
        Seed of every random draw; the same arguments give identical arrays.

    Returns
    -------
    vectors : np.ndarray [shape=(n_rows, dim), dtype=float32]
        Row order is random (not grouped by cluster).
    labels : np.ndarray [shape=(n_rows,), dtype=int64]
        The cluster of each row, ``0 .. n_clusters - 1``.
    """
    if n_rows < 1 or dim < 1 or n_clusters < 1 or intrinsic_dim < 1:
        raise SongsimError(
            f"clustered_embeddings needs n_rows, dim, n_clusters and intrinsic_dim >= 1; got "
            f"{n_rows}, {dim}, {n_clusters}, {intrinsic_dim}."
        )
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(sigma=cluster_size_sigma, size=n_clusters)
    counts = rng.multinomial(n_rows, weights / weights.sum())
    low, high = np.log(cluster_std_range[0]), np.log(cluster_std_range[1])
    latent = np.empty((n_rows, intrinsic_dim), dtype=np.float32)
    start = 0
    for count in counts:  # rows of one cluster are contiguous here, shuffled below
        centre = rng.standard_normal(intrinsic_dim)
        rotation = np.linalg.qr(rng.standard_normal((intrinsic_dim, intrinsic_dim)))[0]
        stds = np.exp(rng.uniform(low, high, size=intrinsic_dim))
        z = rng.standard_normal((count, intrinsic_dim))
        latent[start:start + count] = centre + (z * stds) @ rotation.T
        start += count
    labels = np.repeat(np.arange(n_clusters, dtype=np.int64), counts)
    order = rng.permutation(n_rows)
    latent, labels = latent[order], labels[order]
    hidden_weights = (rng.standard_normal((intrinsic_dim, dim)) / np.sqrt(intrinsic_dim)).astype(np.float32)
    hidden_bias = (0.5 * rng.standard_normal(dim)).astype(np.float32)
    output_weights = (rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32)
    vectors = np.tanh(latent @ hidden_weights + hidden_bias) @ output_weights
    vectors += np.float32(ambient_noise_std) * rng.standard_normal((n_rows, dim), dtype=np.float32)
    return np.ascontiguousarray(vectors, dtype=np.float32), labels


def machine_conditions(load_at_start: float) -> dict:
    """Where and under what load a benchmark ran, for its JSON: core count, 1-minute load
    average at its start (``load_at_start``) and now, Python and platform."""
    return {
        "cpus": os.cpu_count(), "load_avg_1m_at_start": round(load_at_start, 2),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2), "python": platform.python_version(),
        "platform": platform.platform(),
    }


def recall_at_k(approximate: Sequence[Neighbours], exact: Sequence[Neighbours]) -> float:
    """Mean share of each exact top-k that the approximate top-k also returns.

    ``recall@k = mean over queries of |A_q ∩ E_q| / |E_q|`` (order inside the top-k ignored).

    Parameters
    ----------
    approximate, exact : sequence of Neighbours [length n_queries]
        Results for the same queries in the same order.

    Returns
    -------
    float
        In [0, 1]; 1.0 when every approximate top-k equals the exact one as a set.
    """
    if len(approximate) != len(exact) or not exact:
        raise SongsimError(
            f"recall_at_k needs one approximate result per exact result (at least one); got "
            f"{len(approximate)} and {len(exact)}."
        )
    shares = [
        len(set(a.indices.tolist()) & set(e.indices.tolist())) / len(e) for a, e in zip(approximate, exact)
    ]
    return float(np.mean(shares))


def _timed_queries(index, rows: np.ndarray, k: int) -> tuple[list[Neighbours], np.ndarray, np.ndarray]:
    """Run ``index.query_row`` for every row after one warm-up.

    Returns
    -------
    results : list of Neighbours [length n_queries]
    wall_ms, cpu_ms : np.ndarray [shape=(n_queries,)]
        Wall-clock and this process's CPU time per query, in milliseconds. On a busy machine
        the wall time includes waiting for a core; the CPU time does not.
    """
    index.query_row(int(rows[0]), k=k)
    results, wall_ms, cpu_ms = [], np.empty(len(rows)), np.empty(len(rows))
    for i, row in enumerate(rows):
        wall, cpu = time.perf_counter(), time.process_time()
        results.append(index.query_row(int(row), k=k))
        wall_ms[i], cpu_ms[i] = 1e3 * (time.perf_counter() - wall), 1e3 * (time.process_time() - cpu)
    return results, wall_ms, cpu_ms


def _bench_size(
    n_rows: int, *, dim: int, n_queries: int, k: int, metric: str, n_trees: int, search_k: int,
    seed: int, workdir: Path | None, report: ProgressFn,
) -> dict:
    stage = f"{n_rows} rows"
    report(stage, 0.0, f"{stage}: generating vectors")
    vectors, labels = clustered_embeddings(n_rows, dim, seed=seed, **GENERATOR)
    rows = np.random.default_rng(seed + 1).choice(n_rows, size=min(n_queries, n_rows), replace=False)

    report(stage, 0.1, f"{stage}: exact search")
    exact = ExactIndex(vectors, metric=metric)
    exact_results, exact_ms, exact_cpu_ms = _timed_queries(exact, rows, k)
    del exact

    report(stage, 0.3, f"{stage}: building annoy ({n_trees} trees)")
    started, started_cpu = time.perf_counter(), time.process_time()
    built = AnnoyIndex(vectors, metric=metric, n_trees=n_trees, search_k=search_k, seed=seed)
    build_s, build_cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
    with tempfile.TemporaryDirectory(dir=workdir, prefix="songsim-bench-") as tmp:
        path = built.save(Path(tmp) / "index.annoy")
        del built
        report(stage, 0.8, f"{stage}: annoy queries")
        loaded = AnnoyIndex.load(path, dim, metric, search_k=search_k, vectors=vectors)
        annoy_results, annoy_ms, annoy_cpu_ms = _timed_queries(loaded, rows, k)
        index_mb = path.stat().st_size / 2**20
        del loaded
    same_cluster = np.mean([np.mean(labels[e.indices] == labels[row]) for e, row in zip(exact_results, rows)])
    report(stage, 1.0, f"{stage}: done")
    return {
        "build_s": round(build_s, 2),
        "query_ms_median": round(float(np.median(annoy_ms)), 3),
        "query_ms_p95": round(float(np.percentile(annoy_ms, 95)), 3),
        f"recall@{k}": round(recall_at_k(annoy_results, exact_results), 4),
        "exact_ms_median": round(float(np.median(exact_ms)), 3),
        "exact_ms_p95": round(float(np.percentile(exact_ms, 95)), 3),
        "build_cpu_s": round(build_cpu_s, 2),
        "query_cpu_ms_median": round(float(np.median(annoy_cpu_ms)), 3),
        "exact_cpu_ms_median": round(float(np.median(exact_cpu_ms)), 3),
        "index_mb": round(index_mb, 1),
        f"exact_same_cluster@{k}": round(float(same_cluster), 3),
    }


def bench_index(
    sizes: Sequence[int],
    *,
    dim: int = 64,
    n_queries: int = 1000,
    k: int = 5,
    metric: str = "cosine",
    n_trees: int = DEFAULT_N_TREES,
    search_k: int = DEFAULT_SEARCH_K,
    seed: int = 0,
    workdir: str | os.PathLike | None = None,
    on_progress: ProgressFn | None = None,
) -> dict:
    """Benchmark annoy against exact search at each catalogue size.

    Parameters
    ----------
    sizes : sequence of int
        Catalogue sizes (rows), e.g. ``(10_000, 100_000, 1_000_000)``; each must exceed
        ``n_trees * (k + 1)`` so that annoy answers (below that the index searches exactly).
    dim : int
        Embedding dimension.
    n_queries : int
        Query rows per size (fewer when a size has fewer rows).
    k : int
        Neighbours per query.
    metric : {"cosine", "euclidean"}
        Similarity of both indexes; recall is measured against exact search in this metric.
    n_trees, search_k : int
        Annoy settings (defaults: songsim's, :data:`~songsim.neighbours.DEFAULT_N_TREES` and
        :data:`~songsim.neighbours.DEFAULT_SEARCH_K`).
    seed : int
        Seed of the vectors, the query rows and annoy's trees.
    workdir : path-like or None
        Where the annoy file is written (and deleted) — ~0.9 GB at 1 M x 64; default the
        system's temporary folder.
    on_progress : callable or None
        ``on_progress(stage, fraction, message)`` with ``fraction`` in [0, 1] per size.

    Returns
    -------
    dict
        ``{"sizes": {"<n>": {"build_s", "query_ms_median", "query_ms_p95", "recall@<k>",
        "exact_ms_median", "exact_ms_p95", "build_cpu_s", "query_cpu_ms_median",
        "exact_cpu_ms_median", "index_mb", "exact_same_cluster@<k>"}}, "settings", "generator",
        "machine"}``; seconds (``_s``), milliseconds (``_ms``) and MiB (``_mb``). Times are
        wall-clock; the ``_cpu_`` ones are this process's CPU time, which a busy machine does not
        inflate (compare them with the wall times and ``machine.load_avg_1m_at_start``).
        ``exact_same_cluster@k`` is the share of exact neighbours from the query's own cluster
        (how hard the data are, not a property of the index).
    """
    if metric not in METRICS:
        raise SongsimError(f"Unknown metric {metric!r}; use one of {', '.join(METRICS)}.")
    sizes = [int(n) for n in sizes]
    if not sizes:
        raise SongsimError("bench index needs at least one size, e.g. --sizes 10000,100000.")
    too_small = [n for n in sizes if n <= n_trees * (k + 1)]
    if too_small:
        raise SongsimError(
            f"Size(s) {', '.join(map(str, too_small))} are too small for {n_trees} annoy trees and k={k}: "
            f"annoy answers only above n_trees * (k + 1) = {n_trees * (k + 1)} rows. Use larger sizes or fewer trees."
        )
    if n_queries < 1 or k < 1 or dim < 1:
        raise SongsimError(f"bench index needs queries, k and dim >= 1; got {n_queries}, {k}, {dim}.")
    report = on_progress or (lambda stage, fraction, message: None)
    load_at_start = os.getloadavg()[0]
    with single_threaded_blas():
        results = {
            str(n): _bench_size(
                n, dim=dim, n_queries=n_queries, k=k, metric=metric, n_trees=n_trees, search_k=search_k,
                seed=seed, workdir=Path(workdir) if workdir else None, report=report,
            )
            for n in sizes
        }
    return {
        "sizes": results,
        "settings": {"dim": dim, "metric": metric, "k": k, "queries": n_queries, "n_trees": n_trees,
                     "search_k": search_k, "seed": seed, "annoy_build_jobs": 1, "blas_threads": 1},
        "generator": {"function": "songsim.benchmarks.clustered_embeddings", **GENERATOR},
        "machine": {**machine_conditions(load_at_start), "annoy": importlib.metadata.version("annoy"), "numpy": np.__version__},
    }


def format_index_table(result: dict) -> str:
    """The figures of :func:`bench_index` as a fixed-width text table, one row per size."""
    k = result["settings"]["k"]
    settings = result["settings"]
    header = (f"{'rows':>10} {'build_s':>9} {'annoy ms (median/p95)':>22} {'annoy cpu ms':>13} {f'recall@{k}':>9} "
              f"{'exact ms (median)':>18}")
    lines = [
        f"annoy ({settings['n_trees']} trees, search_k {settings['search_k']}) vs exact {settings['metric']} search, "
        f"{settings['dim']}-d, {settings['queries']} queries",
        header,
    ]
    for n, row in result["sizes"].items():
        latency = f"{row['query_ms_median']:.3f} / {row['query_ms_p95']:.3f}"
        lines.append(
            f"{int(n):>10} {row['build_s']:>9.2f} {latency:>22} {row['query_cpu_ms_median']:>13.3f} "
            f"{row[f'recall@{k}']:>9.4f} {row['exact_ms_median']:>18.3f}"
        )
    return "\n".join(lines)
