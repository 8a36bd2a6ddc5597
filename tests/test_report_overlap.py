"""songsim.studies.report: top-n overlap and normalised edit distance against the panel's reference
list (hand-computed), and evaluate's album/artist figures in the label section."""

import json

import numpy as np
import pandas as pd
import pytest

from songsim.studies.render import (
    bars_figure,
    display_reference,
    display_spaces,
    format_text,
    formulas,
    heatmap_figure,
    summary_lines,
    write_html,
)
from songsim.studies.report import (
    REFERENCE_NS,
    figure_names,
    label_figure_names,
    lower_is_better,
    panel_reference,
    reference_figure_names,
    report_from,
)
from songsim.studies.statistics import bootstrap_ci
from songsim.studies.study import Study, StudyQuery


def make_study(runs: dict[str, dict[str, list[str]]], *, k: int = 3, threshold: float = 1.0) -> Study:
    """A study whose query ``q`` has ``runs[q]`` (space → candidates); pools are their union."""
    spaces = list(dict.fromkeys(s for query_runs in runs.values() for s in query_runs))
    queries = [
        StudyQuery(q, dict(query_runs), list(dict.fromkeys(c for run in query_runs.values() for c in run)))
        for q, query_runs in runs.items()
    ]
    return Study(name="pilot", k=k, spaces=spaces, queries=queries, relevance_threshold=threshold)


def make_latest(rows) -> pd.DataFrame:
    """The latest-ratings table of ``rows`` = (rater, query, candidate, broad, fine or None)."""
    frame = pd.DataFrame(rows, columns=["rater", "query_id", "candidate_id", "broad", "fine"])
    frame["fine"] = frame["fine"].astype("float64")
    frame.insert(0, "study", "pilot")
    return frame


def winner_inputs() -> tuple[Study, pd.DataFrame]:
    """6 queries, k = 3, disjoint candidates per space rated A 2, C 1, B 0: human NDCG@3 A > C > B."""
    runs = {f"q{i}": {s: [f"{s}{i}-{j}" for j in range(3)] for s in ("A", "B", "C")} for i in range(6)}
    grade = {"A": 2, "B": 0, "C": 1}
    rows = [("r1", q, c, grade[s], None) for q, query_runs in runs.items() for s, run in query_runs.items() for c in run]
    return make_study(runs), make_latest(rows)

# ------------------------------------------------------------------------------------------
# a hand-computed study: k = 5, threshold θ = 1, three spaces, three queries
#
# q1: reference list (mean BROAD ≥ 1, by BROAD, then FINE with none last, then id)
#     b (2, FINE 90), a (2, FINE 70), d (1.5, FINE 50), c (1.5, no FINE), e (1, none), f (1, none)
#     g (0.5) and h (0) are not relevant; x and y are unrated
# q2: nothing relevant (one candidate at 0.5): an empty reference list, left out
# q3: reference list [p]

