"""The UI adapter shared by app.py and the pages: cached loaders around songsim calls,
the first-start build under a progress display, and the shared sidebar.

Caching follows Streamlit's guidance: ``st.cache_resource`` for fitted objects and indexes
(shared by every session; never mutated), keyed by the catalogue folder as a string.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import streamlit as st

from songsim import config
from songsim.build import built_space_names, is_built, load_built_space, load_or_fit_map, open_index, prepare_catalogue
from songsim.catalogue import Catalogue, load_catalogue
from songsim.errors import SongsimError
from songsim.maps import FittedMap, warm_up
from songsim.neighbours import NeighbourIndex
from songsim.panel import owner_passcode_accepted
from songsim.spaces import Space, space_type

STAGE_LABELS = {"demo": "Rendering the demo songs", "catalogue": "Checking the catalogue", "features": "Extracting features"}


def catalogue_root() -> tuple[Path, bool]:
    """The catalogue this app serves and whether it is the embedded demo.

    Order: ``-- --catalogue DIR`` on the command line, ``$SONGSIM_CATALOGUE``, else the demo
    under ``-- --home DIR`` / ``$SONGSIM_HOME`` / the user cache folder.
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--catalogue")
    parser.add_argument("--home")
    args, _ = parser.parse_known_args(sys.argv[1:])
    if args.home:
        os.environ[config.HOME_ENV] = args.home
    chosen = args.catalogue or os.environ.get(config.CATALOGUE_ENV)
    if chosen:
        return Path(chosen).expanduser().resolve(), False
    return config.default_demo_dir(), True


def ensure_built(root: Path, *, is_demo: bool) -> bool:
    """Build the catalogue when it is not built yet, showing progress; False on an error."""
    if is_built(root):
        return True
    title = "First start: making the demo catalogue" if is_demo else f"Building {root}"
    with st.status(f"{title} (about a minute on 2 cores)…", expanded=True) as status:
        bar = st.progress(0.0, text="starting")

        def on_progress(stage: str, fraction: float, message: str) -> None:
            label = STAGE_LABELS.get(stage, stage)
            bar.progress(min(max(fraction, 0.0), 1.0), text=f"{label} — {message}")

        try:
            report = prepare_catalogue(root, make_demo_if_missing=is_demo, on_progress=on_progress)
        except SongsimError as exc:
            status.update(label="The catalogue could not be built", state="error")
            st.error(str(exc))
            return False
        status.update(label=f"Ready: {report.n_tracks} songs in {report.stage_seconds['total']:.0f} s", state="complete", expanded=False)
    return True


@st.cache_resource(show_spinner=False)
def load_catalogue_cached(root: str) -> Catalogue:
    return load_catalogue(root)


@st.cache_resource(show_spinner="Loading the space…")
def load_space_cached(root: str, name: str) -> Space:
    return load_built_space(load_catalogue_cached(root), name)


@st.cache_resource(show_spinner="Loading the map…")
def load_map_cached(root: str, space_name: str, method: str) -> FittedMap:
    catalogue = load_catalogue_cached(root)
    fitted = load_or_fit_map(catalogue, load_space_cached(root, space_name), method)
    warm_up(fitted)
    return fitted


@st.cache_resource(show_spinner=False)
def load_index_cached(root: str, space_name: str, metric: str) -> NeighbourIndex:
    return open_index(load_catalogue_cached(root), load_space_cached(root, space_name), metric=metric)


def render_sidebar(catalogue: Catalogue, *, is_demo: bool) -> None:
    """Catalogue summary and the space selector, shared by every page.

    The chosen space is copied to ``st.session_state.space_name`` (a plain key, which
    Streamlit never garbage-collects, unlike a widget's key) for the pages to read.
    """
    with st.sidebar:
        st.image("assets/logo.png", width=160)
        st.caption(("Demo catalogue" if is_demo else "Catalogue") + f" · {len(catalogue)} songs")
        st.caption(f"`{catalogue.root}`")
        names = built_space_names(catalogue)
        st.session_state.space_name = st.selectbox(
            "Embedding space",
            names,
            key="space",
            help="\n\n".join(f"**{n}**: {space_type(n).description}" for n in names),
        )


def require_owner() -> None:
    """Stop the page unless the study owner's passcode (``owner_passcode`` in
    ``.streamlit/secrets.toml``) was given in this session; no passcode set = open."""
    if owner_passcode_accepted(st.secrets, st.session_state.get("owner_passcode")):
        return
    st.info("This page is for the study owner: it shows which space proposed which candidate.")
    given = st.text_input("Owner passcode", type="password", key="owner-passcode-input")
    if given and owner_passcode_accepted(st.secrets, given):
        st.session_state["owner_passcode"] = given
        st.rerun()
    if given:
        st.error("That is not the owner passcode (`owner_passcode` in .streamlit/secrets.toml).")
    st.stop()
