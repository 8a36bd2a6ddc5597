"""songsim.metrics: cross-checked against scikit-learn / scipy and hand-computed cases,
including the degenerate ones (empty ranking, no relevant item, k beyond the list, ties)."""

import math

import numpy as np
import pytest
from scipy.stats import skew
from sklearn.cluster import KMeans
from sklearn.metrics import (
    adjusted_mutual_info_score,
    average_precision_score,
    ndcg_score,
    roc_auc_score,
    v_measure_score,
)

from songsim.errors import SongsimError
from songsim.metrics import (
    MetricWarning,
    average_precision,
    cluster_scores,
    dcg_at_k,
    hubness,
    k_occurrence,
    krippendorff_alpha,
    mean_average_precision,
    ndcg_at_k,
    ndcg_of_scores,
    pairwise_accuracy,
    precision_at_k,
)

# ------------------------------------------------------------------------------------------
# precision@k


def test_precision_at_k_hand_cases():
    assert precision_at_k([1, 0, 1, 1, 0], 3) == pytest.approx(2 / 3)
    assert precision_at_k([True, True, False], 1) == 1.0
    assert precision_at_k(np.array([0, 0, 1]), 2) == 0.0


def test_precision_at_k_beyond_the_list_divides_by_k():
    assert precision_at_k([1, 1], 5) == pytest.approx(2 / 5)


def test_precision_at_k_empty_ranking_warns_and_is_zero():
    with pytest.warns(MetricWarning, match="empty"):
        assert precision_at_k([], 5) == 0.0


@pytest.mark.parametrize("bad", [[2, 0], [0.5], [-1], [[1, 0]], ["a"], [np.nan]])
def test_precision_at_k_rejects_non_binary_or_malformed(bad):
    with pytest.raises(SongsimError):
        precision_at_k(bad, 1)


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "5"])
def test_k_must_be_a_positive_integer(k):
    with pytest.raises(SongsimError, match="k must be"):
        precision_at_k([1, 0], k)
    with pytest.raises(SongsimError, match="k must be"):
        dcg_at_k([1, 0], k)


# ------------------------------------------------------------------------------------------
# DCG / nDCG

WIKI_RANKING = [3, 2, 3, 0, 1, 2]  # the worked example of Wikipedia's "Discounted cumulative gain"
WIKI_JUDGED = WIKI_RANKING + [3, 2]  # two further judged documents the system did not retrieve


def test_dcg_linear_and_exponential_by_hand():
    linear = sum(r / math.log2(i + 2) for i, r in enumerate(WIKI_RANKING))
    exponential = sum((2**r - 1) / math.log2(i + 2) for i, r in enumerate(WIKI_RANKING))
    assert dcg_at_k(WIKI_RANKING, 6, gain="linear") == pytest.approx(linear)
    assert linear == pytest.approx(6.861, abs=1e-3)
    assert dcg_at_k(WIKI_RANKING, 6, gain="exponential") == pytest.approx(exponential)
    assert dcg_at_k(WIKI_RANKING, 2, gain="linear") == pytest.approx(3 + 2 / math.log2(3))


def test_ndcg_with_ideal_over_every_judged_item():
    # Wikipedia: IDCG@6 over the 8 judged documents = 8.740, nDCG@6 = 0.785
    assert ndcg_at_k(WIKI_RANKING, 6, ideal_relevance=WIKI_JUDGED, gain="linear") == pytest.approx(6.861 / 8.740, abs=1e-3)
    # default ideal: the ranked list itself
    ideal_self = dcg_at_k(sorted(WIKI_RANKING, reverse=True), 6, gain="linear")
    assert ndcg_at_k(WIKI_RANKING, 6, gain="linear") == pytest.approx(dcg_at_k(WIKI_RANKING, 6, gain="linear") / ideal_self)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [1, 3, 5, 20])
def test_ndcg_linear_matches_sklearn(seed, k):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    y_true = rng.integers(0, 4, n)
    y_true[0] = max(y_true[0], 1)  # at least one relevant item
    y_score = rng.permutation(n).astype(float)  # no ties
    ranking = y_true[np.argsort(-y_score)]
    expected = ndcg_score([y_true], [y_score], k=k)
    assert ndcg_at_k(ranking, k, gain="linear") == pytest.approx(expected)
    assert ndcg_at_k(ranking, k, ideal_relevance=y_true, gain="linear") == pytest.approx(expected)


