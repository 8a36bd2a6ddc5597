"""The learned spaces: built through build() with tiny epochs on a small labelled catalogue
with Spotify-style features; uploads, skips, determinism, pickling, metadata, the ae2d map."""

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalogues import assert_upload_path_gives_catalogue_vectors
from songsim.build import build
from songsim.catalogue import SPOTIFY_FEATURES, load_catalogue
from songsim.maps import fit_map, load_map, map_methods, save_map
from songsim.measure import MEASURED_FEATURES, song_metadata
from songsim.query import embed_upload, store_upload
from songsim.spaces.base import TrainingOptions, space_names
from songsim.spaces.inputs import space_inputs
from songsim.spaces.learned import (
    CNNSpaceConfig,
    GenreCNNSpace,
    TrainConfig,
    _balanced_weights,
    crop_starts,
    training_summary,
)
from songsim.spaces.store import features_cache_dir, load_built_space, space_dir, stored_fit_key

DIMS = {"genre-cnn": 256, "emotion-cnn": 256, "metadata": 11, "fusion-ae": 64, "ae-2d": 2, "triplet": 64, "musicnn-triplet": 128}
LEARNED_SPACES = space_names(family="learned")
TINY = TrainingOptions(max_epochs=2)


def _add_spotify_features(root: Path) -> None:
    tracks = pd.read_csv(root / "tracks.csv")
    rng = np.random.default_rng(0)
    n = len(tracks)
    genre_code = tracks["genre"].astype("category").cat.codes.to_numpy().astype(float)
    for column in SPOTIFY_FEATURES:
        if column != "valence":
            tracks[column] = np.clip(0.2 * genre_code + rng.uniform(0.0, 0.3, n), 0.0, 1.0).round(3)
    tracks["loudness"] = (-30 + 5 * genre_code + rng.uniform(0, 3, n)).round(2)
    tracks["tempo"] = (80 + 20 * genre_code + rng.uniform(0, 10, n)).round(1)
    tracks["mode"] = rng.integers(0, 2, n)
    tracks["time_signature"] = 4
    tracks.to_csv(root / "tracks.csv", index=False)


@pytest.fixture(scope="module")
def learned_catalogue(tmp_path_factory) -> Path:
    """The small test catalogue plus Spotify-style features, with every learned space built
    (2 epochs per model, PCA maps only); musicnn-triplet brings musicnn into the build, so the
    fused spaces use every optional input: emotion-cnn, metadata, handcrafted and musicnn."""
    from catalogues import make_small_catalogue

    root = make_small_catalogue(tmp_path_factory.mktemp("learned"))
    _add_spotify_features(root)
    report = build(root, spaces=LEARNED_SPACES, map_methods=("pca",), n_jobs=1, training=TINY)
    assert report.skipped == {}
    return root


def test_every_learned_space_is_built_with_its_dimension(learned_catalogue):
    catalogue = load_catalogue(learned_catalogue)
    for name, dim in DIMS.items():
        space = load_built_space(catalogue, name)
        assert space.vectors_.shape == (len(catalogue), dim), name
        assert space.vectors_.dtype == np.float32 and np.isfinite(space.vectors_).all()


def test_supervised_spaces_share_one_held_out_split(learned_catalogue):
    catalogue = load_catalogue(learned_catalogue)
    genre = load_built_space(catalogue, "genre-cnn")
    assert len(genre.test_rows_) >= 2 and not set(genre.test_rows_) & set(genre.train_rows_)
    for name in ("emotion-cnn", "fusion-ae", "ae-2d", "triplet", "musicnn-triplet"):
        assert np.array_equal(load_built_space(catalogue, name).test_rows_, genre.test_rows_), name
    assert np.array_equal(load_built_space(catalogue, "fusion-ae").held_out_rows_, genre.test_rows_)
    assert not hasattr(load_built_space(catalogue, "metadata"), "test_rows_")  # unsupervised


@pytest.mark.parametrize("name", LEARNED_SPACES)
def test_catalogue_song_through_the_upload_path_gets_its_catalogue_vector(learned_catalogue, name):
    assert_upload_path_gives_catalogue_vectors(learned_catalogue, name, atol=1e-6)


