"""Panel-study reports: what listeners heard, per space, with uncertainty and agreement.

A study (:mod:`songsim.studies`) records, per query, every compared space's top-k (its
*run*) and their pooled union; the ratings CSV (:mod:`songsim.ratings`) holds blind MIREX
judgements of (query, candidate) pairs: BROAD 0/1/2 and an optional FINE 0–100. This
module turns the two into a :class:`StudyReport`:

- **relevance** of a pair = the mean over raters of their latest BROAD (FINE likewise);
- per space and query: NDCG@1 and NDCG@K (gain ``2^rel − 1``, discount ``log2(rank + 1)``,
  ideal DCG over *every rated candidate of the query*, so all spaces share one ideal), the
  linear-gain NDCG@K, AP and P@K at the study's binary threshold (mean BROAD ≥ θ), the mean
  FINE of the top K and judged@K. A top-K candidate no one has rated counts as non-relevant
  (gain 0) and lowers judged@K;
- per space and query, against the *panel's reference list* (the query's candidates with
  mean BROAD ≥ θ, best first): top-n overlap and normalised edit distance of the space's run,
  n = 3, 5, 10 up to K (:func:`reference_figure_names`; the artist-similarity protocol of the
  siamese work, as in :mod:`songsim.evaluate`); a query with an empty reference list is left
  out of them;
- per space: the mean over the queries with at least one rating, with a 95 % percentile
  bootstrap CI over queries (:func:`bootstrap_ci`);
- a Friedman test across spaces and pairwise Wilcoxon signed-rank tests with Holm's
  correction (:func:`holm_adjust`) on the per-query NDCG@K;
- rater agreement: Krippendorff's alpha (ordinal, BROAD), the correlation of FINE scores,
  per-rater counts and means, and the *ceiling*: the NDCG@K that one rater's own ranking
  scores against the other raters' mean. A space near or above it predicts the panel as
  well as a listener does; differences between spaces up there are within rater
  disagreement (noise);
- the label-based figures of :mod:`songsim.evaluate` beside the human ones (its album/artist
  ``overlap@n`` and ``edit_distance@n`` included), with their Spearman correlation with human
  NDCG@K across spaces.

Edit distance is the one figure where lower is better (:func:`lower_is_better`); the tests
and the ceiling use NDCG@K only, so no ranking of spaces ever reads it the wrong way round.

Every formula, with the study's K and θ filled in, is in :meth:`StudyReport.formulas` and in
every export (text, HTML). Figures are unitless, in ``[0, 1]`` except FINE (0–100) and the
statistics. Nothing here imports streamlit: the report page draws :meth:`StudyReport.bars_figure`
and :meth:`StudyReport.heatmap_figure`.
"""

from __future__ import annotations

import html
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from songsim import __version__
from songsim.errors import SongsimError
from songsim.files import atomic_write
from songsim.metrics import (
    MetricWarning,
    average_precision,
    krippendorff_alpha,
    ndcg_at_k,
    ndcg_of_scores,
    normalised_edit_distance,
    precision_at_k,
    top_n_overlap,
)
from songsim.ratings import latest_ratings, load_ratings
from songsim.studies import OWN_METRIC, Study, load_study

__all__ = [
    "CI_LEVEL",
    "REFERENCE_NS",
    "REQUIRED_COLUMNS",
    "StudyReport",
    "figure_names",
    "reference_figure_names",
    "label_figure_names",
    "lower_is_better",
    "panel_reference",
    "bootstrap_ci",
    "holm_adjust",
    "report_from",
    "compute_report",
]

#: coverage of every confidence interval
CI_LEVEL = 0.95
#: columns :func:`report_from` needs in ``latest`` (one row per rater, query and candidate)
REQUIRED_COLUMNS = ("rater", "query_id", "candidate_id", "broad", "fine")
#: decimals of the JSON export
DECIMALS = 4
#: the Wilcoxon test uses its exact null distribution up to this many non-zero differences
#: (and none tied); scipy's default for tied small samples, a permutation test, takes seconds
_EXACT_WILCOXON_MAX_N = 50
#: FINE (0–100) divided by this breaks BROAD ties in the ceiling's ranking without
#: ever crossing a BROAD step (100 / 1000 < 1)
_FINE_TIE_SCALE = 1000.0
#: list lengths of the overlap / edit-distance figures: those of songsim.evaluate.OVERLAP_NS
#: (not imported: evaluate pulls in the feature/model stack), the siamese work's n = 3, 5, 10
REFERENCE_NS = (3, 5, 10)


def figure_names(k: int) -> list[str]:
    """The per-space human figures, in reporting order: ``ndcg@1``, ``ndcg@K``,
    ``ndcg_linear@K``, ``map``, ``p@K``, ``fine``, ``judged@K`` (K = ``k``; one ``ndcg@1``
    when ``k`` is 1). In per-query tables ``map`` holds the query's AP."""
    return list(dict.fromkeys(["ndcg@1", f"ndcg@{k}", f"ndcg_linear@{k}", "map", f"p@{k}", "fine", f"judged@{k}"]))


def reference_figure_names(k: int) -> list[str]:
    """The per-space figures against the panel's reference list (:func:`panel_reference`):
    ``overlap@n`` then ``edit_distance@n`` for each n of :data:`REFERENCE_NS` with n ≤ ``k``
    (a study's runs hold only K candidates); empty when ``k`` < 3.

    Kept apart from :func:`figure_names`: ``edit_distance@n`` is lower-is-better, and a
    query with an empty reference list has no value (while it has an NDCG of 0)."""
    ns = [n for n in REFERENCE_NS if n <= k]
    return [f"overlap@{n}" for n in ns] + [f"edit_distance@{n}" for n in ns]


def label_figure_names(k: int) -> list[str]:
    """The label-based figures of :func:`songsim.evaluate.evaluate_space` shown beside the
    human ones (those of a space's figures that exist), evaluate's album/artist-reference
    ``overlap@n`` and ``edit_distance@n`` at every n of :data:`REFERENCE_NS`: their
    reference lists come from the labels and run 10 deep whatever the study's K."""
    return [
        f"genre_p@{k}", f"genre_p@{k}_artist_filtered", f"emotion_p@{k}", "ndcg@6", "map", "pairwise_acc",
        *(f"overlap@{n}" for n in REFERENCE_NS), *(f"edit_distance@{n}" for n in REFERENCE_NS),
    ]


def lower_is_better(figure: str) -> bool:
    """Whether a smaller value of ``figure`` is the better one (edit and year distances)."""
    return figure.startswith(("edit_distance@", "year_distance@"))


