"""Tests of songsim.maps: PCA / UMAP / t-SNE maps, transform of new points, persistence.

UMAP tests are marked slow: the first UMAP fit and transform in a process cost ~35 s
(numba compiling); t-SNE and PCA tests take about a second each.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from songsim import maps
from songsim.errors import NotBuiltError, SongsimError, UntrustedFileError
from songsim.maps import (
    MAP_PURPOSE,
    FittedMap,
    fit_map,
    load_map,
    map_methods,
    register_map_method,
    sample_rows,
    save_map,
    trustworthiness,
    warm_up,
)
from songsim.signed import write_signed

FAST = ["pca", "tsne"]
ALL = ["pca", "tsne", pytest.param("umap", marks=pytest.mark.slow)]
# transform(training row) vs its fitted coordinate, as a fraction of the map's extent.
# Measured on the 200 x 20 fixture: PCA 0, t-SNE median 0.002 / max 0.003,
# UMAP median 0.016 / max 0.04.
NEAR_MEDIAN = {"pca": 1e-6, "tsne": 0.03, "umap": 0.05}
NEAR_MAX = {"pca": 1e-6, "tsne": 0.1, "umap": 0.15}


def clustered(n: int = 200, dim: int = 20, *, n_clusters: int = 4, seed: int = 0):
    """``(n, dim) float32``: well separated Gaussian clusters."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.normal(size=(n_clusters, dim))
    labels = rng.integers(0, n_clusters, size=n)
    return (centres[labels] + rng.normal(size=(n, dim))).astype(np.float32)


@pytest.fixture(scope="module")
def vectors():
    return clustered()


_FITTED: dict[str, FittedMap] = {}


@pytest.fixture
def fitted_of(vectors):
    """Fit each method once per test module (UMAP's first fit is expensive)."""

    def get(method: str) -> FittedMap:
        if method not in _FITTED:
            _FITTED[method] = fit_map(vectors, method=method, seed=0)
        return _FITTED[method]

    return get


@pytest.mark.parametrize("method", ALL)
def test_coords_shape_dtype_finite(fitted_of, vectors, method):
    fitted = fitted_of(method)
    assert fitted.method == method and fitted.is_fitted
    assert fitted.coords_.shape == (len(vectors), 2)
    assert fitted.coords_.dtype == np.float32
    assert np.isfinite(fitted.coords_).all()
    assert fitted.n_features_in_ == 20 and fitted.n_samples_fit_ == 200
    assert 0.0 < fitted.trustworthiness_ <= 1.0
    assert fitted.trustworthiness_ > 0.8  # four clean clusters are easy to map
    assert min(fitted.extent()) > 0


@pytest.mark.parametrize("method", ALL)
def test_transform_of_training_rows_lands_near_their_coords(fitted_of, vectors, method):
    fitted = fitted_of(method)
    placed = fitted.transform(vectors[:20])
    assert placed.shape == (20, 2) and placed.dtype == np.float32
    error = np.linalg.norm(placed - fitted.coords_[:20], axis=1) / max(fitted.extent())
    assert np.median(error) <= NEAR_MEDIAN[method], error
    assert error.max() <= NEAR_MAX[method], error
    # a single vector (dim,) gives one row
    assert fitted.transform(vectors[0]).shape == (1, 2)


@pytest.mark.parametrize("method", ALL)
def test_transform_never_refits(fitted_of, vectors, method):
    fitted = fitted_of(method)
    reducer = fitted.reducer_
    coords = fitted.coords_.copy()
    state = pickle.dumps(fitted.reducer_)
    rng = np.random.default_rng(9)
    fitted.transform(rng.normal(size=(7, 20)).astype(np.float32))
    fitted.transform(vectors[50:60] * 2.0)
    assert fitted.reducer_ is reducer
    np.testing.assert_array_equal(fitted.coords_, coords)
    assert fitted.n_samples_fit_ == 200
    # (UMAP above 4 096 rows prepares its search index on the first transform; not here)
    assert pickle.dumps(fitted.reducer_) == state
    with pytest.raises(ValueError):
        fitted.coords_[0, 0] = 1.0  # read-only: cached maps are shared between sessions


