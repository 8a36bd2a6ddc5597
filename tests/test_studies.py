"""Panel studies: stratified queries, pooled top-k with provenance, add-space, balanced blind queues."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from songsim.catalogue import load_catalogue
from songsim.errors import StudyError
from songsim.spaces.store import load_built_space
from songsim.studies.ratings import Rating, append_rating, latest_ratings, load_ratings
from songsim.studies.study import (
    QueueItem,
    Study,
    StudyQuery,
    add_space,
    assigned_pairs,
    create_study,
    join_panel,
    list_studies,
    load_study,
    progress,
    rater_queue,
    save_study,
    select_queries,
    study_path,
    study_summary,
)

GENRE_COUNT = 4


@pytest.fixture(scope="module")
def catalogue_dir(built_catalogue, tmp_path_factory) -> Path:
    """A private copy of the built catalogue: studies and ratings are written into it."""
    return Path(shutil.copytree(built_catalogue, tmp_path_factory.mktemp("studies") / "catalogue"))


@pytest.fixture(scope="module")
def trained_dir(trained_catalogue, tmp_path_factory) -> Path:
    """A private copy of the catalogue with trained spaces (wavenet among them)."""
    return Path(shutil.copytree(trained_catalogue, tmp_path_factory.mktemp("trained-studies") / "catalogue"))


@pytest.fixture(scope="module")
def unbuilt_dir(built_catalogue, tmp_path_factory) -> Path:
    """The same songs without genre labels and without any build."""
    root = tmp_path_factory.mktemp("plain")
    tracks = load_catalogue(built_catalogue).tracks[["track_id", "path", "artist"]]
    tracks.to_csv(root / "tracks.csv", index=False)
    return root


def synthetic_study(n_queries: int = 30, *, raters_per_pair: int = 2, panel_size: int = 3, seed: int = 0) -> Study:
    """A study over made-up ids: two spaces with overlapping runs, pools of 5–8."""
    queries = []
    for i in range(n_queries):
        run_a = [f"t{i}-{j}" for j in range(5)]
        run_b = [f"t{i}-{j}" for j in range(i % 4, i % 4 + 5)]
        queries.append(StudyQuery(f"q{i:02d}", {"a": run_a, "b": run_b}, list(dict.fromkeys(run_a + run_b))))
    return Study("synthetic", 5, ["a", "b"], queries, seed=seed, raters_per_pair=raters_per_pair, panel_size=panel_size)


# --------------------------------------------------------------------------------------------
# query selection


@pytest.mark.parametrize("n", [1, 4, 10, 13, 24])
def test_queries_are_stratified_by_genre(catalogue_dir, n):
    catalogue = load_catalogue(catalogue_dir)
    ids = select_queries(catalogue, n, seed=3)
    assert len(ids) == len(set(ids)) == n
    genre_of = dict(zip(catalogue.track_ids, catalogue.labels("genre")))
    counts = Counter(genre_of[i] for i in ids)
    assert all(counts[g] in (n // GENRE_COUNT, math.ceil(n / GENRE_COUNT)) for g in set(genre_of.values()))
    assert select_queries(catalogue, n, seed=3) == ids


def test_query_draw_depends_on_the_seed_and_works_without_genres(catalogue_dir, unbuilt_dir):
    catalogue = load_catalogue(catalogue_dir)
    assert select_queries(catalogue, 8, seed=0) != select_queries(catalogue, 8, seed=1)
    plain = load_catalogue(unbuilt_dir)
    ids = select_queries(plain, 7, seed=5)
    assert len(set(ids)) == 7 and set(ids) <= set(plain.track_ids)
    assert select_queries(plain, 7, seed=5) == ids
    with pytest.raises(StudyError, match=r"Cannot draw 25 queries from the 24 tracks"):
        select_queries(plain, 25, seed=0)


# --------------------------------------------------------------------------------------------
# creation: runs, pools, provenance


def reference_top_k(catalogue, vectors: np.ndarray, row: int, k: int) -> list[str]:
    """Exact cosine top-k by brute force, query row and same-artist rows left out."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = unit @ unit[row]
    artists = catalogue.labels("artist")
    scores[artists == artists[row]] = -np.inf
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [catalogue.track_ids[i] for i in order[:k]]


