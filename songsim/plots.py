"""Plotly figures of the catalogue (no streamlit here: pages draw what these return).

Maps of large catalogues
------------------------
A browser stays responsive with tens of thousands of markers only when they are drawn with
WebGL, and hover labels for every track of a 100 000-track catalogue would be megabytes sent
on every rerun. So a map is drawn in two parts:

* :func:`map_layers` -- the *background*: every track's marker, grouped by colour, with its
  hover label and catalogue row. Above ``max_points`` (:data:`MAX_DRAWN_POINTS`, 20 000) it keeps
  a seeded sample stratified by colour group (every group keeps at least
  :data:`MIN_DRAWN_PER_GROUP` points, so no legend entry vanishes), and hover labels are
  made only for the points drawn. It depends only on (catalogue, map, colouring), costs
  ``O(n_tracks)`` once, and is what a page caches.
* :func:`map_figure` -- the background plus the query (a star) and its top-k (ringed,
  numbered), which are always drawn, sampled away or not, and stay clickable. Per query it
  costs ``O(drawn points + k)``.

Traces are ``go.Scattergl`` (WebGL) above :data:`WEBGL_ABOVE` drawn points and ``go.Scatter``
(SVG) below: SVG draws small maps exactly, needs no WebGL context (browsers allow a handful
per page, and some headless or GPU-less browsers have none) and keeps points addressable in
the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from songsim.catalogue import EMOTIONS, Catalogue
from songsim.maps import sample_rows

#: columns a map can be coloured by; "year" is a continuous gradient, the others categories
COLOUR_COLUMNS = ("genre", "emotion", "year", "artist")
EMOTION_COLOURS = {"happy": "#f2b705", "calm": "#3fa34d", "angry": "#d7263d", "sad": "#3a6ea5"}
MISSING_LABEL = "(unlabelled)"
#: above this many tracks a map draws a seeded, colour-stratified sample of them
MAX_DRAWN_POINTS = 20_000
#: every colour group keeps at least this many drawn points (all of them if it has fewer)
MIN_DRAWN_PER_GROUP = 50
#: WebGL traces (Scattergl) above this many drawn points, SVG (Scatter) up to it
WEBGL_ABOVE = 5_000
#: colour groups with a colour and legend entry of their own (the largest); the rest share one
MAX_COLOUR_GROUPS = 30
OTHER_LABEL = "(other)"
_HOVER_COLUMNS = ("artist", "album", "year", "genre", "emotion")


def colour_options(catalogue: Catalogue) -> list[str]:
    """The colourings this catalogue supports (those whose labels exist), genre first."""
    return [c for c in COLOUR_COLUMNS if catalogue.has_labels(c)]


def hover_text(catalogue: Catalogue, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Hover labels: title (the track id when missing), then artist, album, year, genre and
    emotion where known, one line each.

    Parameters
    ----------
    rows : sequence of int or None
        Catalogue rows to label (cost ``O(len(rows))``); ``None`` labels every track.

    Returns
    -------
    np.ndarray [shape=(len(rows),), dtype=str]
        HTML strings for plotly's ``hovertext`` (a fixed-width unicode array: plotly copies
        and serialises it as one block, an object array string by string).
    """
    tracks = catalogue.tracks if rows is None else catalogue.tracks.iloc[np.asarray(rows, dtype=np.int64)]

    def column(name: str) -> list:
        if name not in tracks:
            return [None] * len(tracks)
        values = tracks[name].astype(object)
        return values.where(tracks[name].notna(), None).tolist()

    columns = [c for c in _HOVER_COLUMNS if c in tracks]
    values = {c: column(c) for c in columns}
    titles, track_ids = column("title"), tracks["track_id"].tolist()
    return np.array(
        [
            "<br>".join([f"<b>{titles[i] or track_id}</b>"] + [f"{c}: {values[c][i]}" for c in columns if values[c][i] is not None])
            for i, track_id in enumerate(track_ids)
        ],
        dtype=str,
    )


