"""The UI adapter shared by app.py and the pages: cached loaders around songsim calls,
the first-start build under a progress display, and the shared sidebar.

Caching follows Streamlit's guidance: ``st.cache_resource`` for fitted objects and indexes
(shared by every session; never mutated), keyed by the catalogue folder as a string and by
what identifies the version on disk — the space's fit key, the tracks.csv file state — so a
rebuild or a re-import is picked up by the next run of every session and no cache is cleared.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np
import streamlit as st

from songsim import config
from songsim.build import is_built, prepare_catalogue, untrusted_files
from songsim.catalogue import TRACKS_CSV, Catalogue, load_catalogue
from songsim.errors import CatalogueError, SongsimError, os_error_message, redact_paths
from songsim.maps import FittedMap, warm_up
from songsim.neighbours import NeighbourIndex
from songsim.spaces.base import Space
from songsim.query import SpaceLoader, Upload, embed_upload
from songsim.spaces.store import (
    META_FILE,
    built_space_names,
    load_built_space,
    load_or_fit_map,
    open_index,
    space_dir,
    space_info,
    stored_fit_key,
)
from songsim.studies.panel import AttemptLimiter, owner_passcode_accepted, owner_passcode_set, owner_session
from songsim.studies.ratings import RatingsLog, load_ratings, ratings_path

STAGE_LABELS = {"demo": "Rendering the demo songs", "catalogue": "Checking the catalogue", "features": "Extracting features"}


#: session-state key of the catalogue opened on the Catalogue page (this session only)
CHOSEN_CATALOGUE_KEY = "chosen_catalogue"
#: session-state keys that name tracks or spaces of the open catalogue: dropped on a switch
PER_CATALOGUE_KEYS = ("space", "space_name", "query", "search", "map", "map_pick", "upload", "upload_handled", "colour_by")


def default_catalogue_root() -> tuple[Path, bool]:
    """The catalogue the app opens by default and whether it is the embedded demo.

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


def catalogue_root() -> tuple[Path, bool]:
    """The catalogue this session serves and whether it is the embedded demo: the one opened
    on the Catalogue page (:func:`switch_catalogue`), else :func:`default_catalogue_root`."""
    default = default_catalogue_root()  # also applies --home, which the demo's folder depends on
    chosen = st.session_state.get(CHOSEN_CATALOGUE_KEY)
    if chosen:
        path = Path(chosen)
        return path, path == config.default_demo_dir()
    return default


def switch_catalogue(root: str | Path) -> None:
    """Serve ``root`` in this session from the next run on (every page, the sidebar), and
    forget the selections that named the previous catalogue's tracks or spaces."""
    st.session_state[CHOSEN_CATALOGUE_KEY] = str(Path(root).expanduser().resolve())
    for key in list(st.session_state):
        if key in PER_CATALOGUE_KEYS or str(key).startswith("position:"):
            del st.session_state[key]


#: session-state key app.py sets on every run (see :func:`run_through_app`)
APP_RAN_KEY = "app_ran"