def test_binary_relevance_gives_the_same_ndcg_for_both_gains():
    ranking = [0, 1, 1, 0, 1]
    assert ndcg_at_k(ranking, 4, gain="exponential") == pytest.approx(ndcg_at_k(ranking, 4, gain="linear"))


def test_exponential_gain_penalises_a_misplaced_top_grade_more():
    # the grade-3 item at rank 2 instead of 1: 2^3 - 1 = 7 weighs more than 3
    linear = ndcg_at_k([1, 3], 2, gain="linear")
    exponential = ndcg_at_k([1, 3], 2, gain="exponential")
    assert linear == pytest.approx((1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)))
    assert exponential == pytest.approx((1 + 7 / math.log2(3)) / (7 + 1 / math.log2(3)))
    assert exponential < linear


def test_ndcg_k_beyond_the_list_and_perfect_ranking():
    assert ndcg_at_k([1, 0], 10) == pytest.approx(ndcg_at_k([1, 0], 2)) == 1.0
    assert ndcg_at_k([3, 2, 1, 0], 3) == 1.0


def test_ndcg_without_relevant_items_warns_and_is_zero_like_sklearn():
    with pytest.warns(MetricWarning, match="no judged item is relevant"):
        assert ndcg_at_k([0, 0, 0], 3) == 0.0
    assert ndcg_score([[0, 0, 0]], [[3, 2, 1]]) == 0.0
    with pytest.warns(MetricWarning):
        assert ndcg_at_k([], 3) == 0.0


def test_ndcg_empty_ranking_with_relevant_judged_items_is_zero_without_warning(recwarn):
    assert ndcg_at_k([], 5, ideal_relevance=[2, 1]) == 0.0
    assert not [w for w in recwarn if issubclass(w.category, MetricWarning)]


def test_ndcg_rejects_an_ideal_that_misses_the_ranked_grades():
    with pytest.raises(SongsimError, match="ideal_relevance"):
        ndcg_at_k([3, 3], 2, ideal_relevance=[1, 0])


def test_dcg_rejects_bad_gain_and_negative_grades():
    with pytest.raises(SongsimError, match="gain must be one of"):
        dcg_at_k([1], 1, gain="burges")
    with pytest.raises(SongsimError, match="non-negative"):
        ndcg_at_k([1, -1], 2)


def test_dcg_of_empty_ranking_is_zero():
    assert dcg_at_k([], 5) == 0.0


# ------------------------------------------------------------------------------------------
# AP / MAP


@pytest.mark.parametrize("seed", range(10))
def test_average_precision_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 15))
    y_true = rng.integers(0, 2, n)
    y_true[rng.integers(0, n)] = 1
    y_score = rng.permutation(n).astype(float)
    ranking = y_true[np.argsort(-y_score)]
    assert average_precision(ranking) == pytest.approx(average_precision_score(y_true, y_score))


def test_average_precision_hand_cases():
    assert average_precision([1, 0, 1]) == pytest.approx((1 + 2 / 3) / 2)
    # trec_eval: relevant items never retrieved count with precision 0
    assert average_precision([1, 0, 1], n_relevant=4) == pytest.approx((1 + 2 / 3) / 4)
    assert average_precision([0, 0, 1, 1, 1], n_relevant=3) == pytest.approx((1 / 3 + 2 / 4 + 3 / 5) / 3)


def test_average_precision_without_relevant_items_warns_and_is_zero():
    with pytest.warns(MetricWarning, match="no relevant item"):
        assert average_precision([0, 0]) == 0.0
    with pytest.warns(MetricWarning):
        assert average_precision([]) == 0.0
    assert average_precision([], n_relevant=2) == 0.0


@pytest.mark.parametrize("n_relevant", [1, -1, 2.0, True])
def test_average_precision_rejects_bad_n_relevant(n_relevant):
    with pytest.raises(SongsimError, match="n_relevant"):
        average_precision([1, 1, 0], n_relevant=n_relevant)


