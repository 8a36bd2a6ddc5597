"""Incremental and resumable builds: adding tracks to a built catalogue analyses only the new
audio and refits only the whole-set stages, with the same result as building from scratch; a
build killed (SIGKILL) at any stage resumes to that same result, with nothing corrupt left."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from catalogues import GENRES, SR_HZ, _song, make_small_catalogue
from songsim.build import build, remove_stale_temporaries
from songsim.catalogue import load_catalogue
from songsim.features import FEATURE_KINDS, feature_cache_dir
from songsim.maps import load_map
from songsim.spaces.store import SPACE_FILE, load_space, map_path, space_dir

#: one space per feature kind that needs no training (a trained space resumes the same way)
SPACES = ("handcrafted", "random", "spectrogram-pca")
METHODS = ("pca",)
N_ADDED = 10


def add_tracks(root: Path, n: int) -> list[str]:
    """Write ``n`` new songs into ``root/audio`` and append their rows to tracks.csv."""
    rng = np.random.default_rng(99)
    ids = []
    with open(root / "tracks.csv", "a") as handle:
        for i in range(n):
            genre = GENRES[i % len(GENRES)]
            track_id = f"{genre}-added-{i:02d}"
            sf.write(root / "audio" / f"{track_id}.wav", _song(genre, 20 + i, rng), SR_HZ)
            handle.write(f"{track_id},audio/{track_id}.wav,Added {i},New Artist {i % 3},New LP,2001,{genre},4.0,6.0\n")
            ids.append(track_id)
    return ids


def feature_files(root: Path) -> dict[str, int]:
    """Every cached feature file → its modification time (ns)."""
    cache = root / ".songsim" / "features"
    return {str(p.relative_to(cache)): p.stat().st_mtime_ns for p in cache.rglob("*.npy")}


def built_result(root: Path) -> dict[str, np.ndarray]:
    """The vectors of every space and the coordinates of every map, by name."""
    catalogue = load_catalogue(root)
    result = {}
    for name in SPACES:
        result[name] = load_space(space_dir(catalogue.derived_dir, name)).vectors_
        for method in METHODS:
            result[f"{name}/{method}"] = load_map(map_path(catalogue, name, method)).coords_
    return result


def assert_same_result(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Equal up to float32 BLAS rounding: a fit in the killed subprocess and one in this
    process may use different BLAS thread counts, which reorders the sums of the 82 000-wide
    spectrogram PCA (seen: 1e-5 of its scale)."""
    assert actual.keys() == expected.keys()
    for name in expected:
        scale = float(np.abs(expected[name]).max())
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-4, atol=1e-4 * scale, err_msg=name)


@pytest.fixture(scope="module")
def built_small(tmp_path_factory) -> Path:
    root = make_small_catalogue(tmp_path_factory.mktemp("incremental") / "cat", per_genre=3)
    build(root, spaces=SPACES, map_methods=METHODS, n_jobs=1)
    return root


@pytest.fixture(scope="module")
def grown_from_scratch(built_small, tmp_path_factory) -> dict[str, np.ndarray]:
    """The result of building the grown catalogue in a fresh folder (no cache at all)."""
    root = make_small_catalogue(tmp_path_factory.mktemp("scratch") / "cat", per_genre=3)
    add_tracks(root, N_ADDED)
    build(root, spaces=SPACES, map_methods=METHODS, n_jobs=1)
    return built_result(root)


def test_adding_ten_tracks_analyses_only_them_and_equals_a_build_from_scratch(built_small, grown_from_scratch, tmp_path):
    root = Path(shutil.copytree(built_small, tmp_path / "cat"))
    n_before = len(load_catalogue(root))
    before = feature_files(root)
    add_tracks(root, N_ADDED)

    report = build(root, spaces=SPACES, map_methods=METHODS, n_jobs=1)

    assert report.features == {
        "handcrafted": {"computed": N_ADDED, "reused": n_before},
        "mel": {"computed": N_ADDED, "reused": n_before},
    }
    after = feature_files(root)
    assert {k: after[k] for k in before} == before  # no earlier track's features rewritten
    assert len(after) == len(before) + 2 * N_ADDED
    # every space and map depends on the whole set, so each is refitted
    assert sorted(report.built) == sorted([*SPACES, *(f"map:{s}/{m}" for s in SPACES for m in METHODS)])
    assert_same_result(built_result(root), grown_from_scratch)

    again = build(root, spaces=SPACES, map_methods=METHODS, n_jobs=1)
    assert again.built == []
    assert again.features == {}  # nothing to fit, so no feature is even read


