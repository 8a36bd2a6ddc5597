"""songsim.studies.report, .statistics and .render: hand-computed figures, scikit-learn's
ndcg_score, the statistics (bootstrap, Friedman, Wilcoxon + Holm), agreement and its ceiling,
and the exports."""

import csv
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import ndcg_score

from songsim.errors import SongsimError
from songsim.files import csv_original
from songsim.metrics import krippendorff_alpha
from songsim.studies.render import bars_figure, format_text, heatmap_figure, write_html
from songsim.studies.report import compute_report, report_from
from songsim.studies.statistics import bootstrap_ci, holm_adjust
from songsim.studies.study import Study, StudyQuery

TOP_LEVEL = {"study", "spaces", "friedman", "pairwise", "agreement", "labels", "problems"}
LOG3 = math.log2(3)


def make_study(runs: dict[str, dict[str, list[str]]], *, k: int = 3, threshold: float = 1.0, name: str = "pilot") -> Study:
    """A study whose query ``q`` has ``runs[q]`` (space → candidates); pools are their union."""
    spaces = list(dict.fromkeys(s for query_runs in runs.values() for s in query_runs))
    queries = [
        StudyQuery(q, dict(query_runs), list(dict.fromkeys(c for run in query_runs.values() for c in run)))
        for q, query_runs in runs.items()
    ]
    return Study(name=name, k=k, spaces=spaces, queries=queries, relevance_threshold=threshold)


def make_latest(rows, *, study: str = "pilot") -> pd.DataFrame:
    """The latest-ratings table of ``rows`` = (rater, query, candidate, broad, fine or None)."""
    frame = pd.DataFrame(rows, columns=["rater", "query_id", "candidate_id", "broad", "fine"])
    frame["fine"] = frame["fine"].astype("float64")
    frame.insert(0, "study", study)
    return frame


# ------------------------------------------------------------------------------------------
# a hand-computed study: 2 spaces, one rated query (c5 unrated), one unrated query

HAND_RUNS = {"q1": {"A": ["c1", "c2", "c3"], "B": ["c4", "c1", "c5"]}, "q2": {"A": ["d1", "d2", "d3"], "B": ["d3", "d4", "d5"]}}
HAND_RATINGS = [
    ("r1", "q1", "c1", 2, 90), ("r2", "q1", "c1", 2, 80),  # rel 2,   fine 85
    ("r1", "q1", "c2", 1, 40), ("r2", "q1", "c2", 0, 20),  # rel 0.5, fine 30
    ("r1", "q1", "c3", 0, None), ("r2", "q1", "c3", 0, 10),  # rel 0, fine 10
    ("r1", "q1", "c4", 1, 60), ("r2", "q1", "c4", 2, 70),  # rel 1.5, fine 65
]


@pytest.fixture(scope="module")
def hand():
    return report_from(make_study(HAND_RUNS), make_latest(HAND_RATINGS), n_boot=200)


def g(rel):
    return 2.0**rel - 1.0


def test_hand_case_figures(hand):
    ideal = g(2) + g(1.5) / LOG3 + g(0.5) / 2  # all rated candidates of q1, sorted: 2, 1.5, 0.5, 0
    ideal_linear = 2 + 1.5 / LOG3 + 0.5 / 2
    a, b = hand.spaces["A"], hand.spaces["B"]
    assert a["ndcg@3"] == pytest.approx((g(2) + g(0.5) / LOG3) / ideal)
    assert b["ndcg@3"] == pytest.approx((g(1.5) + g(2) / LOG3 + 0) / ideal)  # c5 unrated: gain 0
    assert a["ndcg@1"] == pytest.approx(1.0)
    assert b["ndcg@1"] == pytest.approx(g(1.5) / g(2))
    assert a["ndcg_linear@3"] == pytest.approx((2 + 0.5 / LOG3) / ideal_linear)
    assert b["ndcg_linear@3"] == pytest.approx((1.5 + 2 / LOG3) / ideal_linear)
    # relevant (mean BROAD >= 1): c1, c4 -> R = 2
    assert a["map"] == pytest.approx(1 / 2) and a["p@3"] == pytest.approx(1 / 3)
    assert b["map"] == pytest.approx((1 + 1) / 2) and b["p@3"] == pytest.approx(2 / 3)
    assert a["fine"] == pytest.approx((85 + 30 + 10) / 3)
    assert b["fine"] == pytest.approx((65 + 85) / 2)
    assert a["judged@3"] == 1.0 and b["judged@3"] == pytest.approx(2 / 3)
    assert a["n_queries"] == dict.fromkeys(["ndcg@1", "ndcg@3", "ndcg_linear@3", "map", "p@3", "fine", "judged@3"], 1)
    assert a["ndcg@3_ci"] is None  # one query: no interval


