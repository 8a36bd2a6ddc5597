"""The ratings log: ``<catalogue>/ratings.csv``, one row per rating event, append-only.

Columns (:data:`RATING_COLUMNS`)::

    timestamp     UTC ISO 8601 (e.g. 2026-03-01T10:15:02.123+00:00), set when the row is written
    study         study name (``studies/<study>.json``)
    rater         rater name or id, as entered (stripped)
    query_id      a catalogue track id or "upload:<hex>"
    candidate_id  a catalogue track id from the query's pool
    broad         MIREX BROAD grade: 0 not similar, 1 somewhat similar, 2 very similar
    fine          MIREX FINE score 0–100, or empty
    comment       free text (commas, quotes and line breaks are CSV-quoted)
    app_version   songsim version that wrote the row

Columns are read by their header names, so a log re-saved from a spreadsheet still reads:
reordered columns are read correctly, extra columns are kept and ignored (one warning,
:attr:`RatingsLog.warnings`), and appends keep the file's own column order (extra columns
empty). A header lacking one of the columns is refused, naming it, and nothing is appended.
Text cells are written through :func:`songsim.files.csv_safe`, so no cell runs as a
spreadsheet formula, and read back as the rater wrote them.

The log is blind: which space proposed a candidate at which rank lives in the study file.
A revision is a new row; the latest row of a (study, rater, query, candidate) counts
(:func:`latest_ratings`), the history stays.

Writing (:func:`append_rating`) never rewrites what is stored: under an inter-process
:class:`filelock.FileLock` it appends one complete row with a single ``os.write`` on an
``O_APPEND`` descriptor and fsyncs, so concurrent raters never interleave or lose rows. A row
torn by a crash (power loss, a full disk) is closed off first — a quote still open is closed
and a missing line break added — so the next row is always its own intact record. Knowing
whether a quote is open takes one sequential read of the log per append (its ``"`` count is
odd): a few milliseconds per megabyte, comparable to the fsync for a study-sized log (a
1 000-query × 5-space × 3-rater study is ~5 MB).
Reading (:func:`load_ratings`) reports every torn or malformed row with its line number,
never dropping one silently.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from filelock import FileLock, Timeout

from songsim import __version__
from songsim.errors import RatingError, RatingsFormatError, StudyError
from songsim.files import csv_original, csv_safe
from songsim.studies.study import BROAD_SCALE, FINE_RANGE, Study, check_rater_name, load_study

RATINGS_CSV = "ratings.csv"
RATING_COLUMNS = ("timestamp", "study", "rater", "query_id", "candidate_id", "broad", "fine", "comment", "app_version")
#: seconds an append waits for other writers before giving up with an error
LOCK_TIMEOUT_S = 60.0
_KEY = ["study", "rater", "query_id", "candidate_id"]
_BROAD_TEXT = {str(grade): grade for grade in BROAD_SCALE}
_DTYPES = {**{c: object for c in RATING_COLUMNS}, "broad": "int64", "fine": "float64", "line": "int64"}
_HEADER = (",".join(RATING_COLUMNS) + "\n").encode()
_READ_CHUNK_BYTES = 1 << 20
_HEAD_BYTES = 4096  # enough for the header line, however it was re-saved


@dataclass(frozen=True)
class Rating:
    """One rating event (one row of ``ratings.csv``).

    Attributes
    ----------
    broad : int
        BROAD grade 0, 1 or 2 (:data:`songsim.studies.study.BROAD_SCALE`).
    fine : float or None
        FINE score 0–100, ``None`` when not given.
    timestamp : str
        UTC ISO 8601; empty = filled in by :func:`append_rating` when the row is written.
    """

    study: str
    rater: str
    query_id: str
    candidate_id: str
    broad: int
    fine: float | None = None
    comment: str = ""
    timestamp: str = ""
    app_version: str = __version__

    def as_dict(self) -> dict:
        """JSON-ready dict, keys as in :data:`RATING_COLUMNS`."""
        return asdict(self)


@dataclass
class RatingsLog:
    """What :func:`load_ratings` read.

    Attributes
    ----------
    events : pandas.DataFrame [shape=(n_events, 10)]
        :data:`RATING_COLUMNS` plus ``line`` (1-based line in the file where the row starts),
        in file order; ``broad`` int64, ``fine`` float64 (NaN when empty).
    problems : list of str
        One message per skipped row: "ratings.csv line N: <what is wrong> — skipped; <fix>".
    warnings : list of str
        What was read but is not used (columns songsim does not know), once per file.
    """

    events: pd.DataFrame
    problems: list[str]
    warnings: list[str] = field(default_factory=list)


def ratings_path(catalogue_root: str | Path) -> Path:
    """``<catalogue>/ratings.csv``."""
    return Path(catalogue_root) / RATINGS_CSV


def validate_rating(rating: Rating, study: Study) -> Rating:
    """``rating`` checked against ``study``, rater stripped and fine normalised (NaN -> None).

    Raises
    ------
    StudyError
        The query is not in the study.
    RatingError
        Another study's rating, an empty rater, a candidate outside the query's pool, BROAD
        not 0/1/2, FINE outside 0–100, a comment that is not text, or a timestamp that is not
        ISO 8601 with a UTC offset.
    """
    if rating.study != study.name:
        raise RatingError(f"A rating of study {rating.study!r} cannot be checked against study {study.name!r}.")
    try:
        rater = check_rater_name(rating.rater)
    except StudyError as exc:
        raise RatingError(str(exc)) from None
    query = study.query(rating.query_id)
    if rating.candidate_id not in query.pool:
        raise RatingError(
            f"Candidate {rating.candidate_id!r} is not in the pool of query {rating.query_id!r} of study "
            f"{study.name!r}; its candidates are {', '.join(query.pool)}."
        )
    if isinstance(rating.broad, bool) or not isinstance(rating.broad, numbers.Integral) or rating.broad not in BROAD_SCALE:
        scale = ", ".join(f"{grade} ({meaning})" for grade, meaning in BROAD_SCALE.items())
        raise RatingError(f"BROAD {rating.broad!r} for {rating.query_id} → {rating.candidate_id}: use one of {scale}.")
    fine = rating.fine
    if fine is not None:
        low, high = FINE_RANGE
        if isinstance(fine, bool) or not isinstance(fine, numbers.Real) or not (math.isnan(fine) or low <= fine <= high):
            raise RatingError(
                f"FINE {fine!r} for {rating.query_id} → {rating.candidate_id}: give a number from {low:g} to {high:g}, or none."
            )
        fine = None if math.isnan(fine) else float(fine)
    if not isinstance(rating.comment, str):
        raise RatingError(f"The comment must be text, not {type(rating.comment).__name__}.")
    if rating.timestamp and _utc_offset(rating.timestamp) is None:
        raise RatingError(
            f"Timestamp {rating.timestamp!r} is not ISO 8601 with a UTC offset: write e.g. "
            f"2026-03-01T10:15:00+00:00, or leave it empty to stamp the rating now."
        )
    return replace(rating, rater=rater, broad=int(rating.broad), fine=fine)


def append_rating(catalogue_root: str | Path, rating: Rating, *, study: Study | None = None) -> Rating:
    """Validate ``rating`` and append it to ``<catalogue>/ratings.csv``; returns the stored row.

    Parameters
    ----------
    catalogue_root : str or Path
        The catalogue folder holding ``studies/`` and ``ratings.csv``.
    rating : Rating
        The rating; an empty ``timestamp`` is set to now (UTC).
    study : Study, optional
        The rating's study when the caller holds it (else it is loaded from its file).

    Raises
    ------
    StudyError, RatingError
        See :func:`validate_rating`; nothing is written.
    RatingsFormatError
        ``ratings.csv`` exists with another header.
    """
    study = study if study is not None else load_study(catalogue_root, rating.study)
    stored = validate_rating(rating, study)
    if not stored.timestamp:
        stored = replace(stored, timestamp=datetime.now(timezone.utc).isoformat(timespec="milliseconds"))
    path = ratings_path(catalogue_root)
    try:
        with FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT_S):
            _append_row(path, stored)
    except Timeout:
        raise RatingError(
            f"Another process has held {path}.lock for over {LOCK_TIMEOUT_S:.0f} s: the rating was not "
            f"stored; submit it again in a moment."
        ) from None
    except OSError as exc:
        raise RatingError(f"Could not write {path} ({exc}): the rating was not stored; free disk space or fix the permissions and submit it again.") from None
    return stored


def _csv_row(rating: Rating, columns: Sequence[str] = RATING_COLUMNS) -> bytes:
    """The rating as one CSV record (QUOTE_MINIMAL) with its values in ``columns`` order
    (a column songsim does not know stays empty), text through :func:`csv_safe`, ending in a
    line break, UTF-8."""
    buffer = io.StringIO()
    values = {f.name: csv_safe(getattr(rating, f.name)) for f in fields(rating)}
    values["fine"] = "" if rating.fine is None else repr(rating.fine)
    csv.writer(buffer, lineterminator="\n").writerow([values.get(c, "") for c in columns])
    return buffer.getvalue().encode()


def _append_row(path: Path, rating: Rating) -> None:
    """Append ``rating`` as one complete record to ``path``; the caller holds the lock.

    A new or empty file gets the header first. Otherwise the stored bytes are scanned: a file
    whose first line lacks a column of :data:`RATING_COLUMNS` is refused; the record follows
    the file's own column order; a torn last record is closed off first (an odd number of
    ``"`` means a quoted field is still open: ``"`` closes it; a missing final line break is
    added), so the record starts on its own line and parses on its own. Whatever is added
    goes out in the same single ``os.write`` as the record, then ``fsync``.
    """
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            data = _HEADER + _csv_row(rating)
        else:
            head, quotes, last = _scan(fd, size)
            first_line = head.decode("utf-8", "replace").removeprefix("\ufeff").splitlines()[0]
            columns = _header_columns(path, next(csv.reader([first_line]), []))
            prefix = (b'"' if quotes % 2 else b"") + (b"\n" if quotes % 2 or last != b"\n" else b"")
            data = prefix + _csv_row(rating, columns)
        written = 0
        while written < len(data):  # a regular file takes it whole unless the disk is full
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)


def _scan(fd: int, size: int) -> tuple[bytes, int, bytes]:
    """(first bytes of the file, number of ``"`` in its first ``size`` bytes, its last byte).

    Reads in chunks from the start (the write position of an ``O_APPEND`` descriptor is the
    end whatever the read position).
    """
    os.lseek(fd, 0, os.SEEK_SET)
    head, quotes, offset, last = b"", 0, 0, b""
    while offset < size:
        chunk = os.read(fd, min(_READ_CHUNK_BYTES, size - offset))
        if not chunk:
            break
        if offset == 0:
            head = chunk[:_HEAD_BYTES]
        quotes += chunk.count(b'"')
        offset += len(chunk)
        last = chunk[-1:]
    return head, quotes, last


def _header_columns(path: Path, record: list[str]) -> list[str]:
    """The column names of a parsed first record (stripped), in the file's order.

    Raises
    ------
    RatingsFormatError
        A column of :data:`RATING_COLUMNS` is missing or a name appears twice; the message
        names them and a fix that keeps every row.
    """
    columns = [c.strip() for c in record]
    missing = [c for c in RATING_COLUMNS if c not in columns]
    twice = sorted({c for c in columns if c and columns.count(c) > 1})
    if missing or twice:
        what = (f"lacks the column(s) {', '.join(missing)}" if missing else "") + (
            (" and " if missing else "") + f"names {', '.join(twice)} more than once" if twice else ""
        )
        found = ",".join(record)
        raise RatingsFormatError(
            f"{path}: its first line {what} (found {found[:160]!r}; songsim reads the columns "
            f"{', '.join(RATING_COLUMNS)} by name, in any order, and ignores others). Nothing was read or "
            f"appended: restore the header name(s) in the first line (the rows below stay as they are), or move the "
            f"file away to start a new log."
        )
    return columns


def _utc_offset(timestamp: str) -> object | None:
    """The UTC offset of an ISO 8601 timestamp, ``None`` when unreadable or naive."""
    try:
        return datetime.fromisoformat(timestamp).utcoffset()
    except (TypeError, ValueError):
        return None


class _Lines:
    """The file's lines (each with its ``\\n``) fed to :func:`csv.reader`, counting how many
    were consumed, so every record's first line is known and a bad record can be skipped."""

    def __init__(self, text: str) -> None:
        parts = text.split("\n")
        self.lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
        self.consumed = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.consumed >= len(self.lines):
            raise StopIteration
        self.consumed += 1
        return self.lines[self.consumed - 1]


def load_ratings(catalogue_root: str | Path, *, study: str | None = None) -> RatingsLog:
    """Read ``<catalogue>/ratings.csv``: every valid event, and a message per skipped row.

    Parameters
    ----------
    study : str, optional
        Keep only this study's events (problems are reported for the whole file).

    Returns
    -------
    RatingsLog
        Empty (no events, no problems) when the file does not exist yet.

    Raises
    ------
    RatingsFormatError
        The file does not start with the header :data:`RATING_COLUMNS`.
    """
    path = ratings_path(catalogue_root)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")
    except FileNotFoundError:
        text = ""
    lines = _Lines(text)
    reader = csv.reader(lines)
    rows: list[tuple] = []
    problems: list[str] = []
    warnings: list[str] = []
    columns: list[str] | None = None
    while True:
        start = lines.consumed + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(_problem(start, lines.consumed, f"unreadable CSV ({exc})", "fix or delete the line"))
            continue
        if not record:  # a blank line
            continue
        if columns is None:
            columns = _header_columns(path, record)
            unknown = [c or "(unnamed)" for c in columns if c not in RATING_COLUMNS]
            if unknown:
                warnings.append(
                    f"{RATINGS_CSV} has column(s) songsim does not use: {', '.join(unknown)}; they are kept "
                    f"in the file and ignored (new rows leave them empty)."
                )
            continue
        try:
            rows.append((*_parse_row(_by_name(record, columns)), start))
        except _BadRow as bad:
            problems.append(_problem(start, lines.consumed, *bad.args))
    events = pd.DataFrame(rows, columns=[*RATING_COLUMNS, "line"]).astype(_DTYPES)
    if study is not None:
        events = events[events["study"] == study].reset_index(drop=True)
    return RatingsLog(events=events, problems=problems, warnings=warnings)


def _problem(start: int, end: int, what: str, fix: str) -> str:
    span = f" (to line {end})" if end > start else ""
    return f"{RATINGS_CSV} line {start}{span}: {what} — skipped; {fix}"


class _BadRow(Exception):
    """A data record that is not a valid rating: args = (what is wrong, the fix)."""


def _by_name(record: list[str], columns: list[str]) -> list[str]:
    """A data record's fields in :data:`RATING_COLUMNS` order, picked by the header's names,
    text as written (:func:`csv_original`); :class:`_BadRow` when it has another number of
    fields than the header."""
    n = len(columns)
    if len(record) != n:
        if len(record) < n:
            raise _BadRow(
                f"{len(record)} of {n} fields (a partial row, e.g. left by a crash while writing)",
                "rate that pair again if its rating is missing",
            )
        raise _BadRow(f"{len(record)} fields, expected {n}", "fix the line (fields holding commas must be in double quotes)")
    position = {name: i for i, name in enumerate(columns)}
    return [csv_original(record[position[c]]) for c in RATING_COLUMNS]


def _parse_row(record: list[str]) -> tuple:
    """A data record's fields in :data:`RATING_COLUMNS` order as typed values (ids stripped,
    broad int, fine float or NaN); :class:`_BadRow` when it is not a valid rating."""
    timestamp, study, rater, query_id, candidate_id, broad, fine, comment, app_version = record
    key = (study.strip(), rater.strip(), query_id.strip(), candidate_id.strip())
    for column, value in zip(_KEY, key):
        if not value:
            raise _BadRow(f"empty {column}", f"fill in the {column} or delete the line")
    grade = _BROAD_TEXT.get(broad.strip())
    if grade is None:
        raise _BadRow(f"broad {broad!r} is not 0, 1 or 2", "correct it to a BROAD grade 0, 1 or 2")
    score = math.nan
    if fine.strip():
        try:
            score = float(fine)
        except ValueError:
            score = -1.0
        if not FINE_RANGE[0] <= score <= FINE_RANGE[1]:
            raise _BadRow(f"fine {fine!r} is not a number from 0 to 100", "correct it, or leave it empty")
    if _utc_offset(timestamp.strip()) is None:
        raise _BadRow(
            f"timestamp {timestamp!r} is not ISO 8601 with a UTC offset", "correct it (e.g. 2026-03-01T10:15:00+00:00)"
        )
    return (timestamp.strip(), *key, grade, score, comment, app_version)


def latest_ratings(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (study, rater, query_id, candidate_id): its last event in file order.

    A revision appends a new row; this is the rating that counts. ``events`` is
    :attr:`RatingsLog.events` (its row order is the file order).
    """
    return events.drop_duplicates(subset=_KEY, keep="last").reset_index(drop=True)