def test_an_unreadable_stored_space_is_refitted_not_an_error(built_small, tmp_path):
    root = Path(shutil.copytree(built_small, tmp_path / "cat"))
    expected = built_result(root)
    (space_dir(root / ".songsim", "handcrafted") / SPACE_FILE).write_bytes(b"truncated")
    report = build(root, spaces=SPACES, map_methods=METHODS, n_jobs=1)
    assert "handcrafted" in report.built
    assert_same_result(built_result(root), expected)


def test_stale_temporaries_are_removed_and_fresh_ones_kept(tmp_path):
    old = tmp_path / "spaces" / ".space.joblib.0123456789ab.tmp"
    old.parent.mkdir()
    old.write_bytes(b"half")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    fresh = tmp_path / ".x.npy.ba9876543210.tmp"
    fresh.write_bytes(b"being written")
    kept = tmp_path / "data.npy"
    kept.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == 1
    assert not old.exists() and fresh.exists() and kept.exists()


# ------------------------------------------------------------------------------------------
# killed builds

_BUILD_SCRIPT = """
import sys
from songsim.build import build
build(sys.argv[1], spaces={spaces!r}, map_methods={methods!r}, n_jobs=1,
      on_progress=lambda stage, fraction, message: print(stage, "|", message, flush=True))
print("FINISHED", flush=True)
"""


def kill_build_at(root: Path, marker: str, script: str | None = None) -> list[str]:
    """Run a build (``script``, given the catalogue folder as argv[1]) in a subprocess and
    SIGKILL it as soon as it prints a line containing ``marker``; returns the lines printed."""
    script = script or _BUILD_SCRIPT.format(spaces=SPACES, methods=METHODS)
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(root)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1]
    )
    lines = []
    try:
        for line in process.stdout:
            lines.append(line.strip())
            if marker in line:
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.wait(timeout=120)
        process.stdout.close()
    assert any(marker in line for line in lines), f"the build never reached {marker!r}: {lines[-5:]}"
    assert "FINISHED" not in lines
    return lines


@pytest.mark.parametrize(
    ("marker", "kept"),
    [
        ("handcrafted features 15/22", []),  # mid extraction (12 cached, 3 new analysed)
        ("spectrogram-pca: fitting", ["handcrafted", "random"]),  # a space being fitted
        ("fitting the PCA map of random", [*SPACES, "map:handcrafted/pca"]),  # maps being fitted
    ],
)
def test_a_killed_build_resumes_where_it_stopped_to_the_same_result(built_small, grown_from_scratch, tmp_path, marker, kept):
    root = Path(shutil.copytree(built_small, tmp_path / "cat"))
    add_tracks(root, N_ADDED)
    kill_build_at(root, marker)

    report = build(root, spaces=SPACES, map_methods=METHODS, n_jobs=1)

    assert_same_result(built_result(root), grown_from_scratch)
    # what was finished before the kill is not redone (the stage under way may have finished
    # between the progress line and the signal, so it can be reused too)
    assert report.reused[: len(kept)] == kept and len(report.reused) <= len(kept) + 1
    assert sorted(report.built + report.reused) == sorted([*SPACES, *(f"map:{s}/{m}" for s in SPACES for m in METHODS)])
    computed = {kind: counts["computed"] for kind, counts in report.features.items()}
    if kept:
        assert computed == {"mel": 0} if "spectrogram-pca" not in kept else computed == {}
    else:  # the tracks analysed before the kill were kept; the rest were analysed now
        assert 0 < computed["handcrafted"] < N_ADDED and computed["mel"] == N_ADDED
    for kind in FEATURE_KINDS:
        folder = feature_cache_dir(root / ".songsim" / "features", kind)
        for path in folder.glob("*.npy") if folder.is_dir() else []:
            np.load(path)  # nothing half-written under a final name


