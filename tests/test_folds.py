"""songsim.folds and ``evaluate --folds K``: stratified folds, fold splits that never train on
their test rows, fold models stored and reused, spaces built on a held-out space refitted on
its fold models, bad K refused, and the CLI printing figures with their CIs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from songsim.errors import SongsimError
from songsim.spaces.base import Fold, Space, register_space, unregister_space
from songsim.spaces.learned import FOLD_VAL_FRACTION, catalogue_split
from songsim.train import stratified_folds

K = 3
DEPENDENT = "test-doubled-genre-cnn"


# ------------------------------------------------------------------------------------------
# the folds themselves (no training)


def test_stratified_folds_deal_every_stratum_evenly():
    strata = ["a"] * 7 + ["b"] * 5 + ["c"] * 2 + [None] * 3
    folds = stratified_folds(strata, k=3, seed=4)
    assert folds.shape == (len(strata),) and set(folds) == {0, 1, 2}
    sizes = np.bincount(folds, minlength=3)
    assert sizes.max() - sizes.min() <= 1
    for stratum in ("a", "b", "c", None):
        per_fold = np.bincount(folds[[s == stratum for s in strata]], minlength=3)
        assert per_fold.max() - per_fold.min() <= 1, stratum
    np.testing.assert_array_equal(stratified_folds(strata, k=3, seed=4), folds)  # deterministic from the seed
    assert not np.array_equal(stratified_folds(strata, k=3, seed=5), folds)
    with pytest.raises(ValueError, match="k must be"):
        stratified_folds(strata, k=1)


def test_fold_splits_partition_the_songs_and_never_train_on_their_test_rows():
    n = 48
    labels = {
        "genre": np.array([f"g{i % 4}" for i in range(n)], dtype=object),
        "emotion": np.array([f"e{i % 3}" for i in range(n)], dtype=object),
    }
    tests = []
    for index in range(4):
        split = catalogue_split(labels, n_rows=n, seed=0, fold=Fold(index, 4))
        parts = [set(split.train), set(split.val), set(split.test)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert len(split.train) + len(split.val) + len(split.test) == n
        assert abs(len(split.val) - FOLD_VAL_FRACTION * n) <= 1  # the validation rows come from the other folds
        assert set(labels["genre"][split.test]) == {"g0", "g1", "g2", "g3"}  # every genre in every fold
        tests.append(split.test)
    assert sorted(np.concatenate(tests).tolist()) == list(range(n))  # every song a test row exactly once
    shared = catalogue_split(labels, n_rows=n, seed=0)
    assert len(shared.test) < n / 4  # the 10 % split is what folds replace


@pytest.mark.parametrize("bad", [(0, 1), (3, 3), (-1, 2), (True, 2)])
def test_a_bad_fold_is_refused(bad):
    with pytest.raises(ValueError, match="Fold"):
        Fold(*bad)


# ------------------------------------------------------------------------------------------
# fold models on a built catalogue (genre-cnn trained for one epoch)


class DoubledGenreCNN(Space):
    """A space built on genre-cnn that holds nothing out itself: its vectors are twice genre-cnn's."""

    name = DEPENDENT
    description = "test only: 2 × genre-cnn"
    inputs = ("space:genre-cnn",)
    family = "test"

    def fit(self, inputs, *, labels, seed=0):
        self.vectors_ = 2 * np.asarray(inputs["space:genre-cnn"], dtype=np.float32)
        return self

    def transform(self, inputs):
        return 2 * np.asarray(inputs["space:genre-cnn"], dtype=np.float32)


@pytest.fixture(scope="module")
def folds_catalogue(built_catalogue, tmp_path_factory):
    """A copy of the built test catalogue with genre-cnn (1 epoch) and a space built on it,
    evaluated once with ``folds=K`` (the result and the progress messages are returned)."""
    from songsim.build import build
    from songsim.evaluate import evaluate_catalogue
    from songsim.spaces.base import TrainingOptions

    root = Path(shutil.copytree(built_catalogue, tmp_path_factory.mktemp("folds") / "catalogue"))
    register_space(DoubledGenreCNN)
    try:
        report = build(root, spaces=["genre-cnn", DEPENDENT], map_methods=(), n_jobs=1, training=TrainingOptions(max_epochs=1))
        assert set(report.built) == {"genre-cnn", DEPENDENT}, report
        messages = []
        result = evaluate_catalogue(
            root, spaces=["handcrafted", "genre-cnn", DEPENDENT], folds=K, n_boot=200,
            on_progress=lambda stage, fraction, message: messages.append((stage, message)),
        )  # fmt: skip
        yield root, result, messages
    finally:
        unregister_space(DEPENDENT)


