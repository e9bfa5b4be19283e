"""tinydeep/metrics.py: hand-computed cases, brute-force references on drawn inputs, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinydeep as td
from tinydeep import metrics

# ---- brute-force references ----------------------------------------------------------------------


def pairwise_auc(y, s):
    """AUC by counting every (positive, negative) pair: 1 if ordered right, 1/2 if tied."""
    pos, neg = s[y == 1], s[y == 0]
    wins = sum(float(p > n) + 0.5 * float(p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def loop_scores(y_true, y_pred, c):
    """(precision, recall, f1) of class c by counting examples one at a time."""
    tp = sum(1 for t, p in zip(y_true, y_pred) if t == c and p == c)
    predicted = sum(1 for p in y_pred if p == c)
    actual = sum(1 for t in y_true if t == c)
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * tp / (predicted + actual) if predicted + actual else 0.0
    return precision, recall, f1


def label_pairs(classes):
    """Equal-length label arrays over `classes` classes."""
    return st.integers(1, 30).flatmap(
        lambda n: st.tuples(*[hnp.arrays(np.int64, n, elements=st.integers(0, classes - 1))] * 2)
    )


# ---- accuracy ------------------------------------------------------------------------------------


def test_accuracy_reads_labels_probabilities_and_scores():
    y = np.array([0, 1, 1, 0])
    assert metrics.accuracy(y, np.array([0, 1, 0, 0])) == 0.75  # labels
    assert metrics.accuracy(y, np.array([0.2, 0.9, 0.5, 0.1])) == 0.75  # p > 0.5 is 1
    assert metrics.accuracy(y[:, None], np.array([[0.2], [0.9], [0.7], [0.1]])) == 1.0
    scores = np.array([[2.0, -1.0], [0.0, 3.0], [5.0, 1.0], [0.0, -2.0]])  # logits: argmax
    assert metrics.accuracy(y, scores) == 0.75
    assert metrics.accuracy(np.eye(2)[y], scores) == 0.75  # one-hot y_true
    assert metrics.accuracy(td.Tensor(y), td.Tensor(scores)) == 0.75
    assert isinstance(metrics.accuracy(y, y), float)


@given(label_pairs(4))
def test_accuracy_against_a_loop(pair):
    y_true, y_pred = pair
    expected = sum(int(t == p) for t, p in zip(y_true, y_pred)) / len(y_true)
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(expected, abs=1e-15)


def test_accuracy_errors():
    with pytest.raises(ValueError, match=r"accuracy: y_true has 3 examples .* y_pred has 2"):
        metrics.accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"accuracy: floating y_pred .* outside \[0, 1\]"):
        metrics.accuracy([0, 1], np.array([-2.0, 3.0]))  # logits of one class
    with pytest.raises(ValueError, match="accuracy: needs at least one example"):
        metrics.accuracy(np.zeros(0), np.zeros(0, np.int64))


# ---- precision, recall, f1 -----------------------------------------------------------------------


def test_binary_precision_recall_f1_by_hand():
    y_true, y_pred = [1, 1, 0, 0, 1], [1, 0, 1, 0, 1]  # TP 2, FP 1, FN 1
    assert metrics.precision(y_true, y_pred) == pytest.approx(2 / 3)
    assert metrics.recall(y_true, y_pred) == pytest.approx(2 / 3)
    assert metrics.f1(y_true, y_pred) == pytest.approx(2 / 3)
    assert metrics.precision(y_true, [0, 0, 0, 0, 0]) == 0.0  # nothing predicted positive
    assert metrics.recall([0, 0, 0], [1, 0, 0]) == 0.0  # no positive example
    assert metrics.f1([0, 0], [0, 0]) == 0.0
    assert metrics.precision(y_true, np.array([0.9, 0.2, 0.6, 0.1, 0.7])) == pytest.approx(2 / 3)
    assert metrics.recall([2, 2, 5], [2, 5, 5], pos_label=5) == 1.0


def test_macro_scores_by_hand():
    # sklearn's documented example: 0.22, 0.33 and 0.26
    y_true, y_pred = [0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1]
    assert metrics.precision(y_true, y_pred, average="macro") == pytest.approx(2 / 9)
    assert metrics.recall(y_true, y_pred, average="macro") == pytest.approx(1 / 3)
    assert metrics.f1(y_true, y_pred, average="macro") == pytest.approx(0.8 / 3)


@given(label_pairs(2))
def test_binary_scores_against_a_loop(pair):
    y_true, y_pred = pair
    for metric, expected in zip(
        (metrics.precision, metrics.recall, metrics.f1), loop_scores(y_true, y_pred, 1)
    ):
        assert metric(y_true, y_pred) == pytest.approx(expected, abs=1e-15)


@given(label_pairs(4))
def test_macro_scores_against_a_loop(pair):
    y_true, y_pred = pair
    classes = sorted(set(y_true) | set(y_pred))
    per_class = np.array([loop_scores(y_true, y_pred, c) for c in classes])
    for metric, expected in zip((metrics.precision, metrics.recall, metrics.f1), per_class.T):
        assert metric(y_true, y_pred, average="macro") == pytest.approx(expected.mean())


def test_precision_recall_f1_errors():
    with pytest.raises(ValueError, match=r"f1: average='binary' needs two classes.*'macro'"):
        metrics.f1([0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError, match=r"precision: pos_label=1 is not one of the classes"):
        metrics.precision([0, 2], [2, 0])
    with pytest.raises(ValueError, match=r"recall: average must be one of"):
        metrics.recall([0, 1], [0, 1], average="micro")
    with pytest.raises(ValueError, match=r"f1: y_true has 2 examples"):
        metrics.f1([0, 1], [0, 1, 1])


# ---- roc_auc -------------------------------------------------------------------------------------


def test_roc_auc_by_hand():
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert metrics.roc_auc([0, 1], [0.5, 0.5]) == 0.5  # a tie counts one half
    assert metrics.roc_auc([1, 0, 1], [3.0, 1.0, -2.0]) == 0.5  # logits are fine
    assert metrics.roc_auc(np.array([[1], [0]]), np.array([[0.9], [0.1]])) == 1.0
    assert metrics.roc_auc(np.array([True, False]), np.array([0.1, 0.9])) == 0.0


@st.composite
def binary_labels_and_tied_scores(draw):
    n = draw(st.integers(2, 25))
    y = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 1)).filter(lambda a: 0 < a.sum() < n))
    scores = draw(hnp.arrays(np.float64, n, elements=st.integers(0, 4).map(float)))  # many ties
    return y, scores


@given(binary_labels_and_tied_scores())
def test_roc_auc_against_counting_all_pairs(case):
    y, scores = case
    assert metrics.roc_auc(y, scores) == pytest.approx(pairwise_auc(y, scores), abs=1e-12)


@given(hnp.arrays(np.float64, st.integers(1, 30), elements=st.integers(-3, 3).map(float)))
def test_average_ranks_against_counting(values):
    less = (values[None, :] < values[:, None]).sum(axis=1)
    equal = (values[None, :] == values[:, None]).sum(axis=1)
    np.testing.assert_array_equal(metrics.average_ranks(values), less + (equal + 1) / 2)


@given(st.integers(3, 25).flatmap(lambda n: st.tuples(st.just(n), st.integers(2, 4))), st.data())
def test_macro_roc_auc_is_the_mean_of_one_vs_rest_pairs(sizes, data):
    n, k = sizes
    y = data.draw(
        hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)).filter(
            lambda a: len(np.unique(a)) == k
        )
    )
    scores = data.draw(hnp.arrays(np.float64, (n, k), elements=st.integers(0, 3).map(float)))
    expected = np.mean([pairwise_auc((y == c).astype(int), scores[:, c]) for c in range(k)])
    assert metrics.roc_auc(y, scores, average="macro") == pytest.approx(expected, abs=1e-12)


def test_roc_auc_of_many_examples_is_quick_and_exact():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200_000)
    assert metrics.roc_auc(y, y + 0.5 * rng.standard_normal(len(y))) > 0.8
    assert metrics.roc_auc(y, y.astype(np.float64)) == 1.0
    assert metrics.roc_auc(y, np.zeros(len(y))) == 0.5


def test_roc_auc_errors():
    with pytest.raises(ValueError, match=r"roc_auc: y_true holds only class 1"):
        metrics.roc_auc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match=r"roc_auc: y_true holds only class 0"):
        metrics.roc_auc([0], [0.2])
    with pytest.raises(ValueError, match=r"roc_auc: y_true has 2 examples .* scores has 3"):
        metrics.roc_auc([0, 1], [0.2, 0.3, 0.1])
    with pytest.raises(ValueError, match=r"roc_auc: y_true must hold binary labels.*\[0, 2\]"):
        metrics.roc_auc([0, 2], [0.2, 0.3])
    with pytest.raises(ValueError, match=r"roc_auc: binary scores must be \(N,\).*'macro'"):
        metrics.roc_auc([0, 1], np.eye(2))
    with pytest.raises(ValueError, match=r"roc_auc: scores contain NaN"):
        metrics.roc_auc([0, 1], [0.2, np.nan])
    with pytest.raises(ValueError, match=r"roc_auc: class 2 of 3 does not occur in y_true"):
        metrics.roc_auc([0, 1, 1], np.ones((3, 3)), average="macro")
    with pytest.raises(ValueError, match=r"roc_auc: y_true must hold labels in \[0, 2\)"):
        metrics.roc_auc([0, 1, 3], np.ones((3, 2)), average="macro")
    with pytest.raises(ValueError, match=r"roc_auc: average must be one of"):
        metrics.roc_auc([0, 1], [0.2, 0.3], average="weighted")


# ---- rmse, mae -----------------------------------------------------------------------------------


finite = st.floats(-1e3, 1e3, allow_nan=False)


@given(
    st.integers(1, 20).flatmap(lambda n: st.tuples(*[hnp.arrays(float, n, elements=finite)] * 2))
)
def test_rmse_and_mae_against_numpy(pair):
    y_true, y_pred = pair
    assert metrics.rmse(y_true, y_pred) == pytest.approx(np.sqrt(np.mean((y_pred - y_true) ** 2)))
    assert metrics.mae(y_true, y_pred) == pytest.approx(np.mean(np.abs(y_pred - y_true)))


def test_rmse_and_mae_by_hand_with_a_column_of_predictions():
    y_true, y_pred = np.array([1.0, 2.0, 3.0]), np.array([[2.0], [2.0], [1.0]], np.float32)
    assert metrics.rmse(y_true, y_pred) == pytest.approx(np.sqrt(5 / 3))
    assert metrics.mae(td.Tensor(y_true), y_pred) == 1.0
    with pytest.raises(ValueError, match=r"rmse: y_true has shape \(2, 2\), y_pred \(2, 3\)"):
        metrics.rmse(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"mae: y_true has 3 examples .* y_pred has 2"):
        metrics.mae(y_true, y_pred[:2])


# ---- ranking against sampled negatives -------------------------------------------------------


def test_hit_rate_and_ndcg_by_hand():
    scores = np.array(
        [
            [0.9, 0.1, 0.2, 0.3],  # rank 0: a hit, gain 1
            [0.5, 0.6, 0.1, 0.2],  # rank 1: a hit at k=2, gain 1 / log2(3)
            [0.1, 0.6, 0.5, 0.2],  # rank 3: no hit at k=2
        ]
    )
    np.testing.assert_array_equal(metrics.positive_ranks(scores), [0, 1, 3])
    assert metrics.hit_rate(scores, k=2) == pytest.approx(2 / 3)
    assert metrics.hit_rate(scores, k=4) == 1.0
    assert metrics.ndcg(scores, k=2) == pytest.approx((1 + 1 / np.log2(3)) / 3)
    assert metrics.ndcg(scores, k=4) == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(5)) / 3)


def test_ties_count_against_the_positive():
    alike = np.zeros((5, 100))  # a model that scores every candidate alike learns nothing
    assert metrics.hit_rate(alike, k=10) == 0.0
    assert metrics.ndcg(alike, k=10) == 0.0
    np.testing.assert_array_equal(metrics.positive_ranks(alike), 99)


@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 8), st.integers(2, 12)),
        elements=st.integers(0, 5).map(float),  # few values: many ties
    ),
    st.integers(1, 12),
)
def test_ranking_metrics_against_a_loop(scores, k):
    hits, gains = [], []
    for row in scores:
        rank = sum(1 for s in row[1:] if s >= row[0])
        hits.append(rank < k)
        gains.append(1 / np.log2(rank + 2) if rank < k else 0.0)
    assert metrics.hit_rate(scores, k) == pytest.approx(np.mean(hits), abs=1e-15)
    assert metrics.ndcg(scores, k) == pytest.approx(np.mean(gains), abs=1e-15)


def test_ranking_metrics_errors():
    with pytest.raises(ValueError, match=r"positive_ranks: scores must be .* got shape \(3,\)"):
        metrics.hit_rate(np.zeros(3))
    with pytest.raises(ValueError, match="at least one negative, got shape"):
        metrics.ndcg(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="finite"):
        metrics.hit_rate(np.array([[np.nan, 1.0]]))
    for k in (0, 2.5, True):
        with pytest.raises(ValueError, match=f"hit_rate: k must be an integer >= 1, got {k!r}"):
            metrics.hit_rate(np.zeros((2, 3)), k)
