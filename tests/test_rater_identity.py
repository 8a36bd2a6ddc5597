"""Issue 13, problem 3: rater identity, invitations, slots held only by raters who rated, removal."""

from __future__ import annotations

import json

import pytest

from songsim.errors import StudyError
from songsim.studies.identity import (
    invite,
    load_identities,
    panel_table,
    raters_path,
    rating_link,
    register,
    remove_rater,
    revoke,
    verify,
)
from songsim.studies.panel import AttemptLimiter, open_session
from songsim.studies.ratings import latest_ratings, load_ratings
from songsim.studies.report import report_from
from songsim.studies.study import (
    Study,
    StudyQuery,
    assigned_pairs,
    list_studies,
    load_study,
    save_study,
    set_invitation_only,
)


def small_study(name: str = "pilot", *, n_queries: int = 6, pool: int = 4, raters_per_pair: int = 1, panel_size: int = 2) -> Study:
    queries = [
        StudyQuery(f"q{i}", {"a": [f"t{i}-{j}" for j in range(pool)]}, [f"t{i}-{j}" for j in range(pool)]) for i in range(n_queries)
    ]
    return Study(name, pool, ["a"], queries, raters_per_pair=raters_per_pair, panel_size=panel_size)


def every_pair(study: Study) -> set[tuple[str, str]]:
    return {(q.query_id, c) for q in study.queries for c in q.pool}


def rate_all(root, session, broad: int = 1) -> None:
    """Rate every pair of the session's queue through the page's path (the first save joins)."""
    pairs = [(item.query_id, c) for item in session.queue for c in item.candidates]
    for query_id, candidate in pairs:
        session.save(query_id, candidate, broad=broad)
    # the queue may grow by the first save: rate what the slot holds now
    for item in session.queue:
        for candidate in item.candidates:
            if (item.query_id, candidate) not in session.saved:
                session.save(item.query_id, candidate, broad=broad)


def test_a_name_cannot_be_taken_over_without_its_token(tmp_path):
    """Before: any session could open ?study=pilot&rater=alice and revise alice's ratings."""
    save_study(tmp_path, small_study())
    name, token = register(tmp_path, "pilot", "alice")
    assert name == "alice" and len(token) >= 40
    assert verify(tmp_path, "pilot", "alice", token) == "alice"
    assert verify(tmp_path, "pilot", "Alice ", token) == "alice"  # the same person, written differently
    for wrong in (None, "", "x" * len(token), token[:-1]):
        assert verify(tmp_path, "pilot", "alice", wrong) is None
    _, bob_token = register(tmp_path, "pilot", "bob")
    assert verify(tmp_path, "pilot", "alice", bob_token) is None  # one's own token opens no one else's name
    for taken in ("alice", "Alice ", "ALICE"):
        with pytest.raises(StudyError, match="already taken"):
            register(tmp_path, "pilot", taken)
    stored = raters_path(tmp_path, "pilot").read_text()
    assert token not in stored and json.loads(stored)["raters"]["alice"]["token_sha256"]
    assert list_studies(tmp_path) == ["pilot"]  # the raters file is not a study


def test_signing_in_without_rating_holds_no_slot_and_names_are_normalised(tmp_path):
    """Before: alice, 'Alice ' and bob with R=1, P=2 left 12 of 24 pairs with no real rater."""
    save_study(tmp_path, small_study())
    register(tmp_path, "pilot", "alice")
    with pytest.raises(StudyError, match="already taken"):
        register(tmp_path, "pilot", "Alice ")
    register(tmp_path, "pilot", "bob")
    register(tmp_path, "pilot", "carol")  # signs in, looks, rates nothing
    for name in ("alice", "bob", "carol"):
        open_session(tmp_path, "pilot", name)
    assert load_study(tmp_path, "pilot").raters == []  # nobody holds a slot by signing in

    for name in ("alice", "bob"):
        rate_all(tmp_path, open_session(tmp_path, "pilot", name))
    study = load_study(tmp_path, "pilot")
    assert study.raters == ["alice", "bob"]
    latest = latest_ratings(load_ratings(tmp_path, study="pilot").events)
    assert set(zip(latest["query_id"], latest["candidate_id"])) == every_pair(study)  # no pair without a real rater
    assert set(assigned_pairs(study, "alice")).isdisjoint(assigned_pairs(study, "bob"))


