"""Explore: a query (searched, clicked on the map, or uploaded), the map, and its top-5 playing."""

import itertools
from contextlib import nullcontext

import numpy as np
import streamlit as st

from pages.common import (
    CachedSpaceLoader,
    catalogue_version,
    current_fit_key,
    load_catalogue_cached,
    load_map_cached,
    load_space_cached,
    run_through_app,
)
from songsim.config import AUDIO_EXTENSIONS
from songsim.errors import SongsimError
from songsim.maps import map_label, map_methods
from songsim.neighbours import HUBNESS_METHODS, METRICS, PRECOMPUTED, ExactIndex
from songsim.plots import MapLayers, colour_options, map_figure, map_layers
from songsim.query import (
    Upload,
    neighbour_table,
    neighbours_of,
    resolve_track,
    resolve_upload,
    search,
    store_upload,
    track_labels,
    upload_metadata,
)
from songsim.spaces.base import covered_rows
from songsim.spaces.pretrained import query_tags
from songsim.spaces.store import built_space_names

#: the map methods in registry order (UMAP first: the page's default), labelled as registered
MAP_METHODS = {name: method.label for name, method in map_methods().items()}
K = 5
HUBNESS_LABELS = {"none": "none", "mp": "mutual proximity", "mp-gauss": "mutual proximity (Gaussian)", "ls": "local scaling"}
# Up to this many tracks the search box lists every track and the browser filters them as the
# user types. Above, it filters per keystroke too slowly (100 000 options: seconds per key in
# Chromium) and every rerun ships the whole list, so a text box searches on the server and a
# second box lists the first MAX_MATCHES matches. A session-state default, so tests can lower it.
SEARCH_LIST_MAX = 5_000
MAX_MATCHES = 100

run_through_app()
root = st.session_state["catalogue_root"]
catalogue = load_catalogue_cached(root)
space_name = st.session_state["space_name"]
space = load_space_cached(root, space_name)
# Per-rerun work must not grow with the catalogue (100 000 tracks: a list of its track ids
# costs ~0.15 s): whatever spans every track is computed once per catalogue, below.
st.session_state.setdefault("query", {"kind": "track", "track_id": catalogue.tracks["track_id"].iat[0]})
st.session_state.setdefault("search_list_max", SEARCH_LIST_MAX)
# keys of the caches below: the catalogue's version (what spans every track), the space's fit (maps)
version, fit_key = catalogue_version(root), current_fit_key(root, space_name)


@st.cache_resource(show_spinner=False)
def row_labels(root: str, version: tuple[int, int]) -> list[str]:
    """"artist — title" of every row, in row order."""
    return track_labels(load_catalogue_cached(root))


@st.cache_resource(show_spinner=False)
def search_labels(root: str, version: tuple[int, int]) -> dict[str, str]:
    """The search box's label of every track id, in row order: "artist — title (track id)"."""
    catalogue = load_catalogue_cached(root)
    return {tid: f"{label} ({tid})" for tid, label in zip(catalogue.track_ids, row_labels(root, version))}


@st.cache_resource(show_spinner=False)
def search_options(root: str, version: tuple[int, int]) -> list[str]:
    """The search box's options: every track id, in row order (never mutated)."""
    return list(search_labels(root, version))


@st.cache_resource(show_spinner=False)
def folded_search_labels(root: str, version: tuple[int, int]) -> list[str]:
    """Every search label, case-folded, in row order (what a typed search is matched against)."""
    return [label.casefold() for label in search_labels(root, version).values()]


@st.cache_data(show_spinner=False, max_entries=256)
def search_matches(root: str, version: tuple[int, int], text: str) -> list[str]:
    """Track ids whose "artist — title (track id)" contains every word of ``text`` (case-
    insensitive), the first MAX_MATCHES in row order; one pass over the catalogue per new text."""
    words = text.casefold().split()
    if not words:
        return []
    hits = (tid for tid, label in zip(search_options(root, version), folded_search_labels(root, version)) if all(w in label for w in words))
    return list(itertools.islice(hits, MAX_MATCHES))


def pick_from_search() -> None:
    if st.session_state.search is not None:
        st.session_state.query = {"kind": "track", "track_id": st.session_state.search}


@st.cache_resource(show_spinner=False)
def map_index(root: str, space_name: str, method: str, fit_key: str) -> ExactIndex:
    """Euclidean neighbours on the 2-D map, to compare with the space's own (tracks with no
    vector have no point: NaN coordinates, held at 0 here and never returned)."""
    return ExactIndex(np.nan_to_num(load_map_cached(root, space_name, method).coords_, nan=0.0), metric="euclidean")


