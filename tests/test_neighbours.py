"""Tests of songsim.neighbours: exact and annoy top-k, exclusion, persistence."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from songsim.errors import NotBuiltError, SongsimError
from songsim.neighbours import (
    DEFAULT_SEARCH_K,
    AnnoyIndex,
    ExactIndex,
    NeighbourIndex,
    Neighbours,
    artist_keys,
    exclusion_mask,
    make_index,
    vectors_fingerprint,
)

METRICS = ("cosine", "euclidean")


def clustered(n: int, dim: int, *, n_clusters: int = 50, spread: float = 1.5, seed: int = 0):
    """``(n, dim) float32`` Gaussian clusters that overlap (hard for approximate search)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    labels = rng.integers(0, n_clusters, size=n)
    return (centres[labels] + spread * rng.normal(size=(n, dim))).astype(np.float32)


def brute_force(vectors, q, metric, k, exclude=None):
    """Reference top-k with scipy: (indices, scores) with scores = similarity."""
    dist = cdist(q[None, :].astype(np.float64), vectors.astype(np.float64), metric=metric)[0]
    score = 1.0 - dist if metric == "cosine" else -dist
    if exclude is not None:
        score[exclude] = -np.inf
    order = np.lexsort((np.arange(len(score)), -score))[:k]
    return order, score[order]