def test_a_second_build_waits_for_the_first_and_says_so(built_small, tmp_path):
    root = Path(shutil.copytree(built_small, tmp_path / "cat"))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from filelock import FileLock; l = FileLock(sys.argv[1]); l.acquire(); "
         "print('held', flush=True); time.sleep(3)", str(root / ".songsim" / "build.lock")],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    messages = []
    started = time.monotonic()
    report = build(root, spaces=SPACES, map_methods=METHODS, n_jobs=1, on_progress=lambda s, f, m: messages.append(m))
    holder.wait(timeout=30)
    holder.stdout.close()
    assert "waiting for another build of this catalogue to finish" in messages
    assert time.monotonic() - started >= 1.0
    assert report.built == []


def test_a_grown_collection_re_imported_analyses_only_its_new_files(tmp_path):
    """The user's path: import a folder, build, drop new files in, re-import, build again."""
    from songsim.importers import import_collection

    rng = np.random.default_rng(3)
    audio = tmp_path / "collection"
    for i in range(8):
        genre = GENRES[i % len(GENRES)]
        (audio / genre).mkdir(parents=True, exist_ok=True)
        sf.write(audio / genre / f"song{i}.wav", _song(genre, i, rng), SR_HZ)
    root = tmp_path / "cat"
    import_collection(root, audio, layout="folders")
    build(root, spaces=("handcrafted",), map_methods=(), n_jobs=1)
    ids_before = load_catalogue(root).track_ids

    for i in range(8, 10):
        sf.write(audio / GENRES[0] / f"song{i}.wav", _song(GENRES[0], i, rng), SR_HZ)
    import_collection(root, audio, layout="folders", replace=True)
    report = build(root, spaces=("handcrafted",), map_methods=(), n_jobs=1)

    assert set(ids_before) < set(load_catalogue(root).track_ids)  # earlier tracks keep their ids
    assert report.features == {"handcrafted": {"computed": 2, "reused": 8}}


_TRAIN_SCRIPT = """
import sys
from songsim.build import build
from songsim.spaces.base import TrainingOptions
build(sys.argv[1], spaces=("genre-cnn",), map_methods=(), n_jobs=1, training=TrainingOptions(
    max_epochs=4, on_epoch=lambda space, epoch, total, train, val: print(space, "epoch", f"{epoch}/{total}", flush=True)))
print("FINISHED", flush=True)
"""


def test_a_build_killed_mid_training_resumes_from_the_last_epoch_to_the_same_model(tmp_path):
    from songsim.spaces.base import TrainingOptions
    from songsim.spaces.store import TRAINING_STATE_FILE

    reference_root = make_small_catalogue(tmp_path / "reference", per_genre=4)
    build(reference_root, spaces=("genre-cnn",), map_methods=(), n_jobs=1, training=TrainingOptions(max_epochs=4))
    reference = load_space(space_dir(reference_root / ".songsim", "genre-cnn"))

    root = make_small_catalogue(tmp_path / "killed", per_genre=4)
    kill_build_at(root, "genre-cnn epoch 2/4", _TRAIN_SCRIPT)
    state = space_dir(root / ".songsim", "genre-cnn") / TRAINING_STATE_FILE
    assert state.is_file()

    epochs = []
    options = TrainingOptions(max_epochs=4, on_epoch=lambda space, epoch, *rest: epochs.append(epoch))
    build(root, spaces=("genre-cnn",), map_methods=(), n_jobs=1, training=options)

    assert epochs == [3, 4]  # epochs 1-2 were not trained again
    assert not state.exists()
    resumed = load_space(space_dir(root / ".songsim", "genre-cnn"))
    np.testing.assert_allclose(resumed.vectors_, reference.vectors_, rtol=1e-5, atol=1e-6)
    history, expected = resumed.checkpoint().history, reference.checkpoint().history
    np.testing.assert_allclose(history.train_loss, expected.train_loss, rtol=1e-5)
    assert history.best_epoch == expected.best_epoch


