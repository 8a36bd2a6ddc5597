"""Hubness reduction: mutual proximity and local scaling, checked by hand and on hubby data."""

import json

import numpy as np
import pytest
from scipy.stats import norm

from songsim.cli import main
from songsim.errors import SongsimError
from songsim.metrics import hubness
from songsim.neighbours import ExactIndex, HubnessReducedIndex

# four points on a line (euclidean): distances between rows are |a - b|
LINE = np.array([[0.0], [1.0], [3.0], [7.0]], dtype=np.float32)


def _others(row: int) -> np.ndarray:
    return np.array([abs(float(LINE[row, 0] - LINE[j, 0])) for j in range(len(LINE)) if j != row])


def test_empirical_mutual_proximity_by_hand():
    index = HubnessReducedIndex(LINE, metric="euclidean", method="mp")
    reduced = index.reduced_distances(LINE[0])
    for y in range(1, 4):
        d = abs(float(LINE[0, 0] - LINE[y, 0]))
        beyond_x = np.mean(_others(0) > d)  # the query's distances to the others beyond d
        beyond_y = np.mean(_others(y) > d)
        assert reduced[y] == pytest.approx(1.0 - beyond_x * beyond_y)
    assert reduced[1] == pytest.approx(1 - (2 / 3) * (2 / 3))  # row 1's others: 1, 2, 6


def test_gaussian_mutual_proximity_and_local_scaling_by_hand():
    gauss = HubnessReducedIndex(LINE, metric="euclidean", method="mp-gauss").reduced_distances(LINE[1])
    scaled = HubnessReducedIndex(LINE, metric="euclidean", method="ls").reduced_distances(LINE[1])
    q = _others(1)
    for y in (0, 2, 3):
        d = abs(float(LINE[1, 0] - LINE[y, 0]))
        o = _others(y)
        expected = 1 - norm.sf(d, q.mean(), q.std()) * norm.sf(d, o.mean(), o.std())
        assert gauss[y] == pytest.approx(expected, rel=1e-6)
        sigma_q, sigma_y = np.sort(q)[2], np.sort(o)[2]  # the 3rd (= n - 1) nearest: k is clipped to n - 1
        assert scaled[y] == pytest.approx(1 - np.exp(-(d**2) / (sigma_q * sigma_y)), rel=1e-6)


def test_query_row_never_returns_the_row_and_ranks_by_the_reduced_distance():
    index = HubnessReducedIndex(LINE, metric="euclidean", method="mp")
    found = index.query_row(1, k=3)
    assert 1 not in found.indices.tolist()
    assert list(found.scores) == sorted(found.scores, reverse=True)
    reduced = index.reduced_distances(LINE[1])
    assert found.indices.tolist() == [int(i) for i in np.argsort(reduced, kind="stable") if i != 1][:3]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("method", ["mp", "mp-gauss", "ls"])
def test_every_reduction_lowers_the_skewness_of_hubby_data(metric, method):
    x = np.random.default_rng(0).standard_normal((400, 50)).astype(np.float32)  # high-dimensional: hubs
    def skew(index):
        return hubness(np.array([index.query_row(i, k=5).indices for i in range(len(x))]), len(x))["skewness"]
    before = skew(ExactIndex(x, metric=metric))
    after = skew(HubnessReducedIndex(x, metric=metric, method=method))
    assert after < before


def test_an_unknown_method_is_a_clear_error():
    with pytest.raises(SongsimError, match="Unknown hubness reduction 'zz'"):
        HubnessReducedIndex(LINE, method="zz")


def test_query_and_evaluate_take_a_hubness_option(built_catalogue, capsys):
    assert main(["query", str(built_catalogue), "--track", "pads-01", "--hubness", "mp", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["hubness"] == "mp" and all(-1 <= n["score"] <= 0 for n in printed["neighbours"])
    assert main(["evaluate", str(built_catalogue), "--spaces", "random", "--hubness", "mp", "--json"]) == 0
    reduced = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(built_catalogue), "--spaces", "random", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert reduced["hubness"] == "mp" and reduced["spaces"]["random"]["hubness"] == "mp"
    assert reduced["spaces"]["random"]["hubness_skew"] < plain["spaces"]["random"]["hubness_skew"]


def test_a_study_compares_a_space_with_and_without_hub_reduction(built_catalogue, tmp_path, capsys):
    import shutil
    from pathlib import Path

    from songsim.catalogue import load_catalogue
    from songsim.query import search
    from songsim.studies.study import load_study

    root = Path(shutil.copytree(built_catalogue, tmp_path / "copy"))
    assert main(["study", "create", str(root), "--name", "hubs", "--spaces", "handcrafted,handcrafted+mp", "--queries", "4", "-k", "3"]) == 0
    study = load_study(root, "hubs")
    catalogue = load_catalogue(root)
    for query in study.queries:
        assert query.runs["handcrafted+mp"] == search(catalogue, "handcrafted", track_id=query.query_id, k=3, hubness="mp", exclude_artist=True).track_ids(catalogue)
        assert query.runs["handcrafted"] == search(catalogue, "handcrafted", track_id=query.query_id, k=3, exclude_artist=True).track_ids(catalogue)
    assert main(["study", "add-space", str(root), "--name", "hubs", "--space", "random+ls"]) == 0
    assert main(["study", "add-space", str(root), "--name", "hubs", "--space", "random+zz"]) == 2
    assert "no hub reduction" in capsys.readouterr().err
    query = load_study(root, "hubs").queries[0]
    assert main(["rate", str(root), "--study", "hubs", "--rater", "R1", "--query", query.query_id,
                 "--candidate", query.runs["handcrafted+mp"][0], "--broad", "2"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["report", str(root), "--study", "hubs", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"handcrafted", "handcrafted+mp", "random+ls"} <= set(report["spaces"])
