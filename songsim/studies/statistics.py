"""The statistics of a panel-study report: uncertainty, significance and rater agreement.

:mod:`songsim.studies.report` computes one figure per (query, space); this module says how far
those figures can be trusted. Every function is pure (arrays or tables in, numbers out) and
defines its degenerate case (too few queries, spaces or raters: ``None`` or NaN with the
reason) instead of raising:

- :func:`bootstrap_ci`: the 95 % percentile bootstrap CI of a mean over queries (Efron &
  Tibshirani 1993), every figure and space on the same resamples (:func:`bootstrap_weights`:
  the resamples; :func:`percentile_interval`: the interval of any statistic's resampled
  values — :mod:`songsim.evaluate` uses both for the figures that are not means);
- :func:`friedman_test`: the Friedman test across spaces on per-query NDCG@K, and
  :func:`pairwise_wilcoxon`: Wilcoxon signed-rank tests of every pair of spaces with Holm's
  step-down correction (:func:`holm_adjust`, Holm 1979);
- :func:`rater_agreement`: Krippendorff's alpha (ordinal, BROAD), the mean Pearson correlation
  of FINE scores between raters, per-rater counts and means, and the *ceiling*: the NDCG@K that
  one rater's own ranking scores against the other raters' mean;
- :func:`rank_correlation`: Spearman's rho between a label-based figure and human NDCG@K
  across spaces.

Units: the statistics are unitless; a CI is in the units of its values; p-values in [0, 1].
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from songsim.errors import SongsimError
from songsim.metrics import MetricWarning, krippendorff_alpha, ndcg_of_scores

#: coverage of every confidence interval
CI_LEVEL = 0.95
#: the Wilcoxon test uses its exact null distribution up to this many non-zero differences
#: (and none tied); scipy's default for tied small samples, a permutation test, takes seconds
EXACT_WILCOXON_MAX_N = 50
#: FINE (0–100) divided by this breaks BROAD ties in the ceiling's ranking without
#: ever crossing a BROAD step (100 / 1000 < 1)
_FINE_TIE_SCALE = 1000.0
#: a rank correlation across spaces needs at least this many spaces with both figures
MIN_SPACES_FOR_CORRELATION = 3


def json_scalar(value: Any) -> Any:
    """``value`` as a JSON-ready Python scalar: NaN → None, numpy → Python."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    return value


