"""One search path: the CLI, the Explore page, panel studies and evaluate give the same top-k.

The space under test is searched by its own similarity, euclidean, whose ranking differs from
cosine's on these vectors: a caller that fell back to cosine would list other neighbours.
"""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from songsim.build import build
from songsim.catalogue import load_catalogue
from songsim.cli import main
from songsim.evaluate import evaluate_catalogue
from songsim.query import search, track_labels
from songsim.spaces import base as spaces_base
from songsim.spaces.baseline import HandcraftedSpace
from songsim.studies.study import create_study

APP = str(Path(__file__).resolve().parents[1] / "app.py")
K = 5


class EuclideanHandcraftedSpace(HandcraftedSpace):
    """The handcrafted vectors, made to be compared by distance (their norms differ)."""

    name = "toy-euclidean"
    description = "handcrafted vectors compared by euclidean distance"
    metric = "euclidean"


@pytest.fixture
def euclidean_catalogue(built_catalogue, tmp_path, monkeypatch):
    monkeypatch.setitem(spaces_base._SPACE_TYPES, EuclideanHandcraftedSpace.name, EuclideanHandcraftedSpace)
    root = Path(shutil.copytree(built_catalogue, tmp_path / "copy"))
    build(root, spaces=[EuclideanHandcraftedSpace.name], map_methods=("pca",), n_jobs=1)
    return root


def _query_where_the_metrics_disagree(catalogue) -> str:
    for track_id in catalogue.track_ids:
        own = search(catalogue, EuclideanHandcraftedSpace.name, track_id=track_id, k=K)
        cosine = search(catalogue, EuclideanHandcraftedSpace.name, track_id=track_id, k=K, metric="cosine")
        if own.track_ids(catalogue) != cosine.track_ids(catalogue):
            return track_id
    raise AssertionError("cosine and euclidean agree on every query: the test could not tell them apart")


def _cli_top_k(root: Path, track_id: str, capsys) -> tuple[str, list[str]]:
    assert main(["query", str(root), "--track", track_id, "--space", EuclideanHandcraftedSpace.name, "-k", str(K), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    return printed["metric"], [n["track_id"] for n in printed["neighbours"]]


def _explore_top_k(root: Path, track_id: str, monkeypatch) -> list[str]:
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(root))
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["space"] = EuclideanHandcraftedSpace.name  # the sidebar's space selector
    at.run()
    assert at.session_state["space_name"] == EuclideanHandcraftedSpace.name
    at.radio(key="method").set_value("pca").run()
    at.selectbox(key="search").set_value(track_id).run()
    assert not at.exception, at.exception
    catalogue = load_catalogue(root)
    by_label = {label: tid for label, tid in zip(track_labels(catalogue), catalogue.track_ids)}
    assert any(f"map of **{EuclideanHandcraftedSpace.name}**" in c.value for c in at.caption)
    ranked = [re.match(r"\*\*(\d+)\. (.+)\*\*", m.value) for m in at.markdown]
    return [by_label[m.group(2)] for m in ranked if m]


def test_cli_explore_studies_and_evaluate_give_the_same_top_k(euclidean_catalogue, capsys, monkeypatch):
    root = euclidean_catalogue
    catalogue = load_catalogue(root)
    track_id = _query_where_the_metrics_disagree(catalogue)
    expected = search(catalogue, EuclideanHandcraftedSpace.name, track_id=track_id, k=K)
    assert expected.metric == "euclidean"

    metric, cli = _cli_top_k(root, track_id, capsys)
    assert metric == "euclidean" and cli == expected.track_ids(catalogue)

    assert _explore_top_k(root, track_id, monkeypatch) == expected.track_ids(catalogue)

    study = create_study(
        root, "same-top-k", spaces=[EuclideanHandcraftedSpace.name], query_ids=[track_id], k=K, artist_filter=False,
    )  # fmt: skip
    assert study.query(track_id).runs[EuclideanHandcraftedSpace.name] == expected.track_ids(catalogue)

    # evaluate's genre P@5 is the mean, over every song, of the share of its search top-5 in its genre
    genres = catalogue.labels("genre")
    shares = [
        np.mean(genres[search(catalogue, EuclideanHandcraftedSpace.name, track_id=tid, k=K).neighbours.indices] == genres[row])
        for row, tid in enumerate(catalogue.track_ids)
    ]
    figures = evaluate_catalogue(root, spaces=[EuclideanHandcraftedSpace.name], k=K)["spaces"][EuclideanHandcraftedSpace.name]
    assert figures["metric"] == "euclidean"
    assert figures["genre_p@5"] == pytest.approx(np.mean(shares), abs=1e-4)


def test_the_artist_filter_is_applied_alike(euclidean_catalogue, capsys):
    catalogue = load_catalogue(euclidean_catalogue)
    track_id = catalogue.track_ids[0]
    filtered = search(catalogue, EuclideanHandcraftedSpace.name, track_id=track_id, k=K, exclude_artist=True)
    artist = catalogue.track(track_id)["artist"]
    assert all(catalogue.track(t)["artist"] != artist for t in filtered.track_ids(catalogue))
    assert main(
        ["query", str(euclidean_catalogue), "--track", track_id, "--space", EuclideanHandcraftedSpace.name, "--exclude-artist", "--json"]
    ) == 0
    assert [n["track_id"] for n in json.loads(capsys.readouterr().out)["neighbours"]] == filtered.track_ids(catalogue)


def test_query_searches_wavenet_by_its_own_euclidean_distance(trained_catalogue, capsys):
    catalogue = load_catalogue(trained_catalogue)
    track_id = catalogue.track_ids[3]
    assert main(["query", str(trained_catalogue), "--track", track_id, "--space", "wavenet", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["metric"] == "euclidean"
    assert [n["track_id"] for n in printed["neighbours"]] == search(catalogue, "wavenet", track_id=track_id, metric="euclidean").track_ids(catalogue)
    assert all(n["score"] <= 0 for n in printed["neighbours"])  # −distance