def test_hand_case_unrated_query_is_left_out_and_said(hand):
    assert list(hand.per_query["query_id"].unique()) == ["q1"]
    assert any("1 of 2 queries have no rating" in p for p in hand.problems)


def test_hand_case_agreement(hand):
    agreement = hand.agreement
    assert agreement["n_raters"] == 2
    assert agreement["krippendorff_alpha"] == pytest.approx(krippendorff_alpha([[2, 1, 0, 1], [2, 0, 0, 2]]))
    assert agreement["alpha_n_pairs"] == 4
    assert agreement["fine_correlation"] == pytest.approx(np.corrcoef([90, 40, 60], [80, 20, 70])[0, 1])
    assert agreement["fine_correlation_n"] == 3 and agreement["fine_correlation_rater_pairs"] == 1
    # r1 lacks a FINE score, so ranks by BROAD [2, 1, 0, 1]: c1, then c2/c4 tied (mean gain of
    # r2's 0 and 2 -> (0 + 3) / 2 at ranks 2 and 3); r2 ranks by BROAD + FINE: c1, c4, c2, c3,
    # which is r1's BROAD [2, 1, 1, 0] in the ideal order
    r1 = (g(2) + 1.5 / LOG3 + 1.5 / 2) / (g(2) + g(2) / LOG3)
    r2 = 1.0
    assert agreement["ceiling_ndcg@3"] == pytest.approx((r1 + r2) / 2)
    assert hand.ceiling == agreement["ceiling_ndcg@3"]
    assert agreement["ceiling_n"] == 2
    raters = agreement["raters"]
    assert raters["r1"]["n_ratings"] == 4 and raters["r1"]["n_fine"] == 3
    assert raters["r1"]["mean_broad"] == pytest.approx(1.0) and raters["r1"]["mean_fine"] == pytest.approx(190 / 3)
    assert raters["r2"]["mean_fine"] == pytest.approx(45.0) and raters["r2"]["ceiling_ndcg@3"] == pytest.approx(r2)


# ------------------------------------------------------------------------------------------
# reference implementation and degenerate cases


@pytest.mark.parametrize("seed", range(4))
def test_linear_ndcg_matches_sklearn_when_the_whole_pool_is_rated(seed):
    rng = np.random.default_rng(seed)
    k, pool = 4, [f"c{i}" for i in range(9)]
    runs = {f"q{i}": {s: list(rng.choice(pool, k, replace=False)) for s in ("A", "B", "C")} for i in range(6)}
    study = make_study(runs, k=k)
    rows = [(r, q, c, int(rng.integers(0, 3)), None) for q in runs for c in study.query(q).pool for r in ("r1", "r2")]
    latest = make_latest(rows)
    report = report_from(study, latest, n_boot=50)
    assert len(report.per_query) == 18
    for _, row in report.per_query.iterrows():
        query = study.query(row["query_id"])
        rel = latest[latest.query_id == row["query_id"]].groupby("candidate_id")["broad"].mean()
        run = query.runs[row["space"]]
        y_true = [rel[c] for c in query.pool]
        y_score = [k - run.index(c) if c in run else 0 for c in query.pool]  # unranked: tied below rank k
        assert row["ndcg_linear@4"] == pytest.approx(ndcg_score([y_true], [y_score], k=k))


def test_unrated_candidates_count_as_irrelevant_and_lower_judged():
    runs = {"q1": {"A": ["a", "b", "c"], "B": ["a", "b", "x"]}}
    rated_everything = [("r1", "q1", c, 2, None) for c in ("a", "b", "c", "x")]
    x_unrated = [row for row in rated_everything if row[2] != "x"]
    full = report_from(make_study(runs), make_latest(rated_everything), n_boot=10)
    partial = report_from(make_study(runs), make_latest(x_unrated), n_boot=10)
    assert full.spaces["B"]["judged@3"] == 1.0 and partial.spaces["B"]["judged@3"] == pytest.approx(2 / 3)
    assert partial.spaces["B"]["ndcg@3"] < full.spaces["B"]["ndcg@3"] == 1.0
    assert partial.spaces["B"]["p@3"] == pytest.approx(2 / 3)
    assert partial.spaces["A"]["judged@3"] == 1.0