def bootstrap_weights(n: int, *, n_boot: int, seed: int = 0) -> np.ndarray:
    """The resamples of a bootstrap over ``n`` rows (queries, songs), as draw counts.

    Resample ``b`` draws ``n`` rows uniformly with replacement; ``W[b, i]`` is how often row
    ``i`` was drawn (each row of ``W`` sums to ``n``). The same ``(n, n_boot, seed)`` always
    gives the same matrix, so every figure bootstrapped with it — of one space or of several
    — is computed on the same resamples (paired).

    Parameters
    ----------
    n : int >= 1
        Rows.
    n_boot : int >= 1
        Resamples.
    seed : int
        Seed of the draws.

    Returns
    -------
    np.ndarray [shape=(n_boot, n), float64]
        Draw counts.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise SongsimError(f"n_boot must be an integer >= 1; got {n_boot!r}.")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SongsimError(f"n must be an integer >= 1 (the rows resampled); got {n!r}.")
    draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    counts = np.bincount((draws + n * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n)
    return counts.reshape(n_boot, n).astype(np.float64)


def percentile_interval(estimates: np.ndarray, *, level: float = CI_LEVEL) -> np.ndarray:
    """The percentile interval of bootstrap estimates: their ``(1 − level)/2`` and
    ``(1 + level)/2`` percentiles (Efron & Tibshirani 1993, §13.3), NaN estimates ignored.

    Parameters
    ----------
    estimates : np.ndarray [shape=(n_boot,) or (n_boot, m)]
        A statistic (per column) on each resample.
    level : float in (0, 1)

    Returns
    -------
    np.ndarray [shape=(2,) or (m, 2)]
        ``[low, high]`` (per column), in the estimates' units; NaN where every estimate is NaN.
    """
    if not 0 < level < 1:
        raise SongsimError(f"level must lie in (0, 1), e.g. 0.95; got {level!r}.")
    x = np.asarray(estimates, dtype=np.float64)
    columns = x[:, None] if x.ndim == 1 else x
    tail = 50.0 * (1.0 - level)
    ci = np.full((columns.shape[1], 2), np.nan)
    some = ~np.isnan(columns).all(axis=0)
    if some.any():
        ci[some] = np.nanpercentile(columns[:, some], [tail, 100.0 - tail], axis=0).T
    return ci[0] if x.ndim == 1 else ci


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = CI_LEVEL,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Percentile bootstrap confidence interval of the mean over queries (rows).

    ``n_boot`` resamples of the ``n`` rows are drawn with replacement (the same resamples for
    every column, so columns stay paired; :func:`bootstrap_weights`); on each, every column's
    mean over its non-NaN rows is recomputed; the interval is the ``(1 − level)/2`` and
    ``(1 + level)/2`` percentiles of those means (Efron & Tibshirani, *An Introduction to the
    Bootstrap*, 1993, §13.3; :func:`percentile_interval`). Vectorised: the resamples are an
    ``(n_boot, n)`` matrix of draw counts ``W``, and the means are ``(W @ x) / (W @ valid)``.

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
    weights : np.ndarray [shape=(n_boot', n)], optional
        The resamples to use (:func:`bootstrap_weights`), e.g. shared with other statistics;
        they replace ``n_boot`` and ``seed``.

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
    if weights is not None and np.shape(weights)[1:] != (n,):
        raise SongsimError(f"weights must have shape (n_boot, {n}), one column per row of values; got {np.shape(weights)}.")
    valid = ~np.isnan(columns)
    ci = np.full((m, 2), np.nan)
    usable = valid.sum(axis=0) >= 2
    if usable.any():
        counts = bootstrap_weights(n, n_boot=n_boot, seed=seed) if weights is None else np.asarray(weights, dtype=np.float64)
        kept, ok = columns[:, usable], valid[:, usable]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (counts @ np.where(ok, kept, 0.0)) / (counts @ ok)
        ci[usable] = percentile_interval(means, level=level)
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


def friedman_test(matrix: pd.DataFrame, metric: str) -> dict[str, Any]:
    """Friedman test across the spaces (columns) of ``matrix`` on the queries every space has.

    ``matrix``: pd.DataFrame [shape=(n_queries, n_spaces)] of one figure per query and space
    (NaN where a space has none), named ``metric``. Returns the JSON section: ``statistic``
    (χ², S − 1 degrees of freedom), ``p``, ``n_queries``, ``n_spaces``, ``mean_rank`` (1 = the
    highest value) and ``reason`` when it was not run (fewer than 3 spaces or 2 complete queries) or
    every query ties every space (p = 1).
    """
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


def pairwise_wilcoxon(matrix: pd.DataFrame, metric: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """Wilcoxon signed-rank test of every pair of spaces on the queries both have, Holm-adjusted.

    ``matrix``: pd.DataFrame [shape=(n_queries, n_spaces)] of one figure per query and space
    (NaN where a space has none), named ``metric``. Returns (the JSON section: space × space
    matrices of ``p``, ``p_holm``, ``mean_difference`` (row − column) and ``n``; the long
    table: one row per pair, columns ``a, b, n, mean_difference, statistic, p, p_holm``).
    """
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
            exact = nonzero.size <= EXACT_WILCOXON_MAX_N and np.unique(np.abs(nonzero)).size == nonzero.size
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
            f"for ≤ {EXACT_WILCOXON_MAX_N} differences without ties, else the tie-corrected normal approximation"
        ),
        "correction": f"Holm over the {int(tested.sum())} tested pair(s)",
        "spaces": spaces,
        "p": matrix_of("p"),
        "p_holm": matrix_of("p_holm"),
        "mean_difference": matrix_of("mean_difference", antisymmetric=True),
        "n": matrix_of("n"),
    }
    return section, table


def _ceiling_cells(ratings: pd.DataFrame, k: int) -> pd.DataFrame:
    """NDCG@k of each rater's ranking of each query's candidates against the others' mean
    BROAD (see :func:`songsim.studies.render.formulas`): columns rater, query_id, ndcg, n_candidates."""
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


def rater_agreement(ratings: pd.DataFrame, k: int) -> tuple[dict[str, Any], pd.DataFrame]:
    """How far the raters agree: Krippendorff's alpha, FINE correlation, the NDCG@k ceiling.

    Parameters
    ----------
    ratings : pd.DataFrame [shape=(n_ratings, 5)]
        One row per (rater, query, candidate), the latest rating: ``rater``, ``query_id``,
        ``candidate_id``, ``broad`` (0/1/2, float) and ``fine`` (0–100, NaN when not given).
    k : int
        The study's cut-off K of the ceiling's NDCG.

    Returns
    -------
    (dict, pd.DataFrame)
        The JSON section (``krippendorff_alpha``, ``fine_correlation``, ``ceiling_ndcg@K`` and
        how many pairs or cells each used; None with the reason in ``reasons`` when undefined,
        e.g. fewer than two raters) and the per-rater table: ``rater``, ``n_ratings``,
        ``n_queries``, ``mean_broad``, ``n_fine``, ``mean_fine``, ``ceiling_ndcg@K``.
    """
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
        str(rater): {key: json_scalar(value) for key, value in row.items()} for rater, row in raters.to_dict("index").items()
    }
    return section, raters.reset_index()


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """Spearman's rho between two figures of the same spaces (``x[i]`` and ``y[i]`` of space i).

    The plain rank correlation (:func:`scipy.stats.spearmanr`): for a lower-is-better figure
    agreement shows as rho < 0.

    Parameters
    ----------
    x, y : sequence of float [length n]
        One value per space, in the same space order.

    Returns
    -------
    dict
        ``{"rho", "p", "n", "reason"}``: rho and its two-sided p (None when not computed),
        n = the number of spaces, and why it was not computed (fewer than
        :data:`MIN_SPACES_FOR_CORRELATION` spaces, or a figure that is the same for every space).
    """
    entry: dict[str, Any] = {"rho": None, "p": None, "n": len(x), "reason": None}
    if len(x) < MIN_SPACES_FOR_CORRELATION:
        entry["reason"] = f"a rank correlation needs ≥ {MIN_SPACES_FOR_CORRELATION} spaces with both figures; {len(x)} have"
    elif len(set(x)) < 2 or len(set(y)) < 2:
        entry["reason"] = "one of the two figures is the same for every space"
    else:
        test = stats.spearmanr(x, y)
        entry.update(rho=float(test.statistic), p=float(test.pvalue))
    return entry
