"""Panel-study reports, computed: what listeners heard, per space, with uncertainty and agreement.

A study (:mod:`songsim.studies.study`) records, per query, every compared space's top-k (its
*run*) and their pooled union; the ratings CSV (:mod:`songsim.studies.ratings`) holds blind MIREX
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
  bootstrap CI over queries (:func:`~songsim.studies.statistics.bootstrap_ci`);
- a Friedman test across spaces and pairwise Wilcoxon signed-rank tests with Holm's
  correction (:func:`~songsim.studies.statistics.holm_adjust`) on the per-query NDCG@K;
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

The statistics (CIs, tests, agreement) are :mod:`songsim.studies.statistics`; this module
assembles them with the per-query figures into a :class:`StudyReport` (the results, their JSON
and their CSV tables). Rendering it for people (plain text, the HTML export, plotly figures,
page tables, and every formula with the study's K and θ filled in) is
:mod:`songsim.studies.render`. Figures are unitless, in ``[0, 1]`` except FINE (0–100) and the
statistics. Nothing here imports streamlit or plotly.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from songsim.errors import SongsimError
from songsim.files import atomic_write, csv_table_bytes
from songsim.metrics import (
    MetricWarning,
    average_precision,
    ndcg_at_k,
    normalised_edit_distance,
    precision_at_k,
    top_n_overlap,
)
from songsim.studies.ratings import latest_ratings, load_ratings
from songsim.studies.statistics import (
    bootstrap_ci,
    friedman_test,
    json_scalar,
    pairwise_wilcoxon,
    rank_correlation,
    rater_agreement,
)
from songsim.studies.study import Study, load_study, run_space

__all__ = [
    "REFERENCE_NS",
    "REQUIRED_COLUMNS",
    "StudyReport",
    "figure_names",
    "reference_figure_names",
    "label_figure_names",
    "lower_is_better",
    "panel_reference",
    "report_from",
    "compute_report",
]

#: columns :func:`report_from` needs in ``latest`` (one row per rater, query and candidate)
REQUIRED_COLUMNS = ("rater", "query_id", "candidate_id", "broad", "fine")
#: decimals of the JSON export
DECIMALS = 4
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
# per-query figures
# ----------------------------------------------------------------------------------------
def _run_figures(
    run: Sequence[str], grades: Mapping[str, float], fines: Mapping[str, float], ideal: np.ndarray, n_relevant: int,
    *, k: int, threshold: float,
) -> dict[str, float]:
    """Every figure of one space's run on one query (see :func:`songsim.studies.render.formulas`).

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
    """The rows of ``latest`` that rate a pair of ``study``'s pools, and a caveat for the rest
    (and for the ratings of removed raters, left out unless the owner kept them)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in latest.columns]
    if missing:
        raise SongsimError(
            f"The ratings table lacks column(s) {', '.join(missing)}: pass "
            f"songsim.studies.ratings.latest_ratings(events), with columns {', '.join(REQUIRED_COLUMNS)}."
        )
    rows = latest[latest["study"] == study.name] if "study" in latest.columns else latest
    rows = rows.loc[:, list(REQUIRED_COLUMNS)].astype({"broad": np.float64, "fine": np.float64})
    caveats = []
    excluded = rows["rater"].isin(study.excluded_raters)
    if excluded.any():
        names = ", ".join(sorted(map(repr, set(rows.loc[excluded, "rater"]))))
        caveats.append(
            f"{int(excluded.sum())} rating(s) of rater(s) {names}, removed from the study by its owner, are left out "
            f"(ratings.csv keeps them)."
        )
        rows = rows[~excluded]
    if rows.duplicated(["rater", "query_id", "candidate_id"]).any():
        raise SongsimError(
            "The ratings table holds several rows for one (rater, query, candidate): pass the latest rating of "
            "each, songsim.studies.ratings.latest_ratings(events), not the raw events."
        )
    pool = {(q.query_id, c) for q in study.queries for c in q.pool}
    in_pool = np.array([pair in pool for pair in zip(rows["query_id"].tolist(), rows["candidate_id"].tolist())], dtype=bool)
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
        correlation = rank_correlation([figures[s][name] for s in both], [human[s] for s in both])
        if any(name in f for f in figures.values()):
            spearman[name] = {**correlation, "lower_is_better": lower_is_better(name)}
    table = pd.DataFrame(
        [{"space": s, **figures.get(s, {}), f"human_{human_key}": human.get(s)} for s in spaces],
        columns=["space", *[n for n in names if n in spearman], f"human_{human_key}"],
    )
    return {"human": human_key, "figures": figures, "spearman": spearman, "notes": notes}, table


# ----------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------
def _rounded(value: Any) -> Any:
    """``value`` (nested dicts/lists) with floats rounded to :data:`DECIMALS` and NaN → None."""
    if isinstance(value, Mapping):
        return {str(key): _rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    value = json_scalar(value)
    return round(value, DECIMALS) if isinstance(value, float) else value


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
    unreadable_rows : int
        Rows of the ratings log that could not be read (their problems come first in
        ``problems``): the figures lack those ratings, so the CLI exits non-zero.
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
    unreadable_rows: int = 0

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
                handle.write(csv_table_bytes(table))
            paths.append(path)
        return paths


def report_from(
    study: Study,
    latest: pd.DataFrame,
    *,
    label_figures: Mapping[str, Mapping[str, Any] | str] | None = None,
    problems: Sequence[str] = (),
    unreadable_rows: int = 0,
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
        (:func:`songsim.studies.ratings.latest_ratings`): columns ``rater``, ``query_id``,
        ``candidate_id``, ``broad`` (0/1/2), ``fine`` (0–100 or NaN), and optionally
        ``study`` (rows of other studies are ignored). Ratings of pairs outside the study's
        pools are left out with a problem.
    label_figures : dict, optional
        Space → its :func:`songsim.evaluate.evaluate_space` figures, or the reason (str) it
        has none; None: not computed.
    problems : sequence of str
        Problems found while loading (e.g. the ratings log's torn lines, its unused
        columns), reported first.
    unreadable_rows : int
        How many rows of the log were skipped as unreadable (:attr:`StudyReport.unreadable_rows`).
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
            summary[figure] = json_scalar(means[column])
            summary[f"{figure}_ci"] = None if np.isnan(ci).any() else [float(ci[0]), float(ci[1])]
            n_queries[figure] = int(counts[column])
        summary["n_queries"] = {f: n_queries[f] for f in human_figures}
        summary["reference_n_queries"] = {f: n_queries[f] for f in reference_figures}
        spaces[space] = summary
    metric = f"ndcg@{k}"
    friedman = friedman_test(wide[metric], metric)
    pairwise, pairwise_table = pairwise_wilcoxon(wide[metric], metric)
    agreement, raters = rater_agreement(ratings, k)
    labels, labels_table = _labels(study.spaces, {s: spaces[s][metric] for s in study.spaces}, label_figures, k)
    return StudyReport(
        study=study, per_query=per_query, spaces=spaces, friedman=friedman, pairwise=pairwise, agreement=agreement,
        labels=labels, problems=[*problems, *rating_caveats, *query_caveats], raters=raters, pairs=pairs,
        pairwise_table=pairwise_table, labels_table=labels_table, n_boot=int(n_boot), seed=int(seed),
        unreadable_rows=int(unreadable_rows),
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
        problems=[*log.problems, *log.warnings],
        unreadable_rows=len(log.problems),
        n_boot=n_boot,
        seed=seed,
    )


def _label_figures(catalogue_root: str | Path, study: Study) -> dict[str, dict[str, Any] | str]:
    """Space → its label-based figures at the study's k, or why it has none."""
    # imported here: evaluation pulls in the feature/model stack (librosa, torch), which the
    # pure report (report_from) and the pages that only draw it do not need
    from songsim.evaluate import evaluate_catalogue

    figures: dict[str, dict[str, Any] | str] = {}
    for run in study.spaces:
        try:
            space, hubness = run_space(run)  # the runs' similarity and hub reduction
            figures[run] = evaluate_catalogue(
                catalogue_root, spaces=[space], k=study.k, metric=study.search_metric, hubness=hubness
            )["spaces"][space]
        except SongsimError as error:
            figures[run] = str(error)
    return figures
