"""Listen & rate: a rater's blind queue of (query, candidate) pairs, scored on the MIREX scales.

The rater's study, name and secret token live in the page URL (``?study=S&rater=R&token=T``:
the owner's invitation link, or the one an open study gives a new name at its first
sign-in), so a refresh (or a server restart) resumes at their first unrated query and no
other browser can act as that rater; everything else is read back from ratings.csv. Logic
lives in :mod:`songsim.studies.panel` and :mod:`songsim.studies.identity`.
"""

from __future__ import annotations

import streamlit as st

from pages.common import client_address, load_catalogue_cached, passcode_attempts, ratings_log_cached, run_through_app
from songsim.errors import SongsimError
from songsim.studies.identity import register, verify
from songsim.studies.panel import (
    RaterSession,
    open_session,
    passcode_accepted,
    passcode_required,
    song_audio,
)
from songsim.studies.study import BROAD_SCALE, list_studies, load_study

run_through_app()
root = st.session_state["catalogue_root"]
catalogue = load_catalogue_cached(root)
st.title("Listen & rate")

studies = list_studies(root)
if not studies:
    st.info("There is no study to rate yet: the study owner creates one on the **Studies** page.")
    st.stop()


def sign_in() -> None:
    """The sign-in: an open study registers a new name and puts its token into the URL; an
    invitation-only study asks for the owner's link. Wrong passcodes are rate-limited."""
    chosen = st.query_params.get("study")
    study = st.selectbox("Study", studies, index=studies.index(chosen) if chosen in studies else 0, key="sign-in-study")
    try:
        invitation_only = load_study(root, study).invitation_only
    except SongsimError as exc:
        st.error(str(exc))
        return
    if invitation_only:
        st.info(
            f"Study **{study}** is by invitation only: open the link the study owner sent you (it signs you in). "
            "Lost it? Ask the owner for a new one."
        )
        return
    with st.form("sign-in"):
        rater = st.text_input(
            "Your name or rater id", max_chars=64,
            help="A new name: this browser gets a private link that keeps your place. Bookmark it to come back.",
        )  # fmt: skip
        passcode = st.text_input("Study passcode", type="password") if passcode_required(st.secrets, study) else ""
        if st.form_submit_button("Start rating", type="primary"):
            address, limiter = client_address() or "local", passcode_attempts()
            if not rater.strip():
                st.error("Enter your name or rater id.")
            elif (wait := limiter.wait_s(address)) > 0:
                st.error(f"Too many wrong passcodes or links from this address: try again in {wait:.0f} s.")
            elif not passcode_accepted(st.secrets, study, passcode):
                limiter.failed(address)
                st.error(f"That is not the passcode of study {study!r}: ask the study owner for it.")
            else:  # no reset of the limiter on success: a known passcode must not buy more token guesses
                try:
                    name, token = register(root, study, rater)
                except SongsimError as exc:
                    st.error(str(exc))
                else:
                    st.query_params.update(study=study, rater=name, token=token)
                    st.session_state["just-registered"] = name
                    st.rerun()


def verified_rater(study_name: str | None, rater: str | None, token: str | None) -> str | None:
    """The rater the URL's token proves (None: sign in). A wrong token counts as a failed
    attempt of this address, once per link and session (a rerun is not another attempt)."""
    if study_name not in studies or not rater:
        return None
    if not token:
        st.info(f"Sign in to rate as {rater!r}: open your own link (it holds your key), or register a new name.")
        return None
    address, limiter = client_address() or "local", passcode_attempts()
    if (wait := limiter.wait_s(address)) > 0:
        st.error(f"Too many wrong passcodes or links from this address: try again in {wait:.0f} s.")
        st.stop()
    try:
        name = verify(root, study_name, rater, token)
    except SongsimError as exc:
        st.error(str(exc))
        st.stop()
    if name is None:
        if st.session_state.get("refused-link") != (study_name, rater, token):
            st.session_state["refused-link"] = (study_name, rater, token)
            limiter.failed(address)
        st.error(
            f"This link does not sign you in as {rater!r} in study {study_name!r}: it was revoked or mistyped. "
            "Ask the study owner for a new link."
        )
    return name


study_name = st.query_params.get("study")
rater = verified_rater(study_name, st.query_params.get("rater"), st.query_params.get("token"))
if rater is None:
    st.caption(
        "Judge how similar each candidate sounds to the query. You will not see which model proposed a "
        "candidate, nor its rank: the study compares the models through your ears."
    )
    sign_in()
    st.stop()
if st.session_state.pop("just-registered", None):
    st.success("Bookmark this page now: its address is your private link, and only it lets you back in under this name.")

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