RUNS = {
    "q1": {"A": ["b", "a", "d", "c", "e"], "B": ["a", "b", "d", "c", "x"], "C": ["g", "h", "e", "f", "y"]},
    "q2": {"A": ["s"], "B": ["t"], "C": ["s"]},
    "q3": {"A": ["p", "m1", "m2", "m3", "m4"], "B": ["m1", "m2", "m3", "m4", "m5"], "C": ["m1", "m2", "m3", "p", "m4"]},
}
RATINGS = [
    ("r1", "q1", "a", 2, 60), ("r2", "q1", "a", 2, 80),  # 2, FINE 70
    ("r1", "q1", "b", 2, 90), ("r2", "q1", "b", 2, None),  # 2, FINE 90
    ("r1", "q1", "c", 2, None), ("r2", "q1", "c", 1, None),  # 1.5, no FINE
    ("r1", "q1", "d", 1, 50), ("r2", "q1", "d", 2, None),  # 1.5, FINE 50
    ("r1", "q1", "f", 1, None), ("r2", "q1", "f", 1, None),  # 1, no FINE
    ("r1", "q1", "e", 1, None), ("r2", "q1", "e", 1, None),  # 1, no FINE (e before f by id)
    ("r1", "q1", "g", 1, 30), ("r2", "q1", "g", 0, 10),  # 0.5: not relevant
    ("r1", "q1", "h", 0, None),
    ("r1", "q2", "s", 1, None), ("r2", "q2", "s", 0, None),  # 0.5
    ("r1", "q2", "t", 0, None),
    ("r1", "q3", "p", 2, None), ("r1", "q3", "m1", 0, None),
]
#: space → figure → per-query value (q1, q3); q2 has none
EXPECTED = {
    "A": {"overlap@3": (1, 1), "edit_distance@3": (0, 0), "overlap@5": (1, 1), "edit_distance@5": (0, 0)},
    # q1: the first two swapped (overlap ignores it, edit distance pays 2), x instead of e at rank 5
    # q3: p missing: every overlap 0, and the first m = min(n, |ref| = 1, 5) = 1 items differ
    "B": {"overlap@3": (1, 0), "edit_distance@3": (2 / 3, 1), "overlap@5": (4 / 5, 0), "edit_distance@5": (3 / 5, 1)},
    # q1: only e, at rank 3, is in the reference top 5 (rank 5): nothing can stay in place
    # q3: p at rank 4: found in the top 5, but the edit distance compares the first m = 1 items only
    "C": {"overlap@3": (0, 0), "edit_distance@3": (1, 1), "overlap@5": (1 / 5, 1), "edit_distance@5": (1, 1)},
}


@pytest.fixture(scope="module")
def hand():
    return report_from(make_study(RUNS, k=5), make_latest(RATINGS), n_boot=300, seed=2)


def test_the_panel_reference_list_is_ordered_by_broad_then_fine_then_id():
    frame = make_latest(RATINGS)
    q1 = frame[frame.query_id == "q1"].groupby("candidate_id").agg(broad=("broad", "mean"), fine=("fine", "mean"))
    grades = q1["broad"].to_dict()
    fines = q1["fine"].dropna().to_dict()
    assert panel_reference(grades, fines, threshold=1.0) == ["b", "a", "d", "c", "e", "f"]
    assert panel_reference(grades, fines, threshold=2.0) == ["b", "a"]
    assert panel_reference({"z": 1.0, "y": 1.0, "w": 0.0}, {}, threshold=1.0) == ["y", "z"]
    assert panel_reference({"z": 0.5}, {}, threshold=1.0) == []
    # the order of the ratings does not matter
    reordered = dict(reversed(list(grades.items())))
    assert panel_reference(reordered, dict(reversed(list(fines.items()))), threshold=1.0) == ["b", "a", "d", "c", "e", "f"]


def test_names_follow_k_and_match_evaluate():
    from songsim.evaluate import LIST_FIGURES, OVERLAP_NS

    assert REFERENCE_NS == OVERLAP_NS
    assert reference_figure_names(10) == reference_figure_names(12) == list(LIST_FIGURES)
    assert reference_figure_names(5) == ["overlap@3", "overlap@5", "edit_distance@3", "edit_distance@5"]
    assert reference_figure_names(2) == []
    assert set(LIST_FIGURES) <= set(label_figure_names(5))
    assert not set(reference_figure_names(10)) & set(figure_names(10))  # tests and ceiling never see them
    assert [f for f in LIST_FIGURES if lower_is_better(f)] == ["edit_distance@3", "edit_distance@5", "edit_distance@10"]
    assert not any(lower_is_better(f) for f in figure_names(5))


def test_hand_case_per_query(hand):
    table = hand.per_query.set_index(["query_id", "space"])
    for space, figures in EXPECTED.items():
        for figure, (q1, q3) in figures.items():
            assert table.loc[("q1", space), figure] == pytest.approx(q1), (space, figure)
            assert table.loc[("q3", space), figure] == pytest.approx(q3), (space, figure)
            assert np.isnan(table.loc[("q2", space), figure])  # empty reference list: no value
    assert "overlap@10" not in hand.per_query.columns and "edit_distance@10" not in hand.per_query.columns