@st.cache_resource(show_spinner="Drawing the map…", max_entries=16)
def map_background(root: str, space_name: str, method: str, fit_key: str, colour_by: str | None) -> MapLayers:
    """The map's query-independent part: markers by colour, thinned to a seeded sample above
    songsim.plots.MAX_DRAWN_POINTS, with hover labels for the drawn points only. This is the
    O(n_tracks) work of drawing a map, done once per (catalogue, space, map, colouring), so
    that a rerun (a new query) costs O(drawn points + k). Read-only, shared by every session;
    ~10 MB each at 20 000 drawn points (the hover labels), hence at most 16 kept."""
    coords = load_map_cached(root, space_name, method).coords_
    return map_layers(load_catalogue_cached(root), coords, colour_by=colour_by)


# --- a click on the map picks its point as the query (customdata: the catalogue row) --------
points = ((st.session_state.get("map") or {}).get("selection") or {}).get("points") or []
clicked = [p["customdata"] for p in points if p.get("customdata") is not None]
if clicked:
    row = clicked[0][0] if isinstance(clicked[0], list) else clicked[0]
    if isinstance(row, (int, float)) and 0 <= int(row) < len(catalogue):
        track_id = catalogue.tracks["track_id"].iat[int(row)]
        if track_id != st.session_state.get("map_pick"):
            st.session_state.map_pick = track_id
            st.session_state.query = {"kind": "track", "track_id": track_id}

st.title("Explore")
search_column, upload_column = st.columns([3, 2])
with search_column:
    if len(catalogue) <= st.session_state.search_list_max:
        st.selectbox(
            "Search the catalogue by title or artist",
            search_options(root, version),
            index=None,
            key="search",
            placeholder="type a title or an artist…",
            format_func=search_labels(root, version).get,
            on_change=pick_from_search,
        )
    else:  # a large catalogue: search on the server, list the matches
        text = st.text_input(
            "Search the catalogue by title or artist", key="search_text", placeholder="type a title or an artist, then Enter"
        )
        matches = search_matches(root, version, text)
        st.selectbox(
            f"Matching songs ({len(matches)}{'+' if len(matches) == MAX_MATCHES else ''})" if text.strip() else "Matching songs",
            matches,
            index=None,
            key="search",
            placeholder="pick a song" if matches else ("no song matches" if text.strip() else "search first"),
            format_func=search_labels(root, version).get,
            on_change=pick_from_search,
            disabled=not matches,
        )
with upload_column:
    uploaded = st.file_uploader("…or upload a song", type=[e.lstrip(".") for e in AUDIO_EXTENSIONS], key="upload")
if uploaded is not None and uploaded.file_id != st.session_state.get("upload_handled"):
    st.session_state.upload_handled = uploaded.file_id
    try:
        with st.spinner(f"Analysing {uploaded.name}…"):
            upload = store_upload(catalogue, uploaded.getvalue(), uploaded.name)
        st.session_state.query = {"kind": "upload", **upload.__dict__}
    except SongsimError as exc:
        st.error(str(exc))

controls = st.columns([2, 3, 3, 2])
method = controls[0].radio("Map", list(MAP_METHODS), format_func=lambda m: map_label(m, space.metric), horizontal=True, key="method")
colours = colour_options(catalogue)
colour_by = controls[1].radio("Colour by", colours or ["none"], horizontal=True, key="colour_by")
where = controls[2].radio(
    "Neighbours in", ["space", "map"], horizontal=True, key="where",
    format_func={"space": "the space", "map": "the 2-D map"}.get,
    help="The map squeezes the space into 2-D; compare both to see where the picture misleads.",
)
# a space that gives distances (an imported matrix, musly) has no cosine or euclidean: only its own distances
similarities = [PRECOMPUTED] if space.metric == PRECOMPUTED else list(METRICS)
metric = controls[3].radio(
    "Similarity", similarities, index=similarities.index(space.metric), horizontal=True, key=f"metric:{space_name}",
    format_func=lambda m: "its own distances" if m == PRECOMPUTED else m,
    help="Starts at the space's own similarity (euclidean for vectors whose length means something, e.g. a 2-D code; "
    "a space that gives distances is searched by its distances only).",
)
exclude_artist = controls[3].toggle("Artist filter", key="exclude_artist", help="Leave out the query's own artist (MIREX).")
hubness = controls[3].selectbox(
    "Hub reduction", HUBNESS_METHODS, key="hubness", format_func=HUBNESS_LABELS.get,
    help="Rescale the space's distances so that a few songs stop being everybody's neighbour: mutual proximity "
    "(empirical or Gaussian) or local scaling (Schnitzer et al., JMLR 2012).",
)  # fmt: skip

