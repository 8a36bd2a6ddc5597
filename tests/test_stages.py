"""Build-stage states (songsim.stages) on a small built catalogue, after audio is added, after a
map is deleted, and on catalogues that are missing or broken."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from catalogues import GENRES, SR_HZ, _song, make_small_catalogue
from songsim.build import build
from songsim.catalogue import load_catalogue
from songsim.spaces.base import space_type
from songsim.signed import write_signed
from songsim.spaces.store import SPACE_FILE, SPACE_PURPOSE, current_fit_key, map_path, space_dir
from songsim.stages import (
    DONE,
    ERROR,
    MISSING,
    NEEDS_LABELS,
    PARTIAL,
    STALE,
    StageState,
    build_plan,
    stage_states,
    state_counts,
)

SPACES = ("handcrafted", "random")
METHODS = ("pca",)  # UMAP/t-SNE fits cost tens of seconds; the stage logic is the same for every method


def states_of(root: Path) -> dict[str, StageState]:
    return {s.stage: s for s in stage_states(root, map_methods=METHODS)}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = make_small_catalogue(tmp_path_factory.mktemp("stages") / "built", per_genre=3)
    build(root, spaces=SPACES, map_methods=METHODS, n_jobs=1)
    return root


@pytest.fixture
def copied(built, tmp_path) -> Path:
    """A private copy of the built catalogue to change (paths in tracks.csv are relative)."""
    return Path(shutil.copytree(built, tmp_path / "copy"))


def add_track(root: Path, track_id: str = "pads-new") -> None:
    import numpy as np

    sf.write(root / "audio" / f"{track_id}.wav", _song(GENRES[0], 7, np.random.default_rng(7)), SR_HZ)
    with open(root / "tracks.csv", "a") as handle:
        handle.write(f"{track_id},audio/{track_id}.wav,New Song,Pads Artist 1,Pads Artist 1 LP,1999,pads,3.0,3.0\n")


def test_a_built_catalogue_has_every_built_stage_done(built):
    states = states_of(built)
    assert states["catalogue"].state == DONE and states["catalogue"].detail.startswith("12 tracks")
    assert "genre" in states["catalogue"].detail
    assert states["features:handcrafted"].state == DONE
    assert states["features:handcrafted"].detail.startswith("all 12 tracks cached")
    assert states["features:mel"].state == MISSING  # no space that consumes mel was built
    for name in SPACES:
        assert states[f"space:{name}"].state == DONE, states[f"space:{name}"]
        assert states[f"map:{name}:pca"].state == DONE
    assert states["space:genre-cnn"].state == MISSING
    assert states["space:metadata"].state == NEEDS_LABELS  # no Spotify-style features in the fixture
    assert "danceability" in states["space:metadata"].detail
    assert states["space:triplet"].state == MISSING  # it does without metadata (an optional input)
    assert "map:genre-cnn:pca" not in states  # maps are listed for stored spaces only
    assert list(states)[0] == "catalogue"
    assert build_plan(list(states.values())) == []


def test_the_key_is_the_one_build_stores(built):
    catalogue = load_catalogue(built)
    key = catalogue.fingerprint()
    for name in SPACES:
        stored = json.loads((space_dir(catalogue.derived_dir, name) / "meta.json").read_text())["fit_key"]
        assert current_fit_key(space_type(name), catalogue, key) == stored
        assert current_fit_key(space_type(name), catalogue, key, seed=1) != stored


def test_adding_audio_makes_features_partial_and_the_spaces_and_maps_stale(copied):
    add_track(copied)
    states = states_of(copied)
    assert states["catalogue"].state == DONE and states["catalogue"].detail.startswith("13 tracks")
    assert states["features:handcrafted"].state == PARTIAL
    assert states["features:handcrafted"].detail.startswith("12 of 13 tracks cached")
    for name in SPACES:
        assert states[f"space:{name}"].state == STALE
        assert "fitted on 12 tracks, the catalogue now has 13" in states[f"space:{name}"].detail
        assert states[f"map:{name}:pca"].state == STALE
    assert build_plan(list(states.values())) == ["handcrafted", "random"]

    build(copied, spaces=build_plan(list(states.values())), map_methods=METHODS, n_jobs=1)
    after = states_of(copied)
    assert {after[s].state for s in ("features:handcrafted", "space:handcrafted", "space:random", "map:handcrafted:pca", "map:random:pca")} == {DONE}


def test_editing_an_audio_file_makes_its_spaces_stale(copied):
    first = copied / "audio" / "pads-00.wav"
    samples, rate = sf.read(first)
    sf.write(first, samples[::-1], rate)  # same length, new content
    states = states_of(copied)
    assert states["features:handcrafted"].state == PARTIAL
    assert states["space:handcrafted"].state == STALE
    assert states["space:handcrafted"].detail == "tracks or audio changed since it was fitted"


def test_a_deleted_map_is_missing_and_planned(copied):
    catalogue = load_catalogue(copied)
    path = map_path(catalogue, "handcrafted", "pca")
    path.unlink()
    states = states_of(copied)
    assert states["map:handcrafted:pca"].state == MISSING
    assert states["map:random:pca"].state == DONE and states["space:handcrafted"].state == DONE
    assert build_plan(list(states.values())) == ["handcrafted"]
    assert state_counts(list(states.values()))[MISSING] >= 1


def test_a_map_of_an_earlier_fit_is_stale(copied):
    catalogue = load_catalogue(copied)
    meta_path = map_path(catalogue, "random", "pca").with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "fit_key": "an-older-fit-pca-seed0"}))
    assert states_of(copied)["map:random:pca"].state == STALE


def test_maps_of_other_methods_are_reported_too(built):
    states = {s.stage for s in stage_states(built, map_methods=())}
    assert "map:handcrafted:pca" in states  # stored, although not asked for


def test_a_learned_space_trained_with_an_epochs_override_counts_as_done(copied):
    catalogue = load_catalogue(copied)
    cls = space_type("genre-cnn")
    folder = space_dir(catalogue.derived_dir, "genre-cnn")
    folder.mkdir(parents=True)
    key = current_fit_key(cls, catalogue, catalogue.fingerprint())
    (folder / "meta.json").write_text(json.dumps({"fit_key": key + "-epochs2", "dim": 256, "n_tracks": 12}))
    assert states_of(copied)["space:genre-cnn"].state == STALE  # a record without its fitted file is not built
    write_signed(folder / SPACE_FILE, b"a fit", purpose=SPACE_PURPOSE)  # stages never unpickle it
    state = states_of(copied)["space:genre-cnn"]
    assert state.state == DONE and "override of 2 epochs" in state.detail


def test_a_folder_without_tracks_csv_has_only_a_missing_catalogue_stage(tmp_path):
    states = stage_states(tmp_path)
    assert [(s.stage, s.state) for s in states] == [("catalogue", MISSING)]
    assert "import" in states[0].detail
    assert build_plan(states) == []


def test_a_broken_tracks_csv_is_an_error_stage_naming_the_row(tmp_path):
    (tmp_path / "tracks.csv").write_text("track_id,path\na,missing.wav\n")
    states = stage_states(tmp_path)
    assert [(s.stage, s.state) for s in states] == [("catalogue", ERROR)]
    assert "line 2" in states[0].detail and "missing.wav" in states[0].detail


def test_an_unbuilt_catalogue_plans_the_default_spaces(tmp_path):
    root = make_small_catalogue(tmp_path / "fresh", per_genre=1)
    states = stage_states(root)
    assert states[0].state == DONE
    assert {s.state for s in states if s.kind == "features"} == {MISSING}
    assert not [s for s in states if s.kind == "map"]
    assert build_plan(states) == ["handcrafted", "random"]


def test_buildable_spaces_are_the_missing_ones_that_lack_no_labels(built):
    from songsim.stages import buildable_spaces

    names = buildable_spaces(stage_states(built, map_methods=METHODS))
    assert "genre-cnn" in names and "handcrafted" not in names and "metadata" not in names