@pytest.mark.parametrize("method", ALL)
def test_save_load_round_trip(tmp_path, fitted_of, vectors, method):
    fitted = fitted_of(method)
    path = save_map(fitted, tmp_path / "maps" / f"space-{method}.pkl")
    assert not [p for p in path.parent.iterdir() if p.name != path.name]  # no temp files
    loaded = load_map(path)
    assert isinstance(loaded, FittedMap) and loaded.method == method
    np.testing.assert_array_equal(loaded.coords_, fitted.coords_)
    assert loaded.trustworthiness_ == fitted.trustworthiness_
    assert (loaded.seed, loaded.metric) == (fitted.seed, fitted.metric)
    new = vectors[:5] + 0.05
    np.testing.assert_allclose(loaded.transform(new), fitted.transform(new), atol=1e-5)
    assert warm_up(loaded) >= 0.0


@pytest.mark.parametrize("method", ALL)
def test_deterministic_for_a_seed(fitted_of, vectors, method):
    again = fit_map(vectors, method=method, seed=0)
    np.testing.assert_array_equal(again.coords_, fitted_of(method).coords_)
    np.testing.assert_array_equal(
        again.transform(vectors[:3] + 0.1), fitted_of(method).transform(vectors[:3] + 0.1)
    )


@pytest.mark.slow
def test_umap_seed_changes_the_layout(vectors, fitted_of):
    other = fit_map(vectors, method="umap", seed=1)
    assert not np.allclose(other.coords_, fitted_of("umap").coords_)


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("n", [5, 10])
def test_tiny_maps_work(method, n):
    vectors = clustered(n, 6, n_clusters=2, seed=n)
    fitted = fit_map(vectors, method=method, seed=0)
    assert fitted.coords_.shape == (n, 2) and np.isfinite(fitted.coords_).all()
    placed = fitted.transform(vectors[:2] + 0.01)
    assert placed.shape == (2, 2) and np.isfinite(placed).all()
    assert 0.0 < fitted.trustworthiness_ <= 1.0


def test_cosine_maps_ignore_vector_length(fitted_of, vectors):
    fitted = fitted_of("pca")
    assert fitted.metric == "cosine"
    np.testing.assert_allclose(
        fitted.transform(vectors[:5] * 7.5), fitted.transform(vectors[:5]), atol=1e-5
    )
    # a zero vector stays finite
    assert np.isfinite(fitted.transform(np.zeros(20, dtype=np.float32))).all()


def test_euclidean_metric_pca_matches_sklearn(vectors):
    from sklearn.decomposition import PCA

    fitted = fit_map(vectors, method="pca", metric="euclidean")
    ref = PCA(n_components=2, svd_solver="full").fit_transform(vectors)
    np.testing.assert_allclose(np.abs(fitted.coords_), np.abs(ref), rtol=1e-4, atol=1e-4)


def test_trustworthiness_prefers_pca_on_linear_low_rank_data():
    rng = np.random.default_rng(3)
    latent = rng.normal(size=(300, 2)) * [5.0, 2.0]
    vectors = (latent @ rng.normal(size=(2, 30)) + 0.01 * rng.normal(size=(300, 30))).astype(
        np.float32
    )
    fitted = fit_map(vectors, method="pca", metric="euclidean")
    random_map = vectors @ rng.normal(size=(30, 2))
    random_trust = trustworthiness(vectors, random_map, metric="euclidean")
    assert 0.0 < fitted.trustworthiness_ <= 1.0 and 0.0 < random_trust <= 1.0
    assert fitted.trustworthiness_ > 0.99
    assert fitted.trustworthiness_ > random_trust


def test_trustworthiness_matches_sklearn_and_subsamples():
    from sklearn.manifold import trustworthiness as sk_trust

    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 8))
    y = x[:, :2] + rng.normal(scale=0.5, size=(100, 2))
    assert trustworthiness(x, y, metric="cosine") == pytest.approx(
        sk_trust(x, y, n_neighbors=5, metric="cosine")
    )
    assert 0.0 < trustworthiness(x, y, max_rows=40) <= 1.0
    assert np.isnan(trustworthiness(x[:2], y[:2]))