# ----------------------------------------------------------------------------------------
# statistics
# ----------------------------------------------------------------------------------------
def bootstrap_ci(
    values: Sequence[float] | np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = CI_LEVEL
) -> np.ndarray:
    """Percentile bootstrap confidence interval of the mean over queries (rows).

    ``n_boot`` resamples of the ``n`` rows are drawn with replacement (the same resamples for
    every column, so columns stay paired); on each, every column's mean over its non-NaN
    rows is recomputed; the interval is the ``(1 − level)/2`` and ``(1 + level)/2``
    percentiles of those means (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993,
    §13.3). Vectorised: the resamples are an ``(n_boot, n)`` matrix of draw counts ``W``, and
    the means are ``(W @ x) / (W @ valid)``.

    Parameters
    ----------
    values : np.ndarray [shape=(n,) or (n, m)]
        One value per query (row), per figure (column); NaN where a query has no value.
    n_boot : int >= 1
        Resamples.
    seed : int
        Seed of the resampling.
    level : float in (0, 1)
        Coverage, e.g. 0.95.

    Returns
    -------
    np.ndarray [shape=(2,) or (m, 2)]
        ``[low, high]`` per column, in the values' units; NaN for a column with fewer than
        two values.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise SongsimError(f"values must be 1-D (n,) or 2-D (n, m); got shape {x.shape}.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise SongsimError(f"n_boot must be an integer >= 1; got {n_boot!r}.")
    if not 0 < level < 1:
        raise SongsimError(f"level must lie in (0, 1), e.g. 0.95; got {level!r}.")
    columns = x[:, None] if x.ndim == 1 else x
    n, m = columns.shape
    valid = ~np.isnan(columns)
    ci = np.full((m, 2), np.nan)
    usable = valid.sum(axis=0) >= 2
    if usable.any():
        draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
        counts = np.bincount((draws + n * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n)
        weights = counts.reshape(n_boot, n).astype(np.float64)
        kept, ok = columns[:, usable], valid[:, usable]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (weights @ np.where(ok, kept, 0.0)) / (weights @ ok)
        tail = 50.0 * (1.0 - level)
        ci[usable] = np.nanpercentile(means, [tail, 100.0 - tail], axis=0).T
    return ci[0] if x.ndim == 1 else ci


def holm_adjust(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of ``m`` p-values for the family-wise error rate.

    .. math:: \\tilde p_{(i)} = \\max_{j \\le i} \\min\\left(1, (m - j + 1) \\, p_{(j)}\\right)

    with ``p_(1) <= … <= p_(m)`` the sorted p-values (Holm, "A simple sequentially rejective
    multiple test procedure", Scand. J. Statist. 6, 1979).

    Parameters
    ----------
    p_values : np.ndarray [shape=(m,)]
        Raw p-values in ``[0, 1]``.

    Returns
    -------
    np.ndarray [shape=(m,)]
        Adjusted p-values, in the input order.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise SongsimError(f"p_values must be a 1-D array of probabilities in [0, 1]; got {p_values!r}.")
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def _friedman(matrix: pd.DataFrame, metric: str) -> dict[str, Any]:
    """Friedman test across the spaces (columns) of ``matrix`` (queries × spaces) on the
    queries every space has."""
    complete = matrix.dropna()
    result: dict[str, Any] = {
        "metric": metric,
        "test": "Friedman (scipy.stats.friedmanchisquare), chi-square with S − 1 degrees of freedom",
        "statistic": None,
        "p": None,
        "n_queries": int(len(complete)),
        "n_spaces": int(matrix.shape[1]),
        "mean_rank": None,
        "reason": None,
    }
    if matrix.shape[1] < 3:
        result["reason"] = f"the Friedman test needs ≥ 3 spaces; with {matrix.shape[1]}, read the pairwise test"
        return result
    if len(complete) < 2:
        result["reason"] = f"only {len(complete)} query(ies) have a value for every space; the test needs ≥ 2"
        return result
    ranks = stats.rankdata(-complete.to_numpy(), axis=1)
    result["mean_rank"] = dict(zip(matrix.columns, ranks.mean(axis=0).tolist()))
    if np.all(complete.to_numpy() == complete.to_numpy()[:, :1]):
        result.update(p=1.0, reason="every query ties every space: there is no difference to test")
        return result
    test = stats.friedmanchisquare(*complete.to_numpy().T)
    result.update(statistic=float(test.statistic), p=float(test.pvalue))
    return result


def _pairwise(matrix: pd.DataFrame, metric: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """Wilcoxon signed-rank test of every pair of spaces (columns of ``matrix``, queries ×
    spaces) on the queries both have, Holm-adjusted; returns (JSON section, long table)."""
    spaces = list(matrix.columns)
    rows = []
    for a, b in combinations(spaces, 2):
        both = matrix[[a, b]].dropna()
        difference = (both[a] - both[b]).to_numpy()
        nonzero = difference[difference != 0]
        if difference.size == 0:
            statistic, p = None, None
        elif nonzero.size == 0:
            statistic, p = 0.0, 1.0
        else:
            exact = nonzero.size <= _EXACT_WILCOXON_MAX_N and np.unique(np.abs(nonzero)).size == nonzero.size
            test = stats.wilcoxon(nonzero, method="exact" if exact else "approx")
            statistic, p = float(test.statistic), float(test.pvalue)
        mean = float(difference.mean()) if difference.size else None
        rows.append({"a": a, "b": b, "n": int(difference.size), "mean_difference": mean, "statistic": statistic, "p": p})
    table = pd.DataFrame(rows, columns=["a", "b", "n", "mean_difference", "statistic", "p", "p_holm"])
    tested = table["p"].notna()
    if tested.any():
        table.loc[tested, "p_holm"] = holm_adjust(table.loc[tested, "p"].to_numpy(dtype=np.float64))

    def matrix_of(column: str, *, antisymmetric: bool = False) -> dict[str, dict[str, Any]]:
        cells: dict[str, dict[str, Any]] = {a: {b: None for b in spaces} for a in spaces}
        for row in table.itertuples(index=False):
            value = getattr(row, column)
            value = None if pd.isna(value) else value
            cells[row.a][row.b] = value
            cells[row.b][row.a] = -value if antisymmetric and value is not None else value
        return cells

    section = {
        "metric": metric,
        "test": (
            f"Wilcoxon signed-rank, two-sided, zero differences dropped (all zero: p = 1); exact null distribution "
            f"for ≤ {_EXACT_WILCOXON_MAX_N} differences without ties, else the tie-corrected normal approximation"
        ),
        "correction": f"Holm over the {int(tested.sum())} tested pair(s)",
        "spaces": spaces,
        "p": matrix_of("p"),
        "p_holm": matrix_of("p_holm"),
        "mean_difference": matrix_of("mean_difference", antisymmetric=True),
        "n": matrix_of("n"),
    }
    return section, table


# ----------------------------------------------------------------------------------------
# per-query figures
# ----------------------------------------------------------------------------------------
def _run_figures(
    run: Sequence[str], grades: Mapping[str, float], fines: Mapping[str, float], ideal: np.ndarray, n_relevant: int,
    *, k: int, threshold: float,
) -> dict[str, float]:
    """Every figure of one space's run on one query (see :meth:`StudyReport.formulas`).

    ``grades``: mean BROAD of each rated candidate of the query; ``fines``: mean FINE of the
    rated candidates that have one; ``ideal``: every rated candidate's grade; ``n_relevant``:
    rated candidates with grade ≥ ``threshold``. Metric warnings must be silenced by the caller.
    """
    top = list(run[:k])
    rated = np.array([c in grades for c in top], dtype=bool)
    relevance = np.array([grades.get(c, 0.0) for c in top], dtype=np.float64)
    binary = (rated & (relevance >= threshold)).astype(np.float64)
    top_fines = [fines[c] for c in top if c in fines]
    return {
        "ndcg@1": ndcg_at_k(relevance, 1, ideal_relevance=ideal),
        f"ndcg@{k}": ndcg_at_k(relevance, k, ideal_relevance=ideal),
        f"ndcg_linear@{k}": ndcg_at_k(relevance, k, ideal_relevance=ideal, gain="linear"),
        "map": average_precision(binary, n_relevant=n_relevant),
        f"p@{k}": precision_at_k(binary, k),
        "fine": float(np.mean(top_fines)) if top_fines else np.nan,
        f"judged@{k}": float(rated.mean()) if top else np.nan,
    }


def panel_reference(grades: Mapping[str, float], fines: Mapping[str, float], *, threshold: float) -> list[str]:
    """A query's reference list from the panel: its candidates judged relevant, best first.

    Relevant = mean BROAD ≥ ``threshold`` (the binary relevance of MAP and P@K); ordered by
    mean BROAD descending, ties by mean FINE descending (candidates without one after those
    with one), then by candidate id, so the list never depends on the order of the ratings.

    Parameters
    ----------
    grades : mapping of str to float
        Mean BROAD (0–2) of each rated candidate of the query.
    fines : mapping of str to float
        Mean FINE (0–100) of the rated candidates that have one.
    threshold : float
        The study's θ, in mean-BROAD units.

    Returns
    -------
    list of str
        Candidate ids, best first; empty when no candidate reaches θ.
    """
    relevant = [c for c, grade in grades.items() if grade >= threshold]
    return sorted(relevant, key=lambda c: (-grades[c], c not in fines, -fines.get(c, 0.0), str(c)))


def _reference_figures(run: Sequence[str], reference: Sequence[str], ns: Sequence[int]) -> dict[str, float]:
    """``overlap@n`` and ``edit_distance@n`` of one run against one reference list (NaN when
    the reference is empty), as :func:`songsim.evaluate.evaluate_space` computes them."""
    figures: dict[str, float] = {}
    run = list(run)
    for n in ns:
        if not reference:
            overlap = edit = np.nan
        else:
            overlap = top_n_overlap(reference[:n], run[:n], n)
            m = min(n, len(reference), len(run))
            # an empty run keeps nothing of the reference in place: the worst distance, 1
            edit = normalised_edit_distance(reference[:m], run[:m]) if m else 1.0
        figures[f"overlap@{n}"] = overlap
        figures[f"edit_distance@{n}"] = edit
    return figures


def _per_query(study: Study, pairs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Long table (query_id, space, figures…) over the rated queries, in study order, and
    the caveats it found (unrated queries, missing runs, queries without relevant items)."""
    k, threshold = study.k, float(study.relevance_threshold)
    grades: dict[str, dict[str, float]] = {}
    fines: dict[str, dict[str, float]] = {}
    for query_id, candidate_id, relevance, fine in zip(
        *(pairs[c].tolist() for c in ("query_id", "candidate_id", "relevance", "fine"))
    ):
        grades.setdefault(query_id, {})[candidate_id] = float(relevance)
        if not np.isnan(fine):
            fines.setdefault(query_id, {})[candidate_id] = float(fine)
    reference_names = reference_figure_names(k)
    ns = [n for n in REFERENCE_NS if n <= k]
    rows: list[dict[str, Any]] = []
    missing_runs: Counter[str] = Counter()
    unrated = no_gain = no_relevant = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        for query in study.queries:
            query_grades = grades.get(query.query_id)
            if not query_grades:
                unrated += 1
                continue
            ideal = np.fromiter(query_grades.values(), dtype=np.float64)
            n_relevant = int(np.sum(ideal >= threshold))
            no_gain += not ideal.any()
            no_relevant += n_relevant == 0
            query_fines = fines.get(query.query_id, {})
            reference = panel_reference(query_grades, query_fines, threshold=threshold)
            for space in study.spaces:
                if space not in query.runs:
                    missing_runs[space] += 1
                    continue
                figures = _run_figures(
                    query.runs[space], query_grades, query_fines, ideal, n_relevant, k=k, threshold=threshold
                )
                listed = _reference_figures(query.runs[space], reference, ns)
                rows.append({"query_id": query.query_id, "space": space, **figures, **{f: listed[f] for f in reference_names}})
    caveats = []
    if unrated:
        caveats.append(f"{unrated} of {len(study.queries)} queries have no rating yet and are left out of every figure.")
    if no_gain:
        caveats.append(f"{no_gain} rated query(ies) have no candidate with mean BROAD > 0: NDCG is 0 for every space there.")
    if no_relevant:
        left_out = (
            f"; their reference list is empty, so they are left out of {', '.join(reference_names)}" if reference_names else ""
        )
        caveats.append(
            f"{no_relevant} rated query(ies) have no candidate with mean BROAD ≥ {threshold:g}: MAP and P@{k} are 0 "
            f"for every space there{left_out}."
        )
    caveats += [f"Space {s!r} has no run for {n} rated query(ies); it is scored on the others." for s, n in missing_runs.items()]
    return pd.DataFrame(rows, columns=["query_id", "space", *figure_names(k), *reference_names]), caveats


