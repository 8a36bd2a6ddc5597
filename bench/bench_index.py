"""Benchmark the neighbour indexes: annoy build time, top-5 latency and recall@5 against exact
search, on synthetic clustered embeddings. Prints JSON.

    python -m bench.bench_index [--sizes 10000,100000,1000000] [--n-trees 50] [--search-k 20000]

The same as ``python -m songsim bench index --json`` (every option of that command works
here); the generator, the timing conditions and the JSON fields are documented in
:mod:`songsim.benchmarks`.
"""

from __future__ import annotations

import sys

from songsim.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "index", "--json", *sys.argv[1:]]))