def test_hand_case_means_counts_and_cis(hand):
    for space, figures in EXPECTED.items():
        summary = hand.spaces[space]
        for figure, values in figures.items():
            assert summary[figure] == pytest.approx(np.mean(values)), (space, figure)
        assert summary["reference_n_queries"] == dict.fromkeys(reference_figure_names(5), 2)
        assert summary["n_queries"]["ndcg@5"] == summary["n_queries"]["map"] == 3  # q2 counts for NDCG (0 there)
        assert set(summary["n_queries"]) == set(figure_names(5))
        assert "overlap@10" not in summary and "edit_distance@10_ci" not in summary
    assert hand.spaces["A"]["overlap@3_ci"] == [1.0, 1.0] and hand.spaces["A"]["edit_distance@5_ci"] == [0.0, 0.0]
    # the same bootstrap as every other figure: the same resamples of the three queries, q2 left out
    for space in "BC":
        column = hand.per_query[hand.per_query.space == space]["edit_distance@3"].to_numpy()
        assert hand.spaces[space]["edit_distance@3_ci"] == pytest.approx(list(bootstrap_ci(column, n_boot=300, seed=2)))
    low, high = hand.spaces["B"]["overlap@5_ci"]
    assert low <= hand.spaces["B"]["overlap@5"] <= high


def test_empty_reference_lists_are_said(hand):
    (caveat,) = [p for p in hand.problems if "no candidate with mean BROAD ≥ 1" in p]
    assert caveat.startswith("1 rated query(ies)")
    assert "left out of overlap@3, overlap@5, edit_distance@3, edit_distance@5" in caveat


def test_tests_and_ceiling_stay_on_ndcg(hand):
    assert hand.friedman["metric"] == hand.pairwise["metric"] == "ndcg@5"
    assert set(hand.friedman["mean_rank"]) == {"A", "B", "C"}


def test_exports_carry_the_reference_figures(hand, tmp_path):
    payload = hand.as_dict()
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload
    assert payload["spaces"]["B"]["edit_distance@3"] == round(5 / 6, 4)
    assert payload["spaces"]["B"]["reference_n_queries"]["overlap@3"] == 2
    shown = display_reference(hand).set_index("space")
    assert list(shown.columns) == ["overlap@3", "overlap@5", "edit_distance@3 (↓ better)", "edit_distance@5 (↓ better)", "queries"]
    assert shown.loc["A", "overlap@3"] == "1.000 [1.000, 1.000]" and shown.loc["B", "queries"] == 2
    assert list(display_spaces(hand).columns) == ["space", *figure_names(5), "queries"]  # the human table is unchanged
    text = format_text(hand)
    assert "Against the panel's reference list" in text and "edit_distance@5 (↓ better)" in text
    names = dict(formulas(hand))
    assert {"panel reference", "overlap@n", "edit_distance@n"} <= set(names)
    assert "n = 3, 5" in names["panel reference"] and "Lower is better" in names["edit_distance@n"]
    html = write_html(hand, tmp_path / "hand.html").read_text(encoding="utf-8")
    assert "Against the panel&#x27;s reference list" in html and "edit_distance@3 (↓ better)" in html
    hand.write_csv(tmp_path / "csv")
    spaces = pd.read_csv(tmp_path / "csv" / "spaces.csv").set_index("space")
    assert spaces.loc["C", "overlap@5"] == pytest.approx(0.6) and spaces.loc["C", "overlap@5_n"] == 2
    assert {"edit_distance@3_ci_low", "edit_distance@3_ci_high"} <= set(spaces.columns)
    per_query = pd.read_csv(tmp_path / "csv" / "per_query.csv")
    assert per_query["overlap@3"].isna().sum() == 3  # q2, every space
    assert "lower is better" in bars_figure(hand, "edit_distance@3").layout.title.text
    assert heatmap_figure(hand, "edit_distance@3").data[0].colorscale != heatmap_figure(hand, "overlap@3").data[0].colorscale


