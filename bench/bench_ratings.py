"""ratings.csv append throughput: 1 writer and 8 concurrent writer processes.

    python -m bench.bench_ratings [--appends 500] [--writers 1,8] [--dir FOLDER]

Each run starts from an empty log in a fresh temporary catalogue folder (under --dir, default
the system temp folder: put it on the disk the app will use, fsync cost is the disk's) holding
one study of 20 queries × 8 candidates. Every writer is a process that holds the loaded study,
as the rating page does, and appends --appends validated ratings through
``songsim.studies.ratings.append_rating`` (lock, one O_APPEND write, fsync). The writers start
together at a barrier. Prints JSON: appends per second over all writers, per-append latency
percentiles in milliseconds, and the time to load the resulting log.
"""

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np

from songsim.studies.ratings import Rating, append_rating, load_ratings
from songsim.studies.study import Study, StudyQuery, load_study, save_study

N_QUERIES, POOL = 20, 8


def _writer(root: Path, writer: int, appends: int, barrier, results) -> None:
    study = load_study(root, "bench")
    pairs = [(q.query_id, c) for q in study.queries for c in q.pool]
    barrier.wait()
    latencies = []
    for i in range(appends):
        query_id, candidate = pairs[(writer * 13 + i) % len(pairs)]
        rating = Rating("bench", f"rater-{writer}", query_id, candidate, broad=i % 3, fine=float(i % 101), comment=f"note {i}, ok")
        started = time.perf_counter()
        append_rating(root, rating, study=study)
        latencies.append(time.perf_counter() - started)
    results.put(latencies)


def run(parent: Path, writers: int, appends: int) -> dict:
    with tempfile.TemporaryDirectory(dir=parent, prefix="songsim-bench-ratings-") as folder:
        root = Path(folder)
        queries = [
            StudyQuery(f"q{i:02d}", {"a": [f"t{i}-{j}" for j in range(POOL)]}, [f"t{i}-{j}" for j in range(POOL)])
            for i in range(N_QUERIES)
        ]
        save_study(root, Study("bench", POOL, ["a"], queries))
        context = multiprocessing.get_context()
        barrier, results = context.Barrier(writers + 1), context.Queue()
        processes = [context.Process(target=_writer, args=(root, w, appends, barrier, results)) for w in range(writers)]
        for process in processes:
            process.start()
        barrier.wait()
        started = time.perf_counter()
        latencies = np.concatenate([results.get() for _ in processes]) * 1000
        seconds = time.perf_counter() - started
        for process in processes:
            process.join()
        load_started = time.perf_counter()
        log = load_ratings(root)
        load_ms = (time.perf_counter() - load_started) * 1000
        if len(log.events) != writers * appends or log.problems:
            raise SystemExit(f"{writers} writers: {len(log.events)} of {writers * appends} rows read back, problems {log.problems[:3]}")
        return {
            "writers": writers,
            "appends": writers * appends,
            "seconds": round(seconds, 2),
            "appends_per_s": round(writers * appends / seconds, 1),
            "latency_ms": {p: round(float(np.percentile(latencies, int(p[1:]))), 2) for p in ("p50", "p95", "p99")},
            "load_ms": round(load_ms, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appends", type=int, default=500, help="appends per writer")
    parser.add_argument("--writers", default="1,8", help="comma-separated writer counts, one run each")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the temporary catalogues go")
    args = parser.parse_args()
    runs = [run(Path(args.dir), int(w), args.appends) for w in args.writers.split(",")]
    print(json.dumps({"folder": args.dir, "appends_per_writer": args.appends, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