def test_ties_in_relevance_do_not_depend_on_order():
    runs = {"q1": {"A": ["a", "b", "c"], "B": ["b", "a", "c"]}}
    rows = [("r1", "q1", "a", 1, None), ("r1", "q1", "b", 1, None), ("r1", "q1", "c", 0, None)]
    report = report_from(make_study(runs), make_latest(rows), n_boot=10)
    for figure in ("ndcg@1", "ndcg@3", "map", "p@3"):
        assert report.spaces["A"][figure] == report.spaces["B"][figure]
    assert report.spaces["A"]["ndcg@3"] == 1.0
    assert report.pairwise["p"]["A"]["B"] == 1.0  # all-zero differences


def test_k_longer_than_the_runs():
    runs = {"q1": {"A": ["a", "b"], "B": ["c"]}}
    rows = [("r1", "q1", "a", 2, None), ("r1", "q1", "b", 1, None), ("r1", "q1", "c", 2, None)]
    report = report_from(make_study(runs, k=5), make_latest(rows), n_boot=10)
    a = report.spaces["A"]
    assert a["p@5"] == pytest.approx(2 / 5) and a["judged@5"] == 1.0
    assert a["ndcg@5"] == pytest.approx((g(2) + g(1) / LOG3) / (g(2) + g(2) / LOG3 + g(1) / 2))
    assert a["map"] == pytest.approx((1 + 1) / 3)  # R = 3 relevant in the pool, c never retrieved


def test_a_query_without_relevant_candidates_scores_zero_everywhere_and_is_said():
    runs = {"q1": {"A": ["a"], "B": ["b"]}, "q2": {"A": ["c"], "B": ["d"]}}
    rows = [("r1", "q1", "a", 2, None), ("r1", "q1", "b", 1, None), ("r1", "q2", "c", 0, None), ("r1", "q2", "d", 0, None)]
    report = report_from(make_study(runs, k=1), make_latest(rows), n_boot=10)
    zero = report.per_query[report.per_query.query_id == "q2"]
    assert (zero[["ndcg@1", "map", "p@1"]] == 0).all().all()
    assert any("no candidate with mean BROAD > 0" in p for p in report.problems)
    assert report.spaces["A"]["ndcg@1"] == pytest.approx(0.5)


def test_no_ratings_at_all_gives_an_empty_report():
    study = make_study(HAND_RUNS)
    report = report_from(study, make_latest([]), n_boot=10)
    assert report.spaces["A"]["ndcg@3"] is None and report.spaces["A"]["n_queries"]["ndcg@3"] == 0
    assert report.friedman["p"] is None and report.agreement["krippendorff_alpha"] is None
    assert "no rater" in report.agreement["reasons"]["krippendorff_alpha"]
    json.dumps(report.as_dict(), allow_nan=False)
    format_text(report)


def test_ratings_of_other_studies_and_outside_the_pools_are_left_out():
    rows = HAND_RATINGS + [("r1", "q1", "zz", 2, None)]
    latest = pd.concat([make_latest(rows), make_latest([("r1", "q1", "c5", 2, None)], study="other")])
    report = report_from(make_study(HAND_RUNS), latest, n_boot=10)
    assert report.spaces["B"]["judged@3"] == pytest.approx(2 / 3)  # the other study's c5 rating is not used
    assert any("1 rating(s) name a (query, candidate) pair outside" in p for p in report.problems)


def test_bad_ratings_tables_are_rejected():
    latest = make_latest(HAND_RATINGS)
    with pytest.raises(SongsimError, match="several rows"):
        report_from(make_study(HAND_RUNS), pd.concat([latest, latest]))
    with pytest.raises(SongsimError, match="lacks column"):
        report_from(make_study(HAND_RUNS), latest.drop(columns="fine"))


# ------------------------------------------------------------------------------------------
# a study with a clear winner: A's candidates are rated 2, C's 1, B's 0


def winner_inputs() -> tuple[Study, pd.DataFrame]:
    """12 queries, k = 3, disjoint candidates per space; two raters agree on BROAD."""
    n, k = 12, 3
    runs = {f"q{i}": {s: [f"{s}{i}-{j}" for j in range(k)] for s in ("A", "B", "C")} for i in range(n)}
    grade = {"A": 2, "B": 0, "C": 1}
    rows = [
        (r, q, c, grade[s], 45 * grade[s] + (5 if r == "r1" else 0))
        for q, query_runs in runs.items() for s, run in query_runs.items() for c in run for r in ("r1", "r2")
    ]
    return make_study(runs, k=k), make_latest(rows)


