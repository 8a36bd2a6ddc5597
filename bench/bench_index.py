"""Benchmark the neighbour indexes: build time, query latency and annoy recall@5.

Prints one JSON object. Usage::

    python -m bench.bench_index                 # sizes 10000,100000 (about a minute)
    python -m bench.bench_index 5000,50000 --metric euclidean --search-k 20000

Data: synthetic clustered 64-d float32 vectors (Gaussian clusters, one per 200 rows, that
overlap as real embedding spaces do). Queries are catalogue rows (``query_row``, the row
itself excluded); recall@5 is the share of the exact top-5 that annoy returns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from songsim.neighbours import (  # noqa: E402
    DEFAULT_N_TREES,
    DEFAULT_SEARCH_K,
    AnnoyIndex,
    ExactIndex,
)


def clustered(n: int, dim: int, *, spread: float = 1.5, seed: int = 0) -> np.ndarray:
    """``(n, dim) float32`` overlapping Gaussian clusters, one cluster per 200 rows."""
    rng = np.random.default_rng(seed)
    n_clusters = max(2, n // 200)
    centres = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    labels = rng.integers(0, n_clusters, size=n)
    out = centres[labels]
    out += spread * rng.standard_normal(size=(n, dim), dtype=np.float32)
    return out


def _latency(fn, rows) -> tuple[list, np.ndarray]:
    results, times = [], []
    for row in rows:
        start = time.perf_counter()
        results.append(fn(int(row)))
        times.append(time.perf_counter() - start)
    return results, np.asarray(times) * 1e3


def bench_size(n: int, *, dim: int, metric: str, n_queries: int, n_trees: int,
               search_k: int, k: int, seed: int) -> dict:
    vectors = clustered(n, dim, seed=seed)
    rows = np.random.default_rng(seed + 1).choice(n, size=min(n_queries, n), replace=False)

    start = time.perf_counter()
    exact = ExactIndex(vectors, metric=metric)
    exact_build = time.perf_counter() - start
    exact.query_row(0, k=k)  # warm caches
    exact_res, exact_ms = _latency(lambda r: exact.query_row(r, k=k), rows)

    start = time.perf_counter()
    approx = AnnoyIndex(vectors, metric=metric, n_trees=n_trees, search_k=search_k, seed=seed)
    annoy_build = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = approx.save(Path(tmp) / "bench.annoy")
        file_mb = path.stat().st_size / 2**20
        loaded = AnnoyIndex.load(path, dim, metric, search_k=search_k, vectors=vectors)
        loaded.query_row(0, k=k)
        annoy_res, annoy_ms = _latency(lambda r: loaded.query_row(r, k=k), rows)
        del loaded, approx

    hits = sum(
        len(set(a.indices.tolist()) & set(e.indices.tolist()))
        for a, e in zip(annoy_res, exact_res)
    )
    return {
        "n": n,
        "exact_build_s": round(exact_build, 3),
        "exact_median_ms": round(float(np.median(exact_ms)), 3),
        "exact_p95_ms": round(float(np.percentile(exact_ms, 95)), 3),
        "annoy_build_s": round(annoy_build, 2),
        "annoy_file_mb": round(file_mb, 1),
        "annoy_median_ms": round(float(np.median(annoy_ms)), 3),
        "annoy_p95_ms": round(float(np.percentile(annoy_ms, 95)), 3),
        f"annoy_recall_at_{k}": round(hits / (k * len(rows)), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="?", default="10000,100000",
                        help="comma-separated row counts (default 10000,100000)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine")
    parser.add_argument("--queries", type=int, default=200, help="queries per size")
    parser.add_argument("--n-trees", type=int, default=DEFAULT_N_TREES)
    parser.add_argument("--search-k", type=int, default=DEFAULT_SEARCH_K)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    report = {
        "benchmark": "neighbour_index",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "settings": {"dim": args.dim, "metric": args.metric, "k": args.k,
                     "queries": args.queries, "n_trees": args.n_trees,
                     "search_k": args.search_k, "seed": args.seed},
        "results": [],
    }
    for n in sizes:
        report["results"].append(
            bench_size(n, dim=args.dim, metric=args.metric, n_queries=args.queries,
                       n_trees=args.n_trees, search_k=args.search_k, k=args.k,
                       seed=args.seed)
        )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