@dataclass(frozen=True, eq=False)
class MapLayer:
    """One background trace of a map: the drawn tracks of one colour group.

    Attributes
    ----------
    name : str
        Legend entry (the category, ``"tracks"`` for one colour or a year gradient).
    rows : np.ndarray [shape=(m,), dtype=int64]
        Catalogue rows drawn, ascending; also each point's plotly ``customdata``, so a click
        (a plotly selection) names the row. Numbers rather than track ids: plotly copies and
        serialises a numeric array as one block, strings one by one (a quarter of a second
        per rerun at 20 000 points).
    xy : np.ndarray [shape=(m, 2), dtype=float32]
        Their map coordinates.
    hover : np.ndarray [shape=(m,), dtype=str]
        Their hover labels (:func:`hover_text`).
    colour : str or None
        One colour for the group; ``None`` with ``values``.
    values : np.ndarray [shape=(m,), dtype=float64] or None
        Continuous colour values (the year; NaN where unknown), drawn with a colour scale.

    All arrays are read-only: layers are cached and shared between app sessions.
    """

    name: str
    rows: np.ndarray
    xy: np.ndarray
    hover: np.ndarray
    colour: str | None = None
    values: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class MapLayers:
    """The query-independent background of a map (:func:`map_layers`).

    Attributes
    ----------
    layers : tuple of MapLayer
        In legend order.
    colour_by : str or None
    n_points : int
        Tracks on the map.
    n_drawn : int
        Tracks drawn (``<= n_points``; fewer when sampled for level of detail).
    """

    layers: tuple[MapLayer, ...]
    colour_by: str | None
    n_points: int
    n_drawn: int

    @property
    def sampled(self) -> bool:
        """bool: whether only a sample of the tracks is drawn."""
        return self.n_drawn < self.n_points


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def map_layers(
    catalogue: Catalogue,
    coords: np.ndarray,
    *,
    colour_by: str | None,
    max_points: int | None = MAX_DRAWN_POINTS,
    seed: int = 0,
) -> MapLayers:
    """The background of a map: markers grouped by colour, thinned above ``max_points``.

    Parameters
    ----------
    coords : np.ndarray [shape=(n_tracks, 2)]
        Map coordinates in ``tracks.csv`` row order.
    colour_by : str or None
        One of :data:`COLOUR_COLUMNS` (or ``None`` for one colour). ``"year"`` is a
        continuous gradient, the others categories; beyond :data:`MAX_COLOUR_GROUPS`
        categories (e.g. thousands of artists) the largest keep their own colour and the
        others share one, :data:`OTHER_LABEL` (distinct colours run out long before, and
        a trace per artist would cost seconds per rerun).
    max_points : int or None
        Draw at most about this many tracks: a seeded sample stratified by colour group,
        each group keeping at least :data:`MIN_DRAWN_PER_GROUP` tracks (so slightly more
        with many small groups). ``None`` draws every track.
    seed : int
        Seed of that sample (the same catalogue and map always draw the same tracks).

    Returns
    -------
    MapLayers
        Read-only; cost ``O(n_tracks)`` to make, hover labels only for drawn tracks.
    """
    coords = np.asarray(coords, dtype=np.float32)
    n = len(catalogue)
    if coords.shape != (n, 2):
        raise ValueError(f"coords must have shape ({n}, 2), one row per track; got {coords.shape}")
    if colour_by == "year" and catalogue.has_labels("year"):
        groups = None
        values = catalogue.tracks["year"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    else:
        labels = catalogue.labels(colour_by) if colour_by else np.full(n, "tracks", dtype=object)
        groups = np.array([MISSING_LABEL if v is None else str(v) for v in labels], dtype=object)
        names, counts = np.unique(groups.astype(str), return_counts=True)
        if names.size > MAX_COLOUR_GROUPS:
            by_size = np.lexsort((names, -counts))  # largest first, ties by name
            keep = [name for name in names[by_size] if name != MISSING_LABEL][: MAX_COLOUR_GROUPS - 1]
            lumped = ~np.isin(groups.astype(str), keep) & (groups != MISSING_LABEL)
            groups[lumped] = OTHER_LABEL
    drawn = (
        np.arange(n, dtype=np.int64)
        if max_points is None
        else sample_rows(n, max_points, seed=seed, strata=groups, min_per_stratum=MIN_DRAWN_PER_GROUP)
    )
    hover = hover_text(catalogue, drawn)

    def layer(name: str, where: np.ndarray, **colour) -> MapLayer:
        rows = drawn[where]
        return MapLayer(
            name=name, rows=_frozen(rows), xy=_frozen(coords[rows]), hover=_frozen(hover[where]),
            **colour,
        )  # fmt: skip

    if groups is None:
        layers = [layer("tracks", slice(None), values=_frozen(values[drawn]))]
    else:
        drawn_groups = groups[drawn]
        categories = sorted(
            set(groups),
            key=lambda v: (v == MISSING_LABEL, v == OTHER_LABEL, EMOTIONS.index(v) if v in EMOTIONS else 99, v),
        )
        palette = qualitative.Plotly + qualitative.D3 + qualitative.Set3
        layers = []
        for i, category in enumerate(categories):
            colour = EMOTION_COLOURS.get(category) if colour_by == "emotion" else None
            grey = {MISSING_LABEL: "#bbbbbb", OTHER_LABEL: "#dcdcdc"}
            colour = grey.get(category) or colour or palette[i % len(palette)]
            layers.append(layer(category, drawn_groups == category, colour=colour))
    return MapLayers(layers=tuple(layers), colour_by=colour_by, n_points=n, n_drawn=int(drawn.size))


def map_figure(
    catalogue: Catalogue,
    coords: np.ndarray,
    *,
    colour_by: str | None,
    query_point: Sequence[float] | None = None,
    query_label: str = "query",
    neighbour_rows: Sequence[int] = (),
    title: str = "",
    layers: MapLayers | None = None,
) -> go.Figure:
    """A 2-D scatter of the catalogue with the query and its neighbours marked.

    Parameters
    ----------
    coords : np.ndarray [shape=(n_tracks, 2)]
        Map coordinates in ``tracks.csv`` row order.
    colour_by : str or None
        One of :data:`COLOUR_COLUMNS` (or ``None`` for one colour); ignored with ``layers``.
    query_point : (x, y), optional
        Where the query sits (a catalogue point, or an upload placed by ``transform``).
    neighbour_rows : sequence of int
        Rows of the top-k, ringed and numbered on the map.
    layers : MapLayers or None
        The background from :func:`map_layers` (cache it: it is the ``O(n_tracks)`` part);
        made here with the defaults when ``None``.

    Every drawn catalogue point carries its catalogue row as ``customdata`` so that a click
    (plotly selection) names the track. The query and the top-k are drawn even when level
    of detail leaves them out of the background. Beyond building the background, the cost
    is ``O(layers.n_drawn + k)``.
    """
    if layers is None:
        layers = map_layers(catalogue, coords, colour_by=colour_by)
    # one trace class for all: WebGL traces are drawn on a canvas apart from SVG ones
    kind = "scattergl" if layers.n_drawn > WEBGL_ABOVE else "scatter"
    marker = dict(size=8 if kind == "scatter" else 5, opacity=0.8, line=dict(width=0))
    traces = []  # plain dicts, validated once by go.Figure (add_trace re-validates per call)
    for layer in layers.layers:
        if layer.values is not None:
            colour = dict(color=layer.values, colorscale="Viridis", colorbar=dict(title="year"), showscale=True)
        else:
            colour = dict(color=layer.colour)
        traces.append(dict(
            type=kind, x=layer.xy[:, 0], y=layer.xy[:, 1], mode="markers", name=layer.name,
            customdata=layer.rows, hovertext=layer.hover, hoverinfo="text", marker=dict(marker, **colour),
        ))  # fmt: skip
    if len(neighbour_rows):
        rows = np.asarray(neighbour_rows, dtype=np.int64)
        xy = np.asarray(coords)[rows].astype(float)
        traces.append(dict(
            type=kind, x=xy[:, 0], y=xy[:, 1], mode="markers+text", name="top-k",
            text=[str(r) for r in range(1, len(rows) + 1)], textposition="top center",
            customdata=rows, hovertext=hover_text(catalogue, rows), hoverinfo="text",
            marker=dict(size=16, color="rgba(0,0,0,0)", line=dict(width=2.5, color="#111111")),
        ))  # fmt: skip
    if query_point is not None:
        traces.append(dict(
            type=kind, x=[query_point[0]], y=[query_point[1]], mode="markers", name=query_label,
            hovertext=[query_label], hoverinfo="text",
            marker=dict(size=20, symbol="star", color="#ff2d55", line=dict(width=1.5, color="#111111")),
        ))  # fmt: skip
    return go.Figure(
        data=traces,
        layout=dict(
            title=title, height=560, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
            legend=dict(itemsizing="constant", orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0),
            dragmode="pan", clickmode="event+select",
            xaxis=dict(showticklabels=False, title=None, zeroline=False),
            yaxis=dict(showticklabels=False, title=None, zeroline=False),
        ),
    )  # fmt: skip


def loss_curves(summary: dict) -> pd.DataFrame:
    """Every per-epoch loss of a :func:`songsim.spaces.learned.training_summary` (index: 1-based
    epoch): the training loss (named by the history's ``train_loss_name``, e.g.
    ``"generator"`` for ALI), the validation loss when there is one, and the history's
    ``extra_losses`` (e.g. ALI's ``"discriminator"``), one column each."""
    history = summary["history"]
    curves = {history.get("train_loss_name", "training"): history["train_loss"]}
    if history["val_loss"]:
        curves["validation"] = history["val_loss"]
    curves.update(history.get("extra_losses", {}))
    return pd.DataFrame(curves, index=pd.RangeIndex(1, len(history["train_loss"]) + 1, name="epoch"))


def confusion_figure(metrics: dict) -> go.Figure:
    """A test-split confusion matrix (rows: true class, columns: predicted) as a heatmap."""
    classes, matrix = metrics["classes"], np.asarray(metrics["confusion_matrix"])
    figure = go.Figure(
        go.Heatmap(z=matrix, x=classes, y=classes, colorscale="Blues", text=matrix, texttemplate="%{text}", showscale=False)
    )
    figure.update_layout(
        height=360, margin=dict(l=10, r=10, t=30, b=10), title=f"test split: accuracy {metrics['accuracy']:.2f}",
        xaxis=dict(title="predicted"), yaxis=dict(title="true", autorange="reversed"),
    )
    return figure
