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

Candidates are every catalogue song that carries the figure's label (an unlabelled song
cannot be judged, so it is left out of that figure's candidates). Queries are every song
with the label, or — for a supervised space with a ``test_rows_`` attribute — only its
held-out test rows, so a space is never scored on songs it was trained on. The number of
queries behind each figure is reported in ``"n_queries"``; a figure that cannot be computed
(labels missing, too few songs) is left out with its reason in ``"skipped"``.

Random draws depend only on ``(seed, query row)``, so every space is scored on the same
query/candidate sets and the comparison between spaces is paired.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from songsim.catalogue import Catalogue, load_catalogue
from songsim.errors import NotBuiltError, SongsimError
from songsim.metrics import (
    average_precision,
    cluster_scores,
    hubness,
    ndcg_at_k,
    normalised_edit_distance,
    pairwise_accuracy,
    precision_at_k,
    top_n_overlap,
)
from songsim.neighbours import ExactIndex, HubnessReducedIndex, artist_keys, exclusion_mask
from songsim.query import SpaceLoader, resolve_metric, search
from songsim.spaces.base import covered_rows
from songsim.spaces.store import built_space_names, load_built_space, space_info

__all__ = [
    "N_SAME",
    "N_DIFFERENT",
    "N_RANKED_DIFFERENT",
    "LIST_FIGURES",
    "OVERLAP_NS",
    "evaluate_space",
    "evaluate_catalogue",
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
LIST_FIGURES = tuple(f"{kind}@{n}" for kind in ("overlap", "edit_distance") for n in OVERLAP_NS)

#: on_progress(stage, fraction_done 0–1, message), as in :mod:`songsim.build`
ProgressFn = Callable[[str, float, str], None]
#: what a figure helper gives: ({figure: value}, queries used), or the reason it is skipped
_Outcome = tuple[dict[str, float], int] | str


def evaluate_space(
    catalogue: Catalogue, space: Any, *, seed: int = 0, k: int = 5, metric: str | None = None, hubness: str = "none"
) -> dict[str, Any]:
    """Every label-based figure of one fitted space (see the module docstring).

    Parameters
    ----------
    catalogue : Catalogue
        The catalogue the space was fitted on (same rows, same order).
    space : Space
        A fitted space: ``vectors_`` ``(n_tracks, dim)``; optionally ``test_rows_``, an int
        array of the rows it never trained on, which then are the only queries.
    seed : int
        Seed of the ranking protocol's draws and of the clusterings.
    k : int >= 1
        Neighbours per query for the P@k, year and hubness figures.
    metric : {"cosine", "euclidean"} or None
        Similarity of every figure: cosine, or ``−‖a − b‖``; ``None``: the space's own
        (:attr:`songsim.spaces.base.Space.metric`).
    hubness : {"none", "mp", "mp-gauss", "ls"}
        Search every top-k (P@k, year distance, hubness, top-n lists) with distances rescaled
        by mutual proximity or local scaling (:class:`songsim.neighbours.HubnessReducedIndex`);
        the ranking protocol and the clusterings keep the space's own geometry.

    Returns
    -------
    dict
        JSON-ready (plain floats and ints): each computed figure, rounded to 4 decimals;
        ``"n_queries"``: {figure: queries it averaged over}; ``"skipped"``: {figure: reason};
        ``"held_out"``: whether queries were restricted to ``test_rows_``; ``"dim"``;
        ``"metric"``.

    Raises
    ------
    SongsimError
        The space is unfitted or does not match the catalogue, ``test_rows_`` is invalid,
        or ``k`` is not a positive integer.
    """
    name = getattr(space, "name", type(space).__name__)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SongsimError(f"k must be an integer >= 1; got {k!r}.")
    metric = resolve_metric(space, metric)
    vectors = _space_vectors(catalogue, space, name)
    n = vectors.shape[0]
    covered = covered_rows(space)  # rows with a vector: the only queries and candidates
    queries = _query_rows(space, n, name)
    queries = queries[covered[queries]]
    index = ExactIndex(vectors, metric=metric) if hubness == "none" else HubnessReducedIndex(vectors, metric=metric, method=hubness)
    top_k = _searcher(catalogue, space, index, hubness)
    geometry = _geometry(vectors, metric)
    figures: dict[str, float] = {}
    n_queries: dict[str, int] = {}
    skipped: dict[str, str] = {}

    def settle(names: Sequence[str], outcome: _Outcome) -> None:
        if isinstance(outcome, str):
            skipped.update(dict.fromkeys(names, outcome))
            return
        values, used = outcome
        for figure, value in values.items():
            figures[figure] = round(float(value), DECIMALS)
            n_queries[figure] = int(used)

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
        settle(CLUSTER_FIGURES, _clustering(geometry, genre_queries, labels, seed=seed))

    emotion_p = f"emotion_p@{k}"
    emotion = _labelled(catalogue, "emotion", queries, covered)
    settle([emotion_p], emotion if isinstance(emotion, str) else _precision(top_k, *emotion, k=k, figure=emotion_p))
    year = _labelled(catalogue, "year", queries, covered)
    settle([f"year_distance@{k}"], year if isinstance(year, str) else _year_distance(top_k, *year, k=k))
    settle(["hubness_skew", "orphans"], _hubness(top_k, covered, k=k))
    settle(LIST_FIGURES, _reference_overlap(catalogue, top_k, geometry, queries, covered))

    order = [f for f in _figure_names(k) if f in figures]
    return {
        **{f: figures[f] for f in order},
        "n_queries": {f: n_queries[f] for f in order},
        "skipped": {f: skipped[f] for f in _figure_names(k) if f in skipped},
        "held_out": hasattr(space, "test_rows_"),
        "dim": int(vectors.shape[1]),
        "metric": metric,
        "hubness": hubness,
    }


def evaluate_catalogue(
    root: str | Path,
    *,
    spaces: Sequence[str] | None = None,
    seed: int = 0,
    k: int = 5,
    metric: str | None = None,
    hubness: str = "none",
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
        Seed of the ranking protocol and clusterings (same draws for every space).
    k : int >= 1
        Neighbours per query.
    metric : {"cosine", "euclidean"}, optional
        Similarity of every figure; ``None``: each space's own (:attr:`Space.metric`: cosine,
        euclidean for wavenet, ae-2d and spectrogram-l2), named in its figures' ``"metric"``.
    on_progress : callable, optional
        ``on_progress(stage, fraction_done, message)``, called before each space and at the end.

    Returns
    -------
    dict
        ``{"spaces": {name: figures}, "n_tracks": int, "seed": int, "k": int, "metric": str}``,
        JSON-ready (``"metric"``: the one given, or ``"each space's own"``).

    Raises
    ------
    UnknownSpaceError
        A name the registry does not know.
    NotBuiltError
        A space not built in this catalogue (or built on other tracks), or no built space.
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
    results = {}
    for i, name in enumerate(names):
        report("evaluate", i / len(names), f"{name}: {len(catalogue)} tracks")
        space = load_built_space(catalogue, name)
        results[name] = evaluate_space(catalogue, space, seed=seed, k=k, metric=metric, hubness=hubness)
    report("done", 1.0, f"evaluated {len(names)} space(s)")
    return {
        "spaces": results, "n_tracks": len(catalogue), "seed": int(seed), "k": int(k),
        "metric": metric or "each space's own", "hubness": hubness,
    }  # fmt: skip


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`evaluate_catalogue`'s result: one row per figure, one
    column per space, then the query counts and the skipped figures with their reasons."""
    names = list(result["spaces"])
    per_space = result["spaces"]
    figures = list(dict.fromkeys(f for name in names for f in per_space[name]["n_queries"]))
    width = max([len(f) for f in figures] + [len("figure")])
    columns = [max(len(name), 8) for name in names]
    lines = ["  ".join(["figure".ljust(width)] + [name.rjust(c) for name, c in zip(names, columns)])]
    for figure in figures:
        cells = [f"{per_space[name][figure]:.4f}" if figure in per_space[name] else "—" for name in names]
        lines.append("  ".join([figure.ljust(width)] + [cell.rjust(c) for cell, c in zip(cells, columns)]))
    lines.append("")
    reduced = "" if result.get("hubness", "none") == "none" else f", hubness reduction {result['hubness']}"
    lines.append(f"{result['n_tracks']} tracks, k={result['k']}, seed={result['seed']}{reduced}")
    for name in names:
        counts = sorted(set(per_space[name]["n_queries"].values())) or [0]
        span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        split = " (its test split)" if per_space[name]["held_out"] else ""
        lines.append(f"{name}: {span} queries per figure{split}, {per_space[name]['metric']} similarity")
        for figure, reason in per_space[name]["skipped"].items():
            lines.append(f"  skipped {figure}: {reason}")
    return "\n".join(lines)


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
    """Mean P@k of "same label as the query" among the labelled candidates."""
    rows, found = _neighbours(top_k, queries, known, k=k, artists=artists)
    if rows.size == 0:
        return f"no query has {k} labelled candidates" + (" outside its artist" if artists is not None else "")
    return {figure: np.mean([precision_at_k(labels[nb] == labels[q], k) for q, nb in zip(rows, found)])}, rows.size


def _year_distance(top_k: TopK, labels: np.ndarray, known: np.ndarray, queries: np.ndarray, *, k: int) -> _Outcome:
    """Mean |year difference| between each query and its top-k songs with a year, in years."""
    rows, found = _neighbours(top_k, queries, known, k=k)
    if rows.size == 0:
        return f"fewer than {k} other songs have a year"
    years = np.array([np.nan if v is None else float(v) for v in labels])
    return {f"year_distance@{k}": np.abs(years[found] - years[rows][:, None]).mean()}, rows.size


def _hubness(top_k: TopK, covered: np.ndarray, *, k: int) -> _Outcome:
    """Hubness of the top-k graph of every catalogue song with a vector (``covered``)."""
    n = int(covered.sum())
    if n <= k:
        return f"the catalogue has {n} tracks; hubness at k={k} needs more than {k}"
    rows = np.flatnonzero(covered)
    _, found = _neighbours(top_k, rows, covered, k=k)
    hub = hubness(np.searchsorted(rows, found), n)  # k-occurrence over the covered rows
    return {"hubness_skew": hub["skewness"], "orphans": hub["orphans"]}, n


class _Geometry:
    """A space's vectors prepared for one metric: ``points`` (n, dim) float64 are unit rows
    for cosine (zero rows stay zero; dot products are the cosine similarities
    :class:`~songsim.neighbours.ExactIndex` ranks by), the vectors themselves for euclidean."""

    def __init__(self, points: np.ndarray, metric: str) -> None:
        self.points, self.metric = points, metric

    def similarity(self, query: int, rows: np.ndarray) -> np.ndarray:
        """(len(rows),) float64 similarities of ``rows`` to row ``query`` (higher = closer)."""
        if self.metric == "cosine":
            return self.points[rows] @ self.points[query]
        return -np.linalg.norm(self.points[rows] - self.points[query], axis=1)


def _geometry(vectors: np.ndarray, metric: str) -> _Geometry:
    x = vectors.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms == 0, 1.0, norms)
    return _Geometry(x, metric)


def _ranking(geometry: _Geometry, queries: np.ndarray, genres: np.ndarray, known: np.ndarray, *, seed: int) -> _Outcome:
    """nDCG@1, nDCG@6, MAP over 3 same- + 3 different-genre candidates; pairwise accuracy
    over 3 × 5 pairs. A query needs 3 other same-genre and 5 different-genre songs."""
    relevance = np.array([1] * N_SAME + [0] * N_RANKED_DIFFERENT)
    ndcg1, ndcg6, ap, pairwise = [], [], [], []
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
    if not ap:
        return f"no query has {N_SAME} other songs of its genre and {N_DIFFERENT} of other genres"
    means = {"ndcg@1": np.mean(ndcg1), "ndcg@6": np.mean(ndcg6), "map": np.mean(ap), "pairwise_acc": np.mean(pairwise)}
    return means, len(ap)


def _clustering(geometry: _Geometry, queries: np.ndarray, genres: np.ndarray, *, seed: int) -> _Outcome:
    """V-measure and AMI of k-means and a Gaussian mixture on the query points (unit-norm
    for cosine)."""
    n_genres = len(set(genres[queries]))
    if n_genres < 2 or queries.size <= n_genres:
        return (
            f"clustering needs at least 2 genres and more query tracks than genres; "
            f"got {n_genres} genre(s) in {queries.size} tracks"
        )
    return cluster_scores(geometry.points[queries], genres[queries], n_clusters=n_genres, seed=seed), queries.size


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
    used = len(overlap[OVERLAP_NS[0]])
    if used == 0:
        return f"none of the {queries.size} query tracks shares an album or artist with another song"
    means = {f"overlap@{n}": np.mean(overlap[n]) for n in OVERLAP_NS}
    means.update({f"edit_distance@{n}": np.mean(edit[n]) for n in OVERLAP_NS})
    return means, used


def label_precision(vectors: np.ndarray, labels: np.ndarray, queries: np.ndarray, *, k: int = 5, metric: str = "cosine") -> float | None:
    """Mean P@k of "same label as the query" (the ``genre_p@k`` figure of any label column).

    Parameters
    ----------
    vectors : np.ndarray [shape=(n, dim)]
        A space's vectors, catalogue row order.
    labels : np.ndarray [shape=(n,), object]
        The label of every row (None where missing).
    queries : np.ndarray [shape=(m,), int]
        Query rows; those without a label are left out. Candidates: every other labelled row.
    k : int >= 1
    metric : {"cosine", "euclidean"}

    Returns
    -------
    float or None
        None when no query has a label and ``k`` labelled candidates.
    """
    known = np.array([v is not None for v in labels], dtype=bool)
    queries = np.asarray(queries, dtype=np.int64)
    index = ExactIndex(vectors, metric=metric)

    def top_k(row: int, k: int, candidates: np.ndarray, exclude_artist: bool) -> np.ndarray:
        return index.query_row(row, k=k, exclude=~candidates).indices

    outcome = _precision(top_k, labels, known, queries[known[queries]], k=k, figure="p")
    return None if isinstance(outcome, str) else float(outcome[0]["p"])


def figures_table(result: dict[str, Any]) -> pd.DataFrame:
    """The figures of :func:`evaluate_catalogue` as a table: one row per figure (in the order
    of :func:`_figure_names`), one column per space; a skipped figure is NaN."""
    names = _figure_names(result.get("k", 5))
    return pd.DataFrame(
        {space: [scores.get(figure, np.nan) for figure in names] for space, scores in result["spaces"].items()},
        index=names,
    )
