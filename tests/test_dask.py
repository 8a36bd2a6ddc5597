"""Feature extraction on a Dask distributed cluster: a real ``LocalCluster`` on loopback.

Two worker *processes* (``processes=True``), as on a real cluster: tasks and arrays are
pickled across process boundaries, and the workers import songsim and librosa themselves (their
first task pays the cold imports, a few seconds). One cluster serves the whole module, closed
explicitly when the module ends, and so is every client: a ``distributed.Client`` left to the
garbage collector can deadlock the process when it is collected while another client starts
(``Client.__del__`` → ``LoopRunner.stop`` waits on the lock the starting client holds), so a
check after every test fails the test that left one.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import threading
import time
from pathlib import Path

import distributed  # in requirements.txt: a missing install must fail, not skip
import numpy as np
import pytest

from catalogues import make_small_catalogue
from dask_cluster import local_cluster

from songsim import features
from songsim.audio import file_fingerprint
from songsim.errors import SongsimError
from songsim.features import (
    FeatureExtractionError,
    extract_features,
    feature_backend,
    feature_cache_dir,
    feature_cache_path,
)


@pytest.fixture(scope="module")
def cluster():
    with local_cluster() as running:
        yield running


MODULE_CLIENTS: list[distributed.Client] = []  # the ``client`` fixture's, open until the module ends


@pytest.fixture(scope="module")
def client(cluster):
    """A client of the module's cluster for the tests that drive its workers (``client.run``),
    closed explicitly when the module ends."""
    connected = distributed.Client(cluster.scheduler_address, set_as_default=False)
    MODULE_CLIENTS.append(connected)
    try:
        yield connected
    finally:
        features._close_client(connected)  # noqa: SLF001
        MODULE_CLIENTS.remove(connected)


def open_clients() -> list[distributed.Client]:
    """Every ``distributed.Client`` object in this process not closed, alive or garbage not yet
    collected, but the ``client`` fixture's (``type``, not ``isinstance``: a dead weak proxy raises)."""
    return [
        o for o in gc.get_objects()
        if issubclass(type(o), distributed.Client) and getattr(o, "status", "closed") != "closed"
        and not any(o is kept for kept in MODULE_CLIENTS)
    ]  # fmt: skip


@pytest.fixture(autouse=True)
def no_client_left_to_the_garbage_collector():
    """After each test here: every client it made is closed (the module's ``client`` aside)."""
    yield
    left = open_clients()
    for leftover in left:
        features._close_client(leftover)  # noqa: SLF001 - so that the next tests do not deadlock on it
    assert not left, f"{len(left)} distributed.Client left open ({[c.status for c in left]}): close every client explicitly"


