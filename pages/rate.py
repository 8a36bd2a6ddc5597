"""Listen & rate: a rater's blind queue of (query, candidate) pairs, scored on the MIREX scales.

The rater's study, name and passcode token live in the page URL, so a refresh (or a server
restart) resumes at their first unrated query; everything else is read back from
ratings.csv. Logic lives in :mod:`songsim.studies.panel`.
"""

from __future__ import annotations

import streamlit as st

from pages.common import client_address, load_catalogue_cached, passcode_attempts, ratings_log_cached, run_through_app
from songsim.errors import SongsimError
from songsim.studies.panel import (
    RaterSession,
    open_session,
    passcode_accepted,
    passcode_required,
    session_token,
    song_audio,
    token_accepted,
)
from songsim.studies.study import BROAD_SCALE, list_studies

run_through_app()
root = st.session_state["catalogue_root"]
catalogue = load_catalogue_cached(root)
st.title("Listen & rate")

studies = list_studies(root)
if not studies:
    st.info("There is no study to rate yet: the study owner creates one on the **Studies** page.")
    st.stop()


def sign_in() -> None:
    """The sign-in form; on success the study, rater and token go into the URL."""
    chosen = st.query_params.get("study")
    with st.form("sign-in"):
        study = st.selectbox("Study", studies, index=studies.index(chosen) if chosen in studies else 0)
        rater = st.text_input("Your name or rater id", max_chars=64, help="Use the same name every time: it keeps your place.")
        passcode = st.text_input("Study passcode", type="password", help="Only when the study owner gave you one.")
        if st.form_submit_button("Start rating", type="primary"):
            address, limiter = client_address() or "local", passcode_attempts()
            if not rater.strip():
                st.error("Enter your name or rater id.")
            elif (wait := limiter.wait_s(address)) > 0:
                st.error(f"Too many wrong passcodes from this address: try again in {wait:.0f} s.")
            elif not passcode_accepted(st.secrets, study, passcode):
                limiter.failed(address)
                st.error(f"That is not the passcode of study {study!r}: ask the study owner for it.")
            else:
                limiter.succeeded(address)
                st.query_params.update(study=study, rater=rater.strip(), token=session_token(st.secrets, study, rater))
                st.rerun()


study_name, rater = st.query_params.get("study"), st.query_params.get("rater")
if study_name not in studies or not rater or not token_accepted(st.secrets, study_name, rater, st.query_params.get("token")):
    st.caption(
        "Judge how similar each candidate sounds to the query. You will not see which model proposed a "
        "candidate, nor its rank: the study compares the models through your ears."
    )
    sign_in()
    st.stop()

try:
    session: RaterSession = open_session(root, study_name, rater, log=ratings_log_cached(root))
except SongsimError as exc:
    st.error(str(exc))
    st.stop()
for problem in session.problems:
    st.warning(problem)

head, leave = st.columns([5, 1])
head.markdown(f"Study **{session.study.name}** · rater **{session.rater}**" + (" · 🔒" if passcode_required(st.secrets, study_name) else ""))
if leave.button("Sign out"):
    st.query_params.clear()
    st.rerun()
st.progress(session.rated / max(session.assigned, 1), text=f"{session.rated} of {session.assigned} pairs rated")
if not session.queue:
    st.info("No pairs are assigned to you in this study.")
    st.stop()
if session.complete:
    st.success("You have rated every pair assigned to you — thank you! You can still revise any rating below.")

position_key = f"position:{session.study.name}:{session.rater}"
if position_key not in st.session_state:
    st.session_state[position_key] = session.first_open_query()
position = min(st.session_state[position_key], len(session.queue) - 1)
item = session.queue[position]

back, where, forward = st.columns([1, 4, 1])
if back.button("← Previous query", disabled=position == 0):
    st.session_state[position_key] = position - 1
    st.rerun()
where.markdown(
    f"**Query {position + 1} of {len(session.queue)}** · {session.rated_in(item)} of {len(item.candidates)} candidates rated"
)
if forward.button("Next query →", disabled=position == len(session.queue) - 1):
    st.session_state[position_key] = position + 1
    st.rerun()

st.subheader("Query")
st.audio(str(song_audio(catalogue, session.study, item.query_id)))
st.caption(
    "BROAD: " + " · ".join(f"{grade} = {meaning}" for grade, meaning in BROAD_SCALE.items())
    + ". FINE (optional): 0 = not similar at all … 100 = as similar as can be."
    + (" Play a candidate before rating it." if session.study.require_play else "")
)

played: set = st.session_state.setdefault("played", set())
for number, candidate in enumerate(item.candidates, start=1):
    pair = (item.query_id, candidate)
    saved = session.saved.get(pair)
    with st.container(border=True):
        label = f"**Candidate {number}**"
        if saved is not None:
            label += f" · ✓ {BROAD_SCALE[saved.broad]}" + (f" · FINE {saved.fine:g}" if saved.fine is not None else "")
        st.markdown(label)
        may_rate = saved is not None or pair in played or not session.study.require_play
        if may_rate:
            st.audio(str(song_audio(catalogue, session.study, candidate)), autoplay=pair in played and saved is None)
        # widget keys become CSS classes in the page: never put track ids in them (blindness)
        elif st.button(f"▶ Play candidate {number}", key=f"play:{session.rater}:{position}:{number}"):
            played.add(pair)
            st.rerun()
        with st.form(f"rate:{session.rater}:{position}:{number}", border=False):
            broad = st.radio(
                "BROAD", list(BROAD_SCALE), index=None if saved is None else saved.broad, horizontal=True,
                format_func=lambda grade: f"{grade} · {BROAD_SCALE[grade]}", disabled=not may_rate,
            )  # fmt: skip
            fine_col, comment_col = st.columns([1, 3])
            fine = fine_col.number_input(
                "FINE (0–100, optional)", min_value=0.0, max_value=100.0, step=1.0,
                value=None if saved is None else saved.fine, disabled=not may_rate,
            )  # fmt: skip
            comment = comment_col.text_input("Comment (optional)", value="" if saved is None else saved.comment, disabled=not may_rate)
            if st.form_submit_button("Revise rating" if saved else "Save rating", disabled=not may_rate):
                if broad is None:
                    st.error("Choose a BROAD score first.")
                else:
                    try:
                        session.save(item.query_id, candidate, broad=broad, fine=fine, comment=comment)
                    except SongsimError as exc:
                        st.error(str(exc))
                    else:
                        st.rerun()

if session.rated_in(item) == len(item.candidates) and position < len(session.queue) - 1:
    if st.button("Next query →", type="primary", key="next-after-rating"):
        st.session_state[position_key] = position + 1
        st.rerun()