def test_invitation_only_refuses_self_registration_and_accepts_a_valid_link(tmp_path):
    save_study(tmp_path, small_study())
    set_invitation_only(tmp_path, "pilot", True)
    with pytest.raises(StudyError, match="by invitation only"):
        register(tmp_path, "pilot", "mallory")
    name, token = invite(tmp_path, "pilot", "Dana")
    assert verify(tmp_path, "pilot", "dana", token) == "Dana"
    assert rating_link("pilot", name, token, "http://10.0.0.2:8501/") == f"http://10.0.0.2:8501/rate?study=pilot&rater=Dana&token={token}"
    revoke(tmp_path, "pilot", "Dana")
    assert verify(tmp_path, "pilot", "Dana", token) is None  # a revoked link signs nobody in
    _, again = invite(tmp_path, "pilot", "dana")  # a new link for the same rater
    assert verify(tmp_path, "pilot", "Dana", again) == "Dana" and load_identities(tmp_path, "pilot")["dana"].name == "Dana"
    _, newer = invite(tmp_path, "pilot", "Dana")
    assert verify(tmp_path, "pilot", "Dana", again) is None and verify(tmp_path, "pilot", "Dana", newer) == "Dana"
    set_invitation_only(tmp_path, "pilot", False)
    assert register(tmp_path, "pilot", "eve")[0] == "eve"


def test_removing_a_rater_hands_their_unrated_pairs_to_the_others(tmp_path):
    save_study(tmp_path, small_study(raters_per_pair=1, panel_size=3))
    sessions = {}
    for name in ("ann", "ben", "cy"):
        register(tmp_path, "pilot", name)
        sessions[name] = session = open_session(tmp_path, "pilot", name)
        first = session.queue[0]
        session.save(first.query_id, first.candidates[0], broad=2)  # joins
    study = load_study(tmp_path, "pilot")
    assert study.raters == ["ann", "ben", "cy"]
    before = {r: assigned_pairs(study, r) for r in study.raters}
    cy_rated = {(sessions["cy"].queue[0].query_id, sessions["cy"].queue[0].candidates[0])}
    cy_unrated = [p for p in before["cy"] if p not in cy_rated]

    name, moved, short = remove_rater(tmp_path, "pilot", "cy", keep_ratings=True)
    assert (name, moved, short) == ("cy", len(cy_unrated), 0)
    after = load_study(tmp_path, "pilot")
    assert assigned_pairs(after, "cy") == []
    for rater in ("ann", "ben"):  # work already assigned never moves; the handed-over pairs come after it
        assert assigned_pairs(after, rater)[: len(before[rater])] == before[rater]
    handed = [p for r in ("ann", "ben") for p in assigned_pairs(after, r)[len(before[r]):]]
    assert sorted(handed) == sorted(cy_unrated)
    extra = [len(assigned_pairs(after, r)) - len(before[r]) for r in ("ann", "ben")]
    assert abs(extra[0] - extra[1]) <= 1  # shared evenly
    assert {p for r in ("ann", "ben") for p in assigned_pairs(after, r)} | cy_rated == every_pair(after)
    # the removed rater's link is dead, the name cannot come back
    assert verify(tmp_path, "pilot", "cy", "anything") is None
    with pytest.raises(StudyError, match="already taken"):
        register(tmp_path, "pilot", "cy")
    with pytest.raises(StudyError, match="removed"):
        invite(tmp_path, "pilot", "cy")
    with pytest.raises(Exception, match="removed"):
        open_session(tmp_path, "pilot", "cy")
    assert {row["rater"]: row["link"] for row in panel_table(tmp_path, "pilot")}["cy"] == "removed"