def test_create_pools_the_runs_of_every_space(catalogue_dir):
    study = create_study(catalogue_dir, "pooled", ["handcrafted", "random"], n_queries=8, k=5, seed=1)
    catalogue = load_catalogue(catalogue_dir)
    vectors = {s: load_built_space(catalogue, s).vectors_ for s in study.spaces}
    artists = dict(zip(catalogue.track_ids, catalogue.labels("artist")))
    assert len(study.queries) == 8 and study.spaces == ["handcrafted", "random"]
    for query in study.queries:
        row = catalogue.row_of(query.query_id)
        for space in study.spaces:
            assert query.runs[space] == reference_top_k(catalogue, vectors[space], row, 5)
        assert query.pool == list(dict.fromkeys(query.runs["handcrafted"] + query.runs["random"]))
        assert query.query_id not in query.pool
        assert all(artists[c] != artists[query.query_id] for c in query.pool)
    assert study.n_pairs == sum(len(q.pool) for q in study.queries) > 8 * 5
    assert study.catalogue_fingerprint == catalogue.fingerprint()
    assert study.panel_size == study.raters_per_pair == 2


def test_artist_filter_off_keeps_the_artist_but_never_the_query(catalogue_dir):
    study = create_study(catalogue_dir, "no-filter", ["handcrafted"], n_queries=24, k=5, artist_filter=False)
    catalogue = load_catalogue(catalogue_dir)
    artists = dict(zip(catalogue.track_ids, catalogue.labels("artist")))
    assert all(q.query_id not in q.pool for q in study.queries)
    assert any(artists[c] == artists[q.query_id] for q in study.queries for c in q.pool)


def test_each_space_is_searched_with_its_own_similarity_by_default(trained_dir):
    picked = dict(query_ids=["pads-01", "bass-03", "drums-02"], k=5)
    own = create_study(trained_dir, "own-metric", ["handcrafted", "wavenet"], **picked)
    cosine = create_study(trained_dir, "all-cosine", ["handcrafted", "wavenet"], metric="cosine", **picked)
    euclidean = create_study(trained_dir, "all-euclidean", ["handcrafted", "wavenet"], metric="euclidean", **picked)
    assert own.metric == "own"
    for mine, handcrafted_like, wavenet_like in zip(own.queries, cosine.queries, euclidean.queries):
        assert mine.runs["handcrafted"] == handcrafted_like.runs["handcrafted"]  # cosine, its own
        assert mine.runs["wavenet"] == wavenet_like.runs["wavenet"]  # euclidean, its own
    assert any(c.runs["wavenet"] != e.runs["wavenet"] for c, e in zip(cosine.queries, euclidean.queries))


def test_study_file_round_trips(catalogue_dir):
    study = create_study(catalogue_dir, "round-trip", ["random"], query_ids=["pads-01", "bass-03"], k=3, seed=9,
                         raters_per_pair=2, panel_size=4, relevance_threshold=1.5, require_play=False, metric="euclidean")
    assert [q.query_id for q in study.queries] == ["pads-01", "bass-03"]
    loaded = load_study(catalogue_dir, "round-trip")
    assert loaded == study
    assert json.loads(study_path(catalogue_dir, "round-trip").read_text())["relevance_threshold"] == 1.5
    summary = study_summary(loaded)
    assert list(summary) == ["name", "k", "spaces", "queries"]
    assert summary["queries"][0] == {"query_id": "pads-01", "runs": {"random": study.queries[0].runs["random"]},
                                     "pool": study.queries[0].pool}
    assert "round-trip" in list_studies(catalogue_dir)


