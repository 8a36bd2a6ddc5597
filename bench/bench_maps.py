"""2-D map fit and transform time at catalogue scale (10 k and 100 k tracks by default).

    python -m bench.bench_maps [--sizes 10000,100000] [--methods pca,umap,tsne] [--sample-size 20000]

Vectors are synthetic song embeddings, 64-d, clustered like real ones
(:func:`songsim.benchmarks.clustered_embeddings` with the parameters of ``bench index``).
Each size is fitted as the build fits it (:func:`songsim.maps.fit_map`, cosine, seed 0): at
most ``--sample-size`` rows are fitted and the rest are placed with the fitted transform
(PCA fits every row). Per size and method it reports, in seconds:

- ``fit_s``: the reducer's fit (on the sample when sampled); ``place_s``: placing the other
  rows (batched ``transform``); ``total_s``: the whole :func:`fit_map` call, with the
  trustworthiness score; ``cpu_s``: this process's CPU time for that call (a busy machine
  inflates wall time, not CPU time);
- ``transform_ms_median`` / ``transform_ms_p95``: placing *one* new song (an upload), over
  ``--queries`` held-out rows, after :func:`songsim.maps.warm_up`;
- ``transform_rows_per_s``: placing 1 000 held-out rows in one call;
- ``trustworthiness``: of the whole map (2 000-row sample), fitted and placed rows alike.

Each method is warmed up once first on 5 000 rows (``warmup_s``): numba compiles UMAP's code
on first use, and above 4 096 rows UMAP switches to approximate neighbours (pynndescent),
whose code compiles then too -- a 500-row warm-up left ~50 s of compiling inside the first
10 000-row fit. The figures are those of a warm process. BLAS runs on one
thread (as in the app). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from songsim.benchmarks import GENERATOR, clustered_embeddings, machine_conditions
from songsim.config import single_threaded_blas
from songsim.maps import MAP_SAMPLE_SIZE, TRANSFORM_BATCH_ROWS, fit_map, warm_up

HELD_OUT = 1_000  # rows generated with the catalogue but not fitted: "new songs"
WARMUP_ROWS = 5_000  # above UMAP's 4 096-row switch to pynndescent (module docstring)


def _timed(fn):
    """``(result, wall_s, cpu_s)`` of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def bench_method(vectors: np.ndarray, new: np.ndarray, method: str, *, sample_size: int | None, queries: int) -> dict:
    """Fit ``method`` on ``vectors`` (n, dim) and place ``new`` (HELD_OUT, dim) rows."""
    fitted, total_s, cpu_s = _timed(lambda: fit_map(vectors, method=method, seed=0, sample_size=sample_size))
    warm_up(fitted)
    one_ms = []
    for row in new[:queries]:
        started = time.perf_counter()
        fitted.transform(row)
        one_ms.append(1e3 * (time.perf_counter() - started))
    _, batch_s, _ = _timed(lambda: fitted.transform(new))
    return {
        "rows": int(vectors.shape[0]),
        "rows_fitted": fitted.n_samples_fit_,
        "fit_s": round(fitted.fit_time_s_, 2),
        "place_s": round(fitted.transform_time_s_, 2),
        "total_s": round(total_s, 2),
        "cpu_s": round(cpu_s, 2),
        "transform_ms_median": round(float(np.median(one_ms)), 2),
        "transform_ms_p95": round(float(np.percentile(one_ms, 95)), 2),
        "transform_rows_per_s": round(len(new) / batch_s, 1),
        "trustworthiness": round(float(fitted.trustworthiness_), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated catalogue sizes")
    parser.add_argument("--methods", default="pca,umap,tsne", help="comma-separated map methods (ae2d needs torch)")
    parser.add_argument("--sample-size", type=int, default=MAP_SAMPLE_SIZE, help="fit on at most this many rows")
    parser.add_argument("--queries", type=int, default=50, help="single-song transforms timed per map")
    parser.add_argument("--dim", type=int, default=64)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    methods = [m for m in args.methods.split(",") if m]

    load_at_start = os.getloadavg()[0]
    results: dict[str, dict] = {}
    warmup_s: dict[str, float] = {}
    with single_threaded_blas():
        small, _ = clustered_embeddings(WARMUP_ROWS, args.dim, seed=1, **GENERATOR)
        for method in methods:
            fitted, warmup_s[method], _ = _timed(lambda: fit_map(small, method=method, seed=0))
            warm_up(fitted)
        for n in sizes:
            data, _ = clustered_embeddings(n + HELD_OUT, args.dim, seed=0, **GENERATOR)
            vectors, new = data[:n], data[n:]  # rows are in random order: the held-out rows are a fair draw
            results[str(n)] = {
                method: bench_method(vectors, new, method, sample_size=args.sample_size, queries=args.queries)
                for method in methods
            }
    print(json.dumps({
        "sizes": results,
        "settings": {"dim": args.dim, "metric": "cosine", "seed": 0, "sample_size": args.sample_size,
                     "transform_batch_rows": TRANSFORM_BATCH_ROWS, "held_out_rows": HELD_OUT,
                     "queries": args.queries, "blas_threads": 1, "warmup_s": {k: round(v, 1) for k, v in warmup_s.items()}},
        "generator": {"function": "songsim.benchmarks.clustered_embeddings", **GENERATOR},
        "machine": machine_conditions(load_at_start),
    }, indent=2))


if __name__ == "__main__":
    main()
