"""Tests of the catalogue map figure (songsim.plots): layers, level of detail, WebGL, hover."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from songsim import plots
from songsim.catalogue import Catalogue
from songsim.plots import (
    MAX_COLOUR_GROUPS,
    MIN_DRAWN_PER_GROUP,
    MISSING_LABEL,
    OTHER_LABEL,
    WEBGL_ABOVE,
    hover_text,
    map_figure,
    map_layers,
)


def make_catalogue(n: int, *, n_genres: int = 4, n_artists: int = 10, seed: int = 0) -> Catalogue:
    """``n`` tracks: genres ``g0 ..`` share the rows but ``g{n_genres-1}`` has only 5 (rows
    1-5), every 7th track has no genre, years 1960-2019 with gaps."""
    rng = np.random.default_rng(seed)
    weights = np.r_[np.full(n_genres - 1, 1.0), 0.0]
    genres = np.array([f"g{i}" for i in rng.choice(n_genres, size=n, p=weights / weights.sum())], dtype=object)
    genres[::7] = None
    genres[1:6] = f"g{n_genres - 1}"
    years = pd.array(rng.integers(1960, 2020, n), dtype="Int64")
    years[::11] = pd.NA
    tracks = pd.DataFrame({
        "track_id": [f"t{i:05d}" for i in range(n)],
        "path": [f"/audio/{i}.wav" for i in range(n)],
        "title": [None if i % 13 == 0 else f"Song {i}" for i in range(n)],
        "artist": [f"Artist {i % n_artists}" for i in range(n)],
        "year": years,
        "genre": genres,
    })
    return Catalogue(root=Path("/catalogue"), tracks=tracks)


def coords_of(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 2)).astype(np.float32)


def background(figure: go.Figure) -> list:
    """The catalogue's traces: all but the top-k rings and the query star."""
    return [t for t in figure.data if t.name != "top-k" and t.marker.symbol != "star"]


def test_small_map_draws_every_track_as_svg():
    catalogue, coords = make_catalogue(300), coords_of(300)
    layers = map_layers(catalogue, coords, colour_by="genre")
    assert not layers.sampled and layers.n_drawn == layers.n_points == 300
    assert [layer.name for layer in layers.layers] == ["g0", "g1", "g2", "g3", MISSING_LABEL]
    rows = np.sort(np.concatenate([layer.rows for layer in layers.layers]))
    np.testing.assert_array_equal(rows, np.arange(300))
    figure = map_figure(catalogue, coords, colour_by="genre", query_point=(0.0, 0.0), neighbour_rows=[3, 1, 4])
    assert all(type(t) is go.Scatter for t in figure.data)
    for trace, layer in zip(background(figure), layers.layers):
        np.testing.assert_array_equal(trace.customdata, layer.rows)  # a click names the row
        np.testing.assert_allclose(np.c_[trace.x, trace.y], coords[layer.rows])
    ring = next(t for t in figure.data if t.name == "top-k")
    assert list(ring.customdata) == [3, 1, 4] and list(ring.text) == ["1", "2", "3"]


def test_level_of_detail_caps_drawn_points_and_keeps_query_and_neighbours():
    n = 3_000
    catalogue, coords = make_catalogue(n), coords_of(n)
    layers = map_layers(catalogue, coords, colour_by="genre", max_points=400, seed=0)
    assert layers.sampled and layers.n_points == n
    assert 400 <= layers.n_drawn <= 400 + MIN_DRAWN_PER_GROUP  # the floor of the tiny genre adds a few
    by_name = {layer.name: layer for layer in layers.layers}
    assert by_name["g3"].rows.size == 5  # a group smaller than the floor keeps every track
    assert all(layer.rows.size >= MIN_DRAWN_PER_GROUP for name, layer in by_name.items() if name != "g3")
    drawn = np.concatenate([layer.rows for layer in layers.layers])
    hidden = np.setdiff1d(np.arange(n), drawn)[:5]
    figure = map_figure(
        catalogue, coords, colour_by="genre", layers=layers, query_point=coords[hidden[0]],
        query_label="the query", neighbour_rows=hidden[1:],
    )  # fmt: skip
    assert sum(len(t.x) for t in background(figure)) == layers.n_drawn
    ring = next(t for t in figure.data if t.name == "top-k")
    np.testing.assert_array_equal(ring.customdata, hidden[1:])
    assert list(ring.hovertext) == list(hover_text(catalogue, hidden[1:]))
    star = next(t for t in figure.data if t.name == "the query")
    assert (star.x[0], star.y[0]) == pytest.approx(tuple(coords[hidden[0]]))
    # the same map always draws the same tracks
    again = map_layers(catalogue, coords, colour_by="genre", max_points=400, seed=0)
    np.testing.assert_array_equal(np.concatenate([layer.rows for layer in again.layers]), drawn)


def test_webgl_above_the_threshold_for_every_trace():
    n = WEBGL_ABOVE + 500
    catalogue, coords = make_catalogue(n), coords_of(n)
    figure = map_figure(catalogue, coords, colour_by="year", query_point=(0.0, 0.0), neighbour_rows=[0, 1])
    assert figure.data and all(type(t) is go.Scattergl for t in figure.data)
    (years,) = background(figure)
    assert years.marker.showscale and np.isnan(np.asarray(years.marker.color, dtype=float)).sum() > 0


def test_default_lod_threshold_applies(monkeypatch):
    n = 1_200
    catalogue, coords = make_catalogue(n), coords_of(n)
    layers = map_layers(catalogue, coords, colour_by=None, max_points=plots.MAX_DRAWN_POINTS)
    assert not layers.sampled
    layers = map_layers(catalogue, coords, colour_by=None, max_points=1_000)
    assert layers.n_drawn == 1_000 and [layer.name for layer in layers.layers] == ["tracks"]


def test_many_categories_share_one_other_colour():
    n_artists = MAX_COLOUR_GROUPS + 20
    catalogue, coords = make_catalogue(2_000, n_artists=n_artists), coords_of(2_000)
    layers = map_layers(catalogue, coords, colour_by="artist")
    names = [layer.name for layer in layers.layers]
    assert len(names) == MAX_COLOUR_GROUPS and names[-1] == OTHER_LABEL
    other = layers.layers[-1]
    assert other.colour == "#dcdcdc" and other.rows.size == 2_000 - sum(la.rows.size for la in layers.layers[:-1])


def test_hover_text_of_rows_matches_the_whole_catalogue():
    catalogue = make_catalogue(100)
    every = hover_text(catalogue)
    rows = [0, 13, 11, 7, 99]
    assert list(hover_text(catalogue, rows)) == list(every[rows])
    assert every[0].startswith("<b>t00000</b>")  # no title: the track id
    assert "year: " not in every[11] and "genre: " not in every[7]  # missing labels are left out
    assert "<b>Song 1</b><br>artist: Artist 1<br>year: " in every[1]


def test_layers_are_read_only():
    catalogue, coords = make_catalogue(200), coords_of(200)
    layer = map_layers(catalogue, coords, colour_by="genre").layers[0]
    for array in (layer.rows, layer.xy, layer.hover):
        with pytest.raises(ValueError):
            array[0] = array[1]
    with pytest.raises(ValueError, match="one row per track"):
        map_layers(catalogue, coords[:10], colour_by="genre")
