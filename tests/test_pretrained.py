"""The ``musicnn`` space: a cached per-track feature, built, searched, uploads, tags, resume,
and the same numbers on a Dask cluster."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from catalogues import make_small_catalogue
from dask_cluster import local_cluster

from songsim import features
from songsim.audio import file_fingerprint
from songsim.build import build
from songsim.catalogue import load_catalogue
from songsim.features import MUSICNN_DIM, extract_features, feature_cache_dir
from songsim.models import musicnn as mn
from songsim.query import search, store_upload
from songsim.spaces.pretrained import MusicnnSpace, query_tags, top_tags
from songsim.spaces.store import features_cache_dir, load_built_space


@pytest.fixture(scope="module")
def musicnn_catalogue(tmp_path_factory) -> Path:
    root = make_small_catalogue(tmp_path_factory.mktemp("musicnn"), per_genre=2)  # 8 songs of 6 s
    report = build(root, spaces=["musicnn"], map_methods=("pca",), n_jobs=1)
    assert "musicnn" in report.built and report.features == {"musicnn": {"computed": 8, "reused": 0}}
    return root


def test_the_space_is_the_mean_penultimate_layer(musicnn_catalogue):
    catalogue = load_catalogue(musicnn_catalogue)
    space = load_built_space(catalogue, "musicnn")
    assert isinstance(space, MusicnnSpace) and space.metric == "cosine" and not space.trainable
    assert space.vectors_.shape == (8, 200) and space.vectors_.dtype == np.float32
    assert space.tags_.shape == (8, 50) and ((space.tags_ >= 0) & (space.tags_ <= 1)).all()
    cached = extract_features(
        catalogue.tracks["path"].tolist(), catalogue.audio_fingerprints(), kind="musicnn",
        cache_dir=features_cache_dir(catalogue), n_jobs=1,
    )  # fmt: skip
    assert cached.shape == (8, MUSICNN_DIM)
    np.testing.assert_array_equal(space.vectors_, cached[:, :200])
    # the cached feature is the model's output averaged over the song's patches
    from songsim.audio import load_clip

    clip = load_clip(catalogue.tracks["path"].iloc[3], sr_hz=22_050, duration_s=30.0, position="middle")
    embedding, tags = mn.embed_clip(clip, sr_hz=22_050, device="cpu")
    np.testing.assert_array_equal(cached[3], np.concatenate([embedding, tags]))
    # songs of a genre are closer to each other than to the other genres, on average
    unit = space.vectors_ / np.linalg.norm(space.vectors_, axis=1, keepdims=True)
    similarity = unit @ unit.T
    genre = catalogue.labels("genre")
    same = [similarity[i, j] for i in range(8) for j in range(8) if i != j and genre[i] == genre[j]]
    other = [similarity[i, j] for i in range(8) for j in range(8) if genre[i] != genre[j]]
    assert np.mean(same) > np.mean(other)


def test_search_uploads_and_what_the_tagger_hears(musicnn_catalogue):
    catalogue = load_catalogue(musicnn_catalogue)
    space = load_built_space(catalogue, "musicnn")
    track_id = catalogue.track_ids[2]
    found = search(catalogue, "musicnn", track_id=track_id, k=3)
    assert found.metric == "cosine" and len(found.track_ids(catalogue)) == 3 and track_id not in found.track_ids(catalogue)
    heard = query_tags(catalogue, space, track_id=track_id, k=5)
    assert len(heard) == 5 and [p for _, p in heard] == sorted((p for _, p in heard), reverse=True)
    assert heard == top_tags(space.tags_[2], k=5) and all(tag in mn.msd_tags() for tag, _ in heard)
    # an upload of the same audio: same vector, same tags, through the upload path
    path = Path(catalogue.tracks["path"].iloc[2])
    upload = store_upload(catalogue, path.read_bytes(), "mine.wav")
    by_upload = search(catalogue, "musicnn", upload=upload, k=3)
    np.testing.assert_array_equal(by_upload.vector, space.vectors_[2])
    assert query_tags(catalogue, space, upload=upload, k=5) == heard
    # a space that is not a tagger hears nothing
    from songsim.spaces.baseline import RandomSpace

    assert query_tags(catalogue, RandomSpace(), track_id=track_id) == []


def test_a_killed_extraction_resumes_with_the_same_numbers(musicnn_catalogue, tmp_path):
    catalogue = load_catalogue(musicnn_catalogue)
    paths, fingerprints = catalogue.tracks["path"].tolist(), catalogue.audio_fingerprints()

    def stop_after_three(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features(paths, fingerprints, kind="musicnn", cache_dir=tmp_path, n_jobs=1, on_progress=stop_after_three)
    assert len(list(feature_cache_dir(tmp_path, "musicnn").glob("*.npy"))) == 3
    progress: list[tuple[int, int]] = []
    resumed = extract_features(paths, fingerprints, kind="musicnn", cache_dir=tmp_path, n_jobs=1, on_progress=lambda d, t: progress.append((d, t)))
    assert progress[0] == (3, 8)  # only the other 5 were computed
    uninterrupted = extract_features(paths, fingerprints, kind="musicnn", cache_dir=features_cache_dir(catalogue), n_jobs=1)
    np.testing.assert_array_equal(resumed, uninterrupted)


def test_the_process_pool_gives_the_same_numbers_as_one_process(musicnn_catalogue, tmp_path):
    catalogue = load_catalogue(musicnn_catalogue)
    paths, fingerprints = catalogue.tracks["path"].tolist(), catalogue.audio_fingerprints()
    assert len(paths) >= features.MIN_TRACKS_FOR_POOL  # so that n_jobs=2 really uses the pool
    pooled = extract_features(paths, fingerprints, kind="musicnn", cache_dir=tmp_path, n_jobs=2)
    in_process = extract_features(paths, fingerprints, kind="musicnn", cache_dir=features_cache_dir(catalogue), n_jobs=1)
    assert np.array_equal(pooled, in_process)


def test_the_cache_key_names_the_weights_and_the_port():
    settings = features._settings("musicnn")  # noqa: SLF001
    assert settings["weights_sha256"] == mn.weights_digest() and settings["port_version"] == features.MUSICNN_PORT_VERSION
    assert settings["log"].endswith("float32") and settings["patch_frames"] == 187
    assert feature_cache_dir("x", "musicnn").name.startswith("musicnn-")


def test_without_musicnn_installed_one_error_says_what_to_install(tmp_path, make_tone, monkeypatch):
    def missing():
        raise mn.MusicnnNotInstalledError("The pretrained MusiCNN space needs ...: pip install --no-deps -r requirements-models.txt")

    monkeypatch.setattr(mn, "_package_root", missing)
    tone = make_tone("t.wav", duration_s=6.0)
    with pytest.raises(mn.MusicnnNotInstalledError, match="requirements-models.txt"):
        extract_features([tone], [file_fingerprint(tone)], kind="musicnn", cache_dir=tmp_path, n_jobs=1)
    assert not list(tmp_path.rglob("*.npy"))


# --------------------------------------------------------------------------------------------
# Dask


@pytest.fixture(scope="module")
def cluster():
    with local_cluster() as running:
        yield running


def _model_loads(address: str) -> dict[str, int]:
    """How many times each worker process loaded the MusiCNN weights."""
    import distributed

    client = distributed.Client(address, set_as_default=False)
    try:
        return client.run(lambda: __import__("songsim.models.musicnn", fromlist=["_"])._process_model.cache_info().misses)
    finally:
        features._close_client(client)  # noqa: SLF001


@pytest.mark.timeout(600)
def test_a_dask_build_gives_bit_identical_embeddings_and_loads_the_weights_once_per_worker(musicnn_catalogue, cluster, tmp_path):
    root = Path(shutil.copytree(musicnn_catalogue, tmp_path / "copy", ignore=shutil.ignore_patterns(".songsim")))
    report = build(root, spaces=["musicnn"], map_methods=(), dask_address=cluster.scheduler_address)
    assert report.features == {"musicnn": {"computed": 8, "reused": 0}}
    assert report.feature_backend == f"dask {cluster.scheduler_address}"
    remote = load_built_space(load_catalogue(root), "musicnn")
    local = load_built_space(load_catalogue(musicnn_catalogue), "musicnn")
    assert np.array_equal(remote.vectors_, local.vectors_) and np.array_equal(remote.tags_, local.tags_)
    # the cache files themselves are byte-identical
    local_files = sorted(feature_cache_dir(musicnn_catalogue / ".songsim" / "features", "musicnn").glob("*.npy"))
    remote_files = sorted(feature_cache_dir(root / ".songsim" / "features", "musicnn").glob("*.npy"))
    assert [f.name for f in local_files] == [f.name for f in remote_files] and len(remote_files) == 8
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(local_files, remote_files))
    loads = _model_loads(cluster.scheduler_address)
    assert sorted(loads.values()) in ([0, 1], [1, 1]), loads  # once per worker that got a track
