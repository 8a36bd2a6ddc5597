"""Who a rater is: per-rater secret tokens, invitations, self-registration and removal.

A study's rater identities live beside it in ``<catalogue>/studies/<name>.raters.json``
(written atomically under ``<name>.raters.json.lock``)::

    {"raters": {"<rater_key>": {"name": "Alice", "token_sha256": "<hex>" | null,
                                "origin": "invite" | "self", "created_at": "<UTC ISO 8601>",
                                "revoked_at": null | "<UTC>", "removed_at": null | "<UTC>"}}}

Only the sha256 of a token is stored, never the token. A token is 32 random bytes
(:func:`secrets.token_urlsafe`); the rating page keeps it in its URL
(``?study=S&rater=NAME&token=TOKEN``), so a refresh or a bookmarked link resumes and no other
browser can act as that rater.

- **Invitation** (:func:`invite`, the owner: the Studies page or ``study invite``): a new
  token for a name — a new rater, or an existing one whose old link is then revoked.
- **Self-registration** (:func:`register`, an open study's sign-in form): the first sign-in
  under a new name issues that browser a token; an invitation-only study refuses it.
- **A name cannot be taken over**: names are compared by :func:`~songsim.studies.study.rater_key`
  (``alice`` = ``Alice ``), a known name is never registered again, and a session acts as a
  rater only with that rater's live token (:func:`verify`).
- **Revoke** (:func:`revoke`): the link stops working; the rater keeps their slot and
  ratings and can be invited again. **Remove** (:func:`remove_rater`): revoked for good, their
  work goes to the others (:func:`songsim.studies.study.remove_from_panel`) and, unless
  ``keep_ratings``, their ratings are left out of the report (they stay in ``ratings.csv``).

Wrong tokens are rate-limited by the caller with :class:`songsim.studies.panel.AttemptLimiter`
(the app's one limiter, shared with passcodes). The ``rate`` command writes ratings without
a token: it is the owner's scripted path on the server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

from filelock import FileLock, Timeout

from songsim.errors import StudyError
from songsim.files import write_json
from songsim.studies.study import (
    LOCK_TIMEOUT_S,
    RATERS_SUFFIX,
    _utc_now,
    check_rater_name,
    load_study,
    rater_key,
    remove_from_panel,
    study_path,
)

TOKEN_BYTES = 32


@dataclass
class RaterIdentity:
    """One rater of a study (see the module docstring for the fields)."""

    name: str
    token_sha256: str | None
    origin: str
    created_at: str
    revoked_at: str | None = None
    removed_at: str | None = None

    @property
    def status(self) -> str:
        """``"removed"``, ``"revoked"`` (no working link) or ``"active"``."""
        if self.removed_at:
            return "removed"
        return "revoked" if self.revoked_at or not self.token_sha256 else "active"


def raters_path(catalogue_root: str | Path, study_name: str) -> Path:
    """``<catalogue>/studies/<name>.raters.json``."""
    path = study_path(catalogue_root, study_name)
    return path.with_name(f"{path.stem}{RATERS_SUFFIX}.json")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_identities(catalogue_root: str | Path, study_name: str) -> dict[str, RaterIdentity]:
    """The study's rater identities by :func:`~songsim.studies.study.rater_key` (empty when none yet)."""
    path = raters_path(catalogue_root, study_name)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        return {key: RaterIdentity(**record) for key, record in payload.get("raters", {}).items()}
    except FileNotFoundError:
        return {}
    except (ValueError, TypeError, AttributeError) as exc:
        raise StudyError(
            f"{path} is not a readable raters file ({exc}): restore it from a backup, or delete it and invite the "
            f"raters again (their ratings are kept in ratings.csv)."
        ) from None


def _save(catalogue_root: str | Path, study_name: str, identities: dict[str, RaterIdentity]) -> None:
    write_json(raters_path(catalogue_root, study_name), {"raters": {k: asdict(v) for k, v in identities.items()}})


@contextmanager
def _locked(catalogue_root: str | Path, study_name: str) -> Iterator[dict[str, RaterIdentity]]:
    """The identities, read under the raters file's lock and saved when the block ends."""
    load_study(catalogue_root, study_name)  # a clear error when there is no such study
    path = raters_path(catalogue_root, study_name)
    lock = FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise StudyError(f"Another process has held {lock.lock_file} for over {LOCK_TIMEOUT_S:.0f} s: try again in a moment.") from None
    try:
        identities = load_identities(catalogue_root, study_name)
        yield identities
        _save(catalogue_root, study_name, identities)
    finally:
        lock.release()


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, _hash(token)


def invite(catalogue_root: str | Path, study_name: str, rater: str) -> tuple[str, str]:
    """A new link token for ``rater`` (the owner's action); returns ``(name, token)``.

    A new name is created (``origin="invite"``); an existing one gets a new token and its old
    link stops working. A removed rater cannot be invited again (:class:`StudyError`).
    """
    name, key = check_rater_name(rater), rater_key(rater)
    with _locked(catalogue_root, study_name) as identities:
        known = identities.get(key)
        if known is not None and known.removed_at:
            raise StudyError(f"Rater {known.name!r} was removed from study {study_name!r}: invite them under another name.")
        token, digest = _new_token()
        if known is None:
            study = load_study(catalogue_root, study_name)
            canonical = study.canonical_rater(name) or name  # a rater who joined before identities existed
            if canonical in study.removed_raters:
                raise StudyError(f"Rater {canonical!r} was removed from study {study_name!r}: invite them under another name.")
            identities[key] = RaterIdentity(canonical, digest, "invite", _utc_now())
        else:
            known.token_sha256, known.revoked_at = digest, None
        return identities[key].name, token


