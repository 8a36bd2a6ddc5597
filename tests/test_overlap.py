"""Top-n overlap and normalised edit distance: the metric functions on hand cases (and an
independent recursive Levenshtein), and evaluate's album > artist reference-list figures."""

import functools
import warnings

import numpy as np
import pandas as pd
import pytest

from songsim.catalogue import Catalogue
from songsim.errors import SongsimError
from songsim.evaluate import LIST_FIGURES, evaluate_space
from songsim.metrics import MetricWarning, normalised_edit_distance, top_n_overlap

# ------------------------------------------------------------------------------------------
# the metric functions


def test_top_n_overlap_is_unordered_and_cut_at_n():
    assert top_n_overlap([1, 2, 3], [3, 9, 1, 2], 3) == pytest.approx(2 / 3)  # 2 is at rank 4
    assert top_n_overlap([1, 2, 3], [3, 2, 1], 3) == 1.0  # order does not matter
    assert top_n_overlap([1, 2, 3, 4], [4, 3], 2) == 0.0  # only the reference top-2 {1, 2} counts
    assert top_n_overlap(["a"], ["b", "c", "a"], 3) == 1.0  # a short reference: share of what it has
    assert top_n_overlap(np.array([5, 6]), np.array([6, 7]), 2) == 0.5


def test_top_n_overlap_degenerate_and_invalid_inputs():
    with pytest.warns(MetricWarning, match="reference list is empty"):
        assert top_n_overlap([], [1, 2], 3) == 0.0
    with pytest.raises(SongsimError, match="must not repeat"):
        top_n_overlap([1, 1], [1, 2], 2)
    with pytest.raises(SongsimError, match="k must be"):
        top_n_overlap([1], [1], 0)
    with pytest.raises(SongsimError, match="sequence of item ids"):
        top_n_overlap("abc", [1], 1)
    with pytest.raises(SongsimError, match="hashable"):
        top_n_overlap([[1]], [1], 1)


def test_normalised_edit_distance_by_hand():
    assert normalised_edit_distance(list("kitten"), list("sitting")) == pytest.approx(3 / 7)
    assert normalised_edit_distance([1, 2, 3], [1, 2, 3]) == 0.0
    assert normalised_edit_distance([1, 2], [2, 1]) == 1.0  # a swap costs two substitutions
    assert normalised_edit_distance([1, 2, 3], [2, 1, 3]) == pytest.approx(2 / 3)
    assert normalised_edit_distance([1, 2, 3], [4, 5, 6]) == 1.0
    assert normalised_edit_distance([1, 2, 3], [2, 3]) == pytest.approx(1 / 3)  # one deletion
    assert normalised_edit_distance([], [1, 2]) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert normalised_edit_distance([], []) == 0.0


def _levenshtein(a: tuple, b: tuple) -> int:
    """The textbook recursion, memoised: an independent reference."""

    @functools.cache
    def d(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))

    return d(len(a), len(b))


@pytest.mark.parametrize("seed", range(10))
def test_normalised_edit_distance_matches_the_recursive_definition(seed):
    rng = np.random.default_rng(seed)
    a = tuple(rng.integers(0, 6, rng.integers(0, 9)).tolist())
    b = tuple(rng.integers(0, 6, rng.integers(1, 9)).tolist())
    assert normalised_edit_distance(a, b) == pytest.approx(_levenshtein(a, b) / max(len(a), len(b)))


# ------------------------------------------------------------------------------------------
# evaluate's reference lists

FIVE = [("q", "A", "X"), ("a", "A", "X"), ("b", "A", "Y"), ("c", "B", "Z"), ("d", "B", "Z")]


class FakeSpace:
    metric = "cosine"

    def __init__(self, vectors, test_rows=None):
        self.name = "fake"
        self.vectors_ = np.asarray(vectors, dtype=np.float32)
        if test_rows is not None:
            self.test_rows_ = np.asarray(test_rows)