def test_add_space_pools_only_new_candidates_and_keeps_ratings(catalogue_dir):
    before = create_study(catalogue_dir, "incremental", ["handcrafted"], n_queries=6, k=5, raters_per_pair=2, panel_size=3)
    for rater in ("ann", "ben", "cy"):
        before = join_panel(catalogue_dir, "incremental", rater)
    assigned_before = {r: assigned_pairs(before, r) for r in before.raters}
    rated = [(q.query_id, c) for q in before.queries for c in q.pool[:2]]
    for query_id, candidate in rated:
        append_rating(catalogue_dir, Rating("incremental", "ann", query_id, candidate, broad=1))
    csv_before = (catalogue_dir / "ratings.csv").read_bytes()

    after, n_new = add_space(catalogue_dir, "incremental", "random")
    assert after.spaces == ["handcrafted", "random"] and after.raters == ["ann", "ben", "cy"]
    assert n_new == after.n_pairs - before.n_pairs > 0
    for old, new in zip(before.queries, after.queries):
        assert new.runs["handcrafted"] == old.runs["handcrafted"]
        assert new.pool[: len(old.pool)] == old.pool
        assert new.pool == list(dict.fromkeys(old.pool + new.runs["random"]))
    assert load_study(catalogue_dir, "incremental") == after
    assert (catalogue_dir / "ratings.csv").read_bytes() == csv_before
    latest = latest_ratings(load_ratings(catalogue_dir, study="incremental").events)
    assert set(zip(latest["query_id"], latest["candidate_id"])) == set(rated)
    for rater, pairs in assigned_before.items():  # work already handed out does not move
        assert set(pairs) <= set(assigned_pairs(after, rater))
    with pytest.raises(StudyError, match="already in study 'incremental'"):
        add_space(catalogue_dir, "incremental", "random")


def test_uploaded_queries_are_stored_embedded_and_re_embedded(catalogue_dir, make_tone):
    tone = make_tone("query-song.wav", f0_hz=330.0, duration_s=7.0)
    twin = catalogue_dir / "audio" / "drums-02.wav"  # identical audio to a catalogue track
    study = create_study(catalogue_dir, "uploads", ["handcrafted"], n_queries=0, k=4, upload_files=[tone, twin])
    assert len(study.queries) == 2
    catalogue = load_catalogue(catalogue_dir)
    for query in study.queries:
        assert query.query_id.startswith("upload:") and len(query.query_id) == len("upload:") + 16
        assert (catalogue_dir / query.audio).is_file()
        assert len(query.runs["handcrafted"]) == 4
    twin_query = study.queries[1]
    drums_artist = catalogue.track("drums-02")["artist"]
    assert "drums-02" not in twin_query.pool
    assert all(catalogue.track(c)["artist"] != drums_artist for c in twin_query.pool)
    # the same audio gives the same neighbours as the catalogue track itself
    reference = create_study(catalogue_dir, "uploads-ref", ["handcrafted"], query_ids=["drums-02"], k=4)
    assert twin_query.runs == reference.queries[0].runs

    after, n_new = add_space(catalogue_dir, "uploads", "random")
    assert all(len(q.runs["random"]) == 4 for q in after.queries)
    assert n_new == after.n_pairs - study.n_pairs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spaces": ["nope"]}, r"Unknown space 'nope': choose from handcrafted, random"),
        ({"query_ids": ["pads-01", "no-such"]}, r"Unknown query id\(s\) 'no-such'"),
        ({"k": 0}, r"k = 0: give k ≥ 1"),
        ({"raters_per_pair": 3, "panel_size": 2}, r"3 raters per pair cannot come from a panel of 2"),
        ({"relevance_threshold": 3.0}, r"relevance threshold 3 is outside \(0, 2\]"),
        ({"n_queries": 40}, r"Cannot draw 40 queries from the 24 tracks"),
        ({"upload_files": ["missing.wav"]}, r"Upload missing.wav does not exist"),
        ({"spaces": []}, r"no space to compare"),
    ],
)
def test_create_errors_are_clear_and_write_nothing(catalogue_dir, kwargs, message):
    arguments = {"spaces": ["handcrafted"], **kwargs}
    with pytest.raises(StudyError, match=message):
        create_study(catalogue_dir, "bad-study", arguments.pop("spaces"), **arguments)
    assert not study_path(catalogue_dir, "bad-study").exists()


