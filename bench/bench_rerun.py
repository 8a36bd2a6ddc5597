"""Explore page rerun time with warm caches (median over repeats), through AppTest.

    python -m bench.bench_rerun [DIR] [--repeats 10]

DIR is a built catalogue (default: the demo under $SONGSIM_HOME). The first run warms the
caches; each timed rerun changes the query, as a user picking songs does. Prints JSON.
"""

import argparse
import json
import os
import time
from pathlib import Path
from statistics import median

from streamlit.testing.v1 import AppTest

from songsim import config
from songsim.catalogue import load_catalogue

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", nargs="?", default=str(config.default_demo_dir()))
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    os.environ[config.CATALOGUE_ENV] = args.dir
    track_ids = load_catalogue(args.dir).track_ids
    at = AppTest.from_file(APP, default_timeout=600)
    at.run()
    assert not at.exception, at.exception
    times = []
    for i in range(args.repeats):
        at.selectbox(key="search").set_value(track_ids[(i * 37 + 11) % len(track_ids)])
        started = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - started) * 1000)
        assert not at.exception, at.exception
    print(json.dumps({
        "n_tracks": len(track_ids),
        "repeats": args.repeats,
        "rerun_ms_median": round(median(times), 1),
        "rerun_ms_max": round(max(times), 1),
        "target_ms": 300,
    }, indent=2))


if __name__ == "__main__":
    main()