def test_checkpoints_hold_config_history_and_test_metrics(learned_catalogue):
    catalogue = load_catalogue(learned_catalogue)
    genre = load_built_space(catalogue, "genre-cnn")
    checkpoint = genre.checkpoint(map_location="cpu")
    assert checkpoint.config.embedding_dim == 256 and checkpoint.config.n_classes == (4,)
    assert len(checkpoint.history.train_loss) == 2 and checkpoint.history.device == "cpu"
    assert checkpoint.catalogue_fingerprint == catalogue.fingerprint()
    assert checkpoint.feature_settings["crop_frames"] == 128
    metrics = checkpoint.test_metrics
    assert metrics["n"] == len(genre.test_rows_) and len(metrics["confusion_matrix"]) == 4
    emotion = load_built_space(catalogue, "emotion-cnn").checkpoint()
    assert emotion.config.n_classes == (4, 4)  # emotion quadrants, then genre as auxiliary task
    summary = json.loads(json.dumps(training_summary(load_built_space(catalogue, "triplet"))))
    assert summary["dim"] == 64 and "triplet_loss" in summary["test_metrics"]
    assert training_summary(load_built_space(catalogue, "metadata")) == {}


def test_ae2d_space_code_predicts_genre_but_the_map_method_needs_no_labels(learned_catalogue):
    catalogue = load_catalogue(learned_catalogue)
    checkpoint = load_built_space(catalogue, "ae-2d").checkpoint()
    assert checkpoint.config.code_dim == 2 and checkpoint.config.n_classes == 4  # the 4 test genres
    assert checkpoint.feature_settings["supervised_label"] == "genre"
    metrics = checkpoint.test_metrics
    assert metrics["label"] == "genre" and 0.0 <= metrics["accuracy"] <= 1.0 and metrics["reconstruction_mse"] > 0
    fusion = load_built_space(catalogue, "fusion-ae").checkpoint()
    assert fusion.config.n_classes == 0 and "accuracy" not in fusion.test_metrics  # plain MSE autoencoder
    reducer = fit_map(np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32), method="ae2d", seed=0).reducer_
    assert reducer.checkpoint().config.n_classes == 0


def test_pickled_space_holds_bytes_not_modules(learned_catalogue):
    catalogue = load_catalogue(learned_catalogue)
    space = load_built_space(catalogue, "triplet")
    assert space.used_inputs_ == ("space:genre-cnn", "space:emotion-cnn", "space:metadata", "space:handcrafted", "space:musicnn")
    assert space.block_widths_[:3] == (256, 256, 11) and space.block_widths_[4] == 200
    space.transform({k: np.zeros((1, w), dtype=np.float32) for k, w in zip(space.used_inputs_, space.block_widths_)})
    state = space.__getstate__()
    assert "_module_cache" not in state and isinstance(state["checkpoint_bytes_"], bytes)
    clone = pickle.loads(pickle.dumps(space))
    np.testing.assert_array_equal(clone.vectors_, space.vectors_)


def test_rebuild_with_the_same_epochs_reuses_and_the_key_records_them(learned_catalogue):
    report = build(learned_catalogue, spaces=LEARNED_SPACES, map_methods=("pca",), n_jobs=1, training=TINY)
    assert report.built == [] and set(LEARNED_SPACES) <= set(report.reused)
    derived = load_catalogue(learned_catalogue).derived_dir
    assert stored_fit_key(space_dir(derived, "genre-cnn")).endswith("-epochs2")
    assert not stored_fit_key(space_dir(derived, "metadata")).endswith("-epochs2")


def test_spaces_are_skipped_when_their_labels_are_missing(learned_catalogue, tmp_path):
    root = tmp_path / "no-labels"
    shutil.copytree(learned_catalogue, root, ignore=shutil.ignore_patterns(".songsim"))
    tracks = pd.read_csv(root / "tracks.csv")
    tracks.drop(columns=["genre", "danceability"]).to_csv(root / "tracks.csv", index=False)
    report = build(root, spaces=LEARNED_SPACES, map_methods=(), n_jobs=1, training=TINY)
    assert report.skipped["genre-cnn"] == "the catalogue has no genre labels"
    assert report.skipped["metadata"] == "the catalogue has no danceability labels"
    assert report.skipped["fusion-ae"] == "it needs genre-cnn, which was skipped"  # its one required input
    assert report.skipped["triplet"] == "the catalogue has no genre labels"
    assert report.skipped["musicnn-triplet"] == "the catalogue has no genre labels"
    # valence/arousal are there (no genre, so no auxiliary task); musicnn needs no labels
    assert report.built == ["emotion-cnn", "musicnn"]
    assert load_built_space(load_catalogue(root), "emotion-cnn").checkpoint().config.n_classes == (4,)


