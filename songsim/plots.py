"""Plotly figures of the catalogue (no streamlit here: pages draw what these return)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from songsim.catalogue import EMOTIONS, Catalogue

#: columns a map can be coloured by; "year" is a continuous gradient, the others categories
COLOUR_COLUMNS = ("genre", "emotion", "year", "artist")
EMOTION_COLOURS = {"happy": "#f2b705", "calm": "#3fa34d", "angry": "#d7263d", "sad": "#3a6ea5"}
MISSING_LABEL = "(unlabelled)"


def colour_options(catalogue: Catalogue) -> list[str]:
    """The colourings this catalogue supports (those whose labels exist), genre first."""
    return [c for c in COLOUR_COLUMNS if catalogue.has_labels(c)]


def _hover_text(catalogue: Catalogue) -> list[str]:
    """One hover label per track: title, then artist, album, year, genre, emotion where known."""
    columns = [c for c in ("artist", "album", "year", "genre", "emotion") if c in catalogue.tracks]
    values = {c: catalogue.labels(c) for c in columns}
    titles = catalogue.labels("title")
    return [
        "<br>".join([f"<b>{titles[i] or track_id}</b>"] + [f"{c}: {values[c][i]}" for c in columns if values[c][i] is not None])
        for i, track_id in enumerate(catalogue.track_ids)
    ]


def map_figure(
    catalogue: Catalogue,
    coords: np.ndarray,
    *,
    colour_by: str | None,
    query_point: Sequence[float] | None = None,
    query_label: str = "query",
    neighbour_rows: Sequence[int] = (),
    title: str = "",
) -> go.Figure:
    """A 2-D scatter of the catalogue with the query and its neighbours marked.

    Parameters
    ----------
    coords : np.ndarray [shape=(n_tracks, 2)]
        Map coordinates in ``tracks.csv`` row order.
    colour_by : str or None
        One of :data:`COLOUR_COLUMNS` (or ``None`` for one colour).
    query_point : (x, y), optional
        Where the query sits (a catalogue point, or an upload placed by ``transform``).
    neighbour_rows : sequence of int
        Rows of the top-k, ringed on the map.

    Every catalogue point carries its ``track_id`` as ``customdata`` so that a click
    (plotly selection) names the track.
    """
    coords = np.asarray(coords, dtype=float)
    hover = np.array(_hover_text(catalogue), dtype=object)
    track_ids = np.array(catalogue.track_ids, dtype=object)
    figure = go.Figure()
    marker = dict(size=8, opacity=0.8, line=dict(width=0))
    if colour_by == "year" and catalogue.has_labels("year"):
        years = catalogue.tracks["year"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        figure.add_trace(
            go.Scatter(
                x=coords[:, 0], y=coords[:, 1], mode="markers", name="tracks",
                customdata=track_ids[:, None], hovertext=hover, hoverinfo="text",
                marker=dict(marker, color=years, colorscale="Viridis", colorbar=dict(title="year"), showscale=True),
            )
        )
    else:
        labels = catalogue.labels(colour_by) if colour_by else np.full(len(catalogue), "tracks", dtype=object)
        labels = np.array([MISSING_LABEL if v is None else str(v) for v in labels], dtype=object)
        categories = sorted(set(labels), key=lambda v: (v == MISSING_LABEL, EMOTIONS.index(v) if v in EMOTIONS else 99, v))
        palette = qualitative.Plotly + qualitative.D3 + qualitative.Set3
        for i, category in enumerate(categories):
            rows = np.flatnonzero(labels == category)
            colour = EMOTION_COLOURS.get(category) if colour_by == "emotion" else None
            colour = "#bbbbbb" if category == MISSING_LABEL else colour or palette[i % len(palette)]
            figure.add_trace(
                go.Scatter(
                    x=coords[rows, 0], y=coords[rows, 1], mode="markers", name=category,
                    customdata=track_ids[rows, None], hovertext=hover[rows], hoverinfo="text",
                    marker=dict(marker, color=colour),
                )
            )
    if len(neighbour_rows):
        rows = np.asarray(neighbour_rows, dtype=int)
        figure.add_trace(
            go.Scatter(
                x=coords[rows, 0], y=coords[rows, 1], mode="markers+text", name="top-k",
                text=[str(r) for r in range(1, len(rows) + 1)], textposition="top center",
                customdata=track_ids[rows, None], hovertext=hover[rows], hoverinfo="text",
                marker=dict(size=16, color="rgba(0,0,0,0)", line=dict(width=2.5, color="#111111")),
            )
        )
    if query_point is not None:
        figure.add_trace(
            go.Scatter(
                x=[query_point[0]], y=[query_point[1]], mode="markers", name=query_label,
                hovertext=[query_label], hoverinfo="text",
                marker=dict(size=20, symbol="star", color="#ff2d55", line=dict(width=1.5, color="#111111")),
            )
        )
    figure.update_layout(
        title=title, height=560, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        legend=dict(itemsizing="constant", orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0),
        dragmode="pan", clickmode="event+select",
        xaxis=dict(showticklabels=False, title=None, zeroline=False),
        yaxis=dict(showticklabels=False, title=None, zeroline=False),
    )
    return figure


def loss_curves(summary: dict) -> pd.DataFrame:
    """Training and validation loss per epoch (index: 1-based epoch) of a
    :func:`songsim.learned.training_summary`."""
    history = summary["history"]
    curves = {"training": history["train_loss"]}
    if history["val_loss"]:
        curves["validation"] = history["val_loss"]
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