@pytest.fixture(scope="module")
def winner():
    return report_from(*winner_inputs(), n_boot=500, seed=1)


def test_the_winner_wins_significantly(winner):
    a, b, c = (winner.spaces[s] for s in "ABC")
    assert a["ndcg@3"] == 1.0 and b["ndcg@3"] == 0.0
    assert c["ndcg@3"] == pytest.approx((1 + 1 / LOG3 + 1 / 2) / (3 + 3 / LOG3 + 3 / 2))
    assert a["ndcg@3_ci"] == [1.0, 1.0]
    assert winner.friedman["p"] < 1e-4 and winner.friedman["n_queries"] == 12
    assert winner.friedman["mean_rank"] == {"A": 1.0, "B": 3.0, "C": 2.0}
    pairwise = winner.pairwise
    # 12 tied differences of one sign: the tie-corrected normal approximation, z = 39 / sqrt(126.75);
    # Holm over 3 equal p-values multiplies by 3
    assert pairwise["p"]["A"]["B"] == pytest.approx(2 * stats.norm.sf(39 / math.sqrt(126.75)))
    assert pairwise["p_holm"]["A"]["B"] == pytest.approx(3 * pairwise["p"]["A"]["B"])
    assert pairwise["mean_difference"]["A"]["B"] == 1.0 and pairwise["mean_difference"]["B"]["A"] == -1.0
    assert pairwise["n"]["A"]["C"] == 12 and pairwise["p"]["A"]["A"] is None
    assert winner.agreement["krippendorff_alpha"] == 1.0
    assert winner.agreement["fine_correlation"] == pytest.approx(1.0)


def test_json_shape(winner):
    payload = winner.as_dict()
    assert set(payload) == TOP_LEVEL
    assert payload["study"] == "pilot"
    assert list(payload["spaces"]) == ["A", "B", "C"]
    for summary in payload["spaces"].values():
        assert {"ndcg@1", "ndcg@3", "ndcg@3_ci", "ndcg_linear@3", "map", "p@3", "fine", "judged@3"} <= set(summary)
        low, high = summary["ndcg@3_ci"]
        assert low <= summary["ndcg@3"] <= high
    assert {"statistic", "p", "n_queries"} <= set(payload["friedman"])
    assert {"p", "p_holm", "mean_difference", "n"} <= set(payload["pairwise"])
    assert {"krippendorff_alpha", "fine_correlation", "ceiling_ndcg@3", "raters"} <= set(payload["agreement"])
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload


def test_two_spaces_skip_friedman_and_rely_on_the_pairwise_test():
    b_grades = [(0, 0), (1, 0), (1, 1), (2, 1)]  # mean BROAD 0, 0.5, 1, 1.5
    runs = {f"q{i}": {"A": [f"a{i}"], "B": [f"b{i}"]} for i in range(4)}
    rows = [(r, f"q{i}", f"a{i}", 2, None) for i in range(4) for r in ("r1", "r2")]
    rows += [(r, f"q{i}", f"b{i}", grades[j], None) for i, grades in enumerate(b_grades) for j, r in enumerate(("r1", "r2"))]
    report = report_from(make_study(runs, k=1), make_latest(rows), n_boot=50)
    assert report.friedman["p"] is None and "≥ 3 spaces" in report.friedman["reason"]
    differences = [1 - g((x + y) / 2) / g(2) for x, y in b_grades]  # 4 distinct: the exact test
    assert report.pairwise["mean_difference"]["A"]["B"] == pytest.approx(np.mean(differences))
    assert report.pairwise["p"]["A"]["B"] == pytest.approx(stats.wilcoxon(differences, method="exact").pvalue) == 2 / 2**4
    assert report.pairwise["p_holm"]["A"]["B"] == report.pairwise["p"]["A"]["B"]
    assert "Friedman test: not run" in format_text(report)


def test_single_rater_has_no_agreement():
    rows = [row for row in HAND_RATINGS if row[0] == "r1"]
    report = report_from(make_study(HAND_RUNS), make_latest(rows), n_boot=10)
    agreement = report.agreement
    for key in ("krippendorff_alpha", "fine_correlation", "ceiling_ndcg@3"):
        assert agreement[key] is None
        assert "only one rater (r1)" in agreement["reasons"][key]
    assert agreement["raters"]["r1"]["n_ratings"] == 4
    assert report.ceiling is None and not bars_figure(report).layout.shapes