def test_mean_average_precision():
    rankings = [[1, 0, 1], [0, 1], [1]]
    expected = np.mean([(1 + 2 / 3) / 2, 1 / 2, 1.0])
    assert mean_average_precision(rankings) == pytest.approx(expected)
    assert mean_average_precision(rankings, n_relevant=[4, 1, 2]) == pytest.approx(np.mean([(1 + 2 / 3) / 4, 1 / 2, 1 / 2]))
    with pytest.warns(MetricWarning, match="no queries"):
        assert math.isnan(mean_average_precision([]))
    with pytest.raises(SongsimError, match="one per query"):
        mean_average_precision(rankings, n_relevant=[1])


# ------------------------------------------------------------------------------------------
# pairwise accuracy


def test_pairwise_accuracy_hand_case_with_a_tie():
    # (3,1) (3,2) (2,1) win, (2,2) ties
    assert pairwise_accuracy([3, 2], [1, 2]) == pytest.approx(3.5 / 4)


def test_pairwise_accuracy_all_ties_is_chance():
    assert pairwise_accuracy([0.3] * 3, [0.3] * 5) == 0.5


@pytest.mark.parametrize("seed", range(5))
def test_pairwise_accuracy_is_the_auc(seed):
    rng = np.random.default_rng(seed)
    similar, dissimilar = rng.normal(0.5, 1, 3), np.round(rng.normal(0, 1, 5), 1)
    labels = np.r_[np.ones(3), np.zeros(5)]
    assert pairwise_accuracy(similar, dissimilar) == pytest.approx(roc_auc_score(labels, np.r_[similar, dissimilar]))


def test_pairwise_accuracy_without_pairs_warns_and_is_nan():
    with pytest.warns(MetricWarning, match="no \\(similar, dissimilar\\) pair"):
        assert math.isnan(pairwise_accuracy([], [0.1]))
    with pytest.raises(SongsimError, match="finite"):
        pairwise_accuracy([np.inf], [0.1])


# ------------------------------------------------------------------------------------------
# hubness


def test_k_occurrence_counts_and_validation():
    neighbours = np.array([[1, 2], [0, 2], [0, 1], [0, 2]])
    assert k_occurrence(neighbours, 5).tolist() == [3, 2, 3, 0, 0]
    assert k_occurrence(np.zeros((0, 3), dtype=int), 2).tolist() == [0, 0]
    with pytest.raises(SongsimError, match="0..4"):
        k_occurrence(np.array([[5]]), 5)
    with pytest.raises(SongsimError, match="integer"):
        k_occurrence(np.array([[0.5]]), 5)
    with pytest.raises(SongsimError, match="2-D"):
        k_occurrence(np.array([0, 1]), 5)
    with pytest.raises(SongsimError, match="n_items"):
        k_occurrence(neighbours, 0)


def test_hubness_of_a_hub_graph_matches_scipy():
    rng = np.random.default_rng(0)
    n, k = 50, 3
    # item 0 is everybody's first neighbour (except its own list); the rest are random
    neighbours = np.array([[0 if q else 1, *rng.choice(np.arange(2, n), k - 1, replace=False)] for q in range(n)])
    counts = k_occurrence(neighbours, n)
    result = hubness(neighbours, n)
    assert result["skewness"] == pytest.approx(skew(counts))
    assert result["skewness"] > 2
    assert result["orphans"] == pytest.approx(np.mean(counts == 0))


def test_hubness_of_a_regular_graph_has_no_skew_and_no_orphans():
    n = 10
    ring = np.array([[(q + 1) % n, (q - 1) % n] for q in range(n)])
    assert hubness(ring, n) == {"skewness": 0.0, "orphans": 0.0}


# ------------------------------------------------------------------------------------------
# clustering


