"""songsim.evaluate: label-based figures per space on tiny synthetic catalogues, held-out
queries, skipped figures, JSON output, and the `evaluate` subcommand end to end."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from songsim.catalogue import Catalogue
from songsim.errors import NotBuiltError, SongsimError, UnknownSpaceError
from songsim.evaluate import CLUSTER_FIGURES, LIST_FIGURES, evaluate_catalogue, evaluate_space, figures_table, format_table
from songsim.studies.statistics import bootstrap_ci

GENRES = ("rock", "jazz", "techno", "folk")
EMOTIONS = ("happy", "calm", "angry", "sad")


class FakeSpace:
    """A fitted space as evaluate sees it: a name, its own ``metric``, ``vectors_`` and
    optionally ``test_rows_``."""

    metric = "cosine"

    def __init__(self, vectors, *, name="fake", test_rows=None):
        self.name = name
        self.vectors_ = np.asarray(vectors, dtype=np.float32)
        if test_rows is not None:
            self.test_rows_ = np.asarray(test_rows)


def make_catalogue(tmp_path: Path, *, artists_per_genre=2, per_artist=8, columns=("genre", "artist", "year", "emotion")):
    """Tracks grouped by genre, then artist; emotion cycles across genres; year by artist."""
    rows = []
    for g, genre in enumerate(GENRES):
        for a in range(artists_per_genre):
            for i in range(per_artist):
                rows.append(
                    {
                        "track_id": f"{genre}-{a}-{i}",
                        "path": str(tmp_path / f"{genre}-{a}-{i}.wav"),
                        "genre": genre,
                        "artist": f"{genre} artist {a}",
                        "year": 1960 + 10 * g + a,
                        "emotion": EMOTIONS[i % 4],
                    }
                )
    tracks = pd.DataFrame(rows)
    tracks["year"] = tracks["year"].astype("Int64")
    keep = ["track_id", "path", *columns]
    return Catalogue(root=tmp_path, tracks=tracks[keep])


def one_hot(values, *, noise=0.1, seed=0):
    codes = pd.factorize(pd.Series(values))[0]
    x = np.eye(codes.max() + 1)[codes]
    return x + noise * np.random.default_rng(seed).standard_normal(x.shape)


@pytest.fixture
def catalogue(tmp_path):
    return make_catalogue(tmp_path)


def test_genre_one_hot_space_scores_near_perfect(catalogue):
    result = evaluate_space(catalogue, FakeSpace(one_hot(catalogue.labels("genre"))))
    for figure in ("genre_p@5", "genre_p@5_artist_filtered", "ndcg@1", "ndcg@6", "map", "pairwise_acc", "v_measure", "ami", "v_measure_gmm", "ami_gmm"):
        assert result[figure] == pytest.approx(1.0, abs=0.02), figure
    assert result["skipped"] == {}
    assert set(result["n_queries"].values()) == {len(catalogue)}
    assert result["held_out"] is False and result["dim"] == 4


def test_random_space_scores_chance(tmp_path):
    catalogue = make_catalogue(tmp_path, per_artist=16)  # 128 tracks
    vectors = np.random.default_rng(0).standard_normal((len(catalogue), 32))
    result = evaluate_space(catalogue, FakeSpace(vectors), seed=1)
    assert result["genre_p@5"] == pytest.approx(31 / 127, abs=0.08)
    assert result["emotion_p@5"] == pytest.approx(31 / 127, abs=0.08)
    assert result["pairwise_acc"] == pytest.approx(0.5, abs=0.07)
    assert result["ndcg@1"] == pytest.approx(0.5, abs=0.12)
    assert result["map"] == pytest.approx(0.645, abs=0.06)  # expected AP of a random order of 3 + 3
    assert result["ndcg@6"] == pytest.approx(0.775, abs=0.05)
    assert result["ami"] == pytest.approx(0.0, abs=0.05)
    assert result["v_measure"] < 0.2


@pytest.mark.filterwarnings("ignore:Number of distinct clusters:sklearn.exceptions.ConvergenceWarning")
def test_tied_scores_rank_at_chance_not_in_label_order(tmp_path):
    catalogue = make_catalogue(tmp_path, per_artist=16)
    result = evaluate_space(catalogue, FakeSpace(np.ones((len(catalogue), 3))))  # every song identical
    assert result["pairwise_acc"] == 0.5
    assert result["ndcg@1"] == pytest.approx(0.5, abs=0.12)
    assert result["map"] == pytest.approx(0.645, abs=0.06)


def test_artist_filter_exposes_an_artist_shortcut(catalogue):
    """A space that only knows artists finds the genre through the artist; the filter
    removes the shortcut and leaves chance (8 same-genre songs among 56 candidates)."""
    result = evaluate_space(catalogue, FakeSpace(one_hot(catalogue.labels("artist"))))
    assert result["genre_p@5"] == pytest.approx(1.0)
    assert result["genre_p@5_artist_filtered"] < 0.4


def test_year_distance_is_in_years(catalogue):
    # vectors = year one-hot: the top-5 are the same artist (same year) → distance 0
    result = evaluate_space(catalogue, FakeSpace(one_hot(catalogue.labels("year"), noise=0.01)))
    assert result["year_distance@5"] == pytest.approx(0.0)
    shifted = evaluate_space(catalogue, FakeSpace(one_hot(catalogue.labels("genre"), noise=0.01)))
    assert 0.0 < shifted["year_distance@5"] <= 1.0  # same genre: the other artist is 1 year apart


def test_test_rows_restrict_the_queries_but_not_the_candidates(catalogue):
    n = len(catalogue)
    test_rows = np.arange(0, n, 4)
    # training rows embedded perfectly by genre, the held-out rows at random
    vectors = one_hot(catalogue.labels("genre"))
    vectors[test_rows] = np.random.default_rng(3).standard_normal((test_rows.size, 4))
    everything = evaluate_space(catalogue, FakeSpace(vectors))
    held_out = evaluate_space(catalogue, FakeSpace(vectors, test_rows=test_rows))
    assert held_out["held_out"] is True
    assert held_out["genre_p@5"] < everything["genre_p@5"] - 0.3
    queries = {f: c for f, c in held_out["n_queries"].items() if f not in ("hubness_skew", "orphans")}
    assert set(queries.values()) == {test_rows.size}
    assert held_out["n_queries"]["hubness_skew"] == n  # hubness is over the whole catalogue


@pytest.mark.parametrize("bad", [np.array([], dtype=int), np.array([0, 999]), np.array([0.5, 1.0]), np.array([[0, 1]])])
def test_invalid_test_rows_raise(catalogue, bad):
    with pytest.raises(SongsimError, match="test_rows_"):
        evaluate_space(catalogue, FakeSpace(one_hot(catalogue.labels("genre")), test_rows=bad))


def test_missing_labels_are_skipped_with_a_reason(tmp_path):
    catalogue = make_catalogue(tmp_path, columns=("genre",))
    result = evaluate_space(catalogue, FakeSpace(one_hot(catalogue.labels("genre"))))
    assert result["skipped"] == {
        "genre_p@5_artist_filtered": "the catalogue has no artist labels",
        "emotion_p@5": "the catalogue has no emotion labels",
        "year_distance@5": "the catalogue has no year labels",
        **dict.fromkeys(LIST_FIGURES, "the catalogue has no album or artist labels"),
    }
    assert "genre_p@5" in result and "emotion_p@5" not in result

    bare = make_catalogue(tmp_path, columns=())
    result = evaluate_space(bare, FakeSpace(np.random.default_rng(0).standard_normal((len(bare), 3))))
    assert set(result["n_queries"]) == {"hubness_skew", "orphans"}
    assert result["skipped"]["ndcg@6"] == "the catalogue has no genre labels"


def test_partly_labelled_catalogue_counts_only_labelled_queries(catalogue):
    tracks = catalogue.tracks.copy()
    tracks.loc[:9, "genre"] = None
    partial = Catalogue(root=catalogue.root, tracks=tracks)
    result = evaluate_space(partial, FakeSpace(one_hot(catalogue.labels("genre"))))
    assert result["n_queries"]["genre_p@5"] == len(catalogue) - 10
    assert result["n_queries"]["v_measure"] == len(catalogue) - 10


def test_held_out_queries_without_labels_skip_with_a_reason(catalogue):
    tracks = catalogue.tracks.copy()
    tracks.loc[:3, "genre"] = None
    partial = Catalogue(root=catalogue.root, tracks=tracks)
    result = evaluate_space(partial, FakeSpace(one_hot(catalogue.labels("genre")), test_rows=[0, 1, 2, 3]))
    assert result["skipped"]["genre_p@5"] == "none of the 4 query tracks has a genre label"


def test_too_small_a_catalogue_skips_instead_of_crashing(tmp_path):
    tiny = make_catalogue(tmp_path, artists_per_genre=1, per_artist=1)  # 4 tracks, 4 genres
    result = evaluate_space(tiny, FakeSpace(np.eye(4)))
    assert {"genre_p@5", "ndcg@6", "v_measure", "hubness_skew"} <= set(result["skipped"])
    assert "3 other songs of its genre" in result["skipped"]["ndcg@6"]


def test_output_is_plain_json_and_deterministic(catalogue):
    space = FakeSpace(np.random.default_rng(0).standard_normal((len(catalogue), 8)))
    result = evaluate_space(catalogue, space, seed=5)
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text) == result
    assert evaluate_space(catalogue, space, seed=5) == result

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):  # a CI: [low, high]
            return len(value) == 2 and all(type(v) is float for v in value)
        return value is None or type(value) in (float, int, str, bool)

    assert plain(result)


def test_unfitted_or_mismatched_space_raises(catalogue):
    with pytest.raises(NotBuiltError, match="has 64 tracks"):
        evaluate_space(catalogue, FakeSpace(np.zeros((4, 2))))
    with pytest.raises(SongsimError, match="k must be"):
        evaluate_space(catalogue, FakeSpace(np.zeros((len(catalogue), 2))), k=0)


def test_format_table_lists_figures_queries_and_skips(tmp_path):
    catalogue = make_catalogue(tmp_path, columns=("genre",))
    figures = evaluate_space(catalogue, FakeSpace(one_hot(catalogue.labels("genre"))))
    table = format_table({"spaces": {"perfect": figures}, "n_tracks": len(catalogue), "seed": 0, "k": 5})
    assert "genre_p@5" in table and "1.000 [1.000, 1.000]" in table
    assert "perfect: 64 queries per figure" in table
    assert "skipped emotion_p@5: the catalogue has no emotion labels" in table


# ------------------------------------------------------------------------------------------
# bootstrap CIs


def p_at_5_per_query(vectors, genres):
    """Reference: each song's genre P@5 by brute-force cosine, the query excluded."""
    x = np.asarray(vectors, dtype=np.float32).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    similarity = x @ x.T
    np.fill_diagonal(similarity, -np.inf)
    top = np.argsort(-similarity, axis=1, kind="stable")[:, :5]
    return (genres[top] == genres[:, None]).mean(axis=1)