@pytest.fixture(scope="module")
def random_vectors():
    return np.random.default_rng(1).normal(size=(300, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def clustered_5k():
    return clustered(5_000, 64, seed=3)


@pytest.fixture(scope="module")
def annoy_5k(clustered_5k):
    return {m: AnnoyIndex(clustered_5k, metric=m) for m in METRICS}


# -------------------------------------------------------------------------------------
# exact index
# -------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", METRICS)
def test_exact_matches_brute_force(random_vectors, metric):
    index = ExactIndex(random_vectors, metric=metric)
    rng = np.random.default_rng(7)
    for q in rng.normal(size=(20, 16)).astype(np.float32):
        got = index.query(q, k=7)
        want_idx, want_scores = brute_force(random_vectors, q, metric, 7)
        np.testing.assert_array_equal(got.indices, want_idx)
        np.testing.assert_allclose(got.scores, want_scores, rtol=1e-5, atol=1e-5)
        assert got.indices.dtype == np.int64 and got.scores.dtype == np.float32
        assert got.indices.shape == got.scores.shape == (7,)


@pytest.mark.parametrize("metric", METRICS)
def test_exact_query_row_matches_brute_force_without_self(random_vectors, metric):
    index = ExactIndex(random_vectors, metric=metric)
    for row in (0, 17, 299):
        got = index.query_row(row, k=5)
        exclude = np.zeros(len(random_vectors), dtype=bool)
        exclude[row] = True
        want_idx, want_scores = brute_force(
            random_vectors, random_vectors[row], metric, 5, exclude
        )
        np.testing.assert_array_equal(got.indices, want_idx)
        np.testing.assert_allclose(got.scores, want_scores, rtol=1e-5, atol=1e-5)


def test_euclidean_exact_far_from_origin():
    """Near-ties far from the origin: |x|^2 - 2xq + |q|^2 cancels; re-scoring fixes ranks."""
    rng = np.random.default_rng(0)
    vectors = (1_000.0 + rng.normal(scale=1e-2, size=(500, 8))).astype(np.float32)
    index = ExactIndex(vectors, metric="euclidean")
    got = index.query_row(3, k=5)
    exclude = np.zeros(500, dtype=bool)
    exclude[3] = True
    want_idx, _ = brute_force(vectors, vectors[3], "euclidean", 5, exclude)
    np.testing.assert_array_equal(got.indices, want_idx)


@pytest.mark.parametrize("metric", METRICS)
def test_scores_sorted_descending_and_distances(random_vectors, annoy_5k, clustered_5k, metric):
    for index, vecs in ((ExactIndex(random_vectors, metric=metric), random_vectors),
                        (annoy_5k[metric], clustered_5k)):
        res = index.query(vecs[5] + 0.1, k=10)
        assert np.all(np.diff(res.scores) <= 0)
        assert np.all(np.diff(res.distances) >= 0)
        if metric == "cosine":
            np.testing.assert_allclose(res.distances, 1.0 - res.scores, atol=1e-6)
        else:
            np.testing.assert_allclose(res.distances, -res.scores)


@pytest.mark.parametrize("metric", METRICS)
def test_query_row_never_returns_itself_with_duplicates(metric):
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    vectors[10] = vectors[20] = vectors[30] = vectors[0]  # four identical rows
    for index in (ExactIndex(vectors, metric=metric), AnnoyIndex(vectors, metric=metric)):
        for row in (0, 10, 20, 30):
            res = index.query_row(row, k=5)
            assert row not in res.indices
            others = {0, 10, 20, 30} - {row}
            assert set(res.indices[:3].tolist()) == others  # the duplicates come first
            best = 1.0 if metric == "cosine" else 0.0
            np.testing.assert_allclose(res.scores[:3], best, atol=1e-5)


def test_exclude_mask_is_respected_and_not_mutated(random_vectors):
    index = ExactIndex(random_vectors)
    exclude = np.zeros(300, dtype=bool)
    exclude[::2] = True
    before = exclude.copy()
    res = index.query_row(1, k=10, exclude=exclude)
    assert not exclude[res.indices].any()
    assert 1 not in res.indices
    np.testing.assert_array_equal(exclude, before)


def test_zero_vectors_under_cosine_are_safe():
    vectors = np.eye(6, 4, dtype=np.float32)
    vectors[4:] = 0.0
    for index in (ExactIndex(vectors), AnnoyIndex(vectors)):
        res = index.query(np.zeros(4, dtype=np.float32), k=6)
        assert np.isfinite(res.scores).all()
        np.testing.assert_allclose(res.scores, 0.0, atol=1e-6)
        res = index.query_row(4, k=5)
        assert np.isfinite(res.scores).all()
        res = index.query(np.array([1, 0, 0, 0], dtype=np.float32), k=6)
        assert res.indices[0] == 0 and res.scores[0] == pytest.approx(1.0, abs=1e-6)
        assert np.isfinite(res.scores).all()


def test_neighbours_record_is_frozen_and_read_only():
    res = Neighbours(np.array([3, 1]), np.array([0.9, 0.5]), "cosine")
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.indices = np.array([0, 0])  # type: ignore[misc]
    with pytest.raises(ValueError):
        res.scores[0] = 2.0
    assert len(res) == 2
    assert res.as_pairs() == [(3, pytest.approx(0.9)), (1, pytest.approx(0.5))]
    assert res.indices.dtype == np.int64 and res.scores.dtype == np.float32


def test_indexes_share_the_protocol(random_vectors):
    assert isinstance(ExactIndex(random_vectors), NeighbourIndex)
    assert isinstance(AnnoyIndex(random_vectors[:50], n_trees=2), NeighbourIndex)


# -------------------------------------------------------------------------------------
# validation
# -------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [ExactIndex, lambda v, **kw: AnnoyIndex(v, n_trees=2, **kw)])
def test_validation_errors(random_vectors, make):
    index = make(random_vectors)
    with pytest.raises(SongsimError, match=r"shape \(16,\)"):
        index.query(np.zeros(15, dtype=np.float32))
    with pytest.raises(SongsimError, match="k must be >= 1"):
        index.query(random_vectors[0], k=0)
    with pytest.raises(SongsimError, match="k must be an integer"):
        index.query(random_vectors[0], k=2.5)
    with pytest.raises(SongsimError, match="only 299 of 300"):
        index.query_row(0, k=300)
    with pytest.raises(SongsimError, match="NaN"):
        index.query(np.full(16, np.nan, dtype=np.float32))
    with pytest.raises(SongsimError, match="boolean mask"):
        index.query(random_vectors[0], exclude=np.zeros(300, dtype=int))
    with pytest.raises(SongsimError, match=r"shape \(300,\)"):
        index.query(random_vectors[0], exclude=np.zeros(299, dtype=bool))
    with pytest.raises(SongsimError, match="out of range"):
        index.query_row(300)
    exclude = np.ones(300, dtype=bool)
    exclude[:3] = False
    with pytest.raises(SongsimError, match="only 3 of 300"):
        index.query(random_vectors[0], k=4, exclude=exclude)
    # (1, dim) is accepted as a single vector
    assert len(index.query(random_vectors[:1], k=2)) == 2


def test_bad_vectors_are_rejected():
    with pytest.raises(SongsimError, match="2-D"):
        ExactIndex(np.zeros(5, dtype=np.float32))
    bad = np.ones((10, 3), dtype=np.float32)
    bad[4, 1] = np.nan
    with pytest.raises(SongsimError, match=r"rows 4"):
        ExactIndex(bad)
    with pytest.raises(SongsimError, match="NaN"):
        AnnoyIndex(bad)
    with pytest.raises(SongsimError, match="Unknown metric"):
        ExactIndex(np.ones((3, 3)), metric="manhattan")
    with pytest.raises(SongsimError, match="search_k"):
        AnnoyIndex(np.ones((3, 3)), search_k=-1)


# -------------------------------------------------------------------------------------
# exclusion mask (MIREX artist filter)
# -------------------------------------------------------------------------------------
def test_artist_filter_excludes_whole_artist_and_missing_never_match():
    artists = ["Miles", "Coltrane", "miles ", None, float("nan"), "", "  ", "Miles", "Evans"]
    mask = exclusion_mask(9, query_row=1, artists=artists, query_artist="Miles")
    assert mask.tolist() == [True, True, True, False, False, False, False, True, False]
    # a query with a missing artist excludes only its own row
    for missing in (None, float("nan"), "", "   "):
        mask = exclusion_mask(9, query_row=3, artists=artists, query_artist=missing)
        assert mask.tolist() == [i == 3 for i in range(9)]
    # numpy object arrays work too
    mask = exclusion_mask(9, artists=np.array(artists, dtype=object), query_artist="EVANS")
    assert np.flatnonzero(mask).tolist() == [8]
    # keys normalised once give the same masks
    keys = artist_keys(artists)
    assert keys.tolist() == [
        "miles", "coltrane", "miles", None, None, None, None, "miles", "evans"
    ]
    assert artist_keys(keys) is keys
    for query_artist in ("Miles", "evans", None, ""):
        fast = exclusion_mask(9, query_row=0, artists=keys, query_artist=query_artist)
        slow = exclusion_mask(9, query_row=0, artists=artists, query_artist=query_artist)
        assert type(fast) is np.ndarray and fast.dtype == bool
        np.testing.assert_array_equal(fast, slow)


def test_artist_filter_with_pandas_missing_values():
    pd = pytest.importorskip("pandas")
    artists = pd.Series(["A", pd.NA, None, "B", "A"], dtype="object")
    mask = exclusion_mask(5, artists=artists, query_artist="A")
    assert mask.tolist() == [True, False, False, False, True]
    keys = artist_keys(pd.Series(["A", None], dtype="string"))
    assert keys.tolist() == ["a", None]


def test_exclusion_mask_with_index_never_returns_artist():
    vectors = clustered(200, 8, n_clusters=4, seed=5)
    artists = [f"artist{i % 20}" for i in range(200)]
    index = ExactIndex(vectors)
    mask = exclusion_mask(200, query_row=7, artists=artists, query_artist=artists[7])
    res = index.query_row(7, k=10, exclude=mask)
    assert all(artists[i] != artists[7] for i in res.indices)


def test_exclusion_mask_errors():
    with pytest.raises(SongsimError, match="3 entries"):
        exclusion_mask(4, artists=["a", "b", "c"], query_artist="a")
    with pytest.raises(SongsimError, match="without artists"):
        exclusion_mask(4, query_artist="a")
    with pytest.raises(SongsimError, match="out of range"):
        exclusion_mask(4, query_row=4)
    assert exclusion_mask(0).shape == (0,)


# -------------------------------------------------------------------------------------
# annoy
# -------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", METRICS)
def test_annoy_recall_at_5_with_default_search_k(clustered_5k, annoy_5k, metric):
    exact = ExactIndex(clustered_5k, metric=metric)
    approx = annoy_5k[metric]
    assert approx.search_k == DEFAULT_SEARCH_K
    rows = np.random.default_rng(11).choice(len(clustered_5k), size=200, replace=False)
    hits = 0
    for row in rows:
        want = set(exact.query_row(int(row), k=5).indices.tolist())
        got = approx.query_row(int(row), k=5)
        assert len(got) == 5 and int(row) not in got.indices
        hits += len(want & set(got.indices.tolist()))
    recall = hits / (5 * len(rows))
    assert recall >= 0.9, f"annoy recall@5 {recall:.3f} < 0.9"


@pytest.mark.parametrize("metric", METRICS)
def test_annoy_scores_match_exact_scores(clustered_5k, annoy_5k, metric):
    exact = ExactIndex(clustered_5k, metric=metric)
    res = annoy_5k[metric].query_row(42, k=5)
    ref = exact.scores(clustered_5k[42])[res.indices]
    np.testing.assert_allclose(res.scores, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", METRICS)
def test_annoy_returns_exactly_k_when_most_rows_excluded(clustered_5k, annoy_5k, metric):
    exact = ExactIndex(clustered_5k, metric=metric)
    rng = np.random.default_rng(4)
    for fraction in (0.05, 0.4, 0.9, 0.999):
        exclude = rng.random(len(clustered_5k)) < fraction
        exclude[:10] = False
        res = annoy_5k[metric].query_row(0, k=5, exclude=exclude)
        assert len(res) == 5
        assert not exclude[res.indices].any() and 0 not in res.indices
        if fraction > 0.5:  # answered exactly
            ref = exact.query_row(0, k=5, exclude=exclude)
            np.testing.assert_array_equal(res.indices, ref.indices)


def test_annoy_neighbours_of_nearest_rows_excluded(clustered_5k, annoy_5k):
    """Exclude the 60 nearest rows: annoy must over-fetch past them (not fall back)."""
    exact = ExactIndex(clustered_5k)
    near = exact.query_row(9, k=60).indices
    exclude = np.zeros(len(clustered_5k), dtype=bool)
    exclude[near] = True
    index = annoy_5k["cosine"]
    assert index.n_trees * (5 + 61) <= index.n_items  # the annoy path is taken
    res = index.query_row(9, k=5, exclude=exclude)
    ref = exact.query_row(9, k=5, exclude=exclude)
    assert len(res) == 5 and not exclude[res.indices].any()
    assert len(set(res.indices.tolist()) & set(ref.indices.tolist())) >= 4


@pytest.mark.parametrize("metric", METRICS)
def test_annoy_save_load_round_trip(tmp_path, clustered_5k, metric):
    vectors = clustered_5k[:1_000]
    built = AnnoyIndex(vectors, metric=metric, n_trees=10)
    path = built.save(tmp_path / "sub" / "space.annoy")
    assert path.is_file() and built.path == path
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    meta = json.loads((tmp_path / "sub" / "space.annoy.meta.json").read_text())
    assert meta["dim"] == 64 and meta["metric"] == metric and meta["n_items"] == 1_000
    assert meta["fingerprint"] == vectors_fingerprint(vectors)

    loaded = AnnoyIndex.load(path, 64, metric)
    assert (loaded.n_items, loaded.dim, loaded.n_trees) == (1_000, 64, 10)
    for row in (0, 1, 500):
        a, b = built.query_row(row, k=5), loaded.query_row(row, k=5)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_allclose(a.scores, b.scores)
    # exact fallback without vectors in memory reads them back from the file
    exclude = np.ones(1_000, dtype=bool)
    exclude[100:120] = False
    ref = ExactIndex(vectors, metric=metric).query(vectors[0], k=5, exclude=exclude)
    got = loaded.query(vectors[0], k=5, exclude=exclude)
    np.testing.assert_array_equal(got.indices, ref.indices)


def test_annoy_load_errors(tmp_path, clustered_5k):
    with pytest.raises(NotBuiltError, match="make_index"):
        AnnoyIndex.load(tmp_path / "missing.annoy", 64, "cosine")
    path = AnnoyIndex(clustered_5k[:200], n_trees=2).save(tmp_path / "x.annoy")
    with pytest.raises(SongsimError, match="dim=64"):
        AnnoyIndex.load(path, 32, "cosine")
    with pytest.raises(SongsimError, match="metric='cosine'"):
        AnnoyIndex.load(path, 64, "euclidean")
    with pytest.raises(SongsimError, match="do not match"):
        AnnoyIndex.load(path, 64, "cosine", vectors=clustered_5k[:100])


# -------------------------------------------------------------------------------------
# make_index
# -------------------------------------------------------------------------------------
def test_make_index_picks_exact_below_threshold(random_vectors):
    index = make_index(random_vectors, annoy_above=300)
    assert isinstance(index, ExactIndex)
    index = make_index(random_vectors, annoy_above=299, metric="euclidean")
    assert isinstance(index, AnnoyIndex) and index.metric == "euclidean"


def test_make_index_builds_then_loads_then_rebuilds_on_change(tmp_path, clustered_5k):
    vectors = clustered_5k[:600]
    path = tmp_path / "space.annoy"
    first = make_index(vectors, annoy_above=500, path=path, n_trees=5)
    assert isinstance(first, AnnoyIndex) and path.is_file()
    stamp = path.stat().st_mtime_ns

    second = make_index(vectors, annoy_above=500, path=path, n_trees=5)
    assert path.stat().st_mtime_ns == stamp  # loaded, not rebuilt
    np.testing.assert_array_equal(
        first.query_row(3, k=5).indices, second.query_row(3, k=5).indices
    )

    changed = vectors.copy()
    changed[0] += 1.0
    third = make_index(changed, annoy_above=500, path=path, n_trees=5)
    assert json.loads(path.with_name("space.annoy.meta.json").read_text())[
        "fingerprint"
    ] == vectors_fingerprint(changed)
    assert third.n_items == 600