def blobs(n_per: int = 15, dim: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = 10 * np.eye(3, dim)
    x = np.concatenate([c + rng.standard_normal((n_per, dim)) for c in centres])
    y = np.repeat(np.array(["rock", "jazz", "techno"], dtype=object), n_per)
    return x, y


def test_cluster_scores_recover_separated_classes():
    x, y = blobs()
    scores = cluster_scores(x, y, n_clusters=3, seed=0)
    assert set(scores) == {"v_measure", "ami", "v_measure_gmm", "ami_gmm"}
    assert all(v == pytest.approx(1.0) for v in scores.values())


def test_cluster_scores_match_sklearn_on_the_same_kmeans_partition():
    x, y = blobs(seed=3)
    x = x + 4 * np.random.default_rng(1).standard_normal(x.shape)  # overlapping: imperfect clusters
    predicted = KMeans(n_clusters=3, n_init=4, random_state=7).fit_predict(x)
    scores = cluster_scores(x, y, n_clusters=3, seed=7)
    assert scores["v_measure"] == pytest.approx(v_measure_score(y.astype(str), predicted))
    assert scores["ami"] == pytest.approx(adjusted_mutual_info_score(y.astype(str), predicted))
    assert scores["v_measure"] < 0.95


def test_cluster_scores_single_cluster_follows_sklearn():
    x, y = blobs()
    assert cluster_scores(x, y, n_clusters=1, seed=0) == {"v_measure": 0.0, "ami": 0.0, "v_measure_gmm": 0.0, "ami_gmm": 0.0}
    one_class = np.array(["rock"] * len(y), dtype=object)
    assert cluster_scores(x, one_class, n_clusters=1, seed=0)["v_measure"] == 1.0


def test_gmm_survives_high_dimensions_and_constant_dimensions():
    rng = np.random.default_rng(0)
    x = np.zeros((24, 512))
    x[:, :300] = rng.standard_normal((24, 300))
    x[:12, 0] += 20
    y = np.array(["a"] * 12 + ["b"] * 12, dtype=object)
    scores = cluster_scores(x, y, n_clusters=2, seed=0)
    assert np.isfinite(list(scores.values())).all()
    assert scores["v_measure_gmm"] == pytest.approx(1.0)


def test_cluster_scores_validate_inputs():
    x, y = blobs()
    with pytest.raises(SongsimError, match="n_clusters"):
        cluster_scores(x, y, n_clusters=0)
    with pytest.raises(SongsimError, match="n_clusters"):
        cluster_scores(x, y, n_clusters=len(y) + 1)
    with pytest.raises(SongsimError, match="shape"):
        cluster_scores(x, y[:-1], n_clusters=3)
    with pytest.raises(SongsimError, match="missing"):
        cluster_scores(x, np.r_[y[:-1], None], n_clusters=3)
    with pytest.raises(SongsimError, match="NaN"):
        cluster_scores(np.full((3, 2), np.nan), y[:3], n_clusters=1)
    with pytest.raises(SongsimError, match="reg_covar"):
        cluster_scores(x, y, n_clusters=3, reg_covar=0.0)


# ------------------------------------------------------------------------------------------
# tie-aware nDCG of scores


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [1, 3, 10])
def test_ndcg_of_scores_with_ties_matches_sklearn(seed, k):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 10))
    y_true = rng.integers(0, 3, n).astype(float)
    y_true[0] = 2.0
    y_score = rng.integers(0, 3, n).astype(float)  # many ties
    assert ndcg_of_scores(y_score, y_true, k, gain="linear") == pytest.approx(ndcg_score([y_true], [y_score], k=k))


def test_ndcg_of_scores_without_ties_is_ndcg_of_the_sorted_ranking():
    relevance = np.array([0, 2, 1, 2])
    scores = np.array([0.9, 0.1, 0.5, 0.7])
    assert ndcg_of_scores(scores, relevance, 3) == pytest.approx(ndcg_at_k([0, 2, 1, 2], 3))


def test_ndcg_of_scores_averages_a_tie_over_its_orders():
    # a grade-2 and a grade-0 item tied over ranks 1-2: each rank gets gain (3 + 0) / 2;
    # the ideal puts gain 3 at rank 1
    assert ndcg_of_scores([1, 1], [2, 0], 1) == pytest.approx(1.5 / 3)
    assert ndcg_of_scores([1, 1], [2, 0], 2) == pytest.approx((1.5 + 1.5 / math.log2(3)) / 3)
    assert ndcg_of_scores([5, 5, 5], [1, 1, 1], 3) == 1.0


