"""ratings.csv: validated appends, round trip, revisions, concurrent writers, torn rows after a crash."""

from __future__ import annotations

import csv
import multiprocessing
import os
import re
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from songsim import __version__
from songsim.errors import RatingError, RatingsFormatError, StudyError
from songsim.studies.ratings import RATING_COLUMNS, Rating, append_rating, latest_ratings, load_ratings, ratings_path
from songsim.studies.study import Study, StudyQuery, load_study, save_study

HEADER = ",".join(RATING_COLUMNS) + "\n"
TRICKY_COMMENTS = ['plain', 'a, b', 'she said "yes"', 'two\nlines', 'crlf\r\nend', '"', 'ünïcødé — ok', ' padded ', '']


def save_pilot(folder: Path) -> Path:
    """Store one study ("pilot": 6 queries × pools of 4) in ``folder``; returns ``folder``."""
    queries = [StudyQuery(f"q{i}", {"a": [f"c{i}{j}" for j in range(4)]}, [f"c{i}{j}" for j in range(4)]) for i in range(6)]
    save_study(folder, Study("pilot", 4, ["a"], queries))
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A folder with the pilot study and no ratings yet."""
    return save_pilot(tmp_path)


@pytest.fixture
def memory_root(tmp_path: Path) -> Iterator[Path]:
    """Like :func:`root`, but in RAM (/dev/shm) where there is one: the 4 000-append test then
    measures locking and appending, not the disk's fsync latency (~4 ms here, serialised)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield save_pilot(tmp_path)
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="songsim-ratings-") as folder:
        yield save_pilot(Path(folder))


def pairs(study: Study) -> list[tuple[str, str]]:
    return [(q.query_id, c) for q in study.queries for c in q.pool]


def test_a_missing_file_is_an_empty_log(root):
    log = load_ratings(root)
    assert log.problems == [] and log.events.empty
    assert list(log.events.columns) == [*RATING_COLUMNS, "line"]


def test_ratings_round_trip_with_awkward_comments(root):
    written = [
        append_rating(root, Rating("pilot", f"rater {i % 2}", "q1", f"c1{i % 4}", broad=i % 3,
                                   fine=None if i % 2 else 12.5 * i, comment=comment))
        for i, comment in enumerate(TRICKY_COMMENTS)
    ]
    text = ratings_path(root).read_text(encoding="utf-8")
    assert text.startswith(HEADER)
    log = load_ratings(root)
    assert log.problems == []
    assert log.events["comment"].tolist() == TRICKY_COMMENTS
    assert log.events["broad"].tolist() == [r.broad for r in written]
    assert np.allclose(log.events["fine"], [np.nan if r.fine is None else r.fine for r in written], equal_nan=True)
    assert log.events["timestamp"].tolist() == [r.timestamp for r in written]
    assert all(r.timestamp.endswith("+00:00") for r in written)
    assert set(log.events["app_version"]) == {__version__}
    # line = where the row starts: the header is line 1, multi-line comments push later rows down
    expected, line = [], 2
    for comment in TRICKY_COMMENTS:
        expected.append(line)
        line += comment.count("\n") + 1
    assert log.events["line"].tolist() == expected
    assert list(csv.reader(text.splitlines(keepends=True)))[0] == list(RATING_COLUMNS)


def test_rater_is_stripped_and_study_filter(root, tmp_path):
    other = Study("other", 4, ["a"], [StudyQuery("q0", {"a": ["x"]}, ["x"])])
    save_study(root, other)
    stored = append_rating(root, Rating("pilot", "  ann  ", "q0", "c00", broad=2))
    append_rating(root, Rating("other", "ann", "q0", "x", broad=0))
    assert stored.rater == "ann"
    assert load_ratings(root, study="pilot").events["study"].tolist() == ["pilot"]
    assert load_ratings(root, study="other").events["candidate_id"].tolist() == ["x"]
    assert len(load_ratings(root).events) == 2


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"study": "nope"}, StudyError, r"No study 'nope' in .*: its studies are pilot"),
        ({"query_id": "q99"}, StudyError, r"Query 'q99' is not in study 'pilot'"),
        ({"candidate_id": "c20"}, RatingError, r"Candidate 'c20' is not in the pool of query 'q1' .* c10, c11, c12, c13"),
        ({"broad": 3}, RatingError, r"BROAD 3 .*: use one of 0 \(not similar\), 1 \(somewhat similar\), 2 \(very similar\)"),
        ({"broad": -1}, RatingError, r"BROAD -1"),
        ({"broad": 1.5}, RatingError, r"BROAD 1.5"),
        ({"broad": True}, RatingError, r"BROAD True"),
        ({"fine": 100.5}, RatingError, r"FINE 100.5 .*: give a number from 0 to 100, or none"),
        ({"fine": -1}, RatingError, r"FINE -1"),
        ({"fine": "50"}, RatingError, r"FINE '50'"),
        ({"rater": "  "}, RatingError, r"Rater name '  ' is not usable"),
        ({"comment": None}, RatingError, r"comment must be text"),
        ({"timestamp": "yesterday"}, RatingError, r"Timestamp 'yesterday' is not ISO 8601"),
        ({"timestamp": "2026-03-01T10:00:00"}, RatingError, r"with a UTC offset"),
    ],
)
def test_invalid_ratings_are_refused_and_nothing_is_written(root, change, error, message):
    append_rating(root, Rating("pilot", "ann", "q0", "c00", broad=1))
    before = ratings_path(root).read_bytes()
    rating = Rating(**{**dict(study="pilot", rater="ann", query_id="q1", candidate_id="c10", broad=1), **change})
    with pytest.raises(error, match=message):
        append_rating(root, rating)
    assert ratings_path(root).read_bytes() == before


def test_edge_values_are_accepted(root):
    study = load_study(root, "pilot")
    for broad, fine in ((0, 0.0), (2, 100.0), (np.int64(1), np.float64(33.3)), (1, float("nan"))):
        append_rating(root, Rating("pilot", "ann", "q2", "c21", broad=broad, fine=fine), study=study)
    events = load_ratings(root).events
    assert events["broad"].tolist() == [0, 2, 1, 1]
    assert np.allclose(events["fine"], [0.0, 100.0, 33.3, np.nan], equal_nan=True)


def test_a_revision_replaces_the_rating_and_keeps_the_history(root):
    append_rating(root, Rating("pilot", "ann", "q0", "c00", broad=0, comment="first"))
    append_rating(root, Rating("pilot", "bob", "q0", "c00", broad=1))
    append_rating(root, Rating("pilot", "ann", "q0", "c01", broad=1))
    append_rating(root, Rating("pilot", "ann", "q0", "c00", broad=2, fine=90.0, comment="second thoughts"))
    events = load_ratings(root).events
    assert len(events) == 4
    latest = latest_ratings(events)
    assert len(latest) == 3
    ann = latest[(latest["rater"] == "ann") & (latest["candidate_id"] == "c00")].iloc[0]
    assert (ann["broad"], ann["fine"], ann["comment"]) == (2, 90.0, "second thoughts")
    assert latest[latest["rater"] == "bob"]["broad"].tolist() == [1]


# --------------------------------------------------------------------------------------------
# reliability: concurrent writers, torn rows

WRITERS = 8
PER_WRITER = 500


def _writer(root: Path, writer: int, start_at: float) -> None:
    study = load_study(root, "pilot")
    every = pairs(study)
    while time.time() < start_at:  # start together, so the appends really overlap
        time.sleep(0.001)
    for i in range(PER_WRITER):
        query_id, candidate = every[(writer * 7 + i) % len(every)]
        comment = f'w{writer} #{i}' + (', with "quotes"\nand a line break' if i % 5 == 0 else "")
        append_rating(root, Rating("pilot", f"writer-{writer}", query_id, candidate, broad=i % 3, fine=float(i % 101),
                                   comment=comment), study=study)


def test_concurrent_writers_lose_and_interleave_nothing(memory_root):
    root = memory_root
    context = multiprocessing.get_context("fork")
    start_at = time.time() + 0.5
    workers = [context.Process(target=_writer, args=(root, w, start_at)) for w in range(WRITERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    log = load_ratings(root)
    assert log.problems == []
    events = log.events
    assert len(events) == WRITERS * PER_WRITER
    seen = set()
    for rater, comment, broad, fine in zip(events["rater"], events["comment"], events["broad"], events["fine"]):
        writer, number = comment.split(",")[0].split(" #")
        i = int(number)
        assert rater == f"writer-{writer[1:]}" and broad == i % 3 and fine == i % 101
        assert comment.endswith('"quotes"\nand a line break') == (i % 5 == 0)
        seen.add((writer, i))
    assert len(seen) == WRITERS * PER_WRITER
    for writer in range(WRITERS):  # each writer's rows are in its own order
        numbers = [int(c.split(",")[0].split("#")[1]) for c in events["comment"] if c.startswith(f"w{writer} #")]
        assert numbers == list(range(PER_WRITER))
    text = ratings_path(root).read_text(encoding="utf-8")
    assert text.count(HEADER) == 1 and text.endswith("\n")


def _crash_mid_write(root: Path, rating: Rating, cut_after: bytes) -> None:
    """Append ``rating``, but die once the write has put its bytes up to ``cut_after`` in the file
    (a forked child: patching ``os.write`` affects no other test)."""
    real_write = os.write

    def torn_write(fd: int, data: bytes) -> int:
        real_write(fd, data[: data.index(cut_after) + len(cut_after)])
        os._exit(9)

    os.write = torn_write
    append_rating(root, rating)


@pytest.mark.parametrize(
    ("comment", "cut_after"),
    [
        ("no quotes", ",pilot,ann,q3"),  # torn inside an unquoted field
        ('quoted, with\nline break', "with\n"),  # torn inside a quoted field, right after its line break
    ],
)
def test_a_writer_killed_mid_append_loses_nothing_before_and_the_next_row_is_intact(root, comment, cut_after):
    for i in range(3):
        append_rating(root, Rating("pilot", "ann", "q0", f"c0{i}", broad=i, comment=f"kept {i}"))
    before = ratings_path(root).read_bytes()
    torn = Rating("pilot", "ann", "q3", "c30", broad=2, fine=70.0, comment=comment, timestamp="2026-03-01T10:00:00+00:00")
    child = multiprocessing.get_context("fork").Process(target=_crash_mid_write, args=(root, torn, cut_after.encode()))
    child.start()
    child.join(60)
    assert child.exitcode == 9
    after_crash = ratings_path(root).read_bytes()
    tail = after_crash.removeprefix(before)  # a torn last row after every earlier one
    assert tail.startswith(b"2026-03-01T10:00:00+00:00,pilot,ann,q3") and tail.endswith(cut_after.encode())

    torn_line = before.decode().count("\n") + 1
    log = load_ratings(root)
    assert log.events["comment"].tolist() == ["kept 0", "kept 1", "kept 2"]
    assert len(log.problems) == 1 and log.problems[0].startswith(f"ratings.csv line {torn_line}")
    assert "partial row" in log.problems[0] and "skipped" in log.problems[0]

    append_rating(root, Rating("pilot", "bob", "q3", "c31", broad=1, comment="after, the \"crash\""))
    log = load_ratings(root)
    assert ratings_path(root).read_bytes().startswith(after_crash)  # nothing stored was rewritten
    assert log.events["comment"].tolist() == ["kept 0", "kept 1", "kept 2", 'after, the "crash"']
    assert len(log.problems) == 1 and log.problems[0].startswith(f"ratings.csv line {torn_line}")


def _append_forever(root: Path) -> None:
    study = load_study(root, "pilot")
    every = pairs(study)
    for i in range(10**9):
        append_rating(root, Rating("pilot", "loop", *every[i % len(every)], broad=i % 3, comment=f"row {i}, \"q\"\n"), study=study)


def test_sigkill_during_appends_keeps_every_finished_row(root):
    child = multiprocessing.get_context("fork").Process(target=_append_forever, args=(root,))
    child.start()
    deadline = time.time() + 30
    while time.time() < deadline and (not ratings_path(root).exists() or ratings_path(root).stat().st_size < 20_000):
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    log = load_ratings(root)
    numbers = [int(c.split(",")[0].removeprefix("row ")) for c in log.events["comment"]]
    assert numbers == list(range(len(numbers))) and len(numbers) > 50
    assert len(log.problems) <= 1  # at most the row being written when it died
    append_rating(root, Rating("pilot", "after", "q0", "c00", broad=1))
    assert load_ratings(root).events["rater"].tolist()[-1] == "after"


def test_bad_rows_are_reported_with_their_line_and_skipped(root):
    append_rating(root, Rating("pilot", "ann", "q0", "c00", broad=1))
    with ratings_path(root).open("a", encoding="utf-8", newline="") as handle:
        handle.write("2026-03-01T10:00:00+00:00,pilot,ann,q0,c01,7,,,0.1.0\n")
        handle.write("2026-03-01T10:00:00+00:00,pilot,ann,q0,c01,1,250,,0.1.0\n")
        handle.write("not a time,pilot,ann,q0,c01,1,,,0.1.0\n")
        handle.write("2026-03-01T10:00:00+00:00,pilot,,q0,c01,1,,,0.1.0\n")
        handle.write("2026-03-01T10:00:00+00:00,pilot,ann,q0,c01,1,,a,b,c,0.1.0\n")
    append_rating(root, Rating("pilot", "ann", "q0", "c02", broad=2))
    log = load_ratings(root)
    assert log.events["candidate_id"].tolist() == ["c00", "c02"] and log.events["line"].tolist() == [2, 8]
    assert [p.split(":")[0] for p in log.problems] == [f"ratings.csv line {n}" for n in range(3, 8)]
    for problem, what in zip(log.problems, ("broad '7'", "fine '250'", "timestamp 'not a time'", "empty rater", "11 fields")):
        assert what in problem and "— skipped;" in problem


def test_a_foreign_header_is_refused_by_reader_and_writer(root):
    path = ratings_path(root)
    path.write_text("when,who,what\n1,2,3\n")
    for action in (lambda: load_ratings(root), lambda: append_rating(root, Rating("pilot", "ann", "q0", "c00", broad=1))):
        with pytest.raises(RatingsFormatError, match=rf"{path}: its first line lacks the column\(s\) timestamp, study, rater") as refused:
            action()
        assert "the rows below stay as they are" in str(refused.value)
    assert path.read_text() == "when,who,what\n1,2,3\n"


def spreadsheet_log(root: Path, columns: list[str], rows: list[dict]) -> Path:
    """Write ``ratings.csv`` as a spreadsheet would re-save it: ``columns`` in that order."""
    path = ratings_path(root)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_log_with_an_added_column_is_read_and_appended_in_its_own_order(root):
    """Issue 13: a column added in a spreadsheet used to refuse the whole log (680 rows skipped)."""
    columns = ["note", *reversed(RATING_COLUMNS)]
    row = {"timestamp": "2026-03-01T10:00:00+00:00", "study": "pilot", "rater": "ann", "query_id": "q0",
           "candidate_id": "c00", "broad": "2", "fine": "75", "comment": "close", "app_version": "0.1.0", "note": "checked"}
    path = spreadsheet_log(root, columns, [row])
    log = load_ratings(root)
    assert log.problems == [] and len(log.warnings) == 1 and "note" in log.warnings[0]
    assert log.events[["rater", "candidate_id", "broad", "fine", "comment"]].values.tolist() == [["ann", "c00", 2, 75.0, "close"]]
    append_rating(root, Rating("pilot", "bob", "q0", "c01", broad=1, comment="ok"))
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(columns)  # the file keeps its header and its order
    appended = dict(zip(columns, next(csv.reader([lines[-1]]))))
    assert appended["note"] == "" and appended["rater"] == "bob" and appended["broad"] == "1"
    assert load_ratings(root).events["rater"].tolist() == ["ann", "bob"]


def test_a_log_lacking_a_column_names_it_and_keeps_every_row(root):
    columns = [c for c in RATING_COLUMNS if c != "fine"]
    path = spreadsheet_log(root, columns, [{"timestamp": "2026-03-01T10:00:00+00:00", "study": "pilot", "rater": "ann",
                                             "query_id": "q0", "candidate_id": "c00", "broad": "2", "comment": "",
                                             "app_version": "0.1.0"}])
    before = path.read_bytes()
    with pytest.raises(RatingsFormatError, match="lacks the column\\(s\\) fine") as refused:
        load_ratings(root)
    assert "move the file away" in str(refused.value) and "fix its first line" not in str(refused.value)
    with pytest.raises(RatingsFormatError):
        append_rating(root, Rating("pilot", "bob", "q0", "c01", broad=1))
    assert path.read_bytes() == before


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\",\"y\")", "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx", "'=x", "'tis"])
def test_no_rater_name_or_comment_is_stored_as_a_formula(root, text):
    """Issue 13: names and comments were written verbatim; a spreadsheet ran them."""
    rater = text if text.isprintable() else "ann"
    append_rating(root, Rating("pilot", rater, "q0", "c00", broad=1, comment=text))
    rows = list(csv.reader(ratings_path(root).open(newline="")))
    for cell in rows[1]:
        assert not cell or cell[0] not in "=+-@\t\r" or re.fullmatch(r"[+-]?\d+(\.\d*)?", cell), cell
    events = load_ratings(root).events
    assert events["comment"].tolist() == [text] and events["rater"].tolist() == [rater]  # the app shows what was written


def test_a_header_re_saved_with_a_bom_and_crlf_is_accepted(root):
    ratings_path(root).write_bytes(("\ufeff" + HEADER.replace("\n", "\r\n")).encode())
    append_rating(root, Rating("pilot", "ann", "q0", "c00", broad=1, comment="x"))
    assert load_ratings(root).events["comment"].tolist() == ["x"]