def test_the_ci_of_genre_p_at_5_is_the_percentile_bootstrap_of_its_per_query_values(tmp_path):
    catalogue = make_catalogue(tmp_path, per_artist=16)  # 128 songs
    genres = catalogue.labels("genre")
    vectors = one_hot(genres, noise=0.6, seed=2)  # genres blurred: per-query P@5 spread over 0–1
    result = evaluate_space(catalogue, FakeSpace(vectors), seed=3, n_boot=2000)
    values = p_at_5_per_query(vectors, genres)
    assert 0.3 < values.mean() < 0.9 and values.std() > 0.1
    assert result["genre_p@5"] == pytest.approx(values.mean(), abs=1e-4)
    low, high = result["ci95"]["genre_p@5"]
    np.testing.assert_allclose([low, high], bootstrap_ci(values, n_boot=2000, seed=3), atol=1e-4)  # same resamples
    half_width = 1.96 * values.std(ddof=1) / np.sqrt(values.size)  # the normal approximation
    assert low == pytest.approx(values.mean() - half_width, abs=0.015)
    assert high == pytest.approx(values.mean() + half_width, abs=0.015)


def test_every_figure_has_a_ci_around_it_and_a_seed_fixes_them(catalogue):
    space = FakeSpace(one_hot(catalogue.labels("genre"), noise=0.5))
    result = evaluate_space(catalogue, space, seed=1)
    assert set(result["ci95"]) == set(result["n_queries"])
    for figure, ci in result["ci95"].items():
        if figure in CLUSTER_FIGURES:  # no CI, and why
            assert ci is None and "no bootstrap CI" in result["no_ci"][figure]
        else:
            assert ci[0] <= result[figure] <= ci[1], figure
    assert result["ci95"]["year_distance@5"][1] > result["ci95"]["year_distance@5"][0]  # in years, not a share
    assert evaluate_space(catalogue, space, seed=1) == result
    assert evaluate_space(catalogue, space, seed=2)["ci95"] != result["ci95"]
    assert evaluate_space(catalogue, space, seed=1, n_boot=50)["ci95"] != result["ci95"]