@pytest.mark.slow
def test_every_song_is_a_query_exactly_once_of_a_model_that_never_trained_on_it(folds_catalogue):
    from songsim.catalogue import load_catalogue
    from songsim.folds import fold_dir
    from songsim.spaces.store import load_space

    root, result, messages = folds_catalogue
    catalogue = load_catalogue(root)
    n = len(catalogue)
    genre = result["spaces"]["genre-cnn"]
    assert genre["folds"] == K and genre["held_out"] is True and result["folds"] == K
    assert genre["n_queries"]["genre_p@5"] == n and genre["n_queries"]["map"] == n  # not the 10 % split
    assert "folds" not in result["spaces"]["handcrafted"] and result["spaces"]["handcrafted"]["n_queries"]["genre_p@5"] == n
    models = [load_space(fold_dir(catalogue, "genre-cnn", K, i)) for i in range(K)]
    tests = [set(m.test_rows_.tolist()) for m in models]
    assert sorted(r for t in tests for r in t) == list(range(n))  # a partition of the songs
    for i, model in enumerate(models):
        assert model.fold_ == Fold(i, K)
        assert not set(model.train_rows_) & tests[i] and not set(model.val_rows_) & tests[i]  # never trained on its fold
        assert set(catalogue.labels("genre")[model.test_rows_]) == set(catalogue.labels("genre"))
        assert set(model.train_rows_) | set(model.val_rows_) | tests[i] == set(range(n))
    trained = [m for s, m in messages if s == "folds:genre-cnn" and "trained in" in m]
    assert len(trained) == K  # training progress, one line per fold model


@pytest.mark.slow
def test_a_space_built_on_a_held_out_one_is_refitted_on_its_fold_models(folds_catalogue):
    from songsim.catalogue import load_catalogue
    from songsim.folds import fold_dir
    from songsim.spaces.store import load_space

    root, result, _ = folds_catalogue
    catalogue = load_catalogue(root)
    dependent = result["spaces"][DEPENDENT]
    assert dependent["folds"] == K and dependent["n_queries"]["genre_p@5"] == len(catalogue)
    for i in range(K):
        upstream = load_space(fold_dir(catalogue, "genre-cnn", K, i))
        model = load_space(fold_dir(catalogue, DEPENDENT, K, i))
        np.testing.assert_allclose(model.vectors_, 2 * upstream.vectors_)  # fed by the fold-i genre-cnn, not the built one
        np.testing.assert_array_equal(model.test_rows_, upstream.test_rows_)
    # doubling changes no cosine neighbour: the same figures as genre-cnn's fold models
    assert dependent["genre_p@5"] == result["spaces"]["genre-cnn"]["genre_p@5"]


@pytest.mark.slow
def test_stored_fold_models_are_reused(folds_catalogue):
    from songsim.catalogue import load_catalogue
    from songsim.evaluate import evaluate_catalogue
    from songsim.folds import fold_dir

    root, first, _ = folds_catalogue
    catalogue = load_catalogue(root)
    files = [fold_dir(catalogue, "genre-cnn", K, i) / "space.joblib" for i in range(K)]
    stamps = [f.stat().st_mtime_ns for f in files]
    messages = []
    again = evaluate_catalogue(
        root, spaces=["genre-cnn"], folds=K, n_boot=200, on_progress=lambda stage, fraction, message: messages.append(message)
    )
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert sum("stored model reused" in m for m in messages) == K and not any("trained in" in m for m in messages)
    assert again["spaces"]["genre-cnn"] == first["spaces"]["genre-cnn"]


@pytest.mark.slow
@pytest.mark.parametrize(("k", "message"), [(1, "integer >= 2"), (0, "integer >= 2"), (7, "smallest genre"), ("3", "integer >= 2")])
def test_a_bad_fold_count_is_a_clear_error(folds_catalogue, k, message):
    from songsim.evaluate import evaluate_catalogue

    root, _, _ = folds_catalogue
    with pytest.raises(SongsimError, match=message):
        evaluate_catalogue(root, spaces=["genre-cnn"], folds=k)


@pytest.mark.slow
def test_cli_evaluate_folds_prints_figures_with_cis(folds_catalogue):
    root, _, _ = folds_catalogue

    def run(*args):
        return subprocess.run([sys.executable, "-m", "songsim", "evaluate", str(root), *args], capture_output=True, text=True, timeout=300)

    table = run("--spaces", "handcrafted,genre-cnn", "--folds", str(K), "--resamples", "200")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith("genre_p@5 "))
    assert row.count("[") == 2  # "0.950 [0.892, 0.992]" for both spaces
    assert f"genre-cnn: 24 queries per figure (every song, each held out of one of {K} fold models)" in table.stdout
    assert "stored model reused" in table.stderr  # the fixture trained them
    payload = json.loads(run("--spaces", "genre-cnn", "--folds", str(K), "--json").stdout)
    figures = payload["spaces"]["genre-cnn"]
    low, high = figures["ci95"]["genre_p@5"]
    assert low <= figures["genre_p@5"] <= high and payload["bootstrap"]["resamples"] == 1000
    bad = run("--folds", "1")
    assert bad.returncode == 2 and "--folds must be an integer >= 2" in bad.stderr and "Traceback" not in bad.stderr
