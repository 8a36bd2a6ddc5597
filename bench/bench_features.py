"""Feature extraction throughput against the floor of decoding plus one mel spectrogram.

    python -m bench.bench_features [DIR] [--clips 32] [--jobs N] [--dask local|tcp://HOST:8786]

DIR is a catalogue folder (its first ``--clips`` tracks with distinct audio are used; default:
the demo under $SONGSIM_HOME when it exists, else a small demo rendered into a temporary
folder: real multi-instrument music, 30 s mono FLAC, as the app's first start makes it).

Everything is measured in one run, on the same clips, with BLAS on one thread:

1. **floor**: per clip, :func:`songsim.audio.load_clip` (decode + resample the middle 30 s)
   then one :func:`songsim.features.log_mel_spectrogram`, in this process -- the least any
   audio feature pipeline must do per clip. Measured before and after the extractions (the
   machine may be shared: the two passes show how much its speed moved) and averaged.
2. **extraction**, :func:`songsim.features.extract_features` into an empty cache, as a build
   runs it: ``handcrafted`` (the librosa baseline, 518-d) and ``mel`` (the CNN input) with one
   job (in this process, one core), and ``handcrafted`` with ``--jobs`` worker processes
   (default: every core; the pool is warmed on a throwaway cache first, as it is after the
   first build in a process).
3. with ``--dask``: ``handcrafted`` on a Dask distributed cluster, the same clips into an empty
   cache (the workers compute, this process writes the cache). ``--dask local`` starts a
   ``LocalCluster`` on loopback with ``--jobs`` single-threaded worker processes -- the same
   cores as the loky pool, so the two figures show the cost of Dask's scheduling and of
   shipping every array back; ``--dask tcp://HOST:8786`` uses a running cluster (its workers
   count as the jobs). Its workers are warmed on a throwaway cache first, like the pool.

Reported: clips/s (wall), clips/s per core (``clips/s / jobs``), and ``ratio_to_floor`` =
clips/s per core of the extraction / clips/s of the floor (1.0 = extraction costs no more
than decoding plus one mel spectrogram; 0.2 = five times as much). One-job figures also give
the CPU-time ratio (``cpu_ratio_to_floor``), which a busy machine does not distort. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from songsim import config
from songsim.audio import file_fingerprint, load_clip
from songsim.benchmarks import machine_conditions
from songsim.catalogue import load_catalogue
from songsim.config import single_threaded_blas
from songsim.features import extract_features, handcrafted_features, log_mel_spectrogram


def _warm_worker(path: str) -> None:
    """Run on each Dask worker before timing: one handcrafted extraction, in the worker."""
    from songsim.features import _compute

    _compute(path, "handcrafted")


def dask_extraction(address: str, jobs: int, paths: list[str], fingerprints: list[str], workdir: Path) -> tuple[float, int, str]:
    """Wall seconds of ``handcrafted`` extraction on a Dask cluster (warmed first), its number
    of workers and the scheduler address; ``address="local"`` starts a LocalCluster of ``jobs``
    single-threaded worker processes for the measurement."""
    from distributed import Client, LocalCluster

    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
        address = cluster.scheduler_address
    try:
        with Client(address, set_as_default=False) as client:
            n_workers = len(client.scheduler_info()["workers"])
            client.run(_warm_worker, os.path.abspath(paths[0]))  # every worker: imports, numba caches
        extract_features(paths[:n_workers], fingerprints[:n_workers], kind="handcrafted", cache_dir=workdir / "warm-dask", dask_address=address)
        wall = time.perf_counter()
        extract_features(paths, fingerprints, kind="handcrafted", cache_dir=workdir / "cache-dask", dask_address=address)
        return time.perf_counter() - wall, n_workers, address
    finally:
        if cluster is not None:
            cluster.close()


def source_clips(directory: str | None, n_clips: int, workdir: Path) -> tuple[list[str], str]:
    """Paths of ``n_clips`` audio files with distinct content, and where they came from."""
    root = Path(directory) if directory else config.default_demo_dir()
    if not (root / "tracks.csv").is_file():
        if directory:
            raise SystemExit(f"{root} has no tracks.csv: pass a catalogue folder.")
        from songsim.build import DEMO_AUDIO_FORMAT
        from songsim.demo.render import make_demo
        from songsim.demo.styles import GENRES

        per_genre = -(-n_clips // len(GENRES))
        root = workdir / "demo"
        make_demo(root, tracks_per_genre=per_genre, audio_format=DEMO_AUDIO_FORMAT)
        described = f"the demo generator, {per_genre} tracks per genre rendered for this run ({DEMO_AUDIO_FORMAT})"
    else:
        described = str(root)
    paths, seen = [], set()
    for path in load_catalogue(root).tracks["path"]:
        fingerprint = file_fingerprint(Path(path))
        if fingerprint not in seen:
            seen.add(fingerprint)
            paths.append(str(path))
        if len(paths) == n_clips:
            break
    return paths, described


def floor_pass(paths: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds to decode every clip and compute one log-mel spectrogram each."""
    wall, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        log_mel_spectrogram(load_clip(path))
    return time.perf_counter() - wall, time.process_time() - cpu


