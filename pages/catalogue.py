"""Catalogue: the known catalogues and switching between them, importing a folder on the
server, and the state of every build stage of the open catalogue with a build button."""

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.common import STAGE_LABELS, catalogue_root, default_catalogue_root, run_through_app, switch_catalogue
from songsim import config
from songsim.build import build, prepare_catalogue
from songsim.catalogue import TRACKS_CSV
from songsim.catalogues import add_catalogue, describe_catalogue, forget_catalogue, list_catalogues
from songsim.errors import SongsimError, os_error_message
from songsim.importers import LAYOUTS, PROBLEMS_CSV, import_collection
from songsim.stages import MISSING, build_plan, buildable_spaces, stage_states, state_counts

LAYOUT_HELP = {
    "auto": "auto — detect from the folders and the metadata files",
    "folders": "folders — one sub-folder per genre (rock/song.mp3)",
    "gtzan": "gtzan — GTZAN's genres/blues/blues.00000.wav",
    "fma": "fma — FMA: audio as 000/000002.mp3 + fma_metadata/tracks.csv",
    "deam": "deam — DEAM: audio as 2.mp3 + the static annotations CSV",
    "csv": "csv — any CSV keyed by track id or file name",
    "flat": "flat — every audio file, no genre from folder names",
}

STATE_STYLES = {
    "done": "color: #1a7f37",
    "partial": "color: #9a6700",
    "stale": "color: #9a6700",
    "missing": "color: #cf222e",
    "error": "color: #cf222e; font-weight: bold",
    "needs labels": "color: #6e7781",
}

run_through_app()
root, is_demo = catalogue_root()
st.session_state.setdefault("stages_token", 0)


@st.cache_data(show_spinner="Checking every build stage…", ttl=60)
def stages_of(root: str, token: int, csv_mtime_ns: int):
    """``token`` and ``csv_mtime_ns`` only key the cache (a build, an import, "Check again")."""
    return stage_states(root)


@st.cache_data(show_spinner=False, ttl=60)
def summary_of(path: str, token: int) -> dict:
    return describe_catalogue(path)


def refresh() -> None:
    st.session_state.stages_token += 1


def csv_mtime_ns(folder: Path) -> int:
    try:
        return (folder / TRACKS_CSV).stat().st_mtime_ns
    except OSError:
        return 0


def run_build(spaces: list[str]) -> None:
    """Build ``spaces`` of the open catalogue under a progress display, then rerun."""
    making_demo = is_demo and not (root / TRACKS_CSV).is_file()
    title = "Making the demo catalogue" if making_demo else f"Building {', '.join(spaces)}"
    with st.status(f"{title}…", expanded=True) as status:
        bar = st.progress(0.0, text="starting")

        def on_progress(stage: str, fraction: float, message: str) -> None:
            bar.progress(min(max(fraction, 0.0), 1.0), text=f"{STAGE_LABELS.get(stage, stage)} — {message}")

        try:
            if making_demo:
                report = prepare_catalogue(root, make_demo_if_missing=True, on_progress=on_progress)
            else:
                report = build(root, spaces=spaces, on_progress=on_progress)
        except SongsimError as exc:
            status.update(label="The build stopped", state="error")
            st.error(str(exc))
            return
        status.update(label=f"Built {len(report.built)}, reused {len(report.reused)}", state="complete")
    st.session_state.last_build = {"root": str(root), **report.as_dict()}  # caches are keyed by fit key: no clearing
    refresh()
    st.rerun()


def server_path(text: str, what: str) -> Path | None:
    """An absolute server path from a text box, resolved (symlinks, ``..``) and under the
    allowed roots (``SONGSIM_ROOTS``; :func:`songsim.config.allowed_roots`), or None after an
    error naming the fix. Nothing outside the roots is looked at, not even whether it exists."""
    text = text.strip().strip('"').strip("'")
    if not text:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute():
        st.error(f"{what} {text!r} is not an absolute path: give the full path on the server (e.g. /data/music/gtzan).")
        return None
    try:
        return config.require_under_roots(path, what=what)
    except SongsimError as exc:
        st.error(str(exc))
        return None


st.title("Catalogue")
st.caption(f"Open in this session: **{root}**" + (" (the embedded demo)" if is_demo else ""))

# --- known catalogues -----------------------------------------------------------------------
st.subheader("Catalogues")
try:
    known = list_catalogues()
except SongsimError as exc:
    st.error(str(exc))
    known = []
default_root, _ = default_catalogue_root()
folders = [k.path for k in known]
names = {k.path: k.name for k in known}
for extra, name in ((default_root, "default (--catalogue)"), (root, "open")):
    if extra not in folders:
        folders.append(extra)
        names[extra] = f"{extra.name} ({name})"