def test_create_refuses_an_existing_name_and_an_unbuilt_space(catalogue_dir, unbuilt_dir):
    create_study(catalogue_dir, "taken", ["random"], n_queries=2)
    with pytest.raises(StudyError, match=r"'taken' already exists .* study add-space"):
        create_study(catalogue_dir, "taken", ["handcrafted"], n_queries=2)
    with pytest.raises(StudyError, match=rf"not built in {unbuilt_dir}: run `python -m songsim build {unbuilt_dir} --spaces handcrafted`"):
        create_study(unbuilt_dir, "fresh", ["handcrafted"], n_queries=2)
    with pytest.raises(StudyError, match="Study name '../escape' is not usable"):
        create_study(catalogue_dir, "../escape", ["random"])


def test_load_errors_name_the_studies_and_the_file(catalogue_dir, tmp_path):
    with pytest.raises(StudyError, match=r"No study 'absent' in .*: it has no study yet"):
        load_study(tmp_path, "absent")
    save_study(tmp_path, synthetic_study())
    with pytest.raises(StudyError, match=r"its studies are synthetic"):
        load_study(tmp_path, "absent")
    study_path(tmp_path, "broken").write_text('{"name": "broken", "k": ')
    with pytest.raises(StudyError, match=r"broken\.json is not a readable study file"):
        load_study(tmp_path, "broken")


# --------------------------------------------------------------------------------------------
# panel: joining, balanced assignment, blind per-rater queues


def _join(root: Path, rater: str) -> None:
    join_panel(root, "synthetic", rater)


def test_concurrent_joins_keep_every_rater(tmp_path):
    save_study(tmp_path, synthetic_study())
    names = [f"rater-{i}" for i in range(8)]
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_join, args=(tmp_path, name)) for name in names]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert sorted(load_study(tmp_path, "synthetic").raters) == names


def test_rater_names_are_validated_and_stripped(tmp_path):
    save_study(tmp_path, synthetic_study())
    assert join_panel(tmp_path, "synthetic", "  Ann ").raters == ["Ann"]
    FileLock(f"{study_path(tmp_path, 'synthetic')}.lock", timeout=0).acquire().lock.release()  # released after the join
    assert join_panel(tmp_path, "synthetic", "Ann").raters == ["Ann"]
    for bad in ("", "   ", "tab\there", "x" * 65):
        with pytest.raises(StudyError, match="Rater name .* is not usable"):
            join_panel(tmp_path, "synthetic", bad)
    with pytest.raises(StudyError, match="No study 'other'"):
        join_panel(tmp_path, "other", "Ann")


def test_panel_of_three_with_two_raters_per_pair_splits_the_work():
    study = synthetic_study(raters_per_pair=2, panel_size=3)
    study.raters = ["a", "b", "c"]
    assigned = {r: assigned_pairs(study, r) for r in study.raters}
    coverage = Counter(pair for pairs in assigned.values() for pair in pairs)
    every_pair = {(q.query_id, c) for q in study.queries for c in q.pool}
    assert set(coverage) == every_pair and set(coverage.values()) == {2}
    totals = [len(p) for p in assigned.values()]
    assert max(totals) - min(totals) <= 1 and sum(totals) == 2 * study.n_pairs
    for query in study.queries:
        per_rater = [sum(q == query.query_id for q, _ in assigned[r]) for r in study.raters]
        assert max(per_rater) - min(per_rater) <= 1
    study.raters.append("d")  # a fourth rater shares the first slot
    assert assigned_pairs(study, "d") == assigned["a"]
    with pytest.raises(StudyError, match="'zed' has not joined study 'synthetic'"):
        assigned_pairs(study, "zed")


def test_everyone_rates_everything_when_the_panel_is_the_pair_count():
    study = synthetic_study(raters_per_pair=2, panel_size=2)
    study.raters = ["a", "b"]
    every_pair = {(q.query_id, c) for q in study.queries for c in q.pool}
    assert set(assigned_pairs(study, "a")) == set(assigned_pairs(study, "b")) == every_pair