def test_labels_beside_the_human_figures():
    study, latest = winner_inputs()
    labels = {
        "A": {"genre_p@3": 0.9, "ndcg@6": 0.8, "map": 0.7, "n_queries": {}},
        "B": {"genre_p@3": 0.2, "ndcg@6": 0.9, "map": 0.5},
        "C": {"genre_p@3": 0.5, "ndcg@6": 0.85, "map": 0.6},
    }
    report = report_from(study, latest, label_figures=labels, n_boot=10)
    spearman = report.labels["spearman"]
    assert set(spearman) == {"genre_p@3", "ndcg@6", "map"}
    assert spearman["genre_p@3"]["rho"] == pytest.approx(1.0) and spearman["genre_p@3"]["n"] == 3
    assert spearman["ndcg@6"]["rho"] == pytest.approx(-1.0)
    assert report.labels["figures"]["B"] == {"genre_p@3": 0.2, "ndcg@6": 0.9, "map": 0.5}
    assert list(report.labels_table.columns) == ["space", "genre_p@3", "ndcg@6", "map", "human_ndcg@3"]
    partial = report_from(study, latest, label_figures={**labels, "C": "space 'C' is not built"}, n_boot=10)
    assert partial.labels["spearman"]["genre_p@3"]["rho"] is None and partial.labels["spearman"]["genre_p@3"]["n"] == 2
    assert partial.labels["notes"] == ["C: no label-based figures (space 'C' is not built)."]
    assert report_from(study, latest, n_boot=10).labels["notes"] == ["label-based figures were not computed"]


# ------------------------------------------------------------------------------------------
# statistics


def test_bootstrap_ci_contains_the_mean_and_narrows_with_more_queries():
    rng = np.random.default_rng(0)
    values = rng.random(400)
    few_low, few_high = bootstrap_ci(values[:25], n_boot=2000, seed=0)
    many_low, many_high = bootstrap_ci(values, n_boot=2000, seed=0)
    assert few_low <= values[:25].mean() <= few_high
    assert many_low <= values.mean() <= many_high
    assert many_high - many_low < (few_high - few_low) / 2


def test_bootstrap_ci_agrees_with_scipy():
    values = np.random.default_rng(1).random(200)
    expected = stats.bootstrap((values,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(2))
    low, high = bootstrap_ci(values, n_boot=4000, seed=3)
    assert low == pytest.approx(expected.confidence_interval.low, abs=0.01)
    assert high == pytest.approx(expected.confidence_interval.high, abs=0.01)


def test_bootstrap_ci_columns_nan_and_degenerate_cases():
    values = np.array([[0.5, 1.0, np.nan], [0.5, 0.0, 2.0], [0.5, 1.0, np.nan], [0.5, 0.0, np.nan]])
    ci = bootstrap_ci(values, n_boot=300, seed=0)
    assert ci.shape == (3, 2)
    assert ci[0].tolist() == [0.5, 0.5]
    assert 0 <= ci[1, 0] <= 0.5 <= ci[1, 1] <= 1
    assert np.isnan(ci[2]).all()  # one value: no interval
    assert np.array_equal(ci, bootstrap_ci(values, n_boot=300, seed=0), equal_nan=True)
    assert np.isnan(bootstrap_ci(np.empty(0))).all()
    with pytest.raises(SongsimError, match="n_boot"):
        bootstrap_ci([1.0, 2.0], n_boot=0)
    with pytest.raises(SongsimError, match="level"):
        bootstrap_ci([1.0, 2.0], level=95)


def test_holm_hand_case():
    # sorted 0.005, 0.01, 0.03, 0.04 -> ×4, ×3, ×2, ×1 = 0.02, 0.03, 0.06, 0.04 -> running max
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.6]).tolist() == [1.0, 1.0]
    assert holm_adjust([0.2]).tolist() == [0.2]
    with pytest.raises(SongsimError, match="probabilities"):
        holm_adjust([1.5])


# ------------------------------------------------------------------------------------------
# exports and figures


def test_html_is_self_contained_and_complete(winner, tmp_path):
    path = write_html(winner, tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\ssrc\s*=", text, flags=re.IGNORECASE)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']https?:", text, flags=re.IGNORECASE)
    assert "Plotly.newPlot" in text and len(text) > 1_000_000  # plotly.js inlined
    for space in ("A", "B", "C"):
        assert f"<td>{space}</td>" in text
    for needle in ("Definitions", "2^rel_i − 1", "Holm", "Krippendorff", "relevance threshold θ", "ceiling_ndcg@3"):
        assert needle in text