def test_ndcg_of_scores_degenerate_and_invalid():
    with pytest.warns(MetricWarning, match="no item is relevant"):
        assert ndcg_of_scores([1, 2], [0, 0], 2) == 0.0
    with pytest.warns(MetricWarning):
        assert ndcg_of_scores([], [], 2) == 0.0
    with pytest.raises(SongsimError, match="one value per item"):
        ndcg_of_scores([1, 2], [1], 2)
    with pytest.raises(SongsimError, match="gain must be one of"):
        ndcg_of_scores([1], [1], 1, gain="burges")


# ------------------------------------------------------------------------------------------
# Krippendorff's alpha

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", §C: 4 observers × 12 units
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]


@pytest.mark.parametrize("level, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_alpha_reproduces_the_published_example(level, published):
    assert krippendorff_alpha(KRIPPENDORFF_2011, level=level) == pytest.approx(published, abs=5e-4)


def test_krippendorff_alpha_hand_case():
    # 2 raters, units (0,0) (1,1) (0,1): o = [[2, 1], [1, 2]], n_0 = n_1 = 3, n = 6
    # alpha = 1 - (n - 1) * (o_01 + o_10) / (n_0 n_1 + n_1 n_0) = 1 - 5 * 2 / 18
    data = [[0, 1, 0], [0, 1, 1]]
    for level in ("nominal", "ordinal", "interval"):  # two values: every metric agrees
        assert krippendorff_alpha(data, level=level) == pytest.approx(1 - 10 / 18)
    # ordinal on 0/1/2 with one unit (0, 2): delta^2(0, 2) = (n_0 + n_1 + n_2 - (n_0 + n_2) / 2)^2
    data = [[0, 1, 2, 0], [0, 1, 2, 2]]
    o = np.array([[2, 0, 1], [0, 2, 0], [1, 0, 2]], dtype=float)
    n_c = o.sum(axis=1)
    cum = lambda c, k: n_c[min(c, k): max(c, k) + 1].sum()  # noqa: E731
    delta = np.array([[(cum(c, k) - (n_c[c] + n_c[k]) / 2) ** 2 for k in range(3)] for c in range(3)])
    expected = 1 - (n_c.sum() - 1) * (o * delta).sum() / (np.outer(n_c, n_c) * delta).sum()
    assert krippendorff_alpha(data, level="ordinal") == pytest.approx(expected)


def test_krippendorff_alpha_perfect_agreement_is_one_and_ignores_unpairable_units():
    assert krippendorff_alpha([[0, 1, 2, 2, NAN], [0, 1, 2, 2, 1], [NAN, 1, 2, NAN, NAN]]) == 1.0


def test_krippendorff_alpha_undefined_cases_warn_and_are_nan():
    with pytest.warns(MetricWarning, match="undefined"):
        assert math.isnan(krippendorff_alpha([[0, 1, 2, 1]]))  # one rater: nothing pairable
    with pytest.warns(MetricWarning, match="undefined"):
        assert math.isnan(krippendorff_alpha([[1, 1, NAN], [1, 1, 2]]))  # no variation
    with pytest.warns(MetricWarning):
        assert math.isnan(krippendorff_alpha(np.empty((2, 0))))


def test_krippendorff_alpha_validates():
    with pytest.raises(SongsimError, match="level must be one of"):
        krippendorff_alpha([[0, 1]], level="ratio")
    with pytest.raises(SongsimError, match="2-D"):
        krippendorff_alpha([0, 1])
    with pytest.raises(SongsimError, match="infinity"):
        krippendorff_alpha([[0, np.inf], [0, 1]])
    with pytest.raises(SongsimError, match="numeric"):
        krippendorff_alpha([["a", "b"], ["a", "a"]])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_krippendorff_alpha_matches_the_krippendorff_package(seed, level):
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, 60)
    data = np.clip(truth + rng.integers(-1, 2, (4, 60)) * (rng.random((4, 60)) < 0.4), 0, 2).astype(float)
    data[rng.random(data.shape) < 0.35] = np.nan
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert krippendorff_alpha(data, level=level) == pytest.approx(expected, abs=1e-12)
