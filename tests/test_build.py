"""build(): features → spaces → maps, incremental, and the space registry."""

import json

import numpy as np
import pytest

from songsim.build import build, is_built, map_path
from songsim.catalogue import load_catalogue
from songsim.errors import UnknownSpaceError
from songsim.features import handcrafted_features
from songsim.audio import load_clip
from songsim.spaces import load_space, space_dir, space_names, space_type


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
    vector = space.transform(handcrafted_features(clip)[None, :])[0]
    np.testing.assert_allclose(vector, space.vectors_[row], rtol=1e-4, atol=1e-4)


def test_rebuild_reuses_everything_and_refits_after_a_change(built_catalogue, tmp_path):
    report = build(built_catalogue, n_jobs=1)
    assert report.built == []
    assert "handcrafted" in report.reused and "map:handcrafted/umap" in report.reused


def test_random_space_is_seeded_and_independent_of_audio(built_catalogue):
    catalogue = load_catalogue(built_catalogue)
    space = load_space(space_dir(catalogue.derived_dir, "random"))
    again = space_type("random")().fit(catalogue.track_ids, labels={}, seed=0)
    np.testing.assert_array_equal(again.vectors_, space.vectors_)
    other_seed = space_type("random")().fit(catalogue.track_ids, labels={}, seed=1)
    assert not np.allclose(other_seed.vectors_, space.vectors_)


def test_registry_knows_the_spaces_and_names_the_valid_ones():
    assert {"handcrafted", "random"} <= set(space_names())
    with pytest.raises(UnknownSpaceError, match="handcrafted"):
        space_type("nope")
