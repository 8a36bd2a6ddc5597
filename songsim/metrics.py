"""Evaluation metrics: pure functions over arrays.

Every function validates its inputs first (a :class:`~songsim.errors.SongsimError` whose
message shows the bad value), never mutates them, and defines its degenerate cases: an
empty ranking or a query without any relevant item scores **0.0** with a
:class:`MetricWarning` (the ``trec_eval`` / scikit-learn convention, with mir_eval's habit of
warning), so a mean over queries stays defined and every compared system gets the same
value on such a query.

Conventions and units
---------------------
- A *ranking* is given as the relevance of each retrieved item **in rank order** (best
  first): ``rel[0]`` is the relevance of the item at rank 1. Ranks in formulas are 1-based.
- Relevance is a non-negative number: binary (0/1) for :func:`precision_at_k` and
  :func:`average_precision`, graded (e.g. 0–3, or the MIREX BROAD 0/1/2) for
  :func:`dcg_at_k` and :func:`ndcg_at_k`. Metrics are unitless, in ``[0, 1]`` unless stated.
- ``k`` is a cut-off in ranks; a ranking shorter than ``k`` is scored as it is (missing
  ranks contribute nothing), so P@k still divides by ``k``.
- Scores are similarities: higher = more similar.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy.stats import skew
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, v_measure_score
from sklearn.mixture import GaussianMixture

from songsim.errors import SongsimError

__all__ = [
    "MetricWarning",
    "GAINS",
    "precision_at_k",
    "dcg_at_k",
    "ndcg_at_k",
    "average_precision",
    "mean_average_precision",
    "pairwise_accuracy",
    "top_n_overlap",
    "normalised_edit_distance",
    "k_occurrence",
    "hubness",
    "resampled_hubness",
    "cluster_scores",
    "ALPHA_LEVELS",
    "ndcg_of_scores",
    "krippendorff_alpha",
]

#: gain functions of (n)DCG: "exponential" = Burges et al. 2^rel − 1, "linear" = Järvelin rel
GAINS = ("exponential", "linear")


class MetricWarning(UserWarning):
    """A metric met a degenerate case (empty ranking, no relevant item) and returned its
    documented value."""


# ----------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------
def _as_1d(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    """``values`` as a finite 1-D float64 array (a copy)."""
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SongsimError(f"{name} must be a 1-D array of numbers; got {values!r} ({exc}).") from None
    if arr.ndim != 1:
        raise SongsimError(f"{name} must be 1-D (one value per item); got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        raise SongsimError(f"{name} must be finite; got {arr.tolist()!r}.")
    return arr


def _relevance(values: Sequence[float] | np.ndarray, name: str, *, binary: bool) -> np.ndarray:
    arr = _as_1d(values, name)
    if (arr < 0).any():
        raise SongsimError(f"{name} must be non-negative relevance grades; got {arr.tolist()!r}.")
    if binary and not np.isin(arr, (0.0, 1.0)).all():
        raise SongsimError(
            f"{name} must be binary (0/1) relevance; got {arr.tolist()!r}. Threshold graded "
            f"relevance first, e.g. (relevance >= 1)."
        )
    return arr


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SongsimError(f"k must be an integer >= 1; got {k!r}.")
    return int(k)


def _warn(message: str) -> None:
    warnings.warn(message, MetricWarning, stacklevel=3)


# ----------------------------------------------------------------------------------------
# ranking metrics
# ----------------------------------------------------------------------------------------
def precision_at_k(relevance_in_rank_order: Sequence[float] | np.ndarray, k: int) -> float:
    """Precision at cut-off ``k`` of one ranking (binary relevance).

    .. math:: P@k = \\frac{1}{k} \\sum_{i=1}^{\\min(k, n)} rel_i

    The ``trec_eval`` variant: the denominator is always ``k``, so a ranking shorter than
    ``k`` is penalised for its missing ranks (Manning, Raghavan & Schütze, *Introduction to
    Information Retrieval*, 2008, §8.4).

    Parameters
    ----------
    relevance_in_rank_order : np.ndarray [shape=(n,)]
        0/1 relevance of the retrieved items, best rank first.
    k : int >= 1
        Cut-off, in ranks.

    Returns
    -------
    float
        In ``[0, 1]``; 0.0 with a :class:`MetricWarning` for an empty ranking.
    """
    rel = _relevance(relevance_in_rank_order, "relevance_in_rank_order", binary=True)
    k = _check_k(k)
    if rel.size == 0:
        _warn("precision_at_k: the ranking is empty; P@k = 0.0.")
        return 0.0
    return float(rel[:k].sum() / k)


def dcg_at_k(gains_in_rank_order: Sequence[float] | np.ndarray, k: int, *, gain: str = "exponential") -> float:
    """Discounted cumulative gain at cut-off ``k`` of one ranking (graded relevance).

    .. math:: DCG@k = \\sum_{i=1}^{\\min(k, n)} \\frac{g(rel_i)}{\\log_2(i + 1)}

    with ``g(rel) = 2^rel − 1`` for ``gain="exponential"`` (Burges et al., "Learning to rank
    using gradient descent", ICML 2005) or ``g(rel) = rel`` for ``gain="linear"`` (Järvelin &
    Kekäläinen, "Cumulated gain-based evaluation of IR techniques", ACM TOIS 20(4), 2002,
    with the ``log2(i + 1)`` discount on every rank, as in scikit-learn's ``dcg_score``).
    For binary relevance both gains agree.

    Parameters
    ----------
    gains_in_rank_order : np.ndarray [shape=(n,)]
        Non-negative relevance grades of the retrieved items, best rank first.
    k : int >= 1
        Cut-off, in ranks; a shorter ranking sums what it has.
    gain : {"exponential", "linear"}

    Returns
    -------
    float
        Non-negative, in gain units; 0.0 for an empty ranking (an empty sum, no warning).
    """
    rel = _relevance(gains_in_rank_order, "gains_in_rank_order", binary=False)
    k = _check_k(k)
    if gain not in GAINS:
        raise SongsimError(f"gain must be one of {', '.join(GAINS)}; got {gain!r}.")
    top = rel[:k]
    gains = np.exp2(top) - 1.0 if gain == "exponential" else top
    discounts = np.log2(np.arange(2, top.size + 2, dtype=np.float64))
    return float(np.sum(gains / discounts))


def ndcg_at_k(
    relevance_in_rank_order: Sequence[float] | np.ndarray,
    k: int,
    *,
    ideal_relevance: Sequence[float] | np.ndarray | None = None,
    gain: str = "exponential",
) -> float:
    """Normalised DCG at cut-off ``k`` of one ranking (graded relevance).

    .. math:: nDCG@k = \\frac{DCG@k(rel)}{DCG@k(\\mathrm{sort}_\\downarrow(ideal))}

    See :func:`dcg_at_k` for the gain variants (``"exponential"``: Burges 2^rel − 1;
    ``"linear"``: Järvelin rel, which is what scikit-learn's ``ndcg_score`` computes).

    Parameters
    ----------
    relevance_in_rank_order : np.ndarray [shape=(n,)]
        Non-negative relevance grades of the retrieved items, best rank first.
    k : int >= 1
        Cut-off, in ranks.
    ideal_relevance : np.ndarray [shape=(m,)], optional
        Relevance of **every judged item of the query** (e.g. the whole rated pool of a panel
        study, including items this system did not retrieve); the ideal ranking sorts them
        descending. Default: the ranked list itself (the pool is what was retrieved).
    gain : {"exponential", "linear"}

    Returns
    -------
    float
        In ``[0, 1]``; 0.0 with a :class:`MetricWarning` when no judged item is relevant
        (ideal DCG = 0), as ``trec_eval`` and scikit-learn do.

    Raises
    ------
    SongsimError
        Invalid relevance, ``k``, ``gain``, or an ``ideal_relevance`` whose ideal DCG is
        below the ranking's DCG (it must hold the ranked items' grades too).
    """
    rel = _relevance(relevance_in_rank_order, "relevance_in_rank_order", binary=False)
    ideal = rel if ideal_relevance is None else _relevance(ideal_relevance, "ideal_relevance", binary=False)
    dcg = dcg_at_k(rel, k, gain=gain)
    idcg = dcg_at_k(np.sort(ideal)[::-1], k, gain=gain)
    if idcg == 0.0:
        _warn("ndcg_at_k: no judged item is relevant (ideal DCG = 0); nDCG = 0.0.")
        return 0.0
    if dcg > idcg * (1 + 1e-12):
        raise SongsimError(
            f"ideal_relevance {np.asarray(ideal).tolist()!r} gives an ideal DCG@{k} ({idcg:.4g}) below the "
            f"ranking's DCG ({dcg:.4g}); pass the grades of every judged item of the query, "
            f"the ranked ones included."
        )
    return float(dcg / idcg)


def average_precision(
    binary_relevance_in_rank_order: Sequence[float] | np.ndarray, *, n_relevant: int | None = None
) -> float:
    """Non-interpolated average precision of one ranking (binary relevance).

    .. math:: AP = \\frac{1}{R} \\sum_{i=1}^{n} rel_i \\cdot P@i

    where ``R`` is the number of relevant items of the query (``trec_eval``'s definition;
    Manning, Raghavan & Schütze 2008, §8.4). Relevant items that were not retrieved count as
    retrieved at rank infinity (precision 0).

    Parameters
    ----------
    binary_relevance_in_rank_order : np.ndarray [shape=(n,)]
        0/1 relevance of the retrieved items, best rank first.
    n_relevant : int, optional
        ``R``: relevant items the query has in all, retrieved or not (at least the number
        retrieved). Default: the relevant items in the ranking (AP of the list itself, what
        scikit-learn's ``average_precision_score`` computes over a fully ranked list).

    Returns
    -------
    float
        In ``[0, 1]``; 0.0 with a :class:`MetricWarning` when ``R = 0``.
    """
    rel = _relevance(binary_relevance_in_rank_order, "binary_relevance_in_rank_order", binary=True)
    hits = int(rel.sum())
    if n_relevant is None:
        total = hits
    elif isinstance(n_relevant, bool) or not isinstance(n_relevant, (int, np.integer)) or n_relevant < hits:
        raise SongsimError(
            f"n_relevant must be an integer >= the {hits} relevant item(s) in the ranking; got {n_relevant!r}."
        )
    else:
        total = int(n_relevant)
    if total == 0:
        _warn("average_precision: the query has no relevant item; AP = 0.0.")
        return 0.0
    precision_at_i = np.cumsum(rel) / np.arange(1, rel.size + 1)
    return float(np.sum(precision_at_i * rel) / total)


def mean_average_precision(
    rankings: Sequence[Sequence[float] | np.ndarray], *, n_relevant: Sequence[int] | None = None
) -> float:
    """Mean average precision over queries: the mean of :func:`average_precision`.

    .. math:: MAP = \\frac{1}{|Q|} \\sum_{q \\in Q} AP(q)

    Parameters
    ----------
    rankings : sequence of np.ndarray [shape=(n_q,)]
        One 0/1 relevance ranking per query (lengths may differ).
    n_relevant : sequence of int [shape=(|Q|,)], optional
        ``R`` per query (see :func:`average_precision`).

    Returns
    -------
    float
        In ``[0, 1]``; NaN with a :class:`MetricWarning` for no queries (a mean over nothing).
    """
    rankings = list(rankings)
    if n_relevant is not None and len(n_relevant) != len(rankings):
        raise SongsimError(f"n_relevant has {len(n_relevant)} entries for {len(rankings)} rankings; give one per query.")
    if not rankings:
        _warn("mean_average_precision: no queries; MAP = NaN.")
        return float("nan")
    totals = [None] * len(rankings) if n_relevant is None else list(n_relevant)
    return float(np.mean([average_precision(r, n_relevant=t) for r, t in zip(rankings, totals)]))


def pairwise_accuracy(
    similar_scores: Sequence[float] | np.ndarray, dissimilar_scores: Sequence[float] | np.ndarray
) -> float:
    """Share of (similar, dissimilar) pairs in which the similar item scores higher.

    .. math:: PA = \\frac{1}{|S||D|} \\sum_{s \\in S} \\sum_{d \\in D}
              \\left([s > d] + \\tfrac{1}{2}[s = d]\\right)

    The Mann–Whitney / AUC statistic of the two score samples (Hanley & McNeil, *Radiology*
    143, 1982), as used for triplet-style similarity judgements: 0.5 is chance, ties count
    one half.

    Parameters
    ----------
    similar_scores : np.ndarray [shape=(n_s,)]
        Similarity of the query to each item judged similar.
    dissimilar_scores : np.ndarray [shape=(n_d,)]
        Similarity of the query to each item judged dissimilar.

    Returns
    -------
    float
        In ``[0, 1]`` over ``n_s * n_d`` pairs; NaN with a :class:`MetricWarning` when
        either side is empty (no pair).
    """
    similar = _as_1d(similar_scores, "similar_scores")
    dissimilar = _as_1d(dissimilar_scores, "dissimilar_scores")
    if similar.size == 0 or dissimilar.size == 0:
        _warn("pairwise_accuracy: no (similar, dissimilar) pair; accuracy = NaN.")
        return float("nan")
    diff = similar[:, None] - dissimilar[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


# ----------------------------------------------------------------------------------------
# comparing a ranked list with a reference list
# ----------------------------------------------------------------------------------------
def _id_list(items: Sequence[object] | np.ndarray, name: str) -> list:
    """``items`` as a list of hashable ids, validated."""
    if isinstance(items, (str, bytes)) or not isinstance(items, (Sequence, np.ndarray)):
        raise SongsimError(f"{name} must be a sequence of item ids (e.g. track rows); got {items!r}.")
    values = items.tolist() if isinstance(items, np.ndarray) else list(items)
    try:
        for value in values:
            hash(value)
    except TypeError:
        raise SongsimError(f"{name} must hold hashable item ids; got {values!r}.") from None
    return values


def top_n_overlap(
    reference: Sequence[object] | np.ndarray, retrieved: Sequence[object] | np.ndarray, n: int
) -> float:
    """Share of the reference top-n found in the retrieved top-n, in any order.

    .. math:: O@n = \\frac{|\\mathrm{ref}_{1..n} \\cap \\mathrm{ret}_{1..n}|}{|\\mathrm{ref}_{1..n}|}

    The overlap measure of artist-similarity evaluations against a reference list (e.g.
    Last.fm's similar artists): order inside the top-n is ignored. A reference shorter than
    ``n`` (a query with fewer relevant items) is scored on what it has, so 1.0 is reachable.

    Parameters
    ----------
    reference : sequence of hashable [length n_ref]
        Reference list, best first (distinct ids).
    retrieved : sequence of hashable [length n_ret]
        The system's list, best first (distinct ids).
    n : int >= 1
        Cut-off, in ranks, applied to both lists.

    Returns
    -------
    float
        In ``[0, 1]``; 0.0 with a :class:`MetricWarning` for an empty reference.
    """
    ref = _id_list(reference, "reference")[: _check_k(n)]
    ret = _id_list(retrieved, "retrieved")[:n]
    if len(set(ref)) != len(ref) or len(set(ret)) != len(ret):
        raise SongsimError(f"reference and retrieved must not repeat an item; got {ref!r} and {ret!r}.")
    if not ref:
        _warn("top_n_overlap: the reference list is empty; overlap = 0.0.")
        return 0.0
    return len(set(ref) & set(ret)) / len(ref)


def normalised_edit_distance(reference: Sequence[object] | np.ndarray, retrieved: Sequence[object] | np.ndarray) -> float:
    """Levenshtein distance between two ranked lists, divided by the longer length.

    .. math:: NED = \\frac{\\mathrm{lev}(a, b)}{\\max(|a|, |b|)}

    ``lev`` counts the fewest insertions, deletions and substitutions of one item (each
    costing 1) that turn one list into the other (Levenshtein 1966; the Wagner–Fischer
    dynamic programme). 0 means the same items in the same order; 1 means no item can stay
    in place. Unlike :func:`top_n_overlap` it penalises order: swapping two neighbours
    costs 2 substitutions.

    Parameters
    ----------
    reference, retrieved : sequence of hashable
        The two lists, best first (compare lists cut to the same length ``n`` to score a
        top-n).

    Returns
    -------
    float
        In ``[0, 1]``; 0.0 when both lists are empty.
    """
    a = _id_list(reference, "reference")
    b = _id_list(retrieved, "retrieved")
    if not a and not b:
        return 0.0
    previous = list(range(len(b) + 1))
    for i, item in enumerate(a, start=1):
        current = [i]
        for j, other in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (item != other)))
        previous = current
    return previous[-1] / max(len(a), len(b))


# ----------------------------------------------------------------------------------------
# hubness
# ----------------------------------------------------------------------------------------
def k_occurrence(neighbour_indices: np.ndarray, n_items: int) -> np.ndarray:
    """How often each item occurs in the k-nearest-neighbour lists of all queries.

    .. math:: N_k(x) = |\\{q : x \\in kNN(q)\\}|

    (Radovanović, Nanopoulos & Ivanović, "Hubs in space", JMLR 11, 2010).

    Parameters
    ----------
    neighbour_indices : np.ndarray [shape=(n_queries, k), dtype=int]
        Row indices of each query's ``k`` neighbours, in ``0..n_items-1``.
    n_items : int >= 1
        Items that can be neighbours (rows of the space).

    Returns
    -------
    np.ndarray [shape=(n_items,), dtype=int64]
        ``N_k`` per item; sums to ``n_queries * k``.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise SongsimError(f"n_items must be an integer >= 1; got {n_items!r}.")
    arr = np.asarray(neighbour_indices)
    if arr.ndim != 2:
        raise SongsimError(f"neighbour_indices must be 2-D (n_queries, k); got shape {arr.shape}.")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise SongsimError(f"neighbour_indices must hold integer row indices; got dtype {arr.dtype}.")
    if arr.size and (arr.min() < 0 or arr.max() >= n_items):
        raise SongsimError(
            f"neighbour_indices must lie in 0..{n_items - 1}; got values from {arr.min()} to {arr.max()}."
        )
    return np.bincount(arr.ravel().astype(np.int64), minlength=int(n_items)).astype(np.int64)


def hubness(neighbour_indices: np.ndarray, n_items: int) -> dict[str, float]:
    """Hubness of a k-NN graph: skewness of the k-occurrence and the share of orphans.

    .. math:: S_{N_k} = \\frac{E[(N_k - \\mu_{N_k})^3]}{\\sigma_{N_k}^3}

    (Radovanović, Nanopoulos & Ivanović, "Hubs in space: popular nearest neighbors in
    high-dimensional data", JMLR 11, 2010): the population skewness
    (``scipy.stats.skew(..., bias=True)``) of :func:`k_occurrence`. Large positive values mean
    a few *hubs* are everybody's neighbour while many songs are never recommended.

    Parameters
    ----------
    neighbour_indices : np.ndarray [shape=(n_queries, k), dtype=int]
        Each query's ``k`` neighbours (queries are normally every item).
    n_items : int >= 1

    Returns
    -------
    dict
        ``"skewness"``: float, 0.0 when every item occurs equally often (no hubs; scipy
        would return NaN); ``"orphans"``: share of items in ``[0, 1]`` that are nobody's
        neighbour (``N_k = 0``, "anti-hubs").
    """
    counts = k_occurrence(neighbour_indices, n_items)
    skewness = 0.0 if np.all(counts == counts[0]) else float(skew(counts.astype(np.float64), bias=True))
    return {"skewness": skewness, "orphans": float(np.mean(counts == 0))}


def resampled_hubness(occurrence: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`hubness` on each bootstrap resample of the items, each item keeping its
    k-occurrence: item ``i`` counted ``weights[b, i]`` times in resample ``b`` (the k-NN graph
    is not rebuilt). The skewness is the population skewness of the weighted counts,
    ``μ3 / μ2^1.5`` from weighted raw moments (0.0 where every drawn count is equal, as in
    :func:`hubness`).

    Parameters
    ----------
    occurrence : np.ndarray [shape=(n_items,), int]
        :func:`k_occurrence` of every item.
    weights : np.ndarray [shape=(n_boot, n_items)]
        Draw counts (:func:`songsim.studies.statistics.bootstrap_weights`).

    Returns
    -------
    dict
        ``"skewness"``, ``"orphans"``: np.ndarray [shape=(n_boot,), float64]; NaN for a
        resample that draws no item.
    """
    x = np.asarray(occurrence, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (w @ x) / total
        centred = x[None, :] - mean[:, None]
        m2 = (w * centred**2).sum(axis=1) / total
        m3 = (w * centred**3).sum(axis=1) / total
        flat = m2 <= 1e-12 * np.maximum(mean**2, 1.0)
        skewness = np.where(flat, 0.0, m3 / np.where(flat, 1.0, m2) ** 1.5)
        orphans = (w @ (x == 0)) / total
    skewness[total == 0] = np.nan
    return {"skewness": skewness, "orphans": orphans}


# ----------------------------------------------------------------------------------------
# clustering
# ----------------------------------------------------------------------------------------
def cluster_scores(
    vectors: np.ndarray,
    labels: Sequence[object] | np.ndarray,
    *,
    n_clusters: int,
    seed: int = 0,
    reg_covar: float | None = None,
) -> dict[str, float]:
    """How well unsupervised clusters of ``vectors`` recover ``labels``.

    Clusters with k-means (k-means++, best of 4 runs) and with a Gaussian mixture (diagonal
    covariances, best likelihood of 3 k-means-initialised fits), then compares each
    partition with the labels by

    - V-measure, the harmonic mean of homogeneity and completeness (Rosenberg & Hirschberg,
      EMNLP 2007): ``V = 2hc / (h + c)``;
    - adjusted mutual information, ``AMI = (MI − E[MI]) / (mean(H(U), H(V)) − E[MI])`` with the
      arithmetic mean (Vinh, Epps & Bailey, JMLR 11, 2010); 0 is chance.

    Both as in scikit-learn (``v_measure_score``, ``adjusted_mutual_info_score``), including
    its degenerate cases: 1.0 when labels and clusters are both a single class, 0.0 when only
    one of them is.

    Parameters
    ----------
    vectors : np.ndarray [shape=(n_items, dim)]
        Finite embeddings, one row per labelled item.
    labels : np.ndarray [shape=(n_items,)]
        Class of each row (e.g. genre); no missing values.
    n_clusters : int
        Clusters (mixture components), ``1 <= n_clusters <= n_items``; usually the number of
        classes.
    seed : int
        Seed of both fits.
    reg_covar : float, optional
        Variance added to the mixture's diagonal covariances (in squared vector units), so a
        dimension that is constant within a component does not make the fit fail. Default:
        ``1e-3`` × the mean per-dimension variance of ``vectors`` (scale-free), or ``1e-6``
        if that is 0.

    Returns
    -------
    dict
        ``"v_measure"``, ``"ami"`` (k-means) and ``"v_measure_gmm"``, ``"ami_gmm"`` (mixture),
        floats; V-measure in ``[0, 1]``, AMI at most 1.
    """
    try:
        x = np.array(vectors, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SongsimError(f"vectors must be a numeric (n_items, dim) array ({exc}).") from None
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise SongsimError(f"vectors must be a non-empty 2-D (n_items, dim) array; got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise SongsimError("vectors contain NaN or infinity; rebuild the space.")
    y = np.asarray(labels, dtype=object)
    if y.shape != (x.shape[0],):
        raise SongsimError(f"labels must have shape ({x.shape[0]},), one per row of vectors; got {y.shape}.")
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in y):
        raise SongsimError("labels contain missing values; drop the unlabelled rows first.")
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or not 1 <= n_clusters <= x.shape[0]:
        raise SongsimError(f"n_clusters must be an integer in 1..{x.shape[0]} (rows of vectors); got {n_clusters!r}.")
    if reg_covar is None:
        reg_covar = 1e-3 * float(np.mean(np.var(x, axis=0))) or 1e-6
    elif not reg_covar > 0:
        raise SongsimError(f"reg_covar must be > 0; got {reg_covar!r}.")
    _, y_codes = np.unique(y.astype(str), return_inverse=True)
    kmeans = KMeans(n_clusters=int(n_clusters), n_init=4, random_state=seed).fit_predict(x)
    gmm = GaussianMixture(
        n_components=int(n_clusters), covariance_type="diag", reg_covar=reg_covar, n_init=3, random_state=seed
    ).fit_predict(x)
    return {
        "v_measure": float(v_measure_score(y_codes, kmeans)),
        "ami": float(adjusted_mutual_info_score(y_codes, kmeans)),
        "v_measure_gmm": float(v_measure_score(y_codes, gmm)),
        "ami_gmm": float(adjusted_mutual_info_score(y_codes, gmm)),
    }


# ----------------------------------------------------------------------------------------
# ranking by scores (tie-aware) and rater agreement
# ----------------------------------------------------------------------------------------
#: difference functions of :func:`krippendorff_alpha`
ALPHA_LEVELS = ("nominal", "ordinal", "interval")


def ndcg_of_scores(
    scores: Sequence[float] | np.ndarray,
    relevance: Sequence[float] | np.ndarray,
    k: int,
    *,
    gain: str = "exponential",
) -> float:
    """Tie-aware nDCG@k of ranking items by their scores (highest score first).

    Items with equal scores have no defined order, so every order of a tie is taken as
    equally likely and the expected DCG is reported (McSherry & Najork, "Computing
    information retrieval performance measures efficiently in the presence of tied scores",
    ECIR 2008): each rank inside a tied group receives the mean gain of the group,

    .. math:: DCG@k = \\sum_{i=1}^{\\min(k, n)} \\frac{\\bar g_{T(i)}}{\\log_2(i + 1)},
              \\qquad \\bar g_T = \\frac{1}{|T|} \\sum_{j \\in T} g(rel_j)

    where ``T(i)`` is the tied group holding rank ``i`` and ``g`` the gain of
    :func:`dcg_at_k`; the ideal DCG sorts the same items by relevance. With
    ``gain="linear"`` this is scikit-learn's ``ndcg_score(..., ignore_ties=False)``.

    Parameters
    ----------
    scores : np.ndarray [shape=(n,)]
        Finite score of each item (e.g. one rater's grades); higher ranks first.
    relevance : np.ndarray [shape=(n,)]
        Non-negative relevance grade of each item (the gains' source), same order.
    k : int >= 1
        Cut-off, in ranks.
    gain : {"exponential", "linear"}

    Returns
    -------
    float
        In ``[0, 1]``; 0.0 with a :class:`MetricWarning` when no item is relevant (ideal
        DCG = 0, including no item at all).
    """
    s = _as_1d(scores, "scores")
    rel = _relevance(relevance, "relevance", binary=False)
    k = _check_k(k)
    if s.shape != rel.shape:
        raise SongsimError(f"scores and relevance must have one value per item; got shapes {s.shape} and {rel.shape}.")
    if gain not in GAINS:
        raise SongsimError(f"gain must be one of {', '.join(GAINS)}; got {gain!r}.")
    gains = np.exp2(rel) - 1.0 if gain == "exponential" else rel
    idcg = dcg_at_k(np.sort(gains)[::-1], k, gain="linear")
    if idcg == 0.0:
        _warn("ndcg_of_scores: no item is relevant (ideal DCG = 0); nDCG = 0.0.")
        return 0.0
    order = np.argsort(-s, kind="stable")
    ranked = s[order]
    group = np.cumsum(np.r_[True, ranked[1:] != ranked[:-1]]) - 1
    expected = (np.bincount(group, weights=gains[order]) / np.bincount(group))[group]
    return float(dcg_at_k(expected, k, gain="linear") / idcg)


def krippendorff_alpha(reliability_data: Sequence[Sequence[float]] | np.ndarray, *, level: str = "ordinal") -> float:
    """Krippendorff's alpha: agreement of raters beyond chance, with missing ratings.

    From the coincidence matrix (Krippendorff, "Computing Krippendorff's alpha-reliability",
    2011; *Content Analysis*, 4th ed., 2019, ch. 12):

    .. math:: \\alpha = 1 - \\frac{D_o}{D_e}
              = 1 - (n - 1) \\frac{\\sum_{c,k} o_{ck} \\, \\delta^2_{ck}}{\\sum_{c,k} n_c n_k \\, \\delta^2_{ck}}

    with :math:`o_{ck} = \\sum_u \\frac{\\#\\{(c, k) \\text{ pairs of values from different raters in unit } u\\}}{m_u - 1}`
    over the *pairable* units (``m_u >= 2`` values), :math:`n_c = \\sum_k o_{ck}` and
    :math:`n = \\sum_c n_c` (the pairable values). Difference functions ``δ²``:

    - ``"nominal"``: ``[c ≠ k]``;
    - ``"ordinal"``: :math:`(\\sum_{g=c}^{k} n_g - \\frac{n_c + n_k}{2})^2` (distance in
      ranks through the marginal frequencies: right for BROAD 0/1/2);
    - ``"interval"``: ``(c − k)²``.

    1 is perfect agreement, 0 agreement at chance, below 0 systematic disagreement.

    Parameters
    ----------
    reliability_data : np.ndarray [shape=(n_raters, n_units)]
        The value each rater gave each unit (e.g. a (query, candidate) pair), NaN where
        the rater did not rate it. Values are numbers (grades).
    level : {"nominal", "ordinal", "interval"}

    Returns
    -------
    float
        At most 1; NaN with a :class:`MetricWarning` when fewer than two distinct values are
        pairable (a single rater, no unit rated twice, or every pairable value equal: the
        expected disagreement ``D_e`` is 0 and alpha is undefined).
    """
    if level not in ALPHA_LEVELS:
        raise SongsimError(f"level must be one of {', '.join(ALPHA_LEVELS)}; got {level!r}.")
    try:
        data = np.array(reliability_data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SongsimError(f"reliability_data must be a numeric (n_raters, n_units) array ({exc}).") from None
    if data.ndim != 2:
        raise SongsimError(f"reliability_data must be 2-D (n_raters, n_units); got shape {data.shape}.")
    if np.isinf(data).any():
        raise SongsimError("reliability_data must be finite, with NaN for a missing rating; it holds infinity.")
    observed = ~np.isnan(data)
    pairable = observed.sum(axis=0) >= 2
    data, observed = data[:, pairable], observed[:, pairable]
    values, codes = np.unique(data[observed], return_inverse=True)
    if values.size < 2:
        _warn(
            f"krippendorff_alpha: {values.size} distinct pairable value(s) in {int(pairable.sum())} unit(s) rated "
            f"twice or more; alpha is undefined (NaN)."
        )
        return float("nan")
    n_units, n_values = data.shape[1], values.size
    units = np.nonzero(observed)[1]  # row-major, aligned with data[observed]
    counts = np.bincount(units * n_values + codes, minlength=n_units * n_values).reshape(n_units, n_values)
    weighted = counts / (counts.sum(axis=1) - 1)[:, None]
    coincidence = counts.T @ weighted - np.diag(weighted.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    if level == "nominal":
        delta = 1.0 - np.eye(n_values)
    elif level == "interval":
        delta = np.subtract.outer(values, values) ** 2
    else:
        index = np.arange(n_values)
        lo, hi = np.minimum.outer(index, index), np.maximum.outer(index, index)
        cumulative = np.cumsum(n_c)
        delta = (cumulative[hi] - cumulative[lo] + n_c[lo] - np.add.outer(n_c, n_c) / 2) ** 2
    observed_disagreement = np.sum(coincidence * delta)
    expected_disagreement = np.sum(np.outer(n_c, n_c) * delta)
    return float(1.0 - (n_c.sum() - 1.0) * observed_disagreement / expected_disagreement)