def extraction(paths: list[str], fingerprints: list[str], kind: str, jobs: int, cache_dir: Path) -> tuple[float, float]:
    """Wall and (this process's) CPU seconds of :func:`extract_features` into an empty cache."""
    wall, cpu = time.perf_counter(), time.process_time()
    extract_features(paths, fingerprints, kind=kind, cache_dir=cache_dir, n_jobs=jobs)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", nargs="?", default=None)
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: every core)")
    parser.add_argument("--dask", default=None, metavar="ADDRESS",
                        help="also time extraction on a Dask cluster: 'local' (a LocalCluster of --jobs workers) or tcp://HOST:8786")
    args = parser.parse_args()
    jobs = args.jobs or len(os.sched_getaffinity(0))
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="songsim-bench-features-") as tmp, single_threaded_blas():
        tmp = Path(tmp)
        paths, source = source_clips(args.dir, args.clips, tmp)
        fingerprints = [file_fingerprint(Path(p)) for p in paths]
        n = len(paths)
        clip = load_clip(paths[0])  # warm: librosa import, numba compilation, FFT plans
        handcrafted_features(clip)
        log_mel_spectrogram(clip)

        floor_before = floor_pass(paths)
        one_job = {kind: extraction(paths, fingerprints, kind, 1, tmp / f"cache-{kind}") for kind in ("handcrafted", "mel")}
        extract_features(paths[:8], fingerprints[:8], kind="handcrafted", cache_dir=tmp / "warm-pool", n_jobs=jobs)
        parallel = extraction(paths, fingerprints, "handcrafted", jobs, tmp / "cache-parallel")
        on_dask = dask_extraction(args.dask, jobs, paths, fingerprints, tmp) if args.dask else None
        floor_after = floor_pass(paths)

    floor_s = (floor_before[0] + floor_after[0]) / 2
    floor_cpu_s = (floor_before[1] + floor_after[1]) / 2
    floor_rate = n / floor_s

    def figures(wall_s: float, n_jobs: int, cpu_s: float | None = None) -> dict:
        per_core = n / wall_s / n_jobs
        out = {"jobs": n_jobs, "seconds": round(wall_s, 2), "clips_per_s": round(n / wall_s, 2),
               "clips_per_s_per_core": round(per_core, 2), "ratio_to_floor": round(per_core / floor_rate, 3)}
        if cpu_s is not None:
            out["cpu_ratio_to_floor"] = round(floor_cpu_s / cpu_s, 3)
        return out

    extraction_figures = {
        "handcrafted": figures(one_job["handcrafted"][0], 1, one_job["handcrafted"][1]),
        "mel": figures(one_job["mel"][0], 1, one_job["mel"][1]),
        f"handcrafted_{jobs}_jobs": figures(parallel[0], jobs),
    }
    if on_dask is not None:
        wall_s, n_workers, address = on_dask
        extraction_figures[f"handcrafted_dask_{n_workers}_workers"] = {
            "scheduler": "LocalCluster on loopback" if args.dask == "local" else address,
            **figures(wall_s, max(n_workers, 1)),
        }
    print(json.dumps({
        "clips": n,
        "clip_duration_s": config.CLIP_DURATION_S,
        "source": source,
        "floor": {
            "what": "load_clip + one log_mel_spectrogram per clip, one process",
            "clips_per_s": round(floor_rate, 2),
            "seconds_before_after": [round(floor_before[0], 2), round(floor_after[0], 2)],
            "cpu_clips_per_s": round(n / floor_cpu_s, 2),
        },
        "extraction": extraction_figures,
        "machine": machine_conditions(load_at_start),
    }, indent=2))


if __name__ == "__main__":
    main()
