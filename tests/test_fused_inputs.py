"""Spaces that use what the catalogue has (optional inputs), and musicnn-triplet.

A catalogue with genres but no emotion labels and no Spotify-style features: fusion-ae,
triplet and ae-2d build over genre-cnn + handcrafted (not skipped), say so in the stage
states, ``songsim spaces DIR --json`` and the Models page's rows, embed uploads through those
inputs, and refit when an input becomes available. musicnn is used only where built. The
musicnn-triplet head builds (1 epoch), is searched, and is scored on its test split only.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalogues import assert_upload_path_gives_catalogue_vectors, make_small_catalogue
from songsim.build import build
from songsim.catalogue import load_catalogue
from songsim.cli import main
from songsim.evaluate import evaluate_space
from songsim.query import search
from songsim.spaces import heads
from songsim.spaces.base import TrainingOptions, fitted_inputs, in_build_order, space_type
from songsim.spaces.heads import MusicnnTripletConfig, MusicnnTripletSpace, label_precision_at_k
from songsim.spaces.learned import TrainConfig, training_summary
from songsim.spaces.store import build_order, load_built_space, space_dir, stored_fit_key, stored_meta, used_inputs
from songsim.stages import DONE, MISSING, STALE, space_states, stage_states

ONE_EPOCH = TrainingOptions(max_epochs=1)
FUSED = ("fusion-ae", "triplet", "ae-2d")
GENRE_AND_HANDCRAFTED = ("space:genre-cnn", "space:handcrafted")


def _drop_emotion(root: Path) -> Path:
    tracks = pd.read_csv(root / "tracks.csv")
    tracks.drop(columns=["valence", "arousal"]).to_csv(root / "tracks.csv", index=False)
    return root


@pytest.fixture(scope="module")
def genre_only(tmp_path_factory) -> Path:
    """The small test catalogue with genres, artists and albums but no emotion labels and no
    Spotify-style features, with the fused spaces built (1 epoch, no maps)."""
    root = _drop_emotion(make_small_catalogue(tmp_path_factory.mktemp("genre-only")))
    report = build(root, spaces=list(FUSED), map_methods=(), n_jobs=1, training=ONE_EPOCH)
    assert report.skipped == {}, report.skipped
    assert {"genre-cnn", "handcrafted", *FUSED} <= set(report.built)
    assert "musicnn" not in report.built and "emotion-cnn" not in report.built
    return root


def test_fused_spaces_build_over_the_inputs_the_catalogue_has(genre_only):
    catalogue = load_catalogue(genre_only)
    for name in ("fusion-ae", "triplet"):
        space = load_built_space(catalogue, name)
        assert space.used_inputs_ == GENRE_AND_HANDCRAFTED, name
        assert fitted_inputs(space) == GENRE_AND_HANDCRAFTED
        settings = space.checkpoint().feature_settings
        assert settings["inputs"] == list(GENRE_AND_HANDCRAFTED)
        assert settings["optional_inputs_not_available"] == ["space:emotion-cnn", "space:metadata", "space:musicnn"]
        assert stored_meta(space_dir(catalogue.derived_dir, name))["inputs"] == list(GENRE_AND_HANDCRAFTED)
    ae2d = load_built_space(catalogue, "ae-2d")
    assert fitted_inputs(ae2d) == ("space:triplet",) and ae2d.vectors_.shape == (len(catalogue), 2)


def test_one_rule_gives_the_inputs_to_stages_spaces_json_and_models_rows(genre_only, capsys):
    catalogue = load_catalogue(genre_only)
    assert used_inputs(space_type("fusion-ae"), catalogue) == GENRE_AND_HANDCRAFTED
    stages = {s.stage: s for s in stage_states(genre_only, map_methods=())}
    for name in ("fusion-ae", "triplet"):
        assert stages[f"space:{name}"].state == DONE
        assert stages[f"space:{name}"].detail.endswith("inputs: genre-cnn + handcrafted")
    assert stages["space:emotion-cnn"].state == "needs labels"
    rows = {row["space"]: row for row in space_states(genre_only)}
    assert rows["fusion-ae"]["used_inputs"] == list(GENRE_AND_HANDCRAFTED)
    assert rows["ae-2d"]["used_inputs"] == ["space:triplet"]
    assert rows["handcrafted"]["used_inputs"] == ["handcrafted"]
    assert rows["musicnn-triplet"]["state"] == MISSING and rows["musicnn-triplet"]["used_inputs"] == ["space:musicnn"]
    assert main(["spaces", str(genre_only), "--json"]) == 0
    described = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert described["triplet"]["inputs"] == ["space:genre-cnn"]
    assert described["triplet"]["optional_inputs"] == ["space:emotion-cnn", "space:metadata", "space:handcrafted", "space:musicnn"]
    assert described["triplet"]["used_inputs"] == list(GENRE_AND_HANDCRAFTED)
    assert main(["spaces", str(genre_only)]) == 0
    assert "uses space:genre-cnn, space:handcrafted here" in capsys.readouterr().out


def test_an_upload_embeds_through_the_inputs_the_fit_used(genre_only):
    for name in FUSED:
        assert_upload_path_gives_catalogue_vectors(genre_only, name, atol=1e-5)


def test_musicnn_is_used_only_where_built_or_built_by_the_same_build(genre_only):
    catalogue = load_catalogue(genre_only)
    fusion = space_type("fusion-ae")
    assert space_type("musicnn").built_on_request
    assert stored_fit_key(space_dir(catalogue.derived_dir, "musicnn")) is None
    assert "space:musicnn" not in used_inputs(fusion, catalogue)
    assert "space:musicnn" in used_inputs(fusion, catalogue, building=["musicnn"])
    assert "musicnn" not in build_order(catalogue, ["fusion-ae"])
    assert build_order(catalogue, ["musicnn-triplet", "fusion-ae"]).index("musicnn") < build_order(
        catalogue, ["musicnn-triplet", "fusion-ae"]
    ).index("fusion-ae")
    assert in_build_order(["fusion-ae"]) == ["genre-cnn", "fusion-ae"]  # required inputs only


def test_a_catalogue_that_gains_emotion_labels_refits_the_fused_spaces(genre_only, tmp_path):
    root = Path(shutil.copytree(genre_only, tmp_path / "gains"))
    make_small_catalogue(tmp_path / "labels")  # the same songs, with valence and arousal
    shutil.copy(tmp_path / "labels" / "tracks.csv", root / "tracks.csv")
    catalogue = load_catalogue(root)
    before = stored_fit_key(space_dir(catalogue.derived_dir, "fusion-ae"))
    assert used_inputs(space_type("fusion-ae"), catalogue) == ("space:genre-cnn", "space:emotion-cnn", "space:handcrafted")
    stages = {s.stage: s for s in stage_states(root, map_methods=())}
    assert stages["space:fusion-ae"].state == STALE and "emotion-cnn" in stages["space:fusion-ae"].detail
    assert stages["space:ae-2d"].state == STALE  # it builds on triplet, which will be refitted
    report = build(root, spaces=["fusion-ae"], map_methods=(), n_jobs=1, training=ONE_EPOCH)
    assert report.built == ["emotion-cnn", "fusion-ae"] and "genre-cnn" in report.reused
    fusion = load_built_space(catalogue, "fusion-ae")
    assert fusion.used_inputs_ == ("space:genre-cnn", "space:emotion-cnn", "space:handcrafted")
    assert stored_fit_key(space_dir(catalogue.derived_dir, "fusion-ae")) != before
    assert {s.stage: s.state for s in stage_states(root, map_methods=())}["space:fusion-ae"] == DONE
    assert_upload_path_gives_catalogue_vectors(root, "fusion-ae", atol=1e-5)


def test_a_built_musicnn_makes_the_fused_spaces_stale_and_is_then_used(genre_only, tmp_path):
    root = Path(shutil.copytree(genre_only, tmp_path / "musicnn"))
    build(root, spaces=["musicnn"], map_methods=(), n_jobs=1)
    stages = {s.stage: s for s in stage_states(root, map_methods=())}
    assert stages["space:triplet"].state == STALE and stages["space:triplet"].detail == "it can now use musicnn"
    build(root, spaces=["triplet"], map_methods=(), n_jobs=1, training=ONE_EPOCH)
    triplet = load_built_space(load_catalogue(root), "triplet")
    assert triplet.used_inputs_ == (*GENRE_AND_HANDCRAFTED, "space:musicnn")
    assert training_summary(triplet)["feature_settings"]["block_widths"][-1] == 200


def test_fold_models_of_a_fused_space_use_the_inputs_of_its_built_fit(genre_only, tmp_path):
    from songsim.folds import fold_models

    root = Path(shutil.copytree(genre_only, tmp_path / "folds"))
    catalogue = load_catalogue(root)
    found = fold_models(catalogue, ["triplet"], k=2, training=ONE_EPOCH, n_jobs=1)["triplet"]
    genre_folds = fold_models(catalogue, ["genre-cnn"], k=2, training=ONE_EPOCH, n_jobs=1)["genre-cnn"]  # reused
    for index, model in enumerate(found.models):
        assert model.used_inputs_ == GENRE_AND_HANDCRAFTED
        assert np.array_equal(np.sort(model.test_rows_), np.sort(genre_folds.models[index].test_rows_))


# ============================================================================================
# musicnn-triplet


@pytest.fixture(scope="module")
def with_head(genre_only, tmp_path_factory) -> Path:
    """A copy of ``genre_only`` with musicnn and musicnn-triplet built (1 epoch)."""
    root = Path(shutil.copytree(genre_only, tmp_path_factory.mktemp("head") / "catalogue"))
    report = build(root, spaces=["musicnn-triplet"], map_methods=("pca",), n_jobs=1, training=ONE_EPOCH)
    assert report.built[:2] == ["musicnn", "musicnn-triplet"] and report.skipped == {}
    return root


def test_musicnn_triplet_is_built_searched_and_scored_on_its_test_split_only(with_head):
    catalogue = load_catalogue(with_head)
    space = load_built_space(catalogue, "musicnn-triplet")
    assert space.vectors_.shape == (len(catalogue), 128) and space.fallback_ is None
    np.testing.assert_allclose(np.linalg.norm(space.vectors_, axis=1), 1.0, atol=1e-5)
    assert not set(space.test_rows_) & set(space.train_rows_) and not set(space.test_rows_) & set(space.val_rows_)
    assert np.array_equal(space.test_rows_, load_built_space(catalogue, "genre-cnn").test_rows_)  # the shared split
    summary = training_summary(space)
    assert len(summary["history"]["train_loss"]) == 1 and summary["test_metrics"]["selected"] == "trained head"
    assert summary["feature_settings"]["aux_positives"] == "same artist, else same album"
    found = search(catalogue, "musicnn-triplet", track_id=catalogue.track_ids[0], k=5)
    assert found.metric == "cosine" and len(found.neighbours.indices) == 5 and 0 not in found.neighbours.indices
    scores = evaluate_space(catalogue, space, n_boot=50)
    assert scores["held_out"] and scores["n_queries"]["genre_p@5"] == len(space.test_rows_)


def test_musicnn_triplet_embeds_an_upload_through_musicnn_then_the_head(with_head):
    assert_upload_path_gives_catalogue_vectors(with_head, "musicnn-triplet", atol=1e-5)


def _toy_inputs(n_per_genre: int = 30, genres: int = 4, seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    genre = np.repeat([f"g{i}" for i in range(genres)], n_per_genre).astype(object)
    centres = rng.normal(size=(genres, 200))
    x = (np.repeat(centres, n_per_genre, axis=0) + 2.0 * rng.normal(size=(genres * n_per_genre, 200))).astype(np.float32)
    artist = np.array([f"{g}-a{i % 3}" for i, g in enumerate(genre)], dtype=object)
    return {"space:musicnn": x}, {"genre": genre, "artist": artist}


QUICK = MusicnnTripletConfig(train=TrainConfig(max_epochs=3, patience=2, batch_size=32))


def test_musicnn_triplet_transform_gives_the_fitted_vectors():
    inputs, labels = _toy_inputs()
    space = MusicnnTripletSpace(config=QUICK).fit(inputs, labels=labels, seed=0)
    np.testing.assert_allclose(space.transform({"space:musicnn": inputs["space:musicnn"][:4]}), space.vectors_[:4], atol=1e-6)
    assert space.checkpoint().test_metrics["n_val"] >= 10  # the validation check ran


def test_musicnn_triplet_falls_back_to_the_musicnn_vectors_when_there_is_nothing_to_learn():
    inputs, labels = _toy_inputs()
    labels = {"genre": np.full(len(labels["genre"]), "only", dtype=object)}
    space = MusicnnTripletSpace(config=QUICK).fit(inputs, labels=labels, seed=0)
    assert "fewer than 2 genres" in space.fallback_
    raw = inputs["space:musicnn"]
    np.testing.assert_allclose(space.vectors_, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)
    assert space.checkpoint().test_metrics["selected"] == "identity: the musicnn vectors"


def test_musicnn_triplet_keeps_the_musicnn_vectors_when_the_head_is_worse_on_validation(monkeypatch):
    inputs, labels = _toy_inputs()
    # the head (128-d) scores below its input (200-d) on the validation songs
    monkeypatch.setattr(heads, "label_precision_at_k", lambda x, *a, **kw: 0.5 if x.shape[1] == 128 else 0.9)
    space = MusicnnTripletSpace(config=QUICK).fit(inputs, labels=labels, seed=0)
    assert "below the musicnn vectors'" in space.fallback_ and space.vectors_.shape[1] == 200
    np.testing.assert_allclose(space.transform({"space:musicnn": inputs["space:musicnn"][:2]}), space.vectors_[:2], atol=1e-6)


def test_label_precision_at_k_by_hand():
    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    targets = np.array([0, 0, 1, -1])
    rows = np.arange(4)
    # query 0: nearest others 1 (same), then 3, 2 (other, unlabelled): k=1 → 1.0; k=2 → 0.5
    assert label_precision_at_k(x, targets, np.array([0]), rows, k=1) == 1.0
    assert label_precision_at_k(x, targets, np.array([0]), rows, k=2) == 0.5
    assert label_precision_at_k(x, targets, np.array([3]), rows) is None  # an unlabelled query is skipped
