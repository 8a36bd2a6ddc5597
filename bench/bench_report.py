"""Study report time: report_from on a synthetic study (median over repeats).

    python -m bench.bench_report [--queries 1000] [--spaces 5] [--raters 3] [--k 5] [--repeats 3] [--n-boot 2000]

The study is synthetic and needs no catalogue: each query has a neighbourhood of 3k
catalogue ids from which every space draws its top-k (so runs overlap and pools are
realistic: about 2k candidates per query); space i finds relevant candidates more often than space
i − 1; every rater rates every pooled pair (BROAD from a noisy latent similarity, FINE on
90 % of the pairs). Prints JSON with the sizes and the median seconds of each step.
"""

import argparse
import json
import time
from statistics import median

import numpy as np
import pandas as pd

from songsim.studies.render import bars_figure, format_text, heatmap_figure
from songsim.studies.report import report_from
from songsim.studies.study import Study, StudyQuery


def synthetic_study(n_queries: int, n_spaces: int, n_raters: int, k: int, *, seed: int = 0) -> tuple[Study, pd.DataFrame]:
    """(study, latest ratings) as described in the module docstring."""
    rng = np.random.default_rng(seed)
    spaces = [f"space{i}" for i in range(n_spaces)]
    raters = [f"rater{i}" for i in range(n_raters)]
    queries, rows = [], []
    for q in range(n_queries):
        query_id = f"q{q:05d}"
        neighbourhood = rng.choice(50_000, 3 * k, replace=False)
        similarity = rng.random(neighbourhood.size)  # latent similarity in [0, 1)
        runs = {}
        for i, space in enumerate(spaces):
            skill = 1.0 + 2.0 * i / max(n_spaces - 1, 1)  # better spaces favour similar candidates
            weights = similarity**skill + 1e-9
            picked = rng.choice(neighbourhood.size, k, replace=False, p=weights / weights.sum())
            runs[space] = [f"t{neighbourhood[j]}" for j in picked[np.argsort(-similarity[picked])]]
        pool = list(dict.fromkeys(c for run in runs.values() for c in run))
        queries.append(StudyQuery(query_id, runs, pool))
        latent = dict(zip((f"t{t}" for t in neighbourhood), similarity))
        for rater in raters:
            for candidate in pool:
                heard = latent[candidate] + rng.normal(0, 0.15)
                fine = float(np.clip(100 * heard, 0, 100)) if rng.random() < 0.9 else np.nan
                rows.append((rater, query_id, candidate, int(np.clip(np.floor(3 * heard), 0, 2)), fine))
    study = Study(name="bench", k=k, spaces=spaces, queries=queries, raters=raters, raters_per_pair=n_raters, panel_size=n_raters)
    latest = pd.DataFrame(rows, columns=["rater", "query_id", "candidate_id", "broad", "fine"])
    latest.insert(0, "study", study.name)
    return study, latest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--spaces", type=int, default=5)
    parser.add_argument("--raters", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-boot", type=int, default=2000)
    args = parser.parse_args()
    study, latest = synthetic_study(args.queries, args.spaces, args.raters, args.k)
    steps: dict[str, list[float]] = {"report_from": [], "as_dict": [], "format_text": [], "figures": []}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        report = report_from(study, latest, n_boot=args.n_boot, seed=0)
        t1 = time.perf_counter()
        json.dumps(report.as_dict())
        t2 = time.perf_counter()
        format_text(report)
        t3 = time.perf_counter()
        bars_figure(report), heatmap_figure(report)
        t4 = time.perf_counter()
        for key, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            steps[key].append(seconds)
    print(json.dumps({
        "queries": args.queries,
        "spaces": args.spaces,
        "raters": args.raters,
        "k": args.k,
        "n_boot": args.n_boot,
        "ratings": len(latest),
        "pairs": study.n_pairs,
        "repeats": args.repeats,
        "median_s": {key: round(median(values), 3) for key, values in steps.items()},
        "ndcg@k": {space: round(report.spaces[space][f"ndcg@{args.k}"], 4) for space in study.spaces},
        "ceiling": round(report.ceiling, 4),
        "target_report_from_s": 5,
    }, indent=2))


if __name__ == "__main__":
    main()