def _study_ratings(study: Study, latest: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The rows of ``latest`` that rate a pair of ``study``'s pools, and a caveat for the rest."""
    missing = [c for c in REQUIRED_COLUMNS if c not in latest.columns]
    if missing:
        raise SongsimError(
            f"The ratings table lacks column(s) {', '.join(missing)}: pass "
            f"songsim.ratings.latest_ratings(events), with columns {', '.join(REQUIRED_COLUMNS)}."
        )
    rows = latest[latest["study"] == study.name] if "study" in latest.columns else latest
    rows = rows.loc[:, list(REQUIRED_COLUMNS)].astype({"broad": np.float64, "fine": np.float64})
    if rows.duplicated(["rater", "query_id", "candidate_id"]).any():
        raise SongsimError(
            "The ratings table holds several rows for one (rater, query, candidate): pass the latest rating of "
            "each, songsim.ratings.latest_ratings(events), not the raw events."
        )
    pool = {(q.query_id, c) for q in study.queries for c in q.pool}
    in_pool = np.array([pair in pool for pair in zip(rows["query_id"].tolist(), rows["candidate_id"].tolist())], dtype=bool)
    caveats = []
    if (~in_pool).any():
        caveats.append(
            f"{int((~in_pool).sum())} rating(s) name a (query, candidate) pair outside study {study.name!r}'s pools; "
            f"they are left out."
        )
    return rows[in_pool].reset_index(drop=True), caveats


def _pair_table(ratings: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """One row per rated (query, candidate): mean BROAD (``relevance``), mean FINE over the
    raters who gave one (NaN if none), raters, and ``relevant`` = relevance ≥ threshold."""
    pairs = (
        ratings.groupby(["query_id", "candidate_id"], sort=False)
        .agg(relevance=("broad", "mean"), fine=("fine", "mean"), n_raters=("rater", "size"))
        .reset_index()
    )
    pairs["relevant"] = pairs["relevance"] >= threshold
    return pairs


# ----------------------------------------------------------------------------------------
# agreement
# ----------------------------------------------------------------------------------------
def _ceiling_cells(ratings: pd.DataFrame, k: int) -> pd.DataFrame:
    """NDCG@k of each rater's ranking of each query's candidates against the others' mean
    BROAD (see :meth:`StudyReport.formulas`): columns rater, query_id, ndcg, n_candidates."""
    totals = ratings.groupby(["query_id", "candidate_id"])["broad"].agg(["sum", "count"])
    shared = ratings.join(totals, on=["query_id", "candidate_id"])
    shared = shared[shared["count"] >= 2]
    others = ((shared["sum"] - shared["broad"]) / (shared["count"] - 1)).to_numpy()
    broad, fine = shared["broad"].to_numpy(), shared["fine"].to_numpy()
    cells = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        for (rater, query_id), rows in shared.groupby(["rater", "query_id"], sort=False).indices.items():
            own_fine = fine[rows]
            scores = broad[rows] + (0.0 if np.isnan(own_fine).any() else own_fine / _FINE_TIE_SCALE)
            cells.append((rater, query_id, ndcg_of_scores(scores, others[rows], k), len(rows)))
    return pd.DataFrame(cells, columns=["rater", "query_id", "ndcg", "n_candidates"])


def _fine_correlation(fine: pd.DataFrame) -> tuple[float | None, int, int]:
    """Mean Pearson r of FINE over rater pairs (``fine``: pairs × raters, NaN = no score),
    each over the pairs both scored (≥ 3, both varying); returns (mean r, scored pairs used,
    rater pairs used)."""
    correlations, n_used = [], 0
    for a, b in combinations(fine.columns, 2):
        both = fine[[a, b]].dropna().to_numpy()
        if len(both) >= 3 and np.ptp(both[:, 0]) > 0 and np.ptp(both[:, 1]) > 0:
            correlations.append(stats.pearsonr(both[:, 0], both[:, 1]).statistic)
            n_used += len(both)
    return (float(np.mean(correlations)) if correlations else None), n_used, len(correlations)


def _agreement(ratings: pd.DataFrame, k: int) -> tuple[dict[str, Any], pd.DataFrame]:
    """The agreement section and the per-rater table (rater → counts, means, ceiling)."""
    raters = (
        ratings.groupby("rater")
        .agg(
            n_ratings=("broad", "size"),
            n_queries=("query_id", "nunique"),
            mean_broad=("broad", "mean"),
            n_fine=("fine", "count"),
            mean_fine=("fine", "mean"),
        )
        .astype({"n_ratings": int, "n_queries": int, "n_fine": int})
    )
    ceiling_key = f"ceiling_ndcg@{k}"
    section: dict[str, Any] = {
        "n_raters": int(len(raters)),
        "krippendorff_alpha": None,
        "alpha_level": "ordinal, on BROAD",
        "alpha_n_pairs": 0,
        "fine_correlation": None,
        "fine_correlation_n": 0,
        "fine_correlation_rater_pairs": 0,
        ceiling_key: None,
        "ceiling_n": 0,
        "raters": {},
        "reasons": {},
    }
    if len(raters) < 2:
        who = f"only one rater ({raters.index[0]}) has" if len(raters) else "no rater has"
        reason = f"{who} rated: agreement needs two raters on the same pairs"
        section["reasons"] = dict.fromkeys(["krippendorff_alpha", "fine_correlation", ceiling_key], reason)
        raters[ceiling_key] = np.nan
    else:
        by_pair = ratings.set_index(["query_id", "candidate_id", "rater"])
        broad = by_pair["broad"].unstack("rater")
        section["alpha_n_pairs"] = int((broad.notna().sum(axis=1) >= 2).sum())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MetricWarning)
            alpha = krippendorff_alpha(broad.to_numpy().T, level="ordinal")
        if np.isnan(alpha):
            section["reasons"]["krippendorff_alpha"] = (
                "no pair is rated by two raters yet" if section["alpha_n_pairs"] == 0
                else "every pair rated twice got one and the same BROAD grade: alpha is undefined (no variation)"
            )
        else:
            section["krippendorff_alpha"] = alpha
        correlation, n_fine, n_rater_pairs = _fine_correlation(by_pair["fine"].unstack("rater"))
        section.update(fine_correlation=correlation, fine_correlation_n=n_fine, fine_correlation_rater_pairs=n_rater_pairs)
        if correlation is None:
            section["reasons"]["fine_correlation"] = "no two raters gave varying FINE scores to ≥ 3 common pairs"
        cells = _ceiling_cells(ratings, k)
        raters[ceiling_key] = cells.groupby("rater")["ndcg"].mean()
        if len(cells):
            section.update({ceiling_key: float(cells["ndcg"].mean()), "ceiling_n": int(len(cells))})
        else:
            section["reasons"][ceiling_key] = "no pair is rated by two raters yet"
    section["raters"] = {
        str(rater): {key: _plain(value) for key, value in row.items()} for rater, row in raters.to_dict("index").items()
    }
    return section, raters.reset_index()


# ----------------------------------------------------------------------------------------
# label-based figures
# ----------------------------------------------------------------------------------------
def _labels(
    spaces: Sequence[str], human: Mapping[str, float | None], label_figures: Mapping[str, Mapping[str, Any] | str] | None, k: int
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The labels section (figures per space, Spearman ρ of each with human NDCG@K across
    spaces) and its table (space × label figures + human NDCG@K). ρ is the plain rank
    correlation; for a lower-is-better figure (``lower_is_better`` in its entry, e.g.
    ``edit_distance@n``) agreement with the listeners shows as ρ < 0."""
    human_key = f"ndcg@{k}"
    names = label_figure_names(k)
    if label_figures is None:
        section = {"human": human_key, "figures": {}, "spearman": {}, "notes": ["label-based figures were not computed"]}
        return section, pd.DataFrame(columns=["space", *names, f"human_{human_key}"])
    figures: dict[str, dict[str, float]] = {}
    notes = []
    for space in spaces:
        found = label_figures.get(space, "the label evaluation has no figures for it")
        if isinstance(found, str):
            notes.append(f"{space}: no label-based figures ({found}).")
        else:
            figures[space] = {name: float(found[name]) for name in names if name in found}
    spearman = {}
    for name in names:
        both = [s for s in figures if name in figures[s] and human.get(s) is not None]
        entry: dict[str, Any] = {"rho": None, "p": None, "n": len(both), "reason": None, "lower_is_better": lower_is_better(name)}
        if len(both) < 3:
            entry["reason"] = f"a rank correlation needs ≥ 3 spaces with both figures; {len(both)} have"
        elif len({figures[s][name] for s in both}) < 2 or len({human[s] for s in both}) < 2:
            entry["reason"] = "one of the two figures is the same for every space"
        else:
            test = stats.spearmanr([figures[s][name] for s in both], [human[s] for s in both])
            entry.update(rho=float(test.statistic), p=float(test.pvalue))
        if any(name in f for f in figures.values()):
            spearman[name] = entry
    table = pd.DataFrame(
        [{"space": s, **figures.get(s, {}), f"human_{human_key}": human.get(s)} for s in spaces],
        columns=["space", *[n for n in names if n in spearman], f"human_{human_key}"],
    )
    return {"human": human_key, "figures": figures, "spearman": spearman, "notes": notes}, table


# ----------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """``value`` as a JSON-ready Python scalar: NaN → None, numpy → Python."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    return value


def _rounded(value: Any) -> Any:
    """``value`` (nested dicts/lists) with floats rounded to :data:`DECIMALS` and NaN → None."""
    if isinstance(value, Mapping):
        return {str(key): _rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    value = _plain(value)
    return round(value, DECIMALS) if isinstance(value, float) else value


def _fmt(value: Any, digits: int = 3) -> str:
    """A number for people: ``digits`` decimals, "—" when undefined."""
    value = _plain(value)
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _fmt_p(value: Any) -> str:
    """A p-value for people: 3 significant digits, "< 0.001" below."""
    value = _plain(value)
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3g}"


def _p_clause(value: Any) -> str:
    """``"p = 0.0146"`` or ``"p < 0.001"``."""
    shown = _fmt_p(value)
    return f"p {shown}" if shown.startswith("<") else f"p = {shown}"


@dataclass(frozen=True)
class StudyReport:
    """Everything :func:`report_from` computed for one study (see the module docstring).

    Attributes
    ----------
    study : Study
    per_query : pd.DataFrame
        One row per (rated query, space): ``query_id``, ``space``, :func:`figure_names` and
        :func:`reference_figure_names` (NaN where the query's reference list is empty).
    spaces : dict
        Space → ``{figure: mean, figure_ci: [low, high], "n_queries": {figure: n},
        "reference_n_queries": {reference figure: n}}`` over the figures of
        :func:`figure_names` and :func:`reference_figure_names`.
    friedman, pairwise, agreement, labels : dict
        The sections of :meth:`as_dict`.
    problems : list of str
        Problems of the ratings log and caveats of the data (unrated queries, ratings outside
        the pools, queries without a relevant candidate, missing runs).
    raters, pairs, pairwise_table, labels_table : pd.DataFrame
        Per-rater counts, means and ceiling; per (query, candidate) relevance; the pairwise
        tests in long form; the label-based figures beside human NDCG@K.
    n_boot, seed : int
        Bootstrap resamples and seed of every CI.
    """

    study: Study
    per_query: pd.DataFrame
    spaces: dict[str, dict[str, Any]]
    friedman: dict[str, Any]
    pairwise: dict[str, Any]
    agreement: dict[str, Any]
    labels: dict[str, Any]
    problems: list[str]
    raters: pd.DataFrame
    pairs: pd.DataFrame
    pairwise_table: pd.DataFrame
    labels_table: pd.DataFrame
    n_boot: int
    seed: int

    @property
    def k(self) -> int:
        """The study's cut-off K."""
        return int(self.study.k)

    @property
    def reference_figures(self) -> list[str]:
        """The figures against the panel's reference list (:func:`reference_figure_names`)."""
        return reference_figure_names(self.k)

    @property
    def ceiling(self) -> float | None:
        """The rater-agreement ceiling in NDCG@K units (None with fewer than two raters)."""
        return self.agreement[f"ceiling_ndcg@{self.k}"]

    # ------------------------------------------------------------------ exports
    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"study", "spaces": {space: {"ndcg@1", "ndcg@K", "ndcg@K_ci": [lo, hi],
        "ndcg_linear@K", "map", "p@K", "fine", "judged@K", their CIs, "n_queries",
        "overlap@n", "edit_distance@n" (n = 3, 5, 10 up to K), their CIs,
        "reference_n_queries"}},
        "friedman", "pairwise", "agreement", "labels", "problems"}`` with K the study's k,
        floats rounded to 4 decimals and undefined values None."""
        return _rounded(
            {
                "study": self.study.name,
                "spaces": self.spaces,
                "friedman": self.friedman,
                "pairwise": self.pairwise,
                "agreement": self.agreement,
                "labels": self.labels,
                "problems": list(self.problems),
            }
        )

    def settings(self) -> dict[str, Any]:
        """The study settings and report options every export states."""
        study = self.study
        return {
            "study": study.name,
            "k": self.k,
            "spaces": ", ".join(study.spaces),
            "queries": len(study.queries),
            "rated queries": int(self.per_query["query_id"].nunique()),
            "rated pairs": int(len(self.pairs)),
            "raters": self.agreement["n_raters"],
            "raters per pair": study.raters_per_pair,
            "panel size": study.panel_size,
            "relevance threshold θ (mean BROAD)": study.relevance_threshold,
            "artist filter": study.artist_filter,
            "neighbour metric": study.metric,
            "catalogue fingerprint": study.catalogue_fingerprint,
            "created": study.created_at,
            "bootstrap": f"{self.n_boot} resamples over queries, seed {self.seed}, {CI_LEVEL:.0%} percentile interval",
            "songsim": __version__,
        }

    def formulas(self) -> list[tuple[str, str]]:
        """(figure, definition) of every figure, with this study's K and θ filled in."""
        k, theta = self.k, self.study.relevance_threshold
        return [
            ("relevance", "rel(q, c) = mean over raters of their latest BROAD grade (0 not / 1 somewhat / 2 very similar) "
             "for candidate c of query q; FINE(q, c) = mean of their FINE scores (0–100) where given. A candidate in a "
             "space's top K that no one has rated counts as non-relevant (rel = 0) and lowers judged@K."),
            ("queries", "Every figure is the mean over the study's queries with at least one rating (unrated queries "
             "are left out); each figure's number of queries is n_queries (reference_n_queries for overlap@n and "
             "edit_distance@n, which also leave out the queries whose reference list is empty)."),
            (f"ndcg@{k}", f"DCG@{k} = Σ_{{i=1..min({k}, n)}} (2^rel_i − 1) / log2(i + 1) over the space's ranked "
             f"candidates; NDCG@{k} = DCG@{k} / IDCG@{k}, with IDCG@{k} the DCG@{k} of all rated candidates of the "
             f"query (from every space's run) sorted by rel: one ideal for every space, so spaces are comparable. "
             f"NDCG = 0 on a query where no rated candidate has rel > 0."),
            ("ndcg@1", "NDCG@1: the same at cut-off 1 (the first candidate against the best rated one)."),
            (f"ndcg_linear@{k}", f"NDCG@{k} with linear gain rel_i instead of 2^rel_i − 1 (Järvelin & Kekäläinen "
             f"2002; scikit-learn's ndcg_score)."),
            ("relevant", f"binary relevance: rel(q, c) ≥ θ = {theta:g}; unrated candidates are not relevant."),
            (f"p@{k}", f"P@{k} = (relevant candidates among the top {k}) / {k}."),
            ("map", f"AP = (1/R) Σ_{{i ≤ {k}}} relevant_i · P@i, with R = the number of relevant rated candidates in "
             f"the query's pool (all spaces' runs): relevant candidates a space did not retrieve count with precision "
             f"0, so AP < 1 when R > {k}; AP = 0 when R = 0. MAP = mean AP over queries."),
            ("fine", f"mean FINE(q, c) over the rated candidates of the top {k} that have a FINE score, then over "
             f"queries (queries without any are left out)."),
            (f"judged@{k}", f"share of the space's top {k} (of the candidates its run has) rated by at least one rater."),
            *self._reference_formulas(),
            ("CI", f"{CI_LEVEL:.0%} percentile bootstrap over queries: {self.n_boot} resamples of the queries with "
             f"replacement (seed {self.seed}), the mean recomputed on each; the interval is their {50 * (1 - CI_LEVEL):g}th and "
             f"{100 - 50 * (1 - CI_LEVEL):g}th percentiles. Every space is resampled on the same queries."),
            ("Friedman", f"Friedman test on the per-query NDCG@{k} of every space, over the queries every space has: "
             f"ranks within each query, tie-corrected χ² with S − 1 degrees of freedom (needs S ≥ 3 spaces)."),
            ("pairwise", f"Wilcoxon signed-rank test (two-sided) of the per-query NDCG@{k} differences of each pair of "
             f"spaces over the queries both have (zero differences dropped; all zero: p = 1; exact up to "
             f"{_EXACT_WILCOXON_MAX_N} untied differences, else the tie-corrected normal approximation), p adjusted with Holm's "
             f"step-down p'_(i) = max_{{j ≤ i}} min(1, (m − j + 1) p_(j)) over the m tested pairs. "
             f"mean difference = mean(row − column)."),
            ("Krippendorff's α", "ordinal α on BROAD over the pairs rated by ≥ 2 raters: α = 1 − (n − 1) Σ o_ck δ²_ck / "
             "Σ n_c n_k δ²_ck, with o the coincidence matrix (each pair's m_u ratings contribute their ordered "
             "rater-to-rater value pairs / (m_u − 1)), n_c its margins, n = Σ n_c and δ²_ck = (Σ_{g=c..k} n_g − "
             "(n_c + n_k)/2)². 1 = perfect, 0 = chance agreement."),
            ("FINE correlation", "Pearson r of FINE between each two raters over the pairs both scored (≥ 3, both "
             "varying), averaged over those rater pairs; n = the co-scored pairs."),
            (f"ceiling_ndcg@{k}", f"for each rater and query: rank the candidates that the rater and at least one other "
             f"rater rated by the rater's BROAD (ties by their FINE when they scored all of them; remaining ties "
             f"averaged over every order, McSherry & Najork 2008) and score NDCG@{k} with the other raters' mean BROAD "
             f"as rel (ideal over the same candidates; 0 when none is relevant to the others); averaged over every "
             f"(rater, query). It is how well one listener predicts the others: a space near or above it predicts the "
             f"panel as well as a listener does, and differences between spaces up there are within rater "
             f"disagreement."),
            ("labels", f"label-based figures of the same spaces (songsim.evaluate: a neighbour is relevant when it "
             f"shares the query's genre or emotion; for its overlap@n and edit_distance@n, n = 3, 5, 10, the reference "
             f"list is the query's same-album, then same-artist songs) and their plain Spearman ρ with human NDCG@{k} "
             f"across spaces (needs ≥ 3 spaces). edit_distance@n is lower-is-better, so there agreement with the "
             f"listeners shows as ρ < 0."),
        ]

    def _reference_formulas(self) -> list[tuple[str, str]]:
        """The definitions of the figures against the panel's reference list."""
        k, theta = self.k, self.study.relevance_threshold
        ns = [n for n in REFERENCE_NS if n <= k]
        shown = ", ".join(map(str, ns)) if ns else f"none: every n of {', '.join(map(str, REFERENCE_NS))} exceeds K = {k}"
        return [
            ("panel reference", f"the reference list of query q = its rated candidates with rel(q, c) ≥ θ = {theta:g}, "
             f"ordered by rel descending, ties by FINE descending (candidates without FINE after those with one), "
             f"then by candidate id. It is the panel's own ranking of the pooled candidates; a query with an empty "
             f"reference list (no relevant candidate) is left out of overlap@n and edit_distance@n. Reported for "
             f"n ∈ {{3, 5, 10}} with n ≤ K (a run holds K candidates): n = {shown}. The artist-similarity protocol of "
             f"the siamese work, as in songsim.evaluate."),
            ("overlap@n", "O@n = |ref_{1..n} ∩ run_{1..n}| / |ref_{1..n}|: the share of the reference top n found in "
             "the space's top n, in any order (a reference shorter than n is scored on what it has, so 1 is "
             "reachable). 1 = all found; higher is better."),
            ("edit_distance@n", "NED@n = lev(ref_{1..m}, run_{1..m}) / m with m = min(n, |ref|, |run|) and lev the "
             "Levenshtein distance (insertions, deletions, substitutions of one candidate, each costing 1): 0 = the "
             "same candidates in the same order, 1 = none in place (also for an empty run). Lower is better; no test "
             "or ranking of spaces in this report uses it."),
        ]

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table: ``spaces`` (figures, the reference-list figures included, CI bounds
        ``<figure>_ci_low/high``, ``<figure>_n``),
        ``per_query``, ``pairwise``, ``raters``, ``labels``, ``pairs``."""
        rows = []
        for space, summary in self.spaces.items():
            row: dict[str, Any] = {"space": space}
            counts = {**summary["n_queries"], **summary["reference_n_queries"]}
            for figure in [*figure_names(self.k), *self.reference_figures]:
                low, high = summary[f"{figure}_ci"] or (None, None)
                row.update({figure: summary[figure], f"{figure}_ci_low": low, f"{figure}_ci_high": high,
                            f"{figure}_n": counts[figure]})
            rows.append(row)
        return {
            "spaces": pd.DataFrame(rows),
            "per_query": self.per_query,
            "pairwise": self.pairwise_table,
            "raters": self.raters,
            "labels": self.labels_table,
            "pairs": self.pairs,
        }

    def write_csv(self, out_dir: str | Path) -> list[Path]:
        """Write every table of :meth:`tables` to ``out_dir/<table>.csv`` (atomically);
        returns the paths."""
        paths = []
        for name, table in self.tables().items():
            path = Path(out_dir) / f"{name}.csv"
            with atomic_write(path) as handle:
                handle.write(table.to_csv(index=False).encode())
            paths.append(path)
        return paths

    def display_spaces(self) -> pd.DataFrame:
        """The per-space table for people: ``value [low, high]`` per figure, queries used."""
        k = self.k
        rows = []
        for space, summary in self.spaces.items():
            row = {"space": space}
            for figure in figure_names(k):
                ci = summary[f"{figure}_ci"]
                digits = 1 if figure == "fine" else 3
                row[figure] = _fmt(summary[figure], digits) + (f" [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]" if ci else "")
            row["queries"] = summary["n_queries"][f"ndcg@{k}"]
            rows.append(row)
        return pd.DataFrame(rows, columns=["space", *figure_names(k), "queries"])

    def display_reference(self) -> pd.DataFrame:
        """The per-space table of the figures against the panel's reference list for people:
        ``value [low, high]`` per figure (edit distance marked lower-is-better) and the
        queries used; no figure columns when K < 3."""
        names = self.reference_figures
        headers = {f: f"{f} (↓ better)" if lower_is_better(f) else f for f in names}
        rows = []
        for space, summary in self.spaces.items():
            row: dict[str, Any] = {"space": space}
            for figure in names:
                ci = summary[f"{figure}_ci"]
                row[headers[figure]] = _fmt(summary[figure]) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")
            row["queries"] = summary["reference_n_queries"][names[0]] if names else 0
            rows.append(row)
        return pd.DataFrame(rows, columns=["space", *headers.values(), "queries"])

    def display_matrix(self, key: str) -> pd.DataFrame:
        """A pairwise matrix (``p``, ``p_holm``, ``mean_difference``, ``n``) for people."""
        cells = self.pairwise[key]
        show = _fmt_p if key.startswith("p") else (lambda v: _fmt(v, 3))
        return pd.DataFrame({b: {a: ("" if a == b else show(cells[a][b])) for a in cells} for b in cells})

    def summary_lines(self) -> list[str]:
        """Friedman, agreement and label correlation in sentences."""
        k, friedman, agreement = self.k, self.friedman, self.agreement
        lines = []
        if friedman["p"] is None:
            lines.append(f"Friedman test: not run — {friedman['reason']}.")
        else:
            detail = "" if friedman["statistic"] is None else f"χ² = {friedman['statistic']:.2f}, "
            lines.append(
                f"Friedman test on ndcg@{k}: {detail}{_p_clause(friedman['p'])} "
                f"({friedman['n_queries']} queries × {friedman['n_spaces']} spaces)"
                + (f" — {friedman['reason']}" if friedman["reason"] else "")
                + "."
            )
        reasons = agreement["reasons"]
        alpha = agreement["krippendorff_alpha"]
        lines.append(
            f"Krippendorff's α (ordinal, BROAD) = {_fmt(alpha)} over {agreement['alpha_n_pairs']} pairs rated twice or more."
            if alpha is not None else f"Krippendorff's α: — ({reasons['krippendorff_alpha']})."
        )
        r = agreement["fine_correlation"]
        lines.append(
            f"FINE correlation (mean Pearson r) = {_fmt(r)} over {agreement['fine_correlation_n']} co-scored pairs "
            f"({agreement['fine_correlation_rater_pairs']} rater pair(s))."
            if r is not None else f"FINE correlation: — ({reasons['fine_correlation']})."
        )
        ceiling_key = f"ceiling_ndcg@{k}"
        lines.append(
            f"Ceiling (one rater against the others' mean) = {_fmt(self.ceiling)} NDCG@{k} over "
            f"{agreement['ceiling_n']} (rater, query) cells."
            if self.ceiling is not None else f"Ceiling: — ({reasons[ceiling_key]})."
        )
        if not self.reference_figures:
            lines.append(
                f"Top-n overlap and edit distance against the panel's reference list: not reported — they need "
                f"n ≤ K with n in {', '.join(map(str, REFERENCE_NS))}, and this study's K is {k}."
            )
        not_computed: dict[str, list[str]] = {}  # reason → the figures it applies to, said once
        for name, entry in self.labels["spearman"].items():
            if entry["rho"] is None:
                not_computed.setdefault(entry["reason"], []).append(name)
                continue
            direction = " (lower is better: agreement shows as ρ < 0)" if entry.get("lower_is_better") else ""
            lines.append(
                f"Spearman ρ({name}, human ndcg@{k}) = {_fmt(entry['rho'])}, {_p_clause(entry['p'])}, "
                f"n = {entry['n']} spaces{direction}."
            )
        for reason, names in not_computed.items():
            lines.append(f"Spearman ρ(label figure, human ndcg@{k}): — for {', '.join(names)} ({reason}).")
        lines += self.labels["notes"]
        return lines

    def reference_caption(self) -> str:
        """One line naming the panel's reference list, for the table of :meth:`display_reference`."""
        return (
            f"Against the panel's reference list (candidates with mean BROAD ≥ θ = {self.study.relevance_threshold:g}, "
            f"by mean BROAD then FINE; {CI_LEVEL:.0%} bootstrap CI; queries with an empty list left out)"
        )

    def format_text(self) -> str:
        """The report for a terminal: settings, per-space table with CIs, tests, agreement,
        label correlation, problems, definitions."""
        lines = [f"{key}: {value}" for key, value in self.settings().items()] + [""]
        lines += [self.display_spaces().to_string(index=False), ""]
        if self.reference_figures:
            lines += [self.reference_caption() + ":", self.display_reference().to_string(index=False), ""]
        lines += self.summary_lines()
        if len(self.spaces) > 1:
            lines += ["", f"Pairwise Wilcoxon on ndcg@{self.k}, Holm-adjusted p (row vs column):",
                      self.display_matrix("p_holm").to_string(),
                      "Mean difference (row − column):", self.display_matrix("mean_difference").to_string()]
        lines += ["", "Raters:", self.raters.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
        if len(self.labels_table):
            lines += ["", "Label-based figures:", self.labels_table.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
        lines += ["", "Problems:" if self.problems else "Problems: none."] + [f"  - {p}" for p in self.problems]
        lines += ["", "Definitions:"] + [f"  {name}: {text}" for name, text in self.formulas()]
        return "\n".join(lines)

    # ------------------------------------------------------------------ figures
    def bars_figure(self, metric: str | None = None) -> go.Figure:
        """Per-space bars of ``metric`` (default NDCG@K; any of :func:`figure_names` or
        :func:`reference_figure_names`) with CI whiskers; for NDCG@K the rater-agreement
        ceiling is a dashed horizontal line. The title says when lower is better."""
        metric = metric or f"ndcg@{self.k}"
        spaces = list(self.spaces)
        values = np.array([_plain(self.spaces[s][metric]) for s in spaces], dtype=np.float64)
        cis = np.array([self.spaces[s][f"{metric}_ci"] or (np.nan, np.nan) for s in spaces], dtype=np.float64).reshape(-1, 2)
        figure = go.Figure(
            go.Bar(
                x=spaces, y=values, name=metric, marker_color="#3a6ea5",
                text=[_fmt(v) for v in values], textposition="outside",
                error_y=dict(type="data", symmetric=False, array=cis[:, 1] - values, arrayminus=values - cis[:, 0]),
                hovertemplate="%{x}: %{y:.3f}<extra></extra>",
            )
        )
        if metric == f"ndcg@{self.k}" and self.ceiling is not None:
            figure.add_hline(
                y=self.ceiling, line_dash="dash", line_color="#d7263d",
                annotation_text=f"rater ceiling {self.ceiling:.2f}", annotation_position="top left",
            )
        top = 100.0 if metric == "fine" else 1.05
        direction = ", lower is better" if lower_is_better(metric) else ""
        figure.update_layout(
            height=380, margin=dict(l=10, r=10, t=40, b=10), showlegend=False,
            title=f"{metric} by space ({CI_LEVEL:.0%} bootstrap CI over queries{direction})",
            yaxis=dict(title=metric, range=[0, top]),
        )
        return figure

    def heatmap_figure(self, metric: str | None = None) -> go.Figure:
        """Per-query ``metric`` (default NDCG@K) as a heatmap: queries (rows, study order) ×
        spaces (columns); a blank cell is a query the space has no value for. The bright end of
        the scale is always the better one (reversed for a lower-is-better figure)."""
        metric = metric or f"ndcg@{self.k}"
        matrix = self.per_query.pivot(index="query_id", columns="space", values=metric)
        order = [q.query_id for q in self.study.queries]
        matrix = matrix.reindex(index=[q for q in order if q in matrix.index], columns=list(self.spaces))
        zmax = 100.0 if metric == "fine" else 1.0
        figure = go.Figure(
            go.Heatmap(
                z=matrix.to_numpy(), x=list(matrix.columns), y=list(matrix.index), zmin=0, zmax=zmax,
                colorscale="Viridis_r" if lower_is_better(metric) else "Viridis", colorbar=dict(title=metric),
                hovertemplate="query %{y}<br>%{x}: %{z:.3f}<extra></extra>",
            )
        )
        figure.update_layout(
            height=int(min(max(120 + 18 * len(matrix), 320), 1600)), margin=dict(l=10, r=10, t=40, b=10),
            title=f"{metric} per query", yaxis=dict(autorange="reversed", title="query"),
        )
        return figure

    def write_html(self, path: str | Path) -> Path:
        """Write one self-contained HTML report (plotly.js inlined, no network needed):
        settings, problems, figures, tables, tests, agreement, labels and every definition.
        Returns the path."""

        def table(frame: pd.DataFrame, *, index: bool = False) -> str:
            return frame.to_html(index=index, na_rep="—", float_format=lambda v: f"{v:.3f}", border=0, classes="t")

        def items(lines: Sequence[str]) -> str:
            return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"

        settings = pd.DataFrame(list(self.settings().items()), columns=["setting", "value"])
        pairwise = "".join(
            f"<h3>{html.escape(title)}</h3>" + table(self.display_matrix(key), index=True)
            for key, title in [("p_holm", "Holm-adjusted p"), ("p", "raw p"),
                               ("mean_difference", "mean difference (row − column)"), ("n", "queries")]
        ) if len(self.spaces) > 1 else "<p>One space: nothing to compare.</p>"
        definitions = "".join(f"<dt>{html.escape(name)}</dt><dd>{html.escape(text)}</dd>" for name, text in self.formulas())
        body = [
            f"<h1>Listening study {html.escape(self.study.name)}</h1>",
            "<h2>Settings</h2>", table(settings),
            "<h2>Problems</h2>", items(self.problems) if self.problems else "<p>None.</p>",
            f"<h2>NDCG@{self.k} by space</h2>", self.bars_figure().to_html(full_html=False, include_plotlyjs=True),
            "<h2>Per space</h2>", table(self.display_spaces()),
            *(["<h2>Against the panel's reference list</h2>", f"<p>{html.escape(self.reference_caption())}.</p>",
               table(self.display_reference())] if self.reference_figures else []),
            "<h2>Per query</h2>", self.heatmap_figure().to_html(full_html=False, include_plotlyjs=False),
            "<h2>Significance and agreement</h2>", items(self.summary_lines()),
            f"<h2>Pairwise tests (ndcg@{self.k})</h2>", pairwise,
            "<h2>Raters</h2>", table(self.raters),
            "<h2>Label-based figures</h2>", table(self.labels_table) if len(self.labels_table) else "<p>Not computed.</p>",
            "<h2>Definitions</h2>", f"<dl>{definitions}</dl>",
        ]
        style = (
            "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
            "table.t{border-collapse:collapse;margin:.5em 0}table.t td,table.t th{padding:.2em .6em;"
            "border-bottom:1px solid #ddd;text-align:right}table.t td:first-child{text-align:left}"
            "dt{font-weight:bold;margin-top:.6em}"
        )
        document = (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>songsim study {html.escape(self.study.name)}"
            f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
        )
        path = Path(path)
        with atomic_write(path) as handle:
            handle.write(document.encode("utf-8"))
        return path


def report_from(
    study: Study,
    latest: pd.DataFrame,
    *,
    label_figures: Mapping[str, Mapping[str, Any] | str] | None = None,
    problems: Sequence[str] = (),
    n_boot: int = 2000,
    seed: int = 0,
) -> StudyReport:
    """The report of ``study`` from its latest ratings (pure: no file is read).

    Parameters
    ----------
    study : Study
        The study (runs and pools of every query).
    latest : pd.DataFrame
        One row per (rater, query, candidate), the latest rating
        (:func:`songsim.ratings.latest_ratings`): columns ``rater``, ``query_id``,
        ``candidate_id``, ``broad`` (0/1/2), ``fine`` (0–100 or NaN), and optionally
        ``study`` (rows of other studies are ignored). Ratings of pairs outside the study's
        pools are left out with a problem.
    label_figures : dict, optional
        Space → its :func:`songsim.evaluate.evaluate_space` figures, or the reason (str) it
        has none; None: not computed.
    problems : sequence of str
        Problems found while loading (e.g. the ratings log's torn lines), reported first.
    n_boot : int >= 1
        Bootstrap resamples of every CI.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    StudyReport

    Raises
    ------
    SongsimError
        ``latest`` lacks a column or holds several rows for one (rater, query, candidate).
    """
    k = int(study.k)
    ratings, rating_caveats = _study_ratings(study, latest)
    pairs = _pair_table(ratings, float(study.relevance_threshold))
    per_query, query_caveats = _per_query(study, pairs)
    human_figures, reference_figures = figure_names(k), reference_figure_names(k)
    figures = [*human_figures, *reference_figures]  # one bootstrap: every figure on the same resamples
    rated_queries = list(dict.fromkeys(per_query["query_id"]))
    wide = {f: per_query.pivot(index="query_id", columns="space", values=f).reindex(index=rated_queries, columns=study.spaces)
            for f in figures}
    stacked = np.concatenate([wide[f].to_numpy(dtype=np.float64) for f in figures], axis=1)  # (n_queries, F × S)
    valid = ~np.isnan(stacked)
    counts = valid.sum(axis=0)
    with np.errstate(invalid="ignore"):
        means = np.where(valid, stacked, 0.0).sum(axis=0) / counts
    cis = bootstrap_ci(stacked, n_boot=n_boot, seed=seed)
    spaces: dict[str, dict[str, Any]] = {}
    for j, space in enumerate(study.spaces):
        summary: dict[str, Any] = {}
        n_queries: dict[str, int] = {}
        for i, figure in enumerate(figures):
            column = i * len(study.spaces) + j
            ci = cis[column]
            summary[figure] = _plain(means[column])
            summary[f"{figure}_ci"] = None if np.isnan(ci).any() else [float(ci[0]), float(ci[1])]
            n_queries[figure] = int(counts[column])
        summary["n_queries"] = {f: n_queries[f] for f in human_figures}
        summary["reference_n_queries"] = {f: n_queries[f] for f in reference_figures}
        spaces[space] = summary
    metric = f"ndcg@{k}"
    friedman = _friedman(wide[metric], metric)
    pairwise, pairwise_table = _pairwise(wide[metric], metric)
    agreement, raters = _agreement(ratings, k)
    labels, labels_table = _labels(study.spaces, {s: spaces[s][metric] for s in study.spaces}, label_figures, k)
    return StudyReport(
        study=study, per_query=per_query, spaces=spaces, friedman=friedman, pairwise=pairwise, agreement=agreement,
        labels=labels, problems=[*problems, *rating_caveats, *query_caveats], raters=raters, pairs=pairs,
        pairwise_table=pairwise_table, labels_table=labels_table, n_boot=int(n_boot), seed=int(seed),
    )


def compute_report(
    catalogue_root: str | Path, study_name: str, *, n_boot: int = 2000, seed: int = 0, labels: bool = True
) -> StudyReport:
    """The report of study ``study_name`` of the catalogue at ``catalogue_root``.

    Loads the study and the latest ratings of its log (the log's problems, e.g. a torn last
    line, become the report's first problems) and, with ``labels``, evaluates every compared
    space with :func:`songsim.evaluate.evaluate_catalogue` at the study's k (a space that
    cannot be evaluated, e.g. not built, is noted in ``labels["notes"]``). See
    :func:`report_from` for the rest.

    Raises
    ------
    StudyError
        No such study, or an unreadable study file.
    """
    study = load_study(catalogue_root, study_name)
    log = load_ratings(catalogue_root, study=study.name)
    return report_from(
        study,
        latest_ratings(log.events),
        label_figures=_label_figures(catalogue_root, study) if labels else None,
        problems=log.problems,
        n_boot=n_boot,
        seed=seed,
    )


def _label_figures(catalogue_root: str | Path, study: Study) -> dict[str, dict[str, Any] | str]:
    """Space → its label-based figures at the study's k, or why it has none."""
    # imported here: evaluation pulls in the feature/model stack (librosa, torch), which the
    # pure report (report_from) and the pages that only draw it do not need
    from songsim.evaluate import evaluate_catalogue

    figures: dict[str, dict[str, Any] | str] = {}
    for space in study.spaces:
        try:
            metric = None if study.metric == OWN_METRIC else study.metric  # the runs' similarity
            figures[space] = evaluate_catalogue(catalogue_root, spaces=[space], k=study.k, metric=metric)["spaces"][space]
        except SongsimError as error:
            figures[space] = str(error)
    return figures