def register(catalogue_root: str | Path, study_name: str, rater: str) -> tuple[str, str]:
    """Self-registration of a new name in an open study; returns ``(name, token)``.

    Raises
    ------
    StudyError
        The study is invitation-only, or the name (compared by ``rater_key``) is already
        someone's — a registered rater, an invited one, or one who rated before rater
        identities existed: they resume with their own link, or ask the owner for a new one.
    """
    name, key = check_rater_name(rater), rater_key(rater)
    study = load_study(catalogue_root, study_name)
    if study.invitation_only:
        raise StudyError(
            f"Study {study_name!r} is by invitation only: open the link the study owner sent you (it signs you in)."
        )
    with _locked(catalogue_root, study_name) as identities:
        if key in identities or study.canonical_rater(name) is not None:
            raise StudyError(
                f"The name {name!r} is already taken in study {study_name!r}. If it is yours, open the link you got when "
                f"you first signed in (it holds your key), or ask the study owner for a new link; otherwise choose "
                f"another name."
            )
        token, digest = _new_token()
        identities[key] = RaterIdentity(name, digest, "self", _utc_now())
        return name, token


def verify(catalogue_root: str | Path, study_name: str, rater: str, token: str | None) -> str | None:
    """The rater's name when ``token`` is their live token (constant-time), else None."""
    if not token:
        return None
    try:
        key = rater_key(rater)
    except StudyError:
        return None
    known = load_identities(catalogue_root, study_name).get(key)
    if known is None or known.removed_at or known.revoked_at or not known.token_sha256:
        hmac.compare_digest(_hash(token), _hash(""))  # the same work whether or not the name exists
        return None
    return known.name if hmac.compare_digest(known.token_sha256, _hash(token)) else None


def revoke(catalogue_root: str | Path, study_name: str, rater: str) -> str:
    """Stop ``rater``'s link from working (they keep their slot and ratings; :func:`invite`
    gives them a new one); returns their name."""
    key = rater_key(rater)
    with _locked(catalogue_root, study_name) as identities:
        known = identities.get(key)
        if known is None:
            raise StudyError(f"Study {study_name!r} has no rater {rater.strip()!r} with a link.")
        known.token_sha256, known.revoked_at = None, _utc_now()
        return known.name


def remove_rater(
    catalogue_root: str | Path, study_name: str, rater: str, *, keep_ratings: bool = False
) -> tuple[str, int, int]:
    """Remove ``rater`` from the study for good: their token is revoked, their pairs go to the
    other raters (:func:`songsim.studies.study.remove_from_panel`) and, unless
    ``keep_ratings``, their ratings are left out of the report (``ratings.csv`` keeps them).

    Returns
    -------
    (str, int, int)
        The rater's name, the pairs handed over, the pairs left short of R raters.
    """
    from songsim.studies.ratings import latest_ratings, load_ratings

    key = rater_key(rater)
    study = load_study(catalogue_root, study_name)
    identities = load_identities(catalogue_root, study_name)
    if key not in identities and study.canonical_rater(rater) is None:
        raise StudyError(f"Study {study_name!r} has no rater {rater.strip()!r}: its raters are {', '.join(list_rater_names(catalogue_root, study_name)) or 'none yet'}.")
    name = identities[key].name if key in identities else study.canonical_rater(rater)
    latest = latest_ratings(load_ratings(catalogue_root, study=study_name).events)
    mine = latest[(latest["study"] == study_name) & (latest["rater"] == name)]
    rated = set(zip(mine["query_id"], mine["candidate_id"]))
    _, moved, uncovered = remove_from_panel(catalogue_root, study_name, name, rated=rated, keep_ratings=keep_ratings)
    with _locked(catalogue_root, study_name) as identities:
        record = identities.get(key) or RaterIdentity(name, None, "panel", _utc_now())
        record.token_sha256, record.removed_at = None, _utc_now()
        identities[key] = record
    return name, moved, uncovered


def list_rater_names(catalogue_root: str | Path, study_name: str) -> list[str]:
    """Every rater the study knows: with an identity, or joined before identities existed."""
    study = load_study(catalogue_root, study_name)
    names = {rater_key(v.name): v.name for v in load_identities(catalogue_root, study_name).values()}
    for rater in study.raters:
        names.setdefault(rater_key(rater), rater)
    return list(names.values())


def panel_table(catalogue_root: str | Path, study_name: str) -> list[dict]:
    """One row per rater for the owner: name, how they came, link status, slot, joined."""
    study = load_study(catalogue_root, study_name)
    identities = load_identities(catalogue_root, study_name)
    rows = []
    for name in list_rater_names(catalogue_root, study_name):
        record = identities.get(rater_key(name))
        joined = study.canonical_rater(name)
        removed = record is not None and record.removed_at or (joined in study.removed_raters)
        rows.append({
            "rater": name,
            "came by": {"invite": "invitation", "self": "self-registered"}.get(record.origin, "before links") if record else "before links",
            "link": "removed" if removed else (record.status if record else "none"),
            "holds a slot": bool(joined in study.raters and not removed),
            "since": (record.created_at if record else "")[:16].replace("T", " "),
        })  # fmt: skip
    return rows


def rating_link(study_name: str, rater: str, token: str, server: str = "") -> str:
    """The link that signs ``rater`` in on the Listen & rate page:
    ``SERVER/rate?study=S&rater=R&token=T`` (``server`` e.g. ``http://192.168.1.10:8501``;
    empty: the path and query string alone)."""
    return f"{server.rstrip('/')}/rate?{urlencode({'study': study_name, 'rater': rater, 'token': token})}"