def test_a_stale_training_state_is_ignored(tmp_path):
    """A state file of another fit (the catalogue changed since the kill) is not resumed."""
    from songsim.spaces.base import TrainingOptions
    from songsim.spaces.store import TRAINING_STATE_FILE

    root = make_small_catalogue(tmp_path / "cat", per_genre=4)
    kill_build_at(root, "genre-cnn epoch 2/4", _TRAIN_SCRIPT)
    add_tracks(root, 4)
    epochs = []
    build(root, spaces=("genre-cnn",), map_methods=(), n_jobs=1,
          training=TrainingOptions(max_epochs=4, on_epoch=lambda space, epoch, *rest: epochs.append(epoch)))
    assert epochs == [1, 2, 3, 4]
    assert not (space_dir(root / ".songsim", "genre-cnn") / TRAINING_STATE_FILE).exists()


def test_a_fit_by_an_older_version_of_the_algorithm_counts_as_not_built(built_small, tmp_path):
    """A space whose algorithm changed (its version) may take other inputs now: its old fit is
    neither listed nor loaded, and the next build refits it."""
    import json

    from songsim.errors import NotBuiltError
    from songsim.spaces.store import built_space_names, load_built_space

    root = Path(shutil.copytree(built_small, tmp_path / "cat"))
    meta_path = space_dir(root / ".songsim", "handcrafted") / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["fit_key"] = meta["fit_key"].replace("handcrafted-v1-", "handcrafted-v0-")
    meta_path.write_text(json.dumps(meta))
    catalogue = load_catalogue(root)
    assert "handcrafted" not in built_space_names(catalogue)
    with pytest.raises(NotBuiltError, match="older songsim .* --spaces handcrafted"):
        load_built_space(catalogue, "handcrafted")
    assert "handcrafted" in build(root, spaces=SPACES, map_methods=METHODS, n_jobs=1).built
    assert "handcrafted" in built_space_names(load_catalogue(root))


def test_a_sampled_maps_key_names_its_sample_and_strata(built_small, tmp_path, monkeypatch):
    """Only a map fitted on a sample (a large catalogue, a non-linear method) carries the
    sampling rule in its key, with the labels it was stratified by: relabelling refits it."""
    from songsim.spaces.store import map_fit_key

    root = Path(shutil.copytree(built_small, tmp_path / "cat"))
    small = load_catalogue(root)
    assert map_fit_key(small, "handcrafted", "umap").endswith("-umap-seed0")  # 12 tracks: every row is fitted
    monkeypatch.setenv("SONGSIM_MAP_SAMPLE_SIZE", "5")
    umap_key = map_fit_key(small, "handcrafted", "umap")
    assert "-umap-seed0-sample5-by-genre-" in umap_key
    assert map_fit_key(small, "handcrafted", "pca").endswith("-pca-seed0")  # PCA always fits every row
    text = (root / "tracks.csv").read_text()
    (root / "tracks.csv").write_text(text.replace(",pads,", ",drums,", 1))
    assert map_fit_key(load_catalogue(root), "handcrafted", "umap") != umap_key



def test_the_large_catalogue_thresholds_are_settings(built_small, tmp_path, monkeypatch):
    """Above $SONGSIM_ANNOY_ABOVE tracks neighbours come from an annoy index; a malformed
    setting is a clear error naming it."""
    from songsim.errors import SongsimError
    from songsim.neighbours import AnnoyIndex, ExactIndex
    from songsim.spaces.store import load_built_space, open_index

    catalogue = load_catalogue(shutil.copytree(built_small, tmp_path / "cat"))  # the index is stored in it
    space = load_built_space(catalogue, "handcrafted")
    assert isinstance(open_index(catalogue, space, metric="cosine"), ExactIndex)
    monkeypatch.setenv("SONGSIM_ANNOY_ABOVE", "10")  # 12 tracks
    index = open_index(catalogue, space, metric="cosine")
    assert isinstance(index, AnnoyIndex)
    assert index.query_row(0, k=3).indices[0] != 0  # the query itself is never its own neighbour
    monkeypatch.setenv("SONGSIM_ANNOY_ABOVE", "lots")
    with pytest.raises(SongsimError, match="SONGSIM_ANNOY_ABOVE='lots' is not a whole number"):
        open_index(catalogue, space, metric="cosine")