fitted = load_map_cached(root, space_name, method)
query = st.session_state.query
upload = Upload(**{k: v for k, v in query.items() if k != "kind"}) if query["kind"] == "upload" else None
try:
    with st.spinner(f"Embedding {upload.name} in {space_name}…") if upload else nullcontext():
        result = search(
            catalogue, space, track_id=query.get("track_id"), upload=upload, k=K, metric=metric,
            exclude_artist=exclude_artist, hubness=hubness, loader=CachedSpaceLoader(root),
        )  # fmt: skip
    resolved = resolve_track(catalogue, space, fitted.coords_, query["track_id"]) if upload is None else resolve_upload(fitted, upload, result.vector)
except SongsimError as exc:
    st.error(str(exc))
    st.stop()

found_in_space = result.neighbours
found_on_map = neighbours_of(
    catalogue, map_index(root, space_name, method, fit_key), vector=resolved.point,
    query_row=resolved.row, k=K, exclude_artist=exclude_artist, candidates=covered_rows(space),
)
found = found_in_space if where == "space" else found_on_map

map_column, list_column = st.columns([3, 2])
with map_column:
    layers = map_background(root, space_name, method, fit_key, None if colour_by == "none" else colour_by)
    figure = map_figure(
        catalogue, fitted.coords_, colour_by=layers.colour_by, layers=layers,
        query_point=resolved.point, query_label=resolved.label, neighbour_rows=found.indices,
    )
    st.plotly_chart(figure, key="map", on_select="rerun", selection_mode="points", width="stretch")
    shared = len(set(found_in_space.indices) & set(found_on_map.indices))
    drawn = (
        f" · showing {layers.n_drawn:,} of {layers.n_points:,} songs (a fixed random sample of every colour; "
        f"the query and its top-{K} always)"
        if layers.sampled
        else ""
    )
    fitted_on = (
        f" · fitted on {fitted.n_samples_fit_:,} songs, the others placed by its transform"
        if fitted.sample_rows_ is not None
        else ""
    )
    st.caption(
        f"{map_label(method, space.metric)} map of **{space_name}** · trustworthiness {fitted.trustworthiness_:.2f} "
        f"(1 = the map keeps every 5-nearest neighbourhood) · {shared} of the top-{K} in the space are "
        f"also the top-{K} on the map{fitted_on}{drawn}. Click a point to make it the query."
    )
with list_column:
    st.subheader("Query")
    st.markdown(f"**{resolved.label}**" + ("" if resolved.row is not None else " · uploaded, placed by the fitted map"))
    if resolved.row is not None:
        track = catalogue.track(catalogue.tracks["track_id"].iat[resolved.row])
        st.caption(" · ".join(str(track[c]) for c in ("album", "year", "genre", "emotion") if track.get(c) is not None))
    st.audio(str(resolved.audio_path))
    heard = query_tags(catalogue, space, track_id=None if upload else query["track_id"], upload=upload)
    if heard:  # a tagger's space (musicnn): its top MSD tags for the query
        st.caption("What the tagger hears (MusiCNN, Million Song Dataset tags): " + " · ".join(f"{tag} {p:.2f}" for tag, p in heard))
    if query["kind"] == "upload" and "metadata" in built_space_names(catalogue):
        with st.expander("Its Spotify-style features: measured, or imputed from the catalogue"):
            st.dataframe(upload_metadata(catalogue, upload, load_space=lambda name: load_space_cached(root, name)), hide_index=True)
    st.subheader(f"Top-{K} in {'the ' + space_name + ' space' if where == 'space' else 'the 2-D map'}")
    table = neighbour_table(catalogue, found)
    for _, row in table.iterrows():
        details = " · ".join(str(row[c]) for c in ("album", "year", "genre", "emotion") if c in row and row[c] is not None and str(row[c]) != "<NA>")
        cosine = where == "space" and hubness == "none" and metric == "cosine"  # every other score is −distance
        score = f"similarity {row['score']:.3f}" if cosine else f"{'rescaled distance' if where == 'space' and hubness != 'none' else 'distance'} {abs(row['score']):.3f}"
        st.markdown(f"**{row['rank']}. {row_labels(root, version)[catalogue.row_of(row['track_id'])]}** · {score}")
        st.caption(details)
        st.audio(row["path"])