def test_a_small_test_split_gets_a_wider_interval(catalogue):
    vectors = one_hot(catalogue.labels("genre"), noise=0.7, seed=4)
    everything = evaluate_space(catalogue, FakeSpace(vectors))
    split = evaluate_space(catalogue, FakeSpace(vectors, test_rows=np.arange(0, len(catalogue), 4)))  # 16 of 64
    width = {name: r["ci95"]["genre_p@5"][1] - r["ci95"]["genre_p@5"][0] for name, r in (("all", everything), ("split", split))}
    assert width["split"] > 1.4 * width["all"]  # about sqrt(4) wider
    assert split["ci95"]["hubness_skew"] == everything["ci95"]["hubness_skew"]  # hubness is over every song either way


def test_tables_show_each_figure_with_its_ci(catalogue):
    figures = evaluate_space(catalogue, FakeSpace(one_hot(catalogue.labels("genre"), noise=0.5)))
    result = {"spaces": {"blurred": figures}, "n_tracks": len(catalogue), "seed": 0, "k": 5}
    low, high = figures["ci95"]["genre_p@5"]
    cell = f"{figures['genre_p@5']:.3f} [{low:.3f}, {high:.3f}]"
    assert cell in format_table(result)
    table = figures_table(result, with_ci=True)
    assert table.loc["genre_p@5", "blurred"] == cell
    assert table.loc["v_measure", "blurred"] == f"{figures['v_measure']:.3f}"  # no CI
    assert figures_table(result).loc["genre_p@5", "blurred"] == figures["genre_p@5"]  # numbers without with_ci


