"""A real Dask ``LocalCluster`` on loopback for tests, closed explicitly (a cluster or client
left to the garbage collector can deadlock the test process: README, Development)."""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager

import distributed


@contextmanager
def local_cluster() -> Iterator[distributed.LocalCluster]:
    """Two single-threaded worker processes on 127.0.0.1, no dashboard."""
    environment, main = dict(os.environ), sys.modules["__main__"]
    # the workers are spawned processes, which re-run the file of this process's __main__
    # module; after an AppTest that is app.py, so they get a bare __main__ to re-run instead
    sys.modules["__main__"] = types.ModuleType("__main__")
    cluster = None
    try:
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
        # LocalCluster sets OMP/MKL/OPENBLAS_NUM_THREADS=1 in *this* process's environment for
        # its workers; later tests' subprocesses would inherit it (and fit with other BLAS
        # rounding than the test process), so the rest of the session gets it back
        os.environ.clear()
        os.environ.update(environment)
        yield cluster
    finally:
        if cluster is not None:
            cluster.close(timeout=30)
        os.environ.clear()
        os.environ.update(environment)
        sys.modules["__main__"] = main