def test_n_above_k_is_not_reported():
    runs = {"q1": {"A": ["a", "b"], "B": ["b", "c"]}}
    rows = [("r1", "q1", "a", 2, None), ("r1", "q1", "b", 2, None), ("r1", "q1", "c", 1, None)]
    report = report_from(make_study(runs, k=2), make_latest(rows), n_boot=10)
    assert report.reference_figures == [] and report.spaces["A"]["reference_n_queries"] == {}
    assert not any(c.startswith(("overlap@", "edit_distance@")) for c in report.per_query.columns)
    assert list(display_reference(report).columns) == ["space", "queries"]
    assert any("not reported" in line and "K is 2" in line for line in summary_lines(report))
    assert "Against the panel's reference list" not in format_text(report)
    ten = report_from(make_study({"q1": {"A": list("abcdefghij")}}, k=10), make_latest(rows), n_boot=10)
    assert ten.reference_figures == reference_figure_names(10) and ten.spaces["A"]["overlap@10"] == 1.0


def test_short_and_empty_runs():
    # k = 3 but B retrieved 2 and C none; the reference is [a, b, c]
    runs = {"q1": {"A": ["a", "b", "c"], "B": ["b", "a"], "C": []}}
    rows = [("r1", "q1", c, 2, fine) for c, fine in (("a", 90), ("b", 80), ("c", 70))]
    report = report_from(make_study(runs, k=3), make_latest(rows), n_boot=10)
    b, c = report.spaces["B"], report.spaces["C"]
    assert b["overlap@3"] == pytest.approx(2 / 3)  # a and b of the reference top 3
    assert b["edit_distance@3"] == 1.0  # m = min(3, 3, 2) = 2: [a, b] vs [b, a]
    assert c["overlap@3"] == 0.0 and c["edit_distance@3"] == 1.0
    assert report.spaces["A"]["overlap@3"] == 1.0 and report.spaces["A"]["edit_distance@3"] == 0.0


# ------------------------------------------------------------------------------------------
# the label section: evaluate's album/artist-reference figures beside the human ones


def test_label_overlap_and_edit_distance_beside_the_human_figures():
    study, latest = winner_inputs()  # human NDCG@3: A 1 > C > B 0
    labels = {
        "A": {"genre_p@3": 0.9, "overlap@3": 0.8, "edit_distance@3": 0.2, "overlap@10": 0.6, "edit_distance@10": 0.5},
        "B": {"genre_p@3": 0.2, "overlap@3": 0.1, "edit_distance@3": 0.9, "overlap@10": 0.1, "edit_distance@10": 0.9},
        "C": {"genre_p@3": 0.5, "overlap@3": 0.4, "edit_distance@3": 0.5, "overlap@10": 0.3, "edit_distance@10": 0.7},
    }
    report = report_from(study, latest, label_figures=labels, n_boot=10)
    spearman = report.labels["spearman"]
    assert set(spearman) == {"genre_p@3", "overlap@3", "edit_distance@3", "overlap@10", "edit_distance@10"}
    assert spearman["overlap@3"]["rho"] == pytest.approx(1.0) and not spearman["overlap@3"]["lower_is_better"]
    # a lower-is-better figure that agrees with the listeners: plain ρ = −1, flagged
    assert spearman["edit_distance@3"]["rho"] == pytest.approx(-1.0) and spearman["edit_distance@3"]["lower_is_better"]
    assert list(report.labels_table.columns) == [
        "space", "genre_p@3", "overlap@3", "overlap@10", "edit_distance@3", "edit_distance@10", "human_ndcg@3"
    ]
    lines = [line for line in summary_lines(report) if "edit_distance@3" in line]
    assert lines and "lower is better" in lines[0] and "ρ < 0" in lines[0]
    assert not any("lower is better" in line for line in summary_lines(report) if "(overlap@3" in line)
    assert "ρ < 0" in dict(formulas(report))["labels"]


def test_label_correlations_that_cannot_be_computed_are_explained_once():
    study, latest = winner_inputs()
    labels = {  # only two spaces have label figures: no rank correlation is possible
        "A": {"genre_p@3": 0.9, "overlap@3": 0.8, "edit_distance@3": 0.2},
        "B": {"genre_p@3": 0.2, "overlap@3": 0.1, "edit_distance@3": 0.9},
    }
    report = report_from(study, latest, label_figures=labels, n_boot=10)
    spearman_lines = [line for line in summary_lines(report) if line.startswith("Spearman")]
    assert len(spearman_lines) == 1
    assert "genre_p@3, overlap@3, edit_distance@3" in spearman_lines[0]
    assert "a rank correlation needs ≥ 3 spaces" in spearman_lines[0]
