"""build(): features → spaces → maps, incremental, and the space registry."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from catalogues import TRAINED_EPOCHS, TRAINED_SPACES

from songsim.spaces import base as spaces_base
from songsim.audio import load_clip
from songsim.build import DEFAULT_SPACES, build, is_built
from songsim.catalogue import load_catalogue
from songsim.errors import UnknownSpaceError
from songsim.features import handcrafted_features
from songsim.query import embed_upload, store_upload
from songsim.spaces.base import Space, TrainingOptions, space_names, space_type
from songsim.spaces.baseline import RandomSpace
from songsim.spaces.store import load_built_space, load_space, map_path, space_dir


def test_build_makes_every_space_and_map(built_catalogue):
    catalogue = load_catalogue(built_catalogue)
    assert is_built(built_catalogue)
    for name in ("handcrafted", "random"):
        space = load_space(space_dir(catalogue.derived_dir, name))
        assert space.vectors_.shape[0] == len(catalogue)
        assert np.isfinite(space.vectors_).all()
        for method in ("pca", "umap", "tsne"):
            meta = json.loads(map_path(catalogue, name, method).with_suffix(".json").read_text())
            assert 0.0 < meta["trustworthiness"] <= 1.0


def test_handcrafted_keeps_99_percent_variance(built_catalogue):
    catalogue = load_catalogue(built_catalogue)
    space = load_space(space_dir(catalogue.derived_dir, "handcrafted"))
    explained = space.pipeline_.named_steps["pca"].explained_variance_ratio_
    assert explained.sum() >= 0.99
    assert explained[:-1].sum() < 0.99  # the smallest number of components that reach 99 %


def test_catalogue_song_through_the_upload_path_gets_its_own_vector(built_catalogue):
    catalogue = load_catalogue(built_catalogue)
    space = load_space(space_dir(catalogue.derived_dir, "handcrafted"))
    row = 5
    clip = load_clip(catalogue.tracks["path"][row])
    vector = space.transform({"handcrafted": handcrafted_features(clip)[None, :]})[0]
    np.testing.assert_allclose(vector, space.vectors_[row], rtol=1e-4, atol=1e-4)


def test_rebuild_reuses_everything_and_refits_after_a_change(built_catalogue, tmp_path):
    report = build(built_catalogue, spaces=DEFAULT_SPACES, n_jobs=1)
    assert report.built == []
    assert "handcrafted" in report.reused and "map:handcrafted/umap" in report.reused


def test_rebuild_with_the_same_training_reuses_every_trained_space(trained_catalogue):
    report = build(trained_catalogue, n_jobs=1, training=TrainingOptions(max_epochs=TRAINED_EPOCHS))  # every registered space
    assert report.built == []
    assert {*TRAINED_SPACES, "handcrafted", "map:wavenet/umap"} <= set(report.reused)


def test_random_space_is_seeded_and_independent_of_audio(built_catalogue):
    catalogue = load_catalogue(built_catalogue)
    space = load_space(space_dir(catalogue.derived_dir, "random"))
    again = space_type("random")().fit({"key": catalogue.track_ids}, labels={}, seed=0)
    np.testing.assert_array_equal(again.vectors_, space.vectors_)
    other_seed = space_type("random")().fit({"key": catalogue.track_ids}, labels={}, seed=1)
    assert not np.allclose(other_seed.vectors_, space.vectors_)


def test_registry_knows_the_spaces_and_names_the_valid_ones():
    assert {"handcrafted", "random"} <= set(space_names())
    with pytest.raises(UnknownSpaceError, match="handcrafted"):
        space_type("nope")


class UnitNormSpace(Space):
    """A toy space on top of another space: its vectors scaled to unit length."""

    name = "toy-unit-norm"
    description = "test only"
    inputs = ("space:handcrafted",)

    def fit(self, inputs, *, labels, seed=0):
        self.vectors_ = self.transform(inputs)
        return self

    def transform(self, inputs):
        x = inputs["space:handcrafted"]
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class NeedsMoodSpace(RandomSpace):
    name = "toy-needs-mood"
    required_labels = ("mood",)


@pytest.fixture
def copied_catalogue(built_catalogue, tmp_path, monkeypatch):
    for cls in (UnitNormSpace, NeedsMoodSpace):
        monkeypatch.setitem(spaces_base._SPACE_TYPES, cls.name, cls)
    return Path(shutil.copytree(built_catalogue, tmp_path / "copy"))


def test_a_space_on_another_space_builds_after_it_and_embeds_uploads_through_it(copied_catalogue):
    report = build(copied_catalogue, spaces=["toy-unit-norm"], map_methods=("pca",), n_jobs=1)
    assert report.built == ["toy-unit-norm", "map:toy-unit-norm/pca"]
    assert "handcrafted" in report.reused
    catalogue = load_catalogue(copied_catalogue)
    toy = load_built_space(catalogue, "toy-unit-norm")
    np.testing.assert_allclose(np.linalg.norm(toy.vectors_, axis=1), 1.0, rtol=1e-5)
    row = catalogue.row_of("pluck-02")
    upload = store_upload(catalogue, Path(catalogue.tracks["path"][row]).read_bytes(), "x.wav")
    vector = embed_upload(catalogue, toy, upload, load_space=lambda name: load_built_space(catalogue, name))
    np.testing.assert_allclose(vector, toy.vectors_[row], atol=1e-4)


def test_a_space_whose_labels_are_missing_is_skipped_with_a_reason(copied_catalogue):
    report = build(copied_catalogue, spaces=["toy-needs-mood"], map_methods=(), n_jobs=1)
    assert report.skipped == {"toy-needs-mood": "the catalogue has no mood labels"}
    assert report.built == []