def test_queues_are_blind_shuffled_per_rater_and_deterministic():
    study = synthetic_study(raters_per_pair=2, panel_size=2)
    study.raters = ["a", "b"]
    assert {f.name for f in fields(QueueItem)} == {"query_id", "candidates"}
    queue_a, queue_b = rater_queue(study, "a"), rater_queue(study, "b")
    assert rater_queue(study, "a") == queue_a
    assert [i.query_id for i in queue_a] != [i.query_id for i in queue_b]
    pools = {q.query_id: q.pool for q in study.queries}
    assert sorted((i.query_id, sorted(i.candidates)) for i in queue_a) == sorted((q, sorted(p)) for q, p in pools.items())
    assert sum(i.candidates != pools[i.query_id] for i in queue_a) > len(queue_a) // 2  # not in rank/pool order
    reseeded = synthetic_study(raters_per_pair=2, panel_size=2, seed=1)
    reseeded.raters = ["a", "b"]
    assert rater_queue(reseeded, "a") != queue_a


def test_assignment_and_order_are_the_same_in_another_process(tmp_path):
    study = synthetic_study()
    study.raters = ["a", "b", "c"]
    save_study(tmp_path, study)
    script = (
        "import json, sys; from songsim.studies.study import load_study, rater_queue; "
        "s = load_study(sys.argv[1], 'synthetic'); "
        "print(json.dumps([[i.query_id, i.candidates] for i in rater_queue(s, 'b')]))"
    )
    result = subprocess.run(  # another string-hash salt: nothing may depend on Python's hash()
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).parent.parent, env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [[i.query_id, i.candidates] for i in rater_queue(study, "b")]


def test_progress_follows_the_latest_ratings(tmp_path):
    study = synthetic_study(n_queries=4, raters_per_pair=2, panel_size=3)
    save_study(tmp_path, study)
    for rater in ("a", "b", "c"):
        study = join_panel(tmp_path, "synthetic", rater)
    queue = rater_queue(study, "a")
    order = [(item.query_id, c) for item in queue for c in item.candidates]

    def latest():
        return latest_ratings(load_ratings(tmp_path, study="synthetic").events)

    assert progress(study, "a", latest()) == (0, len(order))
    for query_id, candidate in order[:3]:
        append_rating(tmp_path, Rating("synthetic", "a", query_id, candidate, broad=2), study=study)
    unassigned = next((q.query_id, c) for q in study.queries for c in q.pool if (q.query_id, c) not in order)
    append_rating(tmp_path, Rating("synthetic", "a", *unassigned, broad=0), study=study)  # not in a's share
    append_rating(tmp_path, Rating("synthetic", "b", *order[3], broad=0), study=study)  # someone else's rating
    append_rating(tmp_path, Rating("synthetic", "a", *order[0], broad=0), study=study)  # a revision
    assert progress(study, "a", latest()) == (3, len(order))
    for pair in order[3:]:
        append_rating(tmp_path, Rating("synthetic", "a", *pair, broad=1), study=study)
    assert progress(study, "a", latest()) == (len(order), len(order))


def test_the_owners_overview_says_how_each_study_searched():
    from dataclasses import replace

    import pandas as pd

    from songsim.studies.panel import study_overview
    from songsim.studies.ratings import RATING_COLUMNS

    no_ratings = pd.DataFrame(columns=list(RATING_COLUMNS))
    assert study_overview(synthetic_study(), no_ratings)["similarity"] == "cosine"  # a study file from before "own"
    own = study_overview(replace(synthetic_study(), metric="own"), no_ratings)
    assert own["similarity"] == "each space's own" and own["judged"] == "0%"


def test_an_uploaded_query_too_long_is_refused_from_its_header_unread(catalogue_dir, tmp_path, monkeypatch):
    """Issue 13: a study upload was read whole before its length was checked."""
    import soundfile as sf

    from songsim.errors import AudioTooLongError

    long = tmp_path / "long.wav"  # 25 min at 8 kHz, 8-bit: over the 20-min limit
    sf.write(long, np.full(25 * 60 * 8_000, 0.5), 8_000, subtype="PCM_U8")

    def refuse(*args, **kwargs):
        raise AssertionError("read the audio before checking its header")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(AudioTooLongError, match="long.wav"):
        create_study(catalogue_dir, "too-long", ["handcrafted"], n_queries=0, k=4, upload_files=[long])