# -------------------------------------------------------------------------------------
# errors
# -------------------------------------------------------------------------------------
def test_errors(vectors, fitted_of, tmp_path):
    with pytest.raises(SongsimError, match="Unknown map method 'nope'.*pca"):
        fit_map(vectors, method="nope")
    with pytest.raises(SongsimError, match="at least 5 songs"):
        fit_map(vectors[:4], method="pca")
    with pytest.raises(SongsimError, match="at least 2 dims"):
        fit_map(vectors[:, :1], method="pca")
    bad = vectors.copy()
    bad[3, 3] = np.nan
    with pytest.raises(SongsimError, match="NaN"):
        fit_map(bad, method="pca")
    with pytest.raises(SongsimError, match="Unknown metric"):
        fit_map(vectors, method="pca", metric="manhattan")
    with pytest.raises(SongsimError, match="does not accept"):
        fit_map(vectors, method="pca", params={"perplexity": 5})
    fitted = fitted_of("pca")
    with pytest.raises(SongsimError, match="fitted on 20"):
        fitted.transform(np.zeros((2, 19), dtype=np.float32))
    with pytest.raises(SongsimError, match="NaN"):
        fitted.transform(np.full((1, 20), np.nan, dtype=np.float32))
    with pytest.raises(NotBuiltError, match="fit_map"):
        FittedMap("pca").transform(vectors[:1])
    with pytest.raises(NotBuiltError):
        save_map(FittedMap("pca"), tmp_path / "x.pkl")
    with pytest.raises(NotBuiltError, match="No map"):
        load_map(tmp_path / "missing.pkl")
    (tmp_path / "unsigned.pkl").write_bytes(b"not a pickle")  # never unpickled (tests/test_signed_files.py)
    with pytest.raises(UntrustedFileError, match="is not signed"):
        load_map(tmp_path / "unsigned.pkl")
    write_signed(tmp_path / "garbage.pkl", b"not a pickle", purpose=MAP_PURPOSE)
    with pytest.raises(SongsimError, match="damaged"):
        load_map(tmp_path / "garbage.pkl")
    write_signed(tmp_path / "other.pkl", pickle.dumps({"something": 1}), purpose=MAP_PURPOSE)
    with pytest.raises(SongsimError, match="not a songsim map"):
        load_map(tmp_path / "other.pkl")


# -------------------------------------------------------------------------------------
# extension point
# -------------------------------------------------------------------------------------
class FirstTwoAxes:
    """A toy reducer: the first two coordinates."""

    def transform(self, x):
        return x[:, :2] * 10.0


def fit_first_two(x, *, seed, scale=10.0):
    return FirstTwoAxes(), x[:, :2] * scale


def test_register_a_new_method(monkeypatch, vectors, tmp_path):
    monkeypatch.setattr(maps, "_REGISTRY", dict(maps._REGISTRY))
    method = register_map_method("first2", fit_first_two, label="First two axes")
    assert "first2" in map_methods() and map_methods()["first2"] is method
    assert list(map_methods())[:3] == ["umap", "tsne", "pca"]
    fitted = fit_map(vectors, method="first2", metric="euclidean")
    np.testing.assert_allclose(fitted.coords_, vectors[:, :2] * 10.0)
    np.testing.assert_allclose(fitted.transform(vectors[:3]), vectors[:3, :2] * 10.0)
    assert fitted.label == "First two axes"
    loaded = load_map(save_map(fitted, tmp_path / "first2.pkl"))
    np.testing.assert_array_equal(loaded.coords_, fitted.coords_)
    with pytest.raises(SongsimError, match="already registered"):
        register_map_method("first2", lambda x, *, seed: None)
    register_map_method("first2", fit_first_two)  # re-registering the same function is fine
    with pytest.raises(SongsimError, match="lower-case"):
        register_map_method("Bad Name", fit_first_two)
    with pytest.raises(TypeError):
        map_methods()["x"] = method  # read-only view


def test_registry_rejects_bad_output(monkeypatch, vectors):
    monkeypatch.setattr(maps, "_REGISTRY", dict(maps._REGISTRY))
    register_map_method("broken", lambda x, *, seed: (FirstTwoAxes(), x[:, :3]))
    with pytest.raises(SongsimError, match=r"expected \(200, 2\)"):
        fit_map(vectors, method="broken")


# -------------------------------------------------------------------------------------
# large catalogues: fit on a sample, place the rest
# -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def large():
    """500 rows: "large" against a sample size of 200."""
    return clustered(500, 20, n_clusters=5, seed=4)


def test_sample_rows_uniform():
    rows = sample_rows(1000, 100, seed=3)
    assert rows.dtype == np.int64 and rows.shape == (100,)
    assert np.all(np.diff(rows) > 0) and rows.min() >= 0 and rows.max() < 1000  # sorted, distinct
    np.testing.assert_array_equal(rows, sample_rows(1000, 100, seed=3))
    assert not np.array_equal(rows, sample_rows(1000, 100, seed=4))
    np.testing.assert_array_equal(sample_rows(50, 100, seed=0), np.arange(50))