@pytest.fixture
def tones(make_tone) -> list[Path]:
    return [make_tone(f"t{i}.wav", f0_hz=110.0 * (i + 2), duration_s=5.0, noise=0.01 * i) for i in range(3)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cached_files(cache_dir: Path, kind: str) -> list[Path]:
    folder = feature_cache_dir(cache_dir, kind)
    return sorted(folder.glob("*.npy")) if folder.is_dir() else []


def test_cluster_gives_bit_identical_features_and_the_client_writes_the_cache(cluster, tones, tmp_path) -> None:
    paths = [*tones, tones[0]]  # a duplicate: computed once, returned twice
    fingerprints = [file_fingerprint(p) for p in paths]
    for kind in ("handcrafted", "mel"):
        local = extract_features(paths, fingerprints, kind=kind, cache_dir=tmp_path / "local", n_jobs=1)
        progress: list[tuple[int, int]] = []
        remote = extract_features(
            paths, fingerprints, kind=kind, cache_dir=tmp_path / "dask", dask_address=cluster.scheduler_address,
            on_progress=lambda done, total: progress.append((done, total)),
        )
        # once at the start, then after each of the 3 distinct tracks (the duplicate counts twice)
        assert progress[0] == (0, 4) and progress[-1] == (4, 4) and len(progress) == 4
        assert [done for done, _ in progress] == sorted(done for done, _ in progress)
        assert len(local) == len(remote) == 4
        for a, b in zip(local, remote):
            assert a.dtype == b.dtype == np.float32
            assert np.array_equal(a, b), kind
        # the cache files themselves are byte-identical to the local backend's
        local_files, dask_files = cached_files(tmp_path / "local", kind), cached_files(tmp_path / "dask", kind)
        assert [f.name for f in local_files] == [f.name for f in dask_files] and len(dask_files) == 3
        assert all(a.read_bytes() == b.read_bytes() for a, b in zip(local_files, dask_files))


def test_bad_files_are_reported_by_name_and_the_others_cached(cluster, tones, corrupt_wav, short_wav, tmp_path) -> None:
    missing = tmp_path / "nowhere" / "gone.wav"
    paths = [tones[0], corrupt_wav, tones[1], short_wav, missing]
    fingerprints = [file_fingerprint(p) for p in paths[:4]] + ["missingfingerprint"]
    with pytest.raises(FeatureExtractionError) as local:
        extract_features(paths[:4], fingerprints[:4], kind="mel", cache_dir=tmp_path / "local", n_jobs=1)
    with pytest.raises(FeatureExtractionError) as remote:
        extract_features(paths, fingerprints, kind="mel", cache_dir=tmp_path / "dask", dask_address=cluster.scheduler_address)
    failures = remote.value.failures
    assert list(failures) == [str(corrupt_wav), str(short_wav), str(missing)]
    # the same reasons as the local pool gives, word for word
    assert {p: failures[p] for p in local.value.failures} == local.value.failures
    assert "neither on this machine nor on worker tcp://127.0.0.1:" in failures[str(missing)]
    assert "3 of 5 audio files could not be analysed" in str(remote.value)
    assert all(feature_cache_path(tmp_path / "dask", "mel", fp).is_file() for fp in (fingerprints[0], fingerprints[2]))


def _hide_audio_from_this_worker(hide: bool) -> None:
    """Run in each worker (``client.run``): make :func:`songsim.features._readable` say no,
    as on a worker where the catalogue is not mounted."""

    from songsim import features as worker_features

    worker_features._readable = (lambda path: False) if hide else (  # noqa: SLF001
        lambda path: os.path.isfile(path) and os.access(path, os.R_OK)
    )


def test_a_worker_that_cannot_see_the_audio_says_how_to_fix_it(cluster, client, tones, tmp_path) -> None:
    fingerprints = [file_fingerprint(p) for p in tones]
    workers = set(client.scheduler_info()["workers"])
    client.run(_hide_audio_from_this_worker, True)
    try:
        with pytest.raises(FeatureExtractionError) as caught:
            extract_features(tones, fingerprints, kind="mel", cache_dir=tmp_path, dask_address=cluster.scheduler_address)
    finally:
        client.run(_hide_audio_from_this_worker, False)
    failures = caught.value.failures
    assert list(failures) == [str(p) for p in tones]
    for path, reason in failures.items():
        worker = reason.removeprefix("worker ").split(" ")[0]
        assert worker in workers
        assert reason == (
            f"worker {worker} cannot read {path}: mount the catalogue at the same path on every worker (see README)"
        )
    assert cached_files(tmp_path, "mel") == []


def _break_tasks_on_this_worker(broken: bool) -> None:
    """Run in each worker (``client.run``): make every feature task raise, as on a worker whose
    environment is broken (the task itself reports a bad file; it never raises for one)."""
    from songsim import features as worker_features

    def broken_task(*args):
        raise RuntimeError("this worker's environment is broken")

    if broken:
        worker_features.__dict__.setdefault("_working_task", worker_features._dask_task)  # noqa: SLF001
        worker_features._dask_task = broken_task  # noqa: SLF001
    elif "_working_task" in worker_features.__dict__:
        worker_features._dask_task = worker_features.__dict__.pop("_working_task")  # noqa: SLF001


def test_a_broken_cluster_is_one_error_about_the_cluster_not_a_line_per_file(cluster, client, tones, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(features, "DASK_MAX_LOST_IN_A_ROW", 2)
    fingerprints = [file_fingerprint(p) for p in tones]
    client.run(_break_tasks_on_this_worker, True)
    try:
        with pytest.raises(SongsimError, match="lost 2 tasks in a row") as caught:
            extract_features(tones, fingerprints, kind="handcrafted", cache_dir=tmp_path, dask_address=cluster.scheduler_address)
    finally:
        client.run(_break_tasks_on_this_worker, False)
    assert not isinstance(caught.value, FeatureExtractionError)
    assert cluster.scheduler_address in str(caught.value) and "environment is broken" in str(caught.value)


def test_unreachable_scheduler_is_a_clear_error_fast(tones, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(features, "DASK_CONNECT_TIMEOUT_S", 1.0)
    address = f"tcp://127.0.0.1:{free_port()}"
    fingerprints = [file_fingerprint(p) for p in tones]
    started = time.perf_counter()
    with pytest.raises(SongsimError) as caught:
        extract_features(tones, fingerprints, kind="mel", cache_dir=tmp_path, dask_address=address)
    assert time.perf_counter() - started < 10.0
    message = str(caught.value)
    assert f"cannot connect to the Dask scheduler at {address}" in message
    assert "tcp://HOST:8786" in message and "--dask" in message
    assert cached_files(tmp_path, "mel") == []
    with pytest.raises(SongsimError, match="cannot connect to the Dask scheduler at foo://nowhere"):
        extract_features(tones, fingerprints, kind="mel", cache_dir=tmp_path, dask_address="foo://nowhere")
    # every track cached: nothing to compute, so no connection is attempted
    extract_features(tones, fingerprints, kind="mel", cache_dir=tmp_path / "warm", n_jobs=1)
    assert len(extract_features(tones, fingerprints, kind="mel", cache_dir=tmp_path / "warm", dask_address=address)) == 3
    assert features.DASK_CONNECT_TIMEOUT_S <= 10  # the default keeps a typo from hanging a build


def io_loop_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "IO loop" and t.is_alive()}


def test_a_failed_or_interrupted_connect_leaves_no_client_to_the_garbage_collector(cluster, tones, tmp_path, monkeypatch) -> None:
    # the hang this guards against: a half-started client (its constructor raised) collected
    # while the next client starts, holding distributed's LoopRunner lock that its close needs
    from distributed.utils import LoopRunner

    monkeypatch.setattr(features, "DASK_CONNECT_TIMEOUT_S", 1.0)
    fingerprints = [file_fingerprint(p) for p in tones]
    threads = io_loop_threads()
    for address in ("foo://nowhere", f"tcp://127.0.0.1:{free_port()}"):  # a ValueError, an OSError
        with pytest.raises(SongsimError, match="cannot connect"):
            extract_features(tones, fingerprints, kind="mel", cache_dir=tmp_path, dask_address=address)

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while waiting for workers: a connected client

    with monkeypatch.context() as patched:
        patched.setattr(distributed.Client, "wait_for_workers", interrupted)
        with pytest.raises(KeyboardInterrupt):
            extract_features(tones, fingerprints, kind="mel", cache_dir=tmp_path, dask_address=cluster.scheduler_address)
    assert open_clients() == []  # closed, though the tracebacks above still hold them
    assert io_loop_threads() <= threads  # and their IO-loop threads stopped

    def collect_as_a_starting_client_would() -> None:
        with LoopRunner._lock:  # noqa: SLF001 - held by LoopRunner.start, where the hang was
            gc.collect()

    collected = threading.Thread(target=collect_as_a_starting_client_would, daemon=True)
    collected.start()
    collected.join(timeout=30)
    assert not collected.is_alive(), "collecting a client deadlocks on distributed's LoopRunner lock"


def test_interrupted_cluster_run_keeps_the_tracks_received(cluster, tones, tmp_path) -> None:
    fingerprints = [file_fingerprint(p) for p in tones]

    def stop_after_first(done: int, total: int) -> None:
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features(
            tones, fingerprints, kind="mel", cache_dir=tmp_path, dask_address=cluster.scheduler_address,
            on_progress=stop_after_first,
        )
    assert len(cached_files(tmp_path, "mel")) >= 1


def test_backend_names() -> None:
    assert feature_backend(dask_address=" tcp://10.0.0.5:8786 ") == "dask tcp://10.0.0.5:8786"
    assert feature_backend(n_jobs=1) == "local, 1 process"
    assert feature_backend(n_jobs=4) == "local, 4 processes"


def test_cli_build_on_the_cluster(cluster, tmp_path, monkeypatch, capsys) -> None:
    from songsim.cli import main

    root = make_small_catalogue(tmp_path / "cat", per_genre=2)
    # PCA maps only: UMAP's first fit costs ~20 s of numba compilation and is not under test here
    argv = ["build", str(root), "--spaces", "handcrafted,random", "--maps", "pca", "--dask", cluster.scheduler_address]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert [b for b in report["built"] if b.startswith("map:")] == ["map:handcrafted/pca", "map:random/pca"]
    assert report["feature_backend"] == f"dask {cluster.scheduler_address}"
    assert report["features"] == {"handcrafted": {"computed": 8, "reused": 0}}
    assert {"handcrafted", "random", "map:handcrafted/pca"} <= set(report["built"])
    # the cache the cluster filled is the one a local run reads: nothing left to compute
    audio = sorted((root / "audio").glob("*.wav"))
    progress: list[tuple[int, int]] = []
    extract_features(
        audio, [file_fingerprint(p) for p in audio], kind="handcrafted", cache_dir=root / ".songsim" / "features",
        n_jobs=1, on_progress=lambda done, total: progress.append((done, total)),
    )
    assert progress == [(8, 8)]

    monkeypatch.setattr(features, "DASK_CONNECT_TIMEOUT_S", 1.0)
    fresh = make_small_catalogue(tmp_path / "fresh", per_genre=1)
    address = f"tcp://127.0.0.1:{free_port()}"
    assert main(["build", str(fresh), "--spaces", "handcrafted", "--dask", address]) == 2
    err = capsys.readouterr().err
    assert f"error: cannot connect to the Dask scheduler at {address}" in err and "Traceback" not in err