def _catalogue(tmp_path, rows, columns=("artist", "album")):
    tracks = pd.DataFrame([{"track_id": t, "path": str(tmp_path / f"{t}.wav"), "artist": ar, "album": al} for t, ar, al in rows])
    return Catalogue(root=tmp_path, tracks=tracks[["track_id", "path", *columns]])


@pytest.mark.parametrize(
    ("positions", "edit3"),
    [
        ({"q": 0, "a": 1, "b": 2, "c": 3, "d": 4}, 0.0),  # album mate, then artist mate: the reference itself
        ({"q": 0, "a": 1, "c": 2, "b": 3, "d": 4}, 0.5),  # another artist's song in 2nd place
        ({"q": 0, "b": 1, "a": 2, "c": 3, "d": 4}, 1.0),  # artist mate above the album mate: a swap
    ],
)
def test_reference_list_of_one_query_by_hand(tmp_path, positions, edit3):
    """Query q: reference [a (same album), b (same artist)], R = 2, so every n compares
    the reference with the space's top-2 (edit) and top-n (overlap)."""
    catalogue = _catalogue(tmp_path, FIVE)
    vectors = [[positions[t]] for t, _, _ in FIVE]
    result = evaluate_space(catalogue, FakeSpace(vectors, test_rows=[0]), metric="euclidean")
    assert result["overlap@3"] == result["overlap@10"] == 1.0  # both within the top-3
    assert result["edit_distance@3"] == result["edit_distance@10"] == edit3
    assert result["n_queries"]["overlap@3"] == 1 and result["metric"] == "euclidean"


def test_a_space_that_knows_albums_and_artists_scores_perfectly_and_random_does_not(tmp_path):
    rows = [(f"{ar}{al}{i}", f"artist {ar}", f"album {al}") for ar in range(4) for al in range(2) for i in range(5)]
    catalogue = _catalogue(tmp_path, rows)
    artist = pd.factorize(catalogue.tracks["artist"])[0]
    album = pd.factorize(catalogue.tracks["artist"] + catalogue.tracks["album"])[0]
    noise = 0.01 * np.random.default_rng(0).standard_normal((len(rows), 12))
    known = np.hstack([2.0 * np.eye(8)[album], 1.0 * np.eye(4)[artist]]) + noise
    perfect = evaluate_space(catalogue, FakeSpace(known))
    for n in (3, 5, 10):  # 4 album mates and 5 more artist mates per query
        assert perfect[f"overlap@{n}"] == 1.0 and perfect[f"edit_distance@{n}"] == 0.0
    assert perfect["n_queries"]["overlap@10"] == len(rows)
    random = evaluate_space(catalogue, FakeSpace(np.random.default_rng(1).standard_normal((len(rows), 12))))
    assert random["overlap@10"] < 0.5 and random["edit_distance@3"] > 0.8


def test_album_names_are_per_artist_and_missing_references_are_skipped(tmp_path):
    # q and x share an album *name* but not the artist: no reference for q
    rows = [("q", "A", "Hits"), ("x", "B", "Hits"), ("y", "C", "Other")]
    catalogue = _catalogue(tmp_path, rows)
    result = evaluate_space(catalogue, FakeSpace(np.eye(3), test_rows=[0]))
    assert result["skipped"]["overlap@3"] == "none of the 1 query tracks shares an album or artist with another song"
    only_albums = _catalogue(tmp_path, [("q", "A", "X"), ("a", "B", "X"), ("b", "C", "Y")], columns=("album",))
    result = evaluate_space(only_albums, FakeSpace(np.eye(3), test_rows=[0]))
    assert result["n_queries"]["overlap@3"] == 1  # without artists the album name is the key
    bare = _catalogue(tmp_path, FIVE, columns=())
    result = evaluate_space(bare, FakeSpace(np.eye(5)))
    assert all(result["skipped"][f] == "the catalogue has no album or artist labels" for f in LIST_FIGURES)