def test_sample_rows_stratified_keeps_proportions_and_small_strata():
    strata = np.array(["rock"] * 700 + ["jazz"] * 290 + ["harp"] * 10, dtype=object)
    rows = sample_rows(1000, 100, seed=0, strata=strata)
    counts = {s: int(np.sum(strata[rows] == s)) for s in ("rock", "jazz", "harp")}
    assert counts == {"rock": 70, "jazz": 29, "harp": 1}
    floored = sample_rows(1000, 100, seed=0, strata=strata, min_per_stratum=10)
    counts = {s: int(np.sum(strata[floored] == s)) for s in ("rock", "jazz", "harp")}
    # each keeps 10, the other 70 are shared as the 690 and 280 rows left: 49.8 -> 50, 20.2 -> 20
    assert counts == {"rock": 60, "jazz": 30, "harp": 10}
    with pytest.raises(SongsimError, match="one label per row"):
        sample_rows(1000, 10, strata=strata[:5])


def test_sample_fit_places_every_row(large):
    fitted = fit_map(large, method="tsne", seed=0, sample_size=200)
    assert fitted.coords_.shape == (500, 2) and np.isfinite(fitted.coords_).all()
    assert fitted.n_samples_fit_ == 200 and fitted.sample_rows_.shape == (200,)
    assert np.all(np.diff(fitted.sample_rows_) > 0)
    assert fitted.transform_time_s_ > 0 and 0.5 < fitted.trustworthiness_ <= 1.0
    rest = np.setdiff1d(np.arange(500), fitted.sample_rows_)
    # the other rows sit exactly where the fitted map places them (as an upload would be)
    np.testing.assert_allclose(fitted.transform(large[rest]), fitted.coords_[rest], atol=1e-5)
    # deterministic for a seed
    again = fit_map(large, method="tsne", seed=0, sample_size=200)
    np.testing.assert_array_equal(again.sample_rows_, fitted.sample_rows_)
    np.testing.assert_array_equal(again.coords_, fitted.coords_)
    with pytest.raises(ValueError):
        fitted.sample_rows_[0] = 1  # read-only, like coords_


def test_pca_fits_every_row_whatever_the_sample_size(large):
    fitted = fit_map(large, method="pca", seed=0, sample_size=200)
    assert fitted.sample_rows_ is None and fitted.n_samples_fit_ == 500
    assert fitted.transform_time_s_ == 0.0 or fitted.transform_time_s_ < 0.01
    np.testing.assert_allclose(fitted.transform(large), fitted.coords_, atol=1e-5)


def test_sample_fit_with_a_registered_method_batches_and_stratifies(monkeypatch, large, tmp_path):
    seen = []

    def fit_recording(x, *, seed):
        seen.append(x.shape[0])
        return FirstTwoAxes(), x[:, :2] * 10.0

    monkeypatch.setattr(maps, "_REGISTRY", dict(maps._REGISTRY))
    monkeypatch.setattr(maps, "TRANSFORM_BATCH_ROWS", 64)  # 300 placed rows: 5 batches
    register_map_method("first2s", fit_recording)
    strata = np.where(np.arange(500) < 450, "big", "small").astype(object)
    fitted = fit_map(large, method="first2s", metric="euclidean", sample_size=200, strata=strata)
    assert seen == [200]
    np.testing.assert_allclose(fitted.coords_, large[:, :2] * 10.0, rtol=1e-6)
    assert np.sum(fitted.sample_rows_ >= 450) == 20  # 10 % of the rows, 10 % of the sample
    assert fit_map(large, method="first2s", sample_size=None).sample_rows_ is None
    loaded = load_map(save_map(fitted, tmp_path / "first2s.pkl"))
    np.testing.assert_array_equal(loaded.sample_rows_, fitted.sample_rows_)
    with pytest.raises(SongsimError, match="sample_size"):
        fit_map(large, method="first2s", sample_size=2)


def test_maps_saved_before_sampling_load_as_fitted_on_every_row(fitted_of, tmp_path):
    old = pickle.loads(pickle.dumps(fitted_of("pca")))
    for name in ("sample_size", "sample_rows_", "transform_time_s_"):
        del old.__dict__[name]
    loaded = load_map(save_map(old, tmp_path / "old.pkl"))
    assert loaded.sample_rows_ is None and loaded.sample_size is None and loaded.transform_time_s_ == 0.0
