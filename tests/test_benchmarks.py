"""songsim.benchmarks at tiny sizes: the generator, recall@k against exact search, and the JSON
that ``python -m songsim bench index`` prints."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from songsim.benchmarks import bench_index, clustered_embeddings, format_index_table, recall_at_k
from songsim.errors import SongsimError
from songsim.neighbours import Neighbours

SIZE_KEYS = {"build_s", "query_ms_median", "query_ms_p95", "recall@5", "exact_ms_median"}


def test_clustered_embeddings_are_deterministic_clustered_and_full_rank():
    vectors, labels = clustered_embeddings(3_000, 32, n_clusters=20, seed=4)
    again, _ = clustered_embeddings(3_000, 32, n_clusters=20, seed=4)
    assert vectors.shape == (3_000, 32) and vectors.dtype == np.float32 and labels.shape == (3_000,)
    np.testing.assert_array_equal(vectors, again)
    assert set(np.unique(labels)) <= set(range(20))
    sizes = np.bincount(labels, minlength=20)
    assert sizes.max() > 3 * np.median(sizes)  # cluster sizes vary
    assert np.linalg.matrix_rank(vectors[:500]) == 32  # ambient noise: full rank
    # rows of one cluster are closer to each other than to the rest
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    big = np.argmax(sizes)
    inside = unit[labels == big][:100]
    outside = unit[labels != big][:100]
    assert (inside @ inside.T).mean() > (inside @ outside.T).mean() + 0.1


def test_recall_at_k_counts_the_shared_rows():
    exact = [Neighbours([1, 2, 3, 4, 5], np.linspace(1, 0.5, 5)), Neighbours([6, 7, 8, 9, 10], np.linspace(1, 0.5, 5))]
    approx = [Neighbours([5, 4, 3, 2, 1], np.linspace(1, 0.5, 5)), Neighbours([6, 7, 0, 11, 12], np.linspace(1, 0.5, 5))]
    assert recall_at_k(approx, exact) == pytest.approx((1.0 + 0.4) / 2)
    with pytest.raises(SongsimError):
        recall_at_k(approx[:1], exact)


def test_bench_index_is_measured_against_exact_search(tmp_path):
    exhaustive = bench_index([1_000, 2_000], n_queries=40, n_trees=4, search_k=100_000, workdir=tmp_path)
    assert set(exhaustive["sizes"]) == {"1000", "2000"}
    for figures in exhaustive["sizes"].values():
        assert SIZE_KEYS <= set(figures)
        assert figures["recall@5"] == 1.0  # every node inspected: annoy returns the exact top-5
        assert 0 < figures["query_ms_median"] <= figures["query_ms_p95"]
        assert figures["build_s"] >= 0 and figures["exact_ms_median"] > 0
    assert exhaustive["settings"]["search_k"] == 100_000 and exhaustive["generator"]["n_clusters"] == 300
    assert list(tmp_path.iterdir()) == []  # the annoy file is removed
    starved = bench_index([2_000], n_queries=40, n_trees=1, search_k=1, workdir=tmp_path)
    assert starved["sizes"]["2000"]["recall@5"] < 0.9  # one leaf of one tree misses neighbours
    assert "recall@5" in format_index_table(starved)


def test_bench_index_rejects_sizes_annoy_would_not_answer():
    with pytest.raises(SongsimError, match="too small"):
        bench_index([100], n_trees=50)


def test_cli_bench_index_prints_the_documented_json(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "songsim", "bench", "index", "--sizes", "1000,1500", "--queries", "20",
         "--n-trees", "3", "--workdir", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert list(payload["sizes"]) == ["1000", "1500"]
    assert all(SIZE_KEYS <= set(figures) for figures in payload["sizes"].values())
    bad = subprocess.run([sys.executable, "-m", "songsim", "bench", "index", "--sizes", "ten"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "comma-separated list" in bad.stderr