def run_through_app() -> None:
    """Let app.py run first when Streamlit ran this page file by itself.

    Streamlit (1.67) treats a ``pages/`` folder next to the main script as a v1 multipage app
    until ``st.navigation`` has been called once in the server process: when the first request
    of a fresh server opens a page by its URL (``/catalogue``), the page file runs alone,
    without app.py's catalogue choice, sidebar and navigation, and so does every later page
    of that session. Called at the top of a page, this switches the process to
    ``st.navigation`` (what ``st.navigation`` itself does) and, for a session that has not
    been through app.py yet (so no click can be lost), reruns through app.py.

    ``AppTest`` resets the switch before every run, so a page reached with ``switch_page``
    still runs alone there (after app.py's first run, which set :data:`APP_RAN_KEY`).
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - a Streamlit that moved it: nothing to switch
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        if not st.session_state.get(APP_RAN_KEY):
            st.rerun()


def ensure_built(root: Path, *, is_demo: bool) -> bool:
    """Build the catalogue when it is not built yet, showing progress; False on an error."""
    if is_built(root):
        return True
    untrusted = untrusted_files(root)
    if untrusted:  # songsim.signed: never opened, refitted by this build (features are reused)
        st.warning(
            f"{len(untrusted)} stored spaces or maps of {root} were not written by this installation, so songsim does not "
            "open them (loading them could run code): they are rebuilt now from the features.\n\n"
            + "\n".join(f"- `{line}`" for line in untrusted)
        )
    title = "First start: making the demo catalogue" if is_demo else f"Building {root}"
    with st.status(f"{title} (about a minute on 2 cores)…", expanded=True) as status:
        bar = st.progress(0.0, text="starting")

        def on_progress(stage: str, fraction: float, message: str) -> None:
            label = STAGE_LABELS.get(stage, stage)
            bar.progress(min(max(fraction, 0.0), 1.0), text=f"{label} — {message}")

        try:
            report = prepare_catalogue(root, make_demo_if_missing=is_demo, on_progress=on_progress)
        except (SongsimError, OSError) as exc:  # e.g. a catalogue folder that cannot be written
            status.update(label="The catalogue could not be built", state="error")
            st.error(f"A file could not be read or written: {os_error_message(exc)}" if isinstance(exc, OSError) else str(exc))
            return False
        status.update(label=f"Ready: {report.n_tracks} songs in {report.stage_seconds['total']:.0f} s", state="complete", expanded=False)
    return True


_log = logging.getLogger("songsim.app")


def show_error(error: BaseException, *, owner: bool) -> None:
    """The app's one error boundary (app.py, around every page): a :class:`SongsimError` or an
    :class:`OSError` becomes one ``st.error`` with what went wrong and the fix, never a
    traceback (which goes to the server's log).

    The owner reads the message as it is; a rater, on another machine, reads it without
    server paths (:func:`songsim.errors.redact_paths`) and is told to ask the study owner.
    """
    _log.warning("%s shown to the %s: %s", type(error).__name__, "owner" if owner else "rater", error, exc_info=error)
    message = os_error_message(error) if isinstance(error, OSError) else str(error)
    if isinstance(error, OSError):
        message = f"A file could not be read or written: {message}"
    if owner:
        if isinstance(error, CatalogueError):
            message += "\n\nThe **Catalogue** page (in the menu) checks every stage again once it is fixed, or opens another catalogue."
        st.error(message)
    else:
        st.error(f"{redact_paths(message)}\n\nThis page cannot be shown until the study owner fixes it: please tell them.")


def load_catalogue_cached(root: str) -> Catalogue:
    """The catalogue at ``root``, parsed once per version of its tracks.csv (a re-import
    replaces it: every session then gets the new one, and nobody's other caches are wiped)."""
    return _catalogue(root, catalogue_version(root))


def catalogue_version(root: str) -> tuple[int, int]:
    """What identifies the catalogue's version: its tracks.csv's (mtime ns, size); a key for
    caches that span every track."""
    return file_state(Path(root) / TRACKS_CSV)


@st.cache_resource(show_spinner=False, max_entries=16)
def _catalogue(root: str, state: tuple[int, int]) -> Catalogue:
    return load_catalogue(root)


def current_fit_key(root: str, name: str) -> str:
    """The fit key of the space stored now (``""`` when none): it keys every cache of the
    space, its maps and indexes, so a rebuild is picked up without clearing other caches.
    Its ``meta.json`` is read once per version of the file (a rerun costs a ``stat``)."""
    folder = space_dir(config.derived_dir(Path(root)), name)
    return _stored_fit_key(str(folder), file_state(folder / META_FILE))


@st.cache_resource(show_spinner=False, max_entries=256)
def _stored_fit_key(folder: str, state: tuple[int, int]) -> str:
    return stored_fit_key(Path(folder)) or ""


def load_space_cached(root: str, name: str) -> Space:
    """The fitted space ``name``, loaded once per fit and shared by every session (read-only)."""
    return _space(root, name, current_fit_key(root, name))


@st.cache_resource(show_spinner="Loading the space…", max_entries=32)
def _space(root: str, name: str, fit_key: str) -> Space:
    return load_built_space(load_catalogue_cached(root), name)


def load_map_cached(root: str, space_name: str, method: str) -> FittedMap:
    """The ``method`` map of a space (fitted now if missing), warmed up, once per fit of the space."""
    return _map(root, space_name, method, current_fit_key(root, space_name))


@st.cache_resource(show_spinner="Loading the map…", max_entries=64)
def _map(root: str, space_name: str, method: str, fit_key: str) -> FittedMap:
    catalogue = load_catalogue_cached(root)
    fitted = load_or_fit_map(catalogue, load_space_cached(root, space_name), method)
    warm_up(fitted)
    return fitted


def file_state(path: Path) -> tuple[int, int]:
    """(mtime in ns, size in bytes) of a file, (0, 0) when missing: a cache key that changes
    whenever the file does (ratings.csv only grows; a study file is rewritten atomically)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return 0, 0
    return stat.st_mtime_ns, stat.st_size


@st.cache_resource(show_spinner=False, max_entries=8)
def _ratings_log(root: str, state: tuple[int, int]) -> RatingsLog:
    return load_ratings(root)


def ratings_log_cached(root: str | Path) -> RatingsLog:
    """``ratings.csv`` parsed once per version of the file and shared by every session (a
    75 000-row log takes about a second to parse); treat the result as read-only."""
    return _ratings_log(str(root), file_state(ratings_path(root)))


def load_index_cached(root: str, space_name: str, metric: str, hubness: str = "none") -> NeighbourIndex:
    """The neighbour index of a space under ``metric`` (and a hubness reduction), once per fit
    of the space."""
    return _index(root, space_name, metric, hubness, current_fit_key(root, space_name))


@st.cache_resource(show_spinner="Preparing the neighbour index…", max_entries=32)
def _index(root: str, space_name: str, metric: str, hubness: str, fit_key: str) -> NeighbourIndex:
    return open_index(load_catalogue_cached(root), load_space_cached(root, space_name), metric=metric, hubness=hubness)


@st.cache_data(show_spinner=False, max_entries=256)
def _upload_vector(root: str, space_name: str, fit_key: str, upload: Upload) -> np.ndarray:
    catalogue = load_catalogue_cached(root)
    return embed_upload(catalogue, load_space_cached(root, space_name), upload, load_space=lambda name: load_space_cached(root, name))


class CachedSpaceLoader(SpaceLoader):
    """The search path's spaces, indexes and upload vectors from this process's shared caches
    (an upload is embedded once per space fit: learned spaces run CNNs to embed)."""

    def __init__(self, root: str) -> None:
        super().__init__(load_catalogue_cached(root))
        self.root = root

    def space(self, name: str) -> Space:
        return load_space_cached(self.root, name)

    def index(self, space: Space, metric: str, hubness: str = "none") -> NeighbourIndex:
        return load_index_cached(self.root, space.name, metric, hubness)

    def upload_vector(self, space: Space, upload: Upload) -> np.ndarray:
        return _upload_vector(self.root, space.name, current_fit_key(self.root, space.name), upload)


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
        if not names:  # only the Catalogue page serves a catalogue with no built space
            st.caption("No space is built yet.")
            st.session_state.pop("space", None)
            return
        if st.session_state.get("space") not in names:  # a space of another catalogue, or of none
            st.session_state.pop("space", None)
        st.session_state.space_name = st.selectbox(
            "Embedding space",
            names,
            key="space",
            help="\n\n".join(f"**{n}**: {space_info(catalogue, n).description}" for n in names),
        )


def render_sidebar_if_loadable(root: Path, *, is_demo: bool) -> None:
    """The shared sidebar when the catalogue loads; else only its folder (for the Catalogue
    page, which also serves catalogues that are not built or not valid yet)."""
    try:
        catalogue = load_catalogue_cached(str(root))
    except SongsimError:
        with st.sidebar:
            st.image("assets/logo.png", width=160)
            st.caption(("Demo catalogue" if is_demo else "Catalogue") + " · not ready")
            st.caption(f"`{root}`")
        return
    render_sidebar(catalogue, is_demo=is_demo)


def client_address() -> str | None:
    """The address this session's browser connects from; ``None`` from this machine (Streamlit
    reports loopback as ``None``) or without a network peer (AppTest)."""
    address = st.context.ip_address
    return address if isinstance(address, str) else None


@st.cache_resource
def passcode_attempts() -> AttemptLimiter:
    """The server's one limiter of passcode attempts, shared by every session."""
    return AttemptLimiter()


def is_owner() -> bool:
    """Whether this session may see the owner's pages (:func:`songsim.studies.panel.owner_session`):
    it gave the ``owner_passcode`` of ``.streamlit/secrets.toml``, or none is set and it
    comes from this machine."""
    return owner_session(st.secrets, st.session_state.get("owner_passcode"), client_address())


def require_owner() -> None:
    """The owner sign-in: ask for the owner passcode and, once given, rerun with every page.
    Wrong attempts are rate-limited per client address."""
    if is_owner():
        return
    st.title("Owner sign-in")
    st.info("The other pages are for the study owner: they show which space proposed which candidate.")
    if not owner_passcode_set(st.secrets):
        st.warning(
            "This session comes from another machine and the server has no owner passcode, so it can only rate. "
            "To manage studies from here, set `owner_passcode = \"…\"` in `.streamlit/secrets.toml` on the server "
            "and restart the app."
        )
        return
    key, limiter = client_address() or "local", passcode_attempts()
    wait = limiter.wait_s(key)
    if wait > 0:
        st.error(f"Too many wrong passcodes from this address: try again in {wait:.0f} s.")
        return
    given = st.text_input("Owner passcode", type="password", key="owner-passcode-input")
    if given and owner_passcode_accepted(st.secrets, given):
        limiter.succeeded(key)
        st.session_state["owner_passcode"] = given
        st.rerun()
    if given:
        if st.session_state.get("owner-passcode-refused") != given:  # a rerun is not another attempt
            st.session_state["owner-passcode-refused"] = given
            limiter.failed(key)
        st.error("That is not the owner passcode (`owner_passcode` in .streamlit/secrets.toml).")
