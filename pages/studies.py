"""Studies: the study owner creates panel studies, adds spaces to them, and follows the panel.

Logic lives in :mod:`songsim.studies.study` (the same functions as ``python -m songsim study``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import load_catalogue_cached, ratings_log_cached, run_through_app
from songsim.config import AUDIO_EXTENSIONS
from songsim.errors import SongsimError
from songsim.neighbours import HUBNESS_METHODS
from songsim.query import store_upload, track_labels
from songsim.spaces.store import built_space_names
from songsim.studies.identity import invite, list_rater_names, panel_table, rating_link, remove_rater, revoke
from songsim.studies.panel import study_overview
from songsim.studies.ratings import latest_ratings
from songsim.studies.study import (
    METRICS,
    OWN_METRIC,
    RUN_REDUCTION_SEPARATOR,
    add_space,
    create_study,
    list_studies,
    load_study,
    set_invitation_only,
)

run_through_app()
root = st.session_state["catalogue_root"]
catalogue = load_catalogue_cached(root)
built = built_space_names(catalogue)
#: what a study can compare: every built space, and each with a hub reduction (SPACE+METHOD)
runs = built + [f"{space}{RUN_REDUCTION_SEPARATOR}{method}" for space in built for method in HUBNESS_METHODS[1:]]
st.title("Studies")
st.caption(
    "A study pools the top-k of every compared space for each query; raters judge the pool blind on the "
    "**Listen & rate** page, and the **Report** page turns their ratings into NDCG / MAP with confidence intervals."
)

names = list_studies(root)
if names:
    log = ratings_log_cached(root)
    latest = latest_ratings(log.events)
    st.dataframe(pd.DataFrame([study_overview(load_study(root, n), latest) for n in names]), hide_index=True)
    for problem in log.problems:
        st.warning(problem)
else:
    st.info("No study yet: create the first one below.")

with st.expander("Create a study", expanded=not names):
    with st.form("create-study"):
        name = st.text_input("Name", placeholder="pilot-2026", help="Letters, digits, '_', '.' or '-'.")
        spaces = st.multiselect(
            "Spaces to compare", runs, default=built[:2],
            help="SPACE+mp, +mp-gauss, +ls: the same space searched with hub reduction (mutual proximity, local scaling), "
            "as a run of its own.",
        )  # fmt: skip
        left, middle, right = st.columns(3)
        k = left.number_input("k (neighbours per space)", min_value=1, max_value=50, value=5)
        n_queries = middle.number_input(
            "Queries drawn (stratified by genre)", min_value=0, max_value=len(catalogue), value=min(20, len(catalogue))
        )
        seed = right.number_input("Seed", min_value=0, value=0)
        labels = dict(zip(track_labels(catalogue), catalogue.track_ids))
        picked = st.multiselect("…or hand-pick the queries", list(labels), help="When set, these replace the drawn queries.")
        uploads = st.file_uploader(
            "…and/or add uploaded songs as queries", type=[e.lstrip(".") for e in AUDIO_EXTENSIONS], accept_multiple_files=True
        )
        left, middle, right = st.columns(3)
        raters_per_pair = left.number_input("Raters per pair", min_value=1, value=2)
        panel_size = middle.number_input("Panel size (expected raters)", min_value=1, value=2)
        threshold = right.number_input("Relevance threshold (mean BROAD ≥)", min_value=0.0, max_value=2.0, value=1.0, step=0.5)
        left, middle, right = st.columns(3)
        artist_filter = left.checkbox("Artist filter", value=True, help="Leave the query's artist out of every run (MIREX).")
        require_play = middle.checkbox("Rate only after playing", value=True)
        invitation_only = left.checkbox(
            "Invitation only", value=False,
            help="Raters sign in only with a link you make below; otherwise a new name registers itself.",
        )  # fmt: skip
        metric = right.selectbox(
            "Similarity", METRICS,
            format_func=lambda m: "each space's own" if m == OWN_METRIC else m,
            help="Each space's own: cosine, except euclidean for spaces trained on distances (wavenet, ae-2d, spectrogram-l2).",
        )
        if st.form_submit_button("Create study", type="primary"):
            try:
                stored = [store_upload(catalogue, f.getvalue(), f.name).path for f in uploads or []]
                with st.spinner("Pooling every space's top-k…"):
                    study = create_study(
                        root, name, spaces, n_queries=int(n_queries), k=int(k), seed=int(seed),
                        raters_per_pair=int(raters_per_pair), panel_size=int(panel_size), relevance_threshold=float(threshold),
                        artist_filter=artist_filter, require_play=require_play, metric=metric,
                        query_ids=[labels[p] for p in picked] or None, upload_files=stored or None,
                    )  # fmt: skip
                    if invitation_only:
                        study = set_invitation_only(root, study.name, True)
            except SongsimError as exc:
                st.error(str(exc))
            else:
                st.success(
                    f"Study **{study.name}**: {len(study.queries)} queries, {study.n_pairs} pairs to judge. "
                    f"Raters open **Listen & rate** and pick it."
                )
                st.rerun()



def base_url() -> str:
    """This server's address as the owner's browser reaches it (for the links to hand out)."""
    url = getattr(st.context, "url", None)
    return str(url).split("?")[0].rsplit("/", 1)[0] if url else ""


def render_panel(study) -> None:
    """The raters of ``study``: access, invitation links, revoking and removing."""
    st.markdown("**Raters**")
    only = st.toggle(
        "Invitation only", value=study.invitation_only, key=f"invitation-only:{study.name}",
        help="On: raters sign in only with a link made here. Off: a new name registers itself and its browser "
        "gets its own link; a name already taken cannot be signed into without its link.",
    )  # fmt: skip
    if only != study.invitation_only:
        set_invitation_only(root, study.name, only)
        st.rerun()
    table = panel_table(root, study.name)
    if table:
        st.dataframe(pd.DataFrame(table), hide_index=True)
    else:
        st.caption("Nobody has signed in yet. A rater holds a share of the pairs only once they saved a rating.")
    with st.form(f"invite:{study.name}", clear_on_submit=True):
        who = st.text_input("Invite a rater (a new name, or an existing one to give them a new link)", max_chars=64)
        if st.form_submit_button("Make link"):
            try:
                name, token = invite(root, study.name, who)
            except SongsimError as exc:
                st.error(str(exc))
            else:
                st.success(f"The link for **{name}** (shown once; any earlier link of theirs stops working):")
                st.code(rating_link(study.name, name, token, base_url()), language=None)
                st.caption("The link uses the address this browser reached the app by: for raters on other machines, "
                           "put the server's LAN address in place of localhost or 127.0.0.1.")
    known = list_rater_names(root, study.name)
    if known:
        left, middle, right = st.columns([2, 1, 1])
        chosen_rater = left.selectbox("Rater", known, key=f"rater-pick:{study.name}")
        keep = left.checkbox(
            "Keep their ratings in the report", value=False, key=f"keep-ratings:{study.name}",
            help="Off (the default): a removed rater's ratings stay in ratings.csv but are left out of the report, "
            "and all their pairs go to the others. On: only their unrated pairs do.",
        )  # fmt: skip
        if middle.button("Revoke link", key=f"revoke:{study.name}", help="Their link stops working; invite them again for a new one."):
            try:
                st.success(f"{revoke(root, study.name, chosen_rater)}'s link no longer works.")
            except SongsimError as exc:
                st.error(str(exc))
        if right.button("Remove rater", key=f"remove:{study.name}"):
            try:
                name, moved, short = remove_rater(root, study.name, chosen_rater, keep_ratings=keep)
            except SongsimError as exc:
                st.error(str(exc))
            else:
                st.success(
                    f"Removed {name}: {moved} pair(s) went to the other raters"
                    + (f"; {short} pair(s) have fewer raters than asked (everyone left already has them)" if short else "")
                    + ("." if keep else "; their ratings are left out of the report.")
                )
        st.caption(
            "Removing a rater is for good: their link stops working and their pairs go to the others. Their ratings stay "
            "in ratings.csv but are left out of the report unless you keep them."
        )


if names:
    st.subheader("Study details")
    chosen = st.selectbox("Study", names, key="study-details")
    study = load_study(root, chosen)
    addable = [s for s in runs if s not in study.spaces]
    left, right = st.columns([3, 1])
    new_space = left.selectbox("Add a space (only its new candidates are pooled; ratings are reused)", addable or ["—"])
    if right.button("Add space", disabled=not addable):
        try:
            study, n_new = add_space(root, chosen, new_space)
        except SongsimError as exc:
            st.error(str(exc))
        else:
            st.success(f"Added {new_space}: {n_new} new pairs to judge.")
    render_panel(study)
    st.caption("Which space proposed which candidate at which rank (the owner's view; raters never see it).")
    rows = [
        {"query": q.query_id, "space": space, **{f"#{rank}": c for rank, c in enumerate(run, start=1)}}
        for q in study.queries
        for space, run in q.runs.items()
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
