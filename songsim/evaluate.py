"""Label-based evaluation of embedding spaces: the offline counterpart of a listening study.

Catalogue labels stand in for raters: a neighbour "is relevant" when it shares the query's
genre (or emotion quadrant), or for the list figures its album or artist. Every figure of a
space uses one similarity — :func:`evaluate_catalogue` takes the space's own
(:attr:`songsim.spaces.Space.metric`) unless told otherwise; ``metric="euclidean"`` is
``−‖a − b‖`` — with exact search, and never counts the query itself. Per space, :func:`evaluate_space` reports

``genre_p@k``
    Mean share of the top-k neighbours with the query's genre (P@k, Pampalk 2006).
``genre_p@k_artist_filtered``
    The same with every song of the query's artist removed from the candidates: the MIREX
    *artist filter*, so a space is not rewarded for finding the same artist
    (Flexer & Schnitzer, "Effects of album and artist filters in audio similarity computed
    for very large music databases", CMJ 34(3), 2010).
``emotion_p@k``
    Mean share of the top-k in the query's Thayer emotion quadrant.
``year_distance@k``
    Mean absolute difference in release year between the query and its top-k, in years
    (lower = closer in era).
``ndcg@1``, ``ndcg@6``, ``map``
    The ranking protocol: per query, 3 same-genre and 3 different-genre songs drawn at
    random are ranked by similarity to the query and scored with binary relevance
    (same genre = 1). Candidates come from the whole catalogue, the query's artist
    included (no artist filter here). Chance: nDCG@1 = 0.5, nDCG@6 ≈ 0.775, MAP = 0.645.
``pairwise_acc``
    Over 15 (similar, dissimilar) pairs per query (the 3 same-genre songs × 5
    different-genre songs, the first 3 of which are the ranked ones): share of pairs where
    the same-genre song is the more similar (ties ½). Chance 0.5.
``overlap@n``, ``edit_distance@n`` (n = 3, 5, 10)
    The artist-similarity protocol of the siamese work (top-n overlap and normalised edit
    distance between the space's list and a reference list), with the catalogue's album and
    artist labels as the reference. A query's *reference list* ranks the other songs by
    tier — same album (album key = artist + album name, so two artists' "Greatest Hits"
    differ) above same artist on another album — and, inside a tier, by the space's own
    similarity: labels cannot order the songs of one album, so no space is penalised for an
    order nobody can judge, only for a song of a lower tier (or none) ranked above one of a
    higher tier, or missing. With only artist labels the reference is the artist tier; with
    only album labels, the album tier. The reference top-n is its first ``m = min(n, R)``
    songs, ``R`` the query's same-artist (or same-album) songs; queries with ``R = 0`` are
    not counted. ``overlap@n`` = share of the reference top-n in the space's top-n,
    unordered (:func:`~songsim.metrics.top_n_overlap`; 1 = all found);
    ``edit_distance@n`` = Levenshtein distance between the reference top-m and the space's
    top-m, divided by m (:func:`~songsim.metrics.normalised_edit_distance`; 0 = same songs in
    the same order, lower is better). No artist filter here: the artist is the reference.
``v_measure``, ``ami`` / ``v_measure_gmm``, ``ami_gmm``
    Agreement of k-means / a diagonal Gaussian mixture with the genres, as many clusters as
    genres among the queries, fitted on L2-normalised vectors (the geometry of cosine; the
    raw vectors with ``metric="euclidean"``).
``hubness_skew``, ``orphans``
    Skewness of the k-occurrence of the top-k graph over the whole catalogue, and the share
    of songs that are nobody's top-k neighbour (Radovanović et al., JMLR 11, 2010).

A space that gives distances (metric ``"precomputed"``: an imported distance matrix, Musly)
gets every figure: similarity = −distance (row = query) for the searches, the ranking
protocol and the reference lists, and the clusterings run on the queries' classical-MDS
coordinates (:class:`songsim.maps.ClassicalMDS` of their symmetrised distances, every axis
with a positive eigenvalue, at most :data:`CLUSTER_MDS_DIMS`): the Euclidean picture of the
distances, so k-means and the mixture see what the distances say.

Candidates are every catalogue song that carries the figure's label (an unlabelled song
cannot be judged, so it is left out of that figure's candidates). Queries are every song
with the label, or — for a supervised space with a ``test_rows_`` attribute — only its
held-out test rows, so a space is never scored on songs it was trained on. The number of
queries behind each figure is reported in ``"n_queries"``; a figure that cannot be computed
(labels missing, too few songs) is left out with its reason in ``"skipped"``.

**K folds.** A held-out split is small (24 songs on the demo: genre P@5 moves by about
± 0.07 between splits). With ``folds=K`` (``evaluate --folds K``), a space that holds out
test rows — and every space built on one — is scored by K models instead
(:mod:`songsim.folds`): model ``i`` trained with fold ``i`` held out, every song a query of
the model that never saw it, searched and ranked in that model's space, and every figure
pooled over all the queries. Hubness is that of the top-k graph in which each song's list
comes from its own fold's model; the clusterings are fitted per fold on that fold's queries,
and each clustering figure is their mean weighted by queries. Spaces that hold nothing out
are unaffected (every song is already a query).

**Confidence intervals.** Every figure comes with ``"ci95"``: a 95 % percentile bootstrap
interval over :data:`N_BOOT` resamples of the catalogue's songs, drawn with replacement
(:func:`songsim.studies.statistics.bootstrap_weights`, seeded by ``seed``), the figure
recomputed on each (Efron & Tibshirani 1993, §13.3):

- the means over queries (P@k, year distance, the ranking protocol, the top-n lists) over
  the resampled queries (:func:`~songsim.studies.statistics.bootstrap_ci`);
- ``hubness_skew`` and ``orphans`` over the resampled songs, each with its k-occurrence in
  the top-k graph (the graph is not rebuilt per resample);
- the clustering figures get none (:data:`NO_CI_CLUSTERING`, also in ``"no_ci"``): a song
  drawn twice always shares its cluster with itself, so V-measure and AMI rise on every
  resample (a near-random partition of 64 songs with AMI −0.038 gets a percentile interval
  of [−0.036, 0.104], which misses the figure itself), and refitting k-means and the mixture on each
  of 1000 resamples would cost minutes per space.

The resamples depend only on ``(seed, n_tracks)``, so every figure of every space is computed
on the same resampled songs: intervals of two spaces are paired, like their draws below.
An interval is ``None`` for the clustering figures and when fewer than two queries give the
figure.

Random draws depend only on ``(seed, query row)``, so every space is scored on the same
query/candidate sets and the comparison between spaces is paired.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from songsim.catalogue import Catalogue, load_catalogue
from songsim.errors import NotBuiltError, SongsimError
from songsim.folds import FoldModels, check_fold_count, fold_models
from songsim.metrics import (
    average_precision,
    cluster_scores,
    hubness,
    k_occurrence,
    ndcg_at_k,
    normalised_edit_distance,
    pairwise_accuracy,
    precision_at_k,
    resampled_hubness,
    top_n_overlap,
)
from songsim.neighbours import PRECOMPUTED, ExactIndex, HubnessReducedIndex, PrecomputedIndex, artist_keys, exclusion_mask
from songsim.query import SpaceLoader, resolve_metric, search
from songsim.spaces.base import TrainingOptions, covered_rows
from songsim.spaces.store import built_space_names, load_built_space, space_info
from songsim.studies.statistics import CI_LEVEL, bootstrap_ci, bootstrap_weights, percentile_interval

__all__ = [
    "N_SAME",
    "N_DIFFERENT",
    "N_RANKED_DIFFERENT",
    "LIST_FIGURES",
    "OVERLAP_NS",
    "N_BOOT",
    "evaluate_space",
    "evaluate_catalogue",
    "figures_table",
    "format_table",
    "label_precision",
]

#: ranking protocol: same-genre songs drawn per query (all of them are ranked and paired)
N_SAME = 3
#: different-genre songs drawn per query (all of them are paired: 3 × 5 = 15 pairs)
N_DIFFERENT = 5
#: different-genre songs ranked with the same-genre ones (the first of the N_DIFFERENT drawn)
N_RANKED_DIFFERENT = 3
DECIMALS = 4
RANKING_FIGURES = ("ndcg@1", "ndcg@6", "map", "pairwise_acc")
CLUSTER_FIGURES = ("v_measure", "ami", "v_measure_gmm", "ami_gmm")
#: list lengths of the album/artist reference figures
OVERLAP_NS = (3, 5, 10)
#: bootstrap resamples behind every figure's ``ci95`` (the module docstring)
N_BOOT = 1000
#: why the clustering figures have no ``ci95`` (``"no_ci"`` in the results)
NO_CI_CLUSTERING = (
    "no bootstrap CI: a song drawn twice always shares its cluster with itself, which inflates V-measure and AMI on "
    "every resample (the percentile interval can miss the figure itself), and refitting the clusterings per resample "
    "would cost minutes per space"
)
LIST_FIGURES = tuple(f"{kind}@{n}" for kind in ("overlap", "edit_distance") for n in OVERLAP_NS)
#: axes of the classical-MDS coordinates a distance space's clusterings run on, at most
CLUSTER_MDS_DIMS = 32

#: on_progress(stage, fraction_done 0–1, message), as in :mod:`songsim.build`
ProgressFn = Callable[[str, float, str], None]


@dataclass(frozen=True)
class _PerQuery:
    """Figures that are means over queries: the query rows [shape=(m,), int64] and each
    figure's value per query [shape=(m,), float64, in the figure's units]."""

    rows: np.ndarray
    values: dict[str, np.ndarray]


@dataclass(frozen=True)
class _Resampled:
    """Figures that are not means over queries: each figure's value, its value on every
    bootstrap resample [shape=(n_boot,), NaN where undefined; absent for a figure without a
    CI] and the songs it used."""

    values: dict[str, float]
    resampled: dict[str, np.ndarray]
    used: int


#: what a figure helper gives, or the reason its figures are skipped
_Outcome = _PerQuery | _Resampled | str


def evaluate_space(
    catalogue: Catalogue,
    space: Any,
    *,
    seed: int = 0,
    k: int = 5,
    metric: str | None = None,
    hubness: str = "none",
    n_boot: int = N_BOOT,
) -> dict[str, Any]:
    """Every label-based figure of one fitted space, with its bootstrap CI (module docstring).

    Parameters
    ----------
    catalogue : Catalogue
        The catalogue the space was fitted on (same rows, same order).
    space : Space or songsim.folds.FoldModels
        A fitted space: ``vectors_`` ``(n_tracks, dim)``; optionally ``test_rows_``, an int
        array of the rows it never trained on, which then are the only queries. Or the K fold
        models of one space (:func:`songsim.folds.fold_models`): every row is then a query of
        the model whose ``test_rows_`` hold it, searched, ranked and clustered in that model.
    seed : int
        Seed of the ranking protocol's draws, of the clusterings and of the bootstrap.
    k : int >= 1
        Neighbours per query for the P@k, year and hubness figures.
    metric : {"cosine", "euclidean"} or None
        Similarity of every figure: cosine, or ``−‖a − b‖``; ``None``: the space's own
        (:attr:`songsim.spaces.base.Space.metric`).
    hubness : {"none", "mp", "mp-gauss", "ls"}
        Search every top-k (P@k, year distance, hubness, top-n lists) with distances rescaled
        by mutual proximity or local scaling (:class:`songsim.neighbours.HubnessReducedIndex`);
        the ranking protocol and the clusterings keep the space's own geometry.
    n_boot : int >= 1
        Bootstrap resamples of the songs behind every ``ci95``.

    Returns
    -------
    dict
        JSON-ready (plain floats, ints, lists): each computed figure, rounded to 4 decimals;
        ``"ci95"``: {figure: ``[low, high]`` in the figure's units, or None (fewer than two
        queries, or a figure without a CI)}; ``"no_ci"``: {figure: why it has no CI};
        ``"n_queries"``: {figure: queries it averaged over}; ``"skipped"``:
        {figure: reason}; ``"held_out"``: whether queries were restricted to held-out rows;
        ``"folds"``: K, only for fold models; ``"dim"``; ``"metric"``; ``"hubness"``.

    Raises
    ------
    SongsimError
        The space is unfitted or does not match the catalogue, ``test_rows_`` is invalid (or
        fold models' test rows do not partition the rows), or ``k`` is not a positive integer.
    """
    name = getattr(space, "name", type(space).__name__)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SongsimError(f"k must be an integer >= 1; got {k!r}.")
    models = list(space.models) if isinstance(space, FoldModels) else [space]
    metric = resolve_metric(models[0], metric)
    vectors = [_space_vectors(catalogue, model, name) for model in models]
    n = vectors[0].shape[0]
    covered = np.logical_and.reduce([covered_rows(model) for model in models])  # rows with a vector: the only queries and candidates
    owner, queries = _query_owners(space, models, n, name)
    queries = queries[covered[queries]]
    searchers, geometries = [], []
    for model, x in zip(models, vectors):
        index = _exact_index(x, metric, hubness, covered)
        searchers.append(_searcher(catalogue, model, index, hubness))
        geometries.append(_geometry(x, metric))
    top_k = searchers[0] if len(models) == 1 else _searcher_by_row(searchers, owner)
    geometry = geometries[0] if len(models) == 1 else _GeometryByRow(geometries, owner)
    weights = bootstrap_weights(n, n_boot=n_boot, seed=seed)  # the same resampled songs for every figure and space
    figures: dict[str, float] = {}
    n_queries: dict[str, int] = {}
    skipped: dict[str, str] = {}
    intervals: dict[str, np.ndarray] = {}
    per_row: dict[str, np.ndarray] = {}  # figure -> (n,) value of each query row, NaN elsewhere

    def settle(names: Sequence[str], outcome: _Outcome) -> None:
        if isinstance(outcome, str):
            skipped.update(dict.fromkeys(names, outcome))
        elif isinstance(outcome, _PerQuery):
            for figure, values in outcome.values.items():
                figures[figure], n_queries[figure] = float(np.mean(values)), int(outcome.rows.size)
                per_row[figure] = np.full(n, np.nan)
                per_row[figure][outcome.rows] = values
        else:
            for figure, value in outcome.values.items():
                figures[figure], n_queries[figure] = float(value), int(outcome.used)
                if figure in outcome.resampled:
                    intervals[figure] = percentile_interval(outcome.resampled[figure], level=CI_LEVEL)

    genre_p, genre_p_filtered = f"genre_p@{k}", f"genre_p@{k}_artist_filtered"
    genre = _labelled(catalogue, "genre", queries, covered)
    if isinstance(genre, str):
        settle([genre_p, genre_p_filtered, *RANKING_FIGURES, *CLUSTER_FIGURES], genre)
    else:
        labels, known, genre_queries = genre
        settle([genre_p], _precision(top_k, labels, known, genre_queries, k=k, figure=genre_p))
        if catalogue.has_labels("artist"):
            artists = artist_keys(catalogue.labels("artist"))
            outcome = _precision(top_k, labels, known, genre_queries, k=k, figure=genre_p_filtered, artists=artists)
        else:
            outcome = "the catalogue has no artist labels"
        settle([genre_p_filtered], outcome)
        settle(RANKING_FIGURES, _ranking(geometry, genre_queries, labels, known, seed=seed))
        groups = [(g, genre_queries[owner[genre_queries] == i]) for i, g in enumerate(geometries)]
        settle(CLUSTER_FIGURES, _clustering(groups, labels, seed=seed))

    emotion_p = f"emotion_p@{k}"
    emotion = _labelled(catalogue, "emotion", queries, covered)
    settle([emotion_p], emotion if isinstance(emotion, str) else _precision(top_k, *emotion, k=k, figure=emotion_p))
    year = _labelled(catalogue, "year", queries, covered)
    settle([f"year_distance@{k}"], year if isinstance(year, str) else _year_distance(top_k, *year, k=k))
    settle(["hubness_skew", "orphans"], _hubness(top_k, covered, k=k, weights=weights))
    settle(LIST_FIGURES, _reference_overlap(catalogue, top_k, geometry, queries, covered))
    if per_row:  # one bootstrap of every mean, on the shared resamples
        intervals.update(zip(per_row, bootstrap_ci(np.column_stack(list(per_row.values())), weights=weights, level=CI_LEVEL)))

    order = [f for f in _figure_names(k) if f in figures]
    result: dict[str, Any] = {
        **{f: round(figures[f], DECIMALS) for f in order},
        "ci95": {f: _rounded_interval(intervals.get(f)) for f in order},
        "no_ci": {f: NO_CI_CLUSTERING for f in order if f in CLUSTER_FIGURES},
        "n_queries": {f: n_queries[f] for f in order},
        "skipped": {f: skipped[f] for f in _figure_names(k) if f in skipped},
        "held_out": isinstance(space, FoldModels) or hasattr(space, "test_rows_"),
    }
    if isinstance(space, FoldModels):
        result["folds"] = space.count
    result.update({"dim": int(vectors[0].shape[1]), "metric": metric, "hubness": hubness})
    return result


def evaluate_catalogue(
    root: str | Path,
    *,
    spaces: Sequence[str] | None = None,
    seed: int = 0,
    k: int = 5,
    metric: str | None = None,
    hubness: str = "none",
    folds: int | None = None,
    training: TrainingOptions | None = None,
    n_boot: int = N_BOOT,
    on_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Evaluate built spaces of the catalogue at ``root`` with :func:`evaluate_space` (every
    top-k searched with the ``hubness`` reduction given: ``"none"``, ``"mp"``, ``"mp-gauss"``
    or ``"ls"``).

    Parameters
    ----------
    root : str or Path
        A built catalogue folder.
    spaces : sequence of str, optional
        Space names (duplicates ignored); default: every built space, in registry order.
    seed : int
        Seed of the ranking protocol, the clusterings and the bootstrap (the same draws and
        resamples for every space).
    k : int >= 1
        Neighbours per query.
    metric : {"cosine", "euclidean"}, optional
        Similarity of every figure; ``None``: each space's own (:attr:`Space.metric`: cosine,
        euclidean for wavenet, ae-2d and spectrogram-l2), named in its figures' ``"metric"``.
    folds : int >= 2, optional
        Score every space that holds out test rows, and every space built on one, with K fold
        models (:mod:`songsim.folds`; trained on first use, then stored and reused), so that
        every song is a query; at most the song count of the smallest genre.
    training : TrainingOptions, optional
        ``device`` and ``on_epoch`` for training fold models (the epochs and seed are those of
        each built fit).
    n_boot : int >= 1
        Bootstrap resamples behind every ``ci95``.
    on_progress : callable, optional
        ``on_progress(stage, fraction_done, message)``: before and after each fold model
        (stage ``"folds:<space>"``), before each space and at the end.

    Returns
    -------
    dict
        ``{"spaces": {name: figures}, "n_tracks": int, "seed": int, "k": int, "metric": str,
        "hubness": str, "folds": int or None, "bootstrap": {...}}``, JSON-ready (``"metric"``:
        the one given, or ``"each space's own"``; ``"bootstrap"``: resamples, level, seed and
        what is resampled).

    Raises
    ------
    UnknownSpaceError
        A name the registry does not know.
    NotBuiltError
        A space not built in this catalogue (or built on other tracks), or no built space;
        with ``folds``, a stale one.
    SongsimError
        A bad ``folds`` (not an integer >= 2, or above the smallest genre's song count).
    """
    report = on_progress or (lambda stage, fraction, message: None)
    catalogue = load_catalogue(root)
    built = built_space_names(catalogue)
    names = list(dict.fromkeys(spaces)) if spaces is not None else built
    if not names:
        raise NotBuiltError(f"No space is built in {catalogue.root}: run `python -m songsim build {catalogue.root}` first.")
    for name in names:
        space_info(catalogue, name)
        if name not in built:
            raise NotBuiltError(
                f"Space {name!r} is not built in {catalogue.root}: run "
                f"`python -m songsim build {catalogue.root} --spaces {name}` first (built: {', '.join(built) or 'none'})."
            )
    folded: dict[str, FoldModels] = {}
    if folds is not None:
        folds = check_fold_count(catalogue, folds)
        folded = fold_models(catalogue, names, k=folds, training=training, on_progress=report)
    results = {}
    for i, name in enumerate(names):
        how = f"{folds} fold models" if name in folded else f"{len(catalogue)} tracks"
        report("evaluate", i / len(names), f"{name}: {how}")
        space = folded[name] if name in folded else load_built_space(catalogue, name)
        results[name] = evaluate_space(catalogue, space, seed=seed, k=k, metric=metric, hubness=hubness, n_boot=n_boot)
    report("done", 1.0, f"evaluated {len(names)} space(s)")
    return {
        "spaces": results, "n_tracks": len(catalogue), "seed": int(seed), "k": int(k),
        "metric": metric or "each space's own", "hubness": hubness, "folds": folds,
        "bootstrap": {
            "resamples": int(n_boot), "level": CI_LEVEL, "seed": int(seed), "interval": "percentile",
            "resampled": "the catalogue's songs, with replacement; the same resamples for every figure and space (paired)",
        },
    }  # fmt: skip


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`evaluate_catalogue`'s result: one row per figure, one
    column per space, each cell the figure and its 95 % CI (``0.720 [0.660, 0.780]``), then
    the query counts and the skipped figures with their reasons."""
    names = list(result["spaces"])
    per_space = result["spaces"]
    figures = list(dict.fromkeys(f for name in names for f in per_space[name]["n_queries"]))
    cells = {name: [_cell(per_space[name], figure) for figure in figures] for name in names}
    width = max([len(f) for f in figures] + [len("figure")])
    columns = [max([len(name), 8, *(len(c) for c in cells[name])]) for name in names]
    lines = ["  ".join(["figure".ljust(width)] + [name.rjust(c) for name, c in zip(names, columns)])]
    for row, figure in enumerate(figures):
        lines.append("  ".join([figure.ljust(width)] + [cells[name][row].rjust(c) for name, c in zip(names, columns)]))
    lines.append("")
    reduced = "" if result.get("hubness", "none") == "none" else f", hubness reduction {result['hubness']}"
    lines.append(f"{result['n_tracks']} tracks, k={result['k']}, seed={result['seed']}{reduced}")
    boot = result.get("bootstrap")
    if boot:
        lines.append(
            f"[low, high]: {100 * boot['level']:g} % percentile bootstrap interval over {boot['resamples']} resamples of the "
            "songs, the same resamples for every space"
        )
    no_ci = dict(item for name in names for item in per_space[name].get("no_ci", {}).items())
    if no_ci:
        lines.append(f"{', '.join(no_ci)}: {next(iter(no_ci.values()))}")
    for name in names:
        counts = sorted(set(per_space[name]["n_queries"].values())) or [0]
        span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        if per_space[name].get("folds"):
            split = f" (every song, each held out of one of {per_space[name]['folds']} fold models)"
        else:
            split = " (its test split)" if per_space[name]["held_out"] else ""
        lines.append(f"{name}: {span} queries per figure{split}, {per_space[name]['metric']} similarity")
        for figure, reason in per_space[name]["skipped"].items():
            lines.append(f"  skipped {figure}: {reason}")
    return "\n".join(lines)


def _cell(scores: dict[str, Any], figure: str) -> str:
    """``"0.720 [0.660, 0.780]"``: a figure and its CI to 3 decimals (``"—"`` when skipped)."""
    if figure not in scores:
        return "—"
    ci = scores.get("ci95", {}).get(figure)
    return f"{scores[figure]:.3f}" + ("" if ci is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]")


def _rounded_interval(ci: np.ndarray | None) -> list[float] | None:
    if ci is None or np.isnan(ci).any():
        return None
    return [round(float(ci[0]), DECIMALS), round(float(ci[1]), DECIMALS)]


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------
def _figure_names(k: int) -> list[str]:
    """Every figure of :func:`evaluate_space`, in reporting order."""
    return [
        f"genre_p@{k}",
        f"genre_p@{k}_artist_filtered",
        f"emotion_p@{k}",
        f"year_distance@{k}",
        *RANKING_FIGURES,
        *LIST_FIGURES,
        *CLUSTER_FIGURES,
        "hubness_skew",
        "orphans",
    ]


def _space_vectors(catalogue: Catalogue, space: Any, name: str) -> np.ndarray:
    vectors = getattr(space, "vectors_", None)
    if vectors is None:
        raise NotBuiltError(f"Space {name!r} is not fitted yet: run `python -m songsim build {catalogue.root}`.")
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(catalogue):
        raise NotBuiltError(
            f"Space {name!r} has vectors of shape {vectors.shape} but {catalogue.root} has {len(catalogue)} tracks: "
            f"rebuild it with `python -m songsim build {catalogue.root} --spaces {name}`."
        )
    return vectors


def _query_rows(space: Any, n: int, name: str) -> np.ndarray:
    """Rows usable as queries: the space's ``test_rows_`` if it has them, else all rows."""
    if not hasattr(space, "test_rows_"):
        return np.arange(n)
    rows = np.asarray(space.test_rows_)
    if rows.ndim != 1 or rows.size == 0 or not np.issubdtype(rows.dtype, np.integer):
        raise SongsimError(
            f"Space {name!r} has test_rows_ of shape {rows.shape} and dtype {rows.dtype}; it must be a "
            f"non-empty 1-D integer array of held-out rows: refit the space."
        )
    if rows.min() < 0 or rows.max() >= n:
        raise SongsimError(f"Space {name!r} has test_rows_ outside 0..{n - 1} (the catalogue's rows): refit the space.")
    return np.unique(rows)


def _query_owners(space: Any, models: Sequence[Any], n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(owner (n,) int64, queries (m,) int64)``: which model searches each row as a query
    (0 for a single space; for fold models, the one whose ``test_rows_`` hold it) and the
    query rows (:func:`_query_rows`; every row for fold models, which must partition them)."""
    if not isinstance(space, FoldModels):
        return np.zeros(n, dtype=np.int64), _query_rows(space, n, name)
    owner = np.full(n, -1, dtype=np.int64)
    for i, model in enumerate(models):
        if not hasattr(model, "test_rows_"):
            raise SongsimError(f"Fold model {i + 1} of {name!r} has no test_rows_: delete the space's folds folder and evaluate again.")
        rows = _query_rows(model, n, name)
        if (owner[rows] >= 0).any():
            raise SongsimError(f"Fold models of {name!r} hold out row {int(rows[owner[rows] >= 0][0])} twice: delete the space's folds folder and evaluate again.")
        owner[rows] = i
    if (owner < 0).any():
        raise SongsimError(
            f"The {len(models)} fold models of {name!r} leave {int((owner < 0).sum())} row(s) out of every fold: delete the "
            "space's folds folder and evaluate again."
        )
    return owner, np.arange(n, dtype=np.int64)


def _labelled(
    catalogue: Catalogue, column: str, queries: np.ndarray, covered: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | str:
    """``(labels (n,) object, known (n,) bool: labelled rows with a vector, the queries that
    have the label)``, or why figures on ``column`` cannot be computed."""
    if not catalogue.has_labels(column):
        return f"the catalogue has no {column} labels"
    labels = catalogue.labels(column)
    known = np.array([v is not None for v in labels], dtype=bool) & covered
    labelled_queries = queries[known[queries]]
    if labelled_queries.size == 0:
        return f"none of the {queries.size} query tracks has a {column} label"
    return labels, known, labelled_queries


#: top_k(query row, k, candidates (n,) bool, exclude_artist) -> the k best candidate rows
TopK = Callable[[int, int, np.ndarray, bool], np.ndarray]


class _ExactLoader(SpaceLoader):
    """Spaces are scored with exact search whatever the catalogue's size: the one index given."""

    def __init__(self, catalogue: Catalogue, index: ExactIndex | HubnessReducedIndex) -> None:
        super().__init__(catalogue)
        self.exact = index

    def index(self, space: Any, metric: str, hubness: str = "none") -> ExactIndex | HubnessReducedIndex:
        return self.exact  # built by evaluate_space for the hubness reduction asked


def _searcher(catalogue: Catalogue, space: Any, index: ExactIndex | HubnessReducedIndex, hubness: str) -> TopK:
    """Top-k through :func:`songsim.query.search` (the one search path), with ``index``."""
    loader = _ExactLoader(catalogue, index)

    def top_k(row: int, k: int, candidates: np.ndarray, exclude_artist: bool) -> np.ndarray:
        found = search(
            catalogue, space, track_id=catalogue.track_id_at(row), k=k, metric=index.metric,
            exclude_artist=exclude_artist, candidates=candidates, hubness=hubness, loader=loader,
        )  # fmt: skip
        return found.neighbours.indices

    return top_k


def _searcher_by_row(searchers: Sequence[TopK], owner: np.ndarray) -> TopK:
    """A :data:`TopK` that searches each query row with the searcher of its model (fold)."""

    def top_k(row: int, k: int, candidates: np.ndarray, exclude_artist: bool) -> np.ndarray:
        return searchers[owner[row]](row, k, candidates, exclude_artist)

    return top_k


class _GeometryByRow:
    """Similarities to a query row in the geometry of the model (fold) that owns the row."""

    def __init__(self, geometries: Sequence[Any], owner: np.ndarray) -> None:
        self.geometries, self.owner = list(geometries), owner

    def similarity(self, query: int, rows: np.ndarray) -> np.ndarray:
        """(len(rows),) float64 similarities of ``rows`` to row ``query`` (higher = closer)."""
        return self.geometries[self.owner[query]].similarity(query, rows)


def _neighbours(
    top_k: TopK, queries: np.ndarray, candidates: np.ndarray, *, k: int, artists: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each query among ``candidates`` (bool (n,)), never the query itself and,
    with ``artists`` (the catalogue's :func:`~songsim.neighbours.artist_keys`), never its
    artist. Queries with fewer than ``k`` such candidates are dropped.

    Returns ``(rows (m,), neighbour rows (m, k))``.
    """
    rows, found = [], []
    for q in queries:
        allowed = candidates.copy()
        if artists is not None:
            allowed &= ~exclusion_mask(candidates.size, artists=artists, query_artist=artists[q])
        allowed[q] = False
        if int(allowed.sum()) < k:
            continue
        rows.append(int(q))
        found.append(top_k(int(q), k, candidates, artists is not None))
    return np.asarray(rows, dtype=np.int64), np.asarray(found, dtype=np.int64).reshape(len(rows), k)


def _precision(
    top_k: TopK,
    labels: np.ndarray,
    known: np.ndarray,
    queries: np.ndarray,
    *,
    k: int,
    figure: str,
    artists: np.ndarray | None = None,
) -> _Outcome:
    """P@k of "same label as the query" among the labelled candidates, per query."""
    rows, found = _neighbours(top_k, queries, known, k=k, artists=artists)
    if rows.size == 0:
        return f"no query has {k} labelled candidates" + (" outside its artist" if artists is not None else "")
    return _PerQuery(rows, {figure: np.array([precision_at_k(labels[nb] == labels[q], k) for q, nb in zip(rows, found)])})


def _year_distance(top_k: TopK, labels: np.ndarray, known: np.ndarray, queries: np.ndarray, *, k: int) -> _Outcome:
    """Mean |year difference| between each query and its top-k songs with a year, in years, per query."""
    rows, found = _neighbours(top_k, queries, known, k=k)
    if rows.size == 0:
        return f"fewer than {k} other songs have a year"
    years = np.array([np.nan if v is None else float(v) for v in labels])
    return _PerQuery(rows, {f"year_distance@{k}": np.abs(years[found] - years[rows][:, None]).mean(axis=1)})


def _hubness(top_k: TopK, covered: np.ndarray, *, k: int, weights: np.ndarray) -> _Outcome:
    """Hubness of the top-k graph of every catalogue song with a vector (``covered``), and on
    each resample of ``weights`` (n_boot, n_tracks) the songs' k-occurrences resampled."""
    n = int(covered.sum())
    if n <= k:
        return f"the catalogue has {n} tracks; hubness at k={k} needs more than {k}"
    rows = np.flatnonzero(covered)
    _, found = _neighbours(top_k, rows, covered, k=k)
    graph = np.searchsorted(rows, found)  # the top-k lists as positions among the covered rows
    hub = hubness(graph, n)
    resampled = resampled_hubness(k_occurrence(graph, n), weights[:, rows])
    return _Resampled(
        {"hubness_skew": hub["skewness"], "orphans": hub["orphans"]},
        {"hubness_skew": resampled["skewness"], "orphans": resampled["orphans"]},
        n,
    )


def _exact_index(
    vectors: np.ndarray, metric: str, hubness: str = "none", covered: np.ndarray | None = None
) -> ExactIndex | HubnessReducedIndex | PrecomputedIndex:
    """The exact index every figure searches: by ``metric`` (a distance space's rows for
    ``"precomputed"``), with the ``hubness`` reduction asked (statistics over ``covered``)."""
    if hubness != "none":
        return HubnessReducedIndex(vectors, metric=metric, method=hubness, covered=covered)
    return PrecomputedIndex(vectors) if metric == PRECOMPUTED else ExactIndex(vectors, metric=metric)


class _Geometry:
    """A space's vectors prepared for one metric: ``points`` (n, dim) float64 are unit rows
    for cosine (zero rows stay zero; dot products are the cosine similarities
    :class:`~songsim.neighbours.ExactIndex` ranks by), the vectors themselves for euclidean;
    for ``"precomputed"`` the (n, n) float32 distance matrix itself (row = query)."""

    def __init__(self, points: np.ndarray, metric: str) -> None:
        self.points, self.metric = points, metric

    def similarity(self, query: int, rows: np.ndarray) -> np.ndarray:
        """(len(rows),) float64 similarities of ``rows`` to row ``query`` (higher = closer;
        −distance for euclidean and precomputed)."""
        if self.metric == "cosine":
            return self.points[rows] @ self.points[query]
        if self.metric == PRECOMPUTED:
            return -self.points[query, rows].astype(np.float64)
        return -np.linalg.norm(self.points[rows] - self.points[query], axis=1)

    def cluster_points(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), d) float64 coordinates of ``rows`` that the clusterings run on: the
        points, or for a distance space the rows' classical-MDS coordinates (every axis with a
        positive eigenvalue, at most :data:`CLUSTER_MDS_DIMS`; module docstring)."""
        if self.metric != PRECOMPUTED:
            return self.points[rows]
        from songsim.maps import ClassicalMDS

        mds = ClassicalMDS(self.points[np.ix_(rows, rows)], n_components=min(CLUSTER_MDS_DIMS, max(rows.size - 1, 1)))
        kept = mds.eigenvalues_ > 0
        return mds.coords_[:, kept] if kept.any() else mds.coords_[:, :1]


def _geometry(vectors: np.ndarray, metric: str) -> _Geometry:
    if metric == PRECOMPUTED:
        return _Geometry(np.asarray(vectors, dtype=np.float32), metric)
    x = vectors.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms == 0, 1.0, norms)
    return _Geometry(x, metric)


def _ranking(geometry: _Geometry, queries: np.ndarray, genres: np.ndarray, known: np.ndarray, *, seed: int) -> _Outcome:
    """nDCG@1, nDCG@6, MAP over 3 same- + 3 different-genre candidates; pairwise accuracy
    over 3 × 5 pairs. A query needs 3 other same-genre and 5 different-genre songs."""
    relevance = np.array([1] * N_SAME + [0] * N_RANKED_DIFFERENT)
    ndcg1, ndcg6, ap, pairwise, used = [], [], [], [], []
    for q in queries:
        same = np.flatnonzero(known & (genres == genres[q]))
        same = same[same != q]
        different = np.flatnonzero(known & (genres != genres[q]))
        if same.size < N_SAME or different.size < N_DIFFERENT:
            continue
        rng = np.random.default_rng([seed, int(q)])
        similar = rng.choice(same, N_SAME, replace=False)
        dissimilar = rng.choice(different, N_DIFFERENT, replace=False)
        # shuffle before the stable sort so that tied scores fall in random (not label) order
        shuffled = rng.permutation(relevance.size)
        candidates = np.concatenate([similar, dissimilar[:N_RANKED_DIFFERENT]])[shuffled]
        ranked = relevance[shuffled][np.argsort(-geometry.similarity(q, candidates), kind="stable")]
        ndcg1.append(ndcg_at_k(ranked, 1))
        ndcg6.append(ndcg_at_k(ranked, relevance.size))
        ap.append(average_precision(ranked, n_relevant=N_SAME))
        pairwise.append(pairwise_accuracy(geometry.similarity(q, similar), geometry.similarity(q, dissimilar)))
        used.append(int(q))
    if not ap:
        return f"no query has {N_SAME} other songs of its genre and {N_DIFFERENT} of other genres"
    per_query = {"ndcg@1": ndcg1, "ndcg@6": ndcg6, "map": ap, "pairwise_acc": pairwise}
    return _PerQuery(np.asarray(used, dtype=np.int64), {f: np.asarray(v, dtype=np.float64) for f, v in per_query.items()})


def _clustering(groups: Sequence[tuple[_Geometry, np.ndarray]], genres: np.ndarray, *, seed: int) -> _Outcome:
    """V-measure and AMI of k-means and a Gaussian mixture on the query points (unit-norm
    for cosine; classical-MDS coordinates for a distance space), one clustering per
    ``(geometry, query rows)`` group — the space's queries, or each fold model's held-out
    ones — with as many clusters as genres among the group's queries; a figure is the mean
    over the groups weighted by their queries. No bootstrap CI (:data:`NO_CI_CLUSTERING`)."""
    reasons, used = [], 0
    totals = dict.fromkeys(CLUSTER_FIGURES, 0.0)
    for geometry, queries in groups:
        n_genres = len(set(genres[queries]))
        if n_genres < 2 or queries.size <= n_genres:
            reasons.append(
                f"clustering needs at least 2 genres and more query tracks than genres; "
                f"got {n_genres} genre(s) in {queries.size} tracks"
            )
            continue
        scores = cluster_scores(geometry.cluster_points(queries), genres[queries], n_clusters=n_genres, seed=seed)
        for figure in CLUSTER_FIGURES:
            totals[figure] += queries.size * scores[figure]
        used += queries.size
    if used == 0:
        return reasons[0]
    return _Resampled({f: totals[f] / used for f in CLUSTER_FIGURES}, {}, used)


def _reference_tiers(catalogue: Catalogue) -> np.ndarray | str:
    """(n, 2) int64 codes of each song's album key (artist + album name) and artist, -1 where
    unknown or where the catalogue lacks the column — or why no reference list exists."""
    has_album, has_artist = catalogue.has_labels("album"), catalogue.has_labels("artist")
    if not (has_album or has_artist):
        return "the catalogue has no album or artist labels"
    n = len(catalogue)
    artists = artist_keys(catalogue.labels("artist")) if has_artist else np.full(n, None, dtype=object)
    albums = [None] * n
    if has_album:
        names = artist_keys(catalogue.labels("album"))  # the same normalisation: stripped, casefolded
        albums = [None if album is None else f"{artist}\x00{album}" for artist, album in zip(artists, names)]
    return np.stack([pd.factorize(pd.Series(column, dtype=object))[0] for column in (albums, list(artists))], axis=1)


def _reference_overlap(
    catalogue: Catalogue, top_k: TopK, geometry: _Geometry, queries: np.ndarray, covered: np.ndarray
) -> _Outcome:
    """Top-n overlap and normalised edit distance against the album > artist reference list
    (see the module docstring), for n in :data:`OVERLAP_NS`, among the rows with a vector."""
    keys = _reference_tiers(catalogue)
    if isinstance(keys, str):
        return keys
    n_items = len(catalogue)
    depth = min(max(OVERLAP_NS), int(covered.sum()) - 1)
    if depth < 1:
        return f"the catalogue has {n_items} track(s); a reference list needs at least 2"
    overlap: dict[int, list[float]] = {n: [] for n in OVERLAP_NS}
    edit: dict[int, list[float]] = {n: [] for n in OVERLAP_NS}
    used: list[int] = []
    for q in queries:
        tier = np.zeros(n_items, dtype=np.int64)
        for level, column in ((1, 1), (2, 0)):  # artist, then album (overrides)
            if keys[q, column] >= 0:
                tier[keys[:, column] == keys[q, column]] = level
        tier[q] = 0
        tier[~covered] = 0
        relevant = np.flatnonzero(tier)
        if relevant.size == 0:
            continue
        reference = relevant[np.lexsort((-geometry.similarity(q, relevant), -tier[relevant]))]
        retrieved = top_k(int(q), depth, covered, False)
        for n in OVERLAP_NS:
            m = min(n, reference.size, depth)
            overlap[n].append(top_n_overlap(reference[:m], retrieved[:n], n))
            edit[n].append(normalised_edit_distance(reference[:m], retrieved[:m]))
        used.append(int(q))
    if not used:
        return f"none of the {queries.size} query tracks shares an album or artist with another song"
    per_query = {f"overlap@{n}": np.asarray(overlap[n], dtype=np.float64) for n in OVERLAP_NS}
    per_query.update({f"edit_distance@{n}": np.asarray(edit[n], dtype=np.float64) for n in OVERLAP_NS})
    return _PerQuery(np.asarray(used, dtype=np.int64), per_query)


def label_precision(vectors: np.ndarray, labels: np.ndarray, queries: np.ndarray, *, k: int = 5, metric: str = "cosine") -> float | None:
    """Mean P@k of "same label as the query" (the ``genre_p@k`` figure of any label column).

    Parameters
    ----------
    vectors : np.ndarray [shape=(n, dim)]
        A space's vectors, catalogue row order (for ``"precomputed"``: its (n, n) distances).
    labels : np.ndarray [shape=(n,), object]
        The label of every row (None where missing).
    queries : np.ndarray [shape=(m,), int]
        Query rows; those without a label are left out. Candidates: every other labelled row.
    k : int >= 1
    metric : {"cosine", "euclidean", "precomputed"}

    Returns
    -------
    float or None
        None when no query has a label and ``k`` labelled candidates.
    """
    known = np.array([v is not None for v in labels], dtype=bool)
    queries = np.asarray(queries, dtype=np.int64)
    index = _exact_index(vectors, metric)

    def top_k(row: int, k: int, candidates: np.ndarray, exclude_artist: bool) -> np.ndarray:
        return index.query_row(row, k=k, exclude=~candidates).indices

    outcome = _precision(top_k, labels, known, queries[known[queries]], k=k, figure="p")
    return None if isinstance(outcome, str) else float(np.mean(outcome.values["p"]))


def figures_table(result: dict[str, Any], *, with_ci: bool = False) -> pd.DataFrame:
    """The figures of :func:`evaluate_catalogue` as a table: one row per figure (in the order
    of :func:`_figure_names`), one column per space; a skipped figure is NaN. With
    ``with_ci`` every cell is text, the figure and its 95 % CI (``"0.720 [0.660, 0.780]"``,
    ``"—"`` when skipped), as in :func:`format_table`."""
    names = _figure_names(result.get("k", 5))
    if with_ci:
        return pd.DataFrame({space: [_cell(scores, f) for f in names] for space, scores in result["spaces"].items()}, index=names)
    return pd.DataFrame(
        {space: [scores.get(figure, np.nan) for figure in names] for space, scores in result["spaces"].items()},
        index=names,
    )