def test_html_lists_the_problems(hand, tmp_path):
    text = write_html(hand, tmp_path / "hand.html").read_text(encoding="utf-8")
    assert "1 of 2 queries have no rating yet" in text


def test_write_csv_writes_every_table(winner, tmp_path):
    paths = winner.write_csv(tmp_path / "csv")
    assert sorted(p.name for p in paths) == sorted(f"{name}.csv" for name in winner.tables())
    spaces = pd.read_csv(tmp_path / "csv" / "spaces.csv")
    assert spaces["space"].tolist() == ["A", "B", "C"]
    assert {"ndcg@3", "ndcg@3_ci_low", "ndcg@3_ci_high", "ndcg@3_n"} <= set(spaces.columns)
    assert len(pd.read_csv(tmp_path / "csv" / "per_query.csv")) == 36
    assert len(pd.read_csv(tmp_path / "csv" / "pairwise.csv")) == 3


def test_no_cell_of_the_exported_tables_runs_as_a_formula(tmp_path):
    """Issue 13: the report's raters.csv held rater names verbatim (``=HYPERLINK(...)`` ran)."""
    evil = ['=HYPERLINK("http://evil","x")', "=cmd|' /C calc'!A0", "@SUM(1)", "+1+2"]
    rows = [(rater, "q1", c, (i + j) % 3, None) for i, rater in enumerate(evil) for j, c in enumerate(["c1", "c2", "c3", "c4"])]
    report = report_from(make_study(HAND_RUNS), make_latest(rows), n_boot=50)
    paths = report.write_csv(tmp_path / "csv")
    cells = [cell for path in paths for row in csv.reader(path.open(newline="")) for cell in row]
    assert cells and not [c for c in cells if c and c[0] in "=+-@\t\r" and not re.fullmatch(r"[+-]?[\d.]+(e[+-]?\d+)?", c)]
    raters = pd.read_csv(tmp_path / "csv" / "raters.csv")["rater"].map(csv_original).tolist()
    assert sorted(raters) == sorted(evil)  # the original names, once the escape is read back


def test_text_report(winner):
    text = format_text(winner)
    assert "Friedman test on ndcg@3" in text and "p < 0.001" in text
    assert "Krippendorff's α (ordinal, BROAD) = 1.000" in text
    assert "Definitions:" in text and "Problems: none." in text


def test_figures(winner, hand):
    bars = bars_figure(winner)
    assert list(bars.data[0].x) == ["A", "B", "C"]
    assert bars.layout.shapes[0].y0 == pytest.approx(winner.ceiling)
    assert list(bars_figure(winner, "map").data[0].y) == pytest.approx([winner.spaces[s]["map"] for s in "ABC"])
    heatmap = heatmap_figure(winner)
    assert np.asarray(heatmap.data[0].z).shape == (12, 3)
    assert list(heatmap.data[0].y) == [f"q{i}" for i in range(12)]
    assert np.isnan(np.asarray(bars_figure(hand).data[0].error_y.array, dtype=float)).all()  # one query: no CI


# ------------------------------------------------------------------------------------------
# from the catalogue folder


def test_compute_report_reads_the_study_and_the_ratings_log(tmp_path):
    from songsim.studies.ratings import Rating, append_rating, load_ratings, ratings_path
    from songsim.studies.study import save_study

    study = make_study(HAND_RUNS)
    save_study(tmp_path, study)
    for rater, query, candidate, broad, fine in HAND_RATINGS:
        append_rating(tmp_path, Rating("pilot", rater, query, candidate, broad, fine), study=study)
    with ratings_path(tmp_path).open("ab") as handle:
        handle.write(b"2026-03-01T10:15:02.123+00:00,pilot,r1,q1")  # a torn last line
    problems = load_ratings(tmp_path).problems
    assert problems
    report = compute_report(tmp_path, "pilot", n_boot=200)
    assert report.problems[: len(problems)] == problems
    assert report.as_dict()["spaces"] == report_from(study, make_latest(HAND_RATINGS), n_boot=200).as_dict()["spaces"]
    # no catalogue in tmp_path: the label-based figures are skipped with the reason
    assert [note.split(":")[0] for note in report.labels["notes"]] == ["A", "B"]