rows = []
for folder in folders:
    summary = summary_of(str(folder), st.session_state.stages_token)
    rows.append({"open": "●" if folder == root else "", "name": names[folder], "folder": str(folder), **summary})
known_table = pd.DataFrame(rows).astype({"tracks": "Int64"})
st.dataframe(known_table, hide_index=True, width="stretch", column_config={"open": st.column_config.TextColumn("open", width="small")})

pick_column, open_column, forget_column = st.columns([6, 1, 1], vertical_alignment="bottom")
picked = pick_column.selectbox(
    "Catalogue", folders, index=folders.index(root), format_func=lambda f: f"{names[f]} — {f}"
)
if open_column.button("Open", disabled=picked == root, help="Serve this catalogue on every page of this session."):
    switch_catalogue(picked)
    refresh()
    st.rerun()
can_forget = picked in [k.path for k in known if not k.is_demo]
if forget_column.button("Forget", disabled=not can_forget, help="Remove it from this list; its folder is left untouched."):
    try:
        forget_catalogue(picked)
    except SongsimError as exc:
        st.error(str(exc))
    else:
        refresh()
        st.rerun()

with st.expander("Add a catalogue folder that already has a tracks.csv"):
    added_text = st.text_input("Catalogue folder on the server", key="add-folder", placeholder="/data/catalogues/my-collection")
    if st.button("Add and open"):
        added = server_path(added_text, "The catalogue folder")
        if not added_text.strip():
            st.error("Give the catalogue folder: the full server path of a folder holding a tracks.csv.")
        elif added is None:
            pass  # server_path showed the error
        elif not (added / TRACKS_CSV).is_file():
            st.error(
                f"There is no {TRACKS_CSV} in {added}: import its audio below (Import a folder), or write a "
                f"{TRACKS_CSV} with at least the columns track_id,path."
            )
        else:
            add_catalogue(added, roots=config.allowed_roots())
            switch_catalogue(added)
            refresh()
            st.rerun()

# --- import ---------------------------------------------------------------------------------
st.subheader("Import a folder")
st.caption(
    "Writes a tracks.csv for the audio under a folder on the server (nothing is moved or copied): genre from "
    "folder names, labels from metadata CSVs (FMA, DEAM, Spotify-style) or file tags. Every file or row it "
    "cannot use is listed with the reason, without failing the import."
)
with st.form("import"):
    audio_text = st.text_input("Audio folder on the server", placeholder="/data/gtzan/genres", key="import-audio")
    metadata_text = st.text_area(
        "Metadata CSV files (optional, one path per line)", placeholder="/data/fma_metadata/tracks.csv", height=80, key="import-metadata"
    )
    layout = st.selectbox("Layout", LAYOUTS, format_func=LAYOUT_HELP.get, key="import-layout")
    target_text = st.text_input(
        "Catalogue folder to create",
        placeholder=str(config.songsim_home() / "catalogues" / "<audio folder name>"),
        help="Where tracks.csv and the derived files (.songsim/) go. Empty: a folder named after the audio folder under songsim's home.",
        key="import-target",
    )
    replace = st.checkbox(
        "Re-import over an existing tracks.csv in that folder",
        key="import-replace",
        help="For a collection that grew or changed: the build cache is kept, so the next build analyses only new or changed audio.",
    )
    submitted = st.form_submit_button("Import", type="primary")

if submitted:
    audio_dir = server_path(audio_text, "The audio folder")
    metadata = [server_path(line, "The metadata file") for line in metadata_text.splitlines() if line.strip()]
    if not audio_text.strip():
        st.error("Give the audio folder: the full server path of the folder that holds the audio files.")
    elif audio_dir is None or None in metadata:
        pass  # server_path showed the error
    elif not audio_dir.is_dir():
        st.error(f"The audio folder {audio_dir} does not exist on the server: check the path (it is read by the server, not your browser).")
    elif missing := [str(m) for m in metadata if not m.is_file()]:
        st.error(f"Metadata file {', '.join(missing)} does not exist on the server: check the path, or leave the box empty.")
    else:
        target = server_path(target_text.strip() or str(config.songsim_home() / "catalogues" / audio_dir.name), "The catalogue folder")
        if target is None:
            pass
        elif (target / TRACKS_CSV).exists() and not replace:
            st.error(f"{target / TRACKS_CSV} already exists: tick “Re-import over an existing tracks.csv” to re-import (the build cache is kept), or choose another catalogue folder.")
        else:
            bar = st.progress(0.0, text=f"Scanning {audio_dir}…")
            last_draw = [0.0]

            def on_progress(done: int, total: int, message: str) -> None:
                if done == total or time.monotonic() - last_draw[0] > 0.2:  # a 100 k-file import must not draw 100 k times
                    last_draw[0] = time.monotonic()
                    bar.progress(done / max(total, 1), text=f"Checking audio {done}/{total}: {message}")

            try:
                roots = config.allowed_roots()
                report = import_collection(
                    target, audio_dir, metadata=metadata, layout=layout, replace=replace, on_progress=on_progress, roots=roots
                )
            except SongsimError as exc:
                bar.empty()
                st.error(str(exc))
            except OSError as exc:  # a folder that cannot be written, a full disk: nothing was registered
                bar.empty()
                st.error(f"The import could not write the catalogue: {os_error_message(exc)}")
            else:
                add_catalogue(target, roots=roots)
                st.session_state.last_import = report.as_dict()
                switch_catalogue(target)
                refresh()
                st.rerun()