def test_cnn_space_is_deterministic_for_a_seed(learned_catalogue):
    catalogue = load_catalogue(learned_catalogue)
    labels = {c: catalogue.labels(c) for c in catalogue.tracks.columns}
    inputs = space_inputs(
        GenreCNNSpace, catalogue, paths=catalogue.tracks["path"].tolist(), fingerprints=catalogue.audio_fingerprints(),
        keys=catalogue.track_ids, dependency_vectors=None,
    )  # fmt: skip
    config = CNNSpaceConfig(channels=(4, 8), embedding_dim=16, crops_per_song=1, train=TrainConfig(max_epochs=2))
    a = GenreCNNSpace(config=config).fit(inputs, labels=labels, seed=0)
    b = GenreCNNSpace(config=config).fit(inputs, labels=labels, seed=0)
    c = GenreCNNSpace(config=config).fit(inputs, labels=labels, seed=1)
    np.testing.assert_array_equal(a.vectors_, b.vectors_)
    assert not np.array_equal(a.vectors_, c.vectors_)
    assert a.vectors_.shape == (len(catalogue), 16)


def test_metadata_of_a_new_song_is_measured_then_imputed(learned_catalogue, make_tone):
    catalogue = load_catalogue(learned_catalogue)
    space = load_built_space(catalogue, "metadata")
    path = make_tone("new-song.wav", duration_s=8.0)
    upload = store_upload(catalogue, path.read_bytes(), path.name)
    reading = song_metadata(
        catalogue, path=upload.path, fingerprint=upload.fingerprint, key=upload.fingerprint,
        cache_dir=features_cache_dir(catalogue),
    )  # fmt: skip
    measured = {c for c, s in zip(SPOTIFY_FEATURES, reading.sources) if s == "measured"}
    assert measured == set(MEASURED_FEATURES)
    table = space.explain(reading)
    assert list(table["feature"]) == list(SPOTIFY_FEATURES) and table["value"].notna().all()
    assert set(table.loc[table["source"] == "imputed", "feature"]) == set(SPOTIFY_FEATURES) - set(MEASURED_FEATURES)
    assert -40 < table.set_index("feature").loc["loudness", "value"] < 0  # dBFS of the tone
    vector = embed_upload(catalogue, space, upload, load_space=lambda n: load_built_space(catalogue, n))
    assert vector.shape == (11,) and np.isfinite(vector).all()
    same_audio = song_metadata(
        catalogue, path=catalogue.tracks["path"].iloc[3], fingerprint=catalogue.audio_fingerprints()[3],
        key="an-upload", cache_dir=features_cache_dir(catalogue),
    )  # fmt: skip
    assert set(same_audio.sources) == {"catalogue"}


def test_ae2d_is_a_map_method_that_places_new_points(tmp_path):
    assert "ae2d" in map_methods() and map_methods()["ae2d"].label == "2-D autoencoder"
    x = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32)
    fitted = fit_map(x, method="ae2d", seed=0)
    assert fitted.coords_.shape == (40, 2)
    np.testing.assert_allclose(fitted.transform(x[:3]), fitted.coords_[:3], rtol=1e-5, atol=1e-5)
    save_map(fitted, tmp_path / "ae2d.pkl")
    np.testing.assert_allclose(load_map(tmp_path / "ae2d.pkl").transform(x[:3]), fitted.coords_[:3], rtol=1e-5, atol=1e-5)


def test_balanced_class_weights():
    np.testing.assert_allclose(_balanced_weights(np.array([0, 0, 0, 1, -1]), 3), [4 / 6, 2.0, 0.0])


def test_crop_rule_covers_the_clip():
    assert crop_starts(1292, 128) == [0, 128, 256, 384, 512, 640, 768, 896, 1024, 1152, 1164]
    assert crop_starts(128, 128) == [0]


def test_train_cli(learned_catalogue):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "songsim", "train", *args], capture_output=True, text=True, timeout=300)

    result = run(str(learned_catalogue), "--spaces", "genre-cnn", "--epochs", "2", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["reused"][0] == "genre-cnn"  # same epochs: nothing to retrain
    bad = run(str(learned_catalogue), "--device", "tpu")
    assert bad.returncode == 2 and "Unknown device 'tpu'" in bad.stderr and "Traceback" not in bad.stderr
