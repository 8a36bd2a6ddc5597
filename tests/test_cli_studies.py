"""python -m songsim study / rate: the documented output, and errors as one line on stderr (exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from songsim.cli import main
from songsim.studies.ratings import load_ratings
from songsim.studies.study import list_studies


@pytest.fixture(scope="module")
def catalogue_dir(built_catalogue, tmp_path_factory) -> Path:
    """A private copy of the built catalogue: studies and ratings are written into it."""
    return Path(shutil.copytree(built_catalogue, tmp_path_factory.mktemp("cli-studies") / "catalogue"))


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_create_show_add_space_and_list(catalogue_dir, capsys):
    code, out, err = run(capsys, "study", "create", catalogue_dir, "--name", "cli-pilot", "--spaces", "handcrafted",
                         "--queries", "8", "--k", "4", "--seed", "2", "--raters-per-pair", "2", "--panel-size", "3")
    assert code == 0, err
    assert out.startswith("study cli-pilot: 1 space(s) (handcrafted), k=4") and "8 queries" in out

    code, out, err = run(capsys, "study", "show", catalogue_dir, "--name", "cli-pilot", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert list(shown) == ["name", "k", "spaces", "queries"]
    assert (shown["name"], shown["k"], shown["spaces"]) == ("cli-pilot", 4, ["handcrafted"])
    assert len(shown["queries"]) == 8
    for query in shown["queries"]:
        assert list(query) == ["query_id", "runs", "pool"]
        assert list(query["runs"]) == ["handcrafted"] and len(query["runs"]["handcrafted"]) == 4
        assert query["pool"] == query["runs"]["handcrafted"]

    code, out, err = run(capsys, "study", "add-space", catalogue_dir, "--name", "cli-pilot", "--space", "random")
    assert code == 0, err
    after = json.loads(run(capsys, "study", "show", catalogue_dir, "--name", "cli-pilot", "--json")[1])
    new_pairs = sum(len(a["pool"]) - len(b["pool"]) for a, b in zip(after["queries"], shown["queries"]))
    assert out.startswith(f"added random to study cli-pilot: {new_pairs} new pair(s) to judge")
    assert after["spaces"] == ["handcrafted", "random"]
    assert all(a["runs"]["handcrafted"] == b["runs"]["handcrafted"] for a, b in zip(after["queries"], shown["queries"]))

    code, out, _ = run(capsys, "study", "list", catalogue_dir)
    assert code == 0 and "cli-pilot" in out.split()
    code, out, err = run(capsys, "study", "show", catalogue_dir, "--name", "cli-pilot")
    assert code == 0 and "handcrafted 4, random 4" in out


def test_rate_appends_through_the_validated_path(catalogue_dir, capsys):
    run(capsys, "study", "create", catalogue_dir, "--name", "cli-rate", "--spaces", "random", "--query-ids", "pads-00,bass-01")
    pool = json.loads(run(capsys, "study", "show", catalogue_dir, "--name", "cli-rate", "--json")[1])["queries"][0]["pool"]
    code, out, err = run(capsys, "rate", catalogue_dir, "--study", "cli-rate", "--rater", "paper-form-3", "--query", "pads-00",
                         "--candidate", pool[0], "--broad", "2", "--fine", "85", "--comment", 'warm pad, "lush"')
    assert code == 0, err
    stored = json.loads(out)
    assert (stored["rater"], stored["broad"], stored["fine"], stored["comment"]) == ("paper-form-3", 2, 85.0, 'warm pad, "lush"')
    events = load_ratings(catalogue_dir, study="cli-rate").events
    assert events[["query_id", "candidate_id", "broad", "comment"]].values.tolist() == [["pads-00", pool[0], 2, 'warm pad, "lush"']]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rate", "{dir}", "--study", "cli-errors", "--rater", "r", "--query", "pads-00", "--candidate", "{c}", "--broad", "5"],
         "error: BROAD 5"),
        (["rate", "{dir}", "--study", "cli-errors", "--rater", "r", "--query", "pads-00", "--candidate", "pads-00", "--broad", "1"],
         "error: Candidate 'pads-00' is not in the pool"),
        (["rate", "{dir}", "--study", "missing", "--rater", "r", "--query", "q", "--candidate", "c", "--broad", "1"],
         "error: No study 'missing'"),
        (["study", "create", "{dir}", "--name", "cli-errors", "--spaces", "random"], "error: Study 'cli-errors' already exists"),
        (["study", "create", "{dir}", "--name", "other", "--spaces", "random,nope"], "error: Unknown space 'nope'"),
        (["study", "add-space", "{dir}", "--name", "cli-errors", "--space", "random"], "error: Space 'random' is already in study"),
        (["study", "show", "{dir}", "--name", "missing"], "error: No study 'missing'"),
    ],
)
def test_errors_are_one_line_on_stderr(catalogue_dir, capsys, args, message):
    if "cli-errors" not in list_studies(catalogue_dir):
        run(capsys, "study", "create", catalogue_dir, "--name", "cli-errors", "--spaces", "random", "--query-ids", "pads-00")
    pool = json.loads(run(capsys, "study", "show", catalogue_dir, "--name", "cli-errors", "--json")[1])["queries"][0]["pool"]
    before = load_ratings(catalogue_dir).events
    code, out, err = run(capsys, *[a.format(dir=catalogue_dir, c=pool[0]) for a in args])
    assert code == 2 and out == ""
    assert err.startswith(message) and "Traceback" not in err and err.count("\n") == 1
    assert len(load_ratings(catalogue_dir).events) == len(before)


def test_report_writes_every_export_and_warns_about_torn_rows(catalogue_dir, capsys, tmp_path):
    run(capsys, "study", "create", catalogue_dir, "--name", "cli-report", "--spaces", "handcrafted,random",
        "--query-ids", "pads-00,drums-01,bass-02", "--k", "3")
    study = json.loads(run(capsys, "study", "show", catalogue_dir, "--name", "cli-report", "--json")[1])
    for i, query in enumerate(study["queries"]):
        for j, candidate in enumerate(query["pool"]):
            for rater in ("ann", "ben"):
                code, _, err = run(capsys, "rate", catalogue_dir, "--study", "cli-report", "--rater", rater,
                                   "--query", query["query_id"], "--candidate", candidate, "--broad", str((i + j) % 3))
                assert code == 0, err
    with (catalogue_dir / "ratings.csv").open("a") as handle:
        handle.write("2026-03-01T10:00:00+00:00,cli-report,ann,pads")  # a row torn by a crash
    torn_line = (catalogue_dir / "ratings.csv").read_text().count("\n") + 1

    code, out, err = run(capsys, "report", catalogue_dir, "--study", "cli-report", "--json",
                         "--csv", tmp_path / "tables", "--html", tmp_path / "report.html")
    assert code == 1, err  # issue 13: figures that lack unreadable rows are not a success
    assert "error: 1 row(s) of" in err and "run report again" in err
    payload = json.loads(out)
    assert payload["study"] == "cli-report" and list(payload["spaces"]) == ["handcrafted", "random"]
    assert {"ndcg@1", "ndcg@3", "ndcg@3_ci", "map", "p@3", "judged@3"} <= set(payload["spaces"]["random"])
    assert f"warning: ratings.csv line {torn_line}: 4 of 9 fields" in err
    assert list((tmp_path / "tables").glob("*.csv")) and (tmp_path / "report.html").read_text().lstrip().startswith("<")

    code, out, _ = run(capsys, "report", catalogue_dir, "--study", "cli-report")
    assert code == 1 and "ndcg@3" in out.lower()  # the text report is printed all the same


def test_report_into_a_path_that_cannot_be_written_is_a_clear_error(catalogue_dir, capsys, tmp_path):
    """Issue 13: ``report --csv EXISTING_FILE`` ended in a FileExistsError traceback, exit 1."""
    run(capsys, "study", "create", catalogue_dir, "--name", "cli-unwritable", "--spaces", "handcrafted,random",
        "--query-ids", "pads-00", "--k", "2")
    a_file = tmp_path / "taken.txt"
    a_file.write_text("keep me\n")
    for option, target in (("--csv", a_file), ("--html", a_file / "report.html")):
        code, _, err = run(capsys, "report", catalogue_dir, "--study", "cli-unwritable", option, target)
        assert code == 2 and "Traceback" not in err, err
        error = err.splitlines()[-1]
        assert error.startswith(f"error: {a_file}") and ("choose" in error or "remove it" in error or "check the path" in error), err
    assert a_file.read_text() == "keep me\n"