last_import = st.session_state.get("last_import")
if last_import:
    csv_path = Path(last_import["csv_path"])
    st.success(
        f"Imported {last_import['n_tracks']} tracks into {csv_path} (layout {last_import['layout']}; "
        f"{last_import['n_audio_files']} audio files, {last_import['n_metadata_rows']} metadata rows)."
    )
    labels = last_import["label_counts"]
    st.caption("Tracks with each label: " + (", ".join(f"{c} {n}" for c, n in labels.items()) or "none"))
    for note in last_import["notes"]:
        st.caption(f"Note: {note}")
    problems = last_import["problems"]
    if problems:
        skipped = sum(p["action"] == "skipped" for p in problems)
        st.warning(
            f"Could not use {skipped} file(s) or row(s) and dropped {len(problems) - skipped} value(s); all are listed "
            f"here and in {csv_path.parent / PROBLEMS_CSV}."
        )
        st.dataframe(pd.DataFrame(problems, columns=["item", "kind", "action", "reason"]), hide_index=True, width="stretch")
    else:
        st.caption("Every file and row was used.")
    imported_plan = build_plan(stages_of(str(root), st.session_state.stages_token, csv_mtime_ns(root))) if csv_path.parent == root else []
    if imported_plan:
        st.info("The imported catalogue is open. Build its default spaces and maps now, or later from the stages below.")
        if st.button("Build it now", type="primary", key="build-imported"):
            run_build(imported_plan)

# --- stages ---------------------------------------------------------------------------------
st.subheader("Stages")
last_build = st.session_state.get("last_build")
if last_build and last_build["root"] == str(root):
    st.success(
        f"Last build: built {len(last_build['built'])} ({', '.join(last_build['built']) or 'nothing'}), reused "
        f"{len(last_build['reused'])} in {last_build['stage_seconds'].get('total', 0):.0f} s"
        + "".join(f"; skipped {name}: {why}" for name, why in last_build["skipped"].items())
    )
states = stages_of(str(root), st.session_state.stages_token, csv_mtime_ns(root))
counts = state_counts(states)
st.caption(" · ".join(f"{n} {state}" for state, n in counts.items()) + f" — {root}")
table = pd.DataFrame([s.as_dict() for s in states])
st.dataframe(
    table.style.map(lambda state: STATE_STYLES.get(state, ""), subset=["state"]),
    hide_index=True,
    width="stretch",
    height=min(35 * (len(table) + 1) + 3, 36 * 30),  # every stage in view up to 30 rows
)
if states[0].state != "done":
    if is_demo and states[0].state == MISSING:
        if st.button("Make the demo catalogue", type="primary"):
            run_build([])
    else:
        st.error(f"The catalogue at {root} is not usable yet: {states[0].detail}")

plan = build_plan(states)
build_column, check_column = st.columns([3, 1])
if plan:
    if build_column.button("Build what is missing or stale", type="primary", help=f"Builds or refreshes {', '.join(plan)} and their maps."):
        run_build(plan)
    build_column.caption(f"Will build or refresh: {', '.join(plan)} (with their 2-D maps).")
elif states[0].state == "done":
    build_column.success("Every built stage is up to date.")
if check_column.button("Check again", help="Re-read the stored files and audio (after changes made outside the app)."):
    refresh()
    st.rerun()

others = [name for name in buildable_spaces(states) if name not in plan]
if states[0].state == "done" and others:
    with st.expander("Build more spaces (the learned ones train for minutes on a CPU)"):
        chosen = st.multiselect("Spaces", others, key=f"build-more:{root}")
        if st.button("Build the chosen spaces", disabled=not chosen):
            run_build(chosen)