def test_a_removed_raters_ratings_are_left_out_of_the_report_by_default(tmp_path):
    study = small_study(n_queries=2, pool=2, raters_per_pair=2, panel_size=2)
    save_study(tmp_path, study)
    for name, broad in (("ann", 2), ("spam", 0)):
        register(tmp_path, "pilot", name)
        rate_all(tmp_path, open_session(tmp_path, "pilot", name), broad=broad)
    _, moved, short = remove_rater(tmp_path, "pilot", "spam")
    assert (moved, short) == (0, 4)  # ann already has every pair: nobody left to take them
    study = load_study(tmp_path, "pilot")
    latest = latest_ratings(load_ratings(tmp_path, study="pilot").events)
    assert set(latest["rater"]) == {"ann", "spam"}  # ratings.csv keeps them
    report = report_from(study, latest, n_boot=50)
    assert report.pairs["n_raters"].eq(1).all() and report.pairs["relevance"].eq(2).all()
    assert any("removed from the study by its owner" in p for p in report.problems)


def test_a_rater_who_rated_before_identities_existed_is_not_free_to_take(tmp_path):
    study = small_study()
    study.raters = ["legacy"]
    save_study(tmp_path, study)
    with pytest.raises(StudyError, match="already taken"):
        register(tmp_path, "pilot", "Legacy")
    name, token = invite(tmp_path, "pilot", "LEGACY")  # the owner gives them a link under their own name
    assert name == "legacy" and verify(tmp_path, "pilot", "legacy", token) == "legacy"


def test_token_attempts_are_rate_limited():
    limiter = AttemptLimiter(max_failures=5, window_s=60, lockout_s=30)
    for attempt in range(5):
        assert limiter.wait_s("10.0.0.9", now=float(attempt)) == 0
        limiter.failed("10.0.0.9", now=float(attempt))
    assert limiter.wait_s("10.0.0.9", now=5.0) == pytest.approx(29.0)
    assert limiter.wait_s("10.0.0.8", now=5.0) == 0


def test_the_cli_invites_removes_and_creates_invitation_only_studies(tmp_path, capsys):
    from songsim.cli import main

    save_study(tmp_path, small_study())
    assert main(["study", "invite", str(tmp_path), "--name", "pilot", "--rater", "fay", "--url", "http://host:8501"]) == 0
    link = capsys.readouterr().out.strip().splitlines()[-1]
    assert link.startswith("http://host:8501/rate?study=pilot&rater=fay&token=")
    assert verify(tmp_path, "pilot", "fay", link.rsplit("token=", 1)[1]) == "fay"
    assert main(["study", "access", str(tmp_path), "--name", "pilot", "--invitation-only"]) == 0
    assert load_study(tmp_path, "pilot").invitation_only
    assert main(["study", "remove-rater", str(tmp_path), "--name", "pilot", "--rater", "fay"]) == 0
    assert "removed fay" in capsys.readouterr().out
    assert verify(tmp_path, "pilot", "fay", link.rsplit("token=", 1)[1]) is None
    assert main(["study", "remove-rater", str(tmp_path), "--name", "pilot", "--rater", "nobody"]) == 2
    assert "has no rater 'nobody'" in capsys.readouterr().err


def _register_quietly(root, name: str, queue) -> None:
    try:
        queue.put(register(root, "pilot", name)[1])
    except StudyError:
        queue.put(None)


def test_concurrent_registrations_of_one_name_leave_one_owner(tmp_path):
    import multiprocessing

    save_study(tmp_path, small_study())
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    spellings = ["zoe", "Zoe", " ZOE", "zoe ", "zoE", "ZoE"]
    workers = [context.Process(target=_register_quietly, args=(tmp_path, name, results)) for name in spellings]
    for worker in workers:
        worker.start()
    tokens = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(60)
    won = [t for t in tokens if t]
    assert len(won) == 1 and verify(tmp_path, "pilot", "zoe", won[0]) is not None
    assert list(load_identities(tmp_path, "pilot")) == ["zoe"]