# ------------------------------------------------------------------------------------------
# evaluate_catalogue and the CLI on real built catalogues


def test_unknown_and_unbuilt_spaces_are_named(tmp_path):
    from catalogues import make_small_catalogue

    root = make_small_catalogue(tmp_path, per_genre=2)
    with pytest.raises(UnknownSpaceError, match="'nope'"):
        evaluate_catalogue(root, spaces=["nope"])
    with pytest.raises(NotBuiltError, match="'random' is not built"):
        evaluate_catalogue(root, spaces=["random"])
    with pytest.raises(NotBuiltError, match="No space is built"):
        evaluate_catalogue(root)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "songsim", *args], capture_output=True, text=True, timeout=300)


def test_cli_evaluate_json_on_the_built_catalogue(built_catalogue):
    result = run_cli("evaluate", str(built_catalogue), "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["n_tracks"] == 24 and payload["seed"] == 0
    handcrafted, random = payload["spaces"]["handcrafted"], payload["spaces"]["random"]
    for figure in ("genre_p@5", "ndcg@6", "map", "pairwise_acc", "v_measure", "ami", "hubness_skew"):
        assert isinstance(handcrafted[figure], float) and isinstance(random[figure], float)
    # four audibly distinct synthetic genres: the librosa baseline beats the random floor
    assert handcrafted["genre_p@5"] > random["genre_p@5"] + 0.3
    assert handcrafted["pairwise_acc"] > random["pairwise_acc"]
    assert handcrafted["n_queries"]["genre_p@5"] == 24
    low, high = handcrafted["ci95"]["genre_p@5"]
    assert low <= handcrafted["genre_p@5"] <= high and payload["bootstrap"]["resamples"] == 1000 and payload["folds"] is None


def test_cli_evaluate_table_and_errors(built_catalogue):
    table = run_cli("evaluate", str(built_catalogue), "--spaces", "random")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["figure", "random"]
    unknown = run_cli("evaluate", str(built_catalogue), "--spaces", "handcrafted,nope")
    assert unknown.returncode == 2
    assert "Unknown space 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr
