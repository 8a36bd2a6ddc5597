"""What the rating page shows a rater, and what it does with their answers.

The Listen & rate page is a thin view over a :class:`RaterSession`: the study, the rater's
blind queue (:func:`songsim.studies.study.rater_queue`), their latest ratings read back from
``ratings.csv`` (so a browser refresh or a server restart resumes exactly where they left
off), and where each song's audio is. Saving goes through
:func:`songsim.studies.ratings.append_rating`, the one validated, locked code path that the
``rate`` command uses too.

Study passcodes live in ``.streamlit/secrets.toml`` (never in the study file)::

    owner_passcode = "only-the-owner"      # guards the Studies and Report pages (optional)

    [study_passcodes]
    pilot-2026 = "blue-harmonica"

A study without an entry needs no passcode. Who a rater is — per-rater link tokens,
invitations, self-registration, removal — is :mod:`songsim.studies.identity`; the passcode
is asked once, when a new name registers itself. Who is the owner (:func:`owner_session`):
with ``owner_passcode`` set, whoever gives it; without it, only a session from this machine
(loopback: the single-user laptop) — a session from another machine is a rater's, so a rater
can never see which space proposed which candidate. The app listens on 127.0.0.1 by default
(``.streamlit/config.toml``); the README says how to open it to a LAN. Wrong passcodes are
rate-limited per client address (:class:`AttemptLimiter`), and so are wrong rater tokens.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from songsim.catalogue import Catalogue
from songsim.errors import SongsimError, UnknownTrackError
from songsim.studies.ratings import Rating, RatingsLog, append_rating, latest_ratings, load_ratings
from songsim.studies.study import OWN_METRIC, UPLOAD_QUERY_PREFIX, QueueItem, Study, check_rater_name, join_panel, load_study, rater_queue

PASSCODES_SECTION = "study_passcodes"
OWNER_PASSCODE_KEY = "owner_passcode"


def passcode_required(secrets: Mapping, study_name: str) -> bool:
    """Whether the owner set a passcode for ``study_name`` in the secrets' ``[study_passcodes]``."""
    return bool(_passcodes(secrets).get(study_name))


def passcode_accepted(secrets: Mapping, study_name: str, given: str | None) -> bool:
    """True when the study has no passcode or ``given`` matches it (constant-time comparison)."""
    expected = _passcodes(secrets).get(study_name)
    if not expected:
        return True
    return hmac.compare_digest(str(expected).encode(), (given or "").encode())


def owner_passcode_accepted(secrets: Mapping, given: str | None) -> bool:
    """True when no ``owner_passcode`` is set in the secrets, or ``given`` matches it."""
    try:
        expected = secrets.get(OWNER_PASSCODE_KEY)
    except (FileNotFoundError, KeyError):  # st.secrets without a secrets.toml
        expected = None
    if not expected:
        return True
    return hmac.compare_digest(str(expected).encode(), (given or "").encode())


def is_loopback(address: str | None) -> bool:
    """Whether a session's client address is this machine (127.0.0.0/8, ::1, "localhost").

    ``None`` (no network peer: a script or ``AppTest``) counts as this machine; an address
    that cannot be parsed does not.
    """
    if address is None:
        return True
    text = str(address).strip().strip("[]")
    if text == "localhost":
        return True
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return False
    mapped = getattr(parsed, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return bool(parsed.is_loopback or (mapped is not None and mapped.is_loopback))


def owner_passcode_set(secrets: Mapping) -> bool:
    """Whether the secrets hold an ``owner_passcode``."""
    try:
        return bool(secrets.get(OWNER_PASSCODE_KEY))
    except (FileNotFoundError, KeyError):  # st.secrets without a secrets.toml
        return False


def owner_session(secrets: Mapping, given: str | None, client_address: str | None) -> bool:
    """Whether a session may use the owner's pages: it gave the ``owner_passcode``, or none is
    set and the session comes from this machine (:func:`is_loopback`). Every other session is
    a rater's."""
    if owner_passcode_set(secrets):
        return owner_passcode_accepted(secrets, given)
    return is_loopback(client_address)


@dataclass
class AttemptLimiter:
    """Rate limit for passcode and token attempts, per key (a client address).

    After ``max_failures`` wrong attempts within ``window_s`` seconds, the key must wait
    ``lockout_s`` seconds (doubling with every further lockout, up to an hour) before it may
    try again; a right attempt clears its record. Thread-safe: one instance serves every
    session of the server process.
    """

    max_failures: int = 5
    window_s: float = 60.0
    lockout_s: float = 30.0
    _failures: dict[str, list[float]] = field(default_factory=dict, repr=False)
    _locked_until: dict[str, float] = field(default_factory=dict, repr=False)
    _lockouts: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def wait_s(self, key: str, now: float | None = None) -> float:
        """Seconds ``key`` must wait before its next attempt (0: it may try now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return max(0.0, self._locked_until.get(key, 0.0) - now)

    def failed(self, key: str, now: float | None = None) -> None:
        """Record a wrong attempt of ``key``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._failures.get(key, []) if now - t < self.window_s] + [now]
            if len(recent) >= self.max_failures:
                count = self._lockouts.get(key, 0)
                self._locked_until[key] = now + min(3600.0, self.lockout_s * 2**count)
                self._lockouts[key] = count + 1
                recent = []
            self._failures[key] = recent

    def succeeded(self, key: str) -> None:
        """Forget ``key``'s wrong attempts."""
        with self._lock:
            for record in (self._failures, self._locked_until, self._lockouts):
                record.pop(key, None)


def _passcodes(secrets: Mapping) -> Mapping:
    try:
        section = secrets.get(PASSCODES_SECTION) or {}
    except (FileNotFoundError, KeyError):  # st.secrets without a secrets.toml
        return {}
    return section if isinstance(section, Mapping) else {}


@dataclass(frozen=True)
class SavedRating:
    """A rater's latest rating of one pair."""

    broad: int
    fine: float | None
    comment: str


@dataclass
class RaterSession:
    """One rater's view of one study.

    Attributes
    ----------
    catalogue_root : Path
    study : Study
    rater : str
    queue : list of QueueItem
        The rater's assigned pairs grouped by query, in their shuffled order (blind).
    saved : dict of (query_id, candidate_id) to SavedRating
        Their latest rating of each pair they rated.
    problems : list of str
        Rows of ``ratings.csv`` that could not be read (torn or malformed), by line number.
    """

    catalogue_root: Path
    study: Study
    rater: str
    queue: list[QueueItem]
    saved: dict[tuple[str, str], SavedRating]
    problems: list[str]

    @property
    def assigned(self) -> int:
        """Number of pairs assigned to the rater."""
        return sum(len(item.candidates) for item in self.queue)

    @property
    def rated(self) -> int:
        """Number of assigned pairs the rater has rated."""
        return sum((item.query_id, c) in self.saved for item in self.queue for c in item.candidates)

    @property
    def complete(self) -> bool:
        """Every assigned pair is rated."""
        return self.rated == self.assigned

    def first_open_query(self) -> int:
        """Index in :attr:`queue` of the first query with an unrated candidate (the last
        query when everything is rated; 0 for an empty queue)."""
        for position, item in enumerate(self.queue):
            if any((item.query_id, c) not in self.saved for c in item.candidates):
                return position
        return max(len(self.queue) - 1, 0)

    def rated_in(self, item: QueueItem) -> int:
        """How many of ``item``'s candidates the rater has rated."""
        return sum((item.query_id, c) in self.saved for c in item.candidates)

    @property
    def joined(self) -> bool:
        """Whether the rater holds a slot in the panel (they saved a rating)."""
        return self.rater in self.study.raters

    def save(self, query_id: str, candidate_id: str, *, broad: int, fine: float | None = None, comment: str = "") -> Rating:
        """Append the rating to ``ratings.csv`` (validated, locked) and remember it here.

        The rater's first saved rating joins them to the panel (:func:`join_panel`): only then
        do they hold a slot, and their queue is the one of that slot from then on."""
        written = append_rating(
            self.catalogue_root,
            Rating(
                study=self.study.name, rater=self.rater, query_id=query_id, candidate_id=candidate_id,
                broad=broad, fine=fine, comment=comment or "",
            ),
            study=self.study,
        )  # fmt: skip
        self.saved[(query_id, candidate_id)] = SavedRating(written.broad, written.fine, written.comment)
        if not self.joined:
            self.study = join_panel(self.catalogue_root, self.study.name, self.rater)
            self.queue = rater_queue(self.study, self.rater)
        return written


def open_session(catalogue_root: str | Path, study_name: str, rater: str, *, log: RatingsLog | None = None) -> RaterSession:
    """Read ``rater``'s queue and ratings back (joining nobody: a rater joins the panel with
    their first saved rating, :meth:`RaterSession.save`).

    ``rater`` is who the caller verified (:func:`songsim.studies.identity.verify`); a removed
    rater gets a :class:`StudyError`. ``log``: ``ratings.csv`` already read
    (:func:`songsim.studies.ratings.load_ratings`, any studies), e.g. from a cache; read here
    when ``None``."""
    root = Path(catalogue_root)
    study = load_study(root, study_name)
    rater = check_rater_name(rater)
    known = study.canonical_rater(rater)
    if known is not None and known in study.removed_raters:
        raise SongsimError(f"Rater {known!r} was removed from study {study.name!r} by its owner: there is nothing to rate.")
    rater = known or rater
    log = log if log is not None else load_ratings(root, study=study.name)
    latest = latest_ratings(log.events[log.events["study"] == study.name])
    mine = latest[latest["rater"] == rater]
    saved = {
        (row.query_id, row.candidate_id): SavedRating(int(row.broad), None if pd.isna(row.fine) else float(row.fine), row.comment or "")
        for row in mine.itertuples(index=False)
    }
    return RaterSession(root, study, rater, rater_queue(study, rater), saved, list(log.problems))


def song_audio(catalogue: Catalogue, study: Study, song_id: str) -> Path:
    """The audio file of a query or candidate: a catalogue track's file, or an uploaded
    query's stored copy (``study.query(id).audio``, relative to the catalogue folder)."""
    if song_id.startswith(UPLOAD_QUERY_PREFIX):
        stored = study.query(song_id).audio
        if not stored:
            raise SongsimError(f"Uploaded query {song_id!r} of study {study.name!r} has no stored audio; recreate the study.")
        return (catalogue.root / stored).resolve()
    if song_id not in catalogue:
        raise UnknownTrackError(
            f"Track {song_id!r} of study {study.name!r} is not in {catalogue.root / 'tracks.csv'}: the catalogue "
            f"changed since the study was made; restore the track or create a new study."
        )
    return Path(catalogue.track(song_id)["path"])


def study_overview(study: Study, latest: pd.DataFrame) -> dict:
    """One row of the owner's study table: settings, panel and how much is judged.

    ``latest`` is :func:`songsim.studies.ratings.latest_ratings` output (any studies). ``judged`` is
    the share of the study's R × pairs rating slots filled (R = raters per pair), capped at 1
    per pair, so it reaches 100 % when every pair has its R ratings. Ratings of removed raters
    left out of the report are left out here too.
    """
    mine = latest[(latest["study"] == study.name) & ~latest["rater"].isin(study.excluded_raters)]
    per_pair = mine.groupby(["query_id", "candidate_id"]).size()
    pooled = {(q.query_id, c) for q in study.queries for c in q.pool}
    filled = sum(min(int(n), study.raters_per_pair) for pair, n in per_pair.items() if pair in pooled)
    return {
        "study": study.name,
        "spaces": ", ".join(study.spaces),
        "k": study.k,
        "similarity": "each space's own" if study.metric == OWN_METRIC else study.metric,
        "queries": len(study.queries),
        "pairs": study.n_pairs,
        "raters": f"{len(study.active_raters)} rating / panel of {study.panel_size}"
        + (f" ({len(study.removed_raters)} removed)" if study.removed_raters else ""),
        "access": "invitation only" if study.invitation_only else "open",
        "ratings": int(len(mine)),
        "judged": f"{filled / max(study.n_pairs * study.raters_per_pair, 1):.0%}",
        "created": study.created_at[:16].replace("T", " "),
    }
