"""Metrics: plain functions from labels and predictions to one float, for evaluation.

Unlike losses, metrics need no gradient, and several (accuracy, AUC) have none, so they work
on NumPy arrays; Tensors and CuPy arrays are copied to NumPy first. Everything is computed in
float64 and returned as a Python float.

Read in order:
  1. the input rules (_labels_of_predictions): what a prediction array means
  2. accuracy, then precision / recall / f1 from per-class counts (binary or macro average)
  3. roc_auc: the Mann-Whitney U statistic from average ranks, O(N log N), ties counted 1/2
  4. rmse, mae
  5. positive_ranks, hit_rate, ndcg: one held-out positive ranked among sampled negatives

Shapes: N examples, K classes. A column (N, 1) counts as (N,) everywhere.
Left out: micro and weighted averages, multi-label targets, sample weights, thresholds
other than 0.5.
"""

from __future__ import annotations

import numpy as np

from tinydeep import backend
from tinydeep.tensor import Tensor

AVERAGES = ("binary", "macro")


def to_numpy(values) -> np.ndarray:
    """A NumPy array of `values` (a Tensor, a CuPy array, an array, a list)."""
    if isinstance(values, Tensor):
        return values.numpy()
    cp = backend.cupy_module()
    if cp is not None and isinstance(values, cp.ndarray):
        return cp.asnumpy(values)
    return np.asarray(values)


def _squeeze_column(a: np.ndarray) -> np.ndarray:
    """(N, 1) -> (N,): Keras models often end in a one-unit layer."""
    return a[:, 0] if a.ndim == 2 and a.shape[1] == 1 else a


def _check_pair(metric: str, y_true: np.ndarray, y_pred: np.ndarray, pred_name="y_pred"):
    """Raise unless there is at least one example and both name the same number of them."""
    if y_true.ndim == 0 or y_pred.ndim == 0:
        raise ValueError(
            f"{metric}: expected arrays of examples, got y_true shape {y_true.shape} and "
            f"{pred_name} shape {y_pred.shape}"
        )
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"{metric}: y_true has {len(y_true)} examples (shape {y_true.shape}) but "
            f"{pred_name} has {len(y_pred)} (shape {y_pred.shape})"
        )
    if len(y_true) == 0:
        raise ValueError(f"{metric}: needs at least one example, got none")


def _true_labels(metric: str, y_true) -> np.ndarray:
    """Labels (N,) from labels (N,) or (N, 1), or from one-hot rows (N, K)."""
    y_true = _squeeze_column(to_numpy(y_true))
    if y_true.ndim == 2:
        return y_true.argmax(axis=1)
    if y_true.ndim != 1:
        raise ValueError(
            f"{metric}: y_true must be labels (N,) or one-hot (N, K), got {y_true.shape}"
        )
    return y_true


def _labels_of_predictions(metric: str, y_pred) -> np.ndarray:
    """Predicted labels (N,) from what a model or a user hands over:

    - (N, K) with K > 1: scores, logits or probabilities per class; the label is the argmax.
    - (N,) or (N, 1) of integers or booleans: labels already.
    - (N,) or (N, 1) of floats: probabilities of class 1; the label is 1 where p > 0.5 (as in
      Keras). Floats outside [0, 1] are logits, an error: apply a sigmoid (or use 0 as the
      threshold yourself) first.
    """
    y_pred = _squeeze_column(to_numpy(y_pred))
    if y_pred.ndim == 2:
        return y_pred.argmax(axis=1)
    if y_pred.ndim != 1:
        raise ValueError(
            f"{metric}: y_pred must be labels (N,), probabilities (N,) or (N, 1), or scores "
            f"(N, K), got shape {y_pred.shape}"
        )
    if y_pred.dtype.kind != "f":
        return y_pred
    if y_pred.size and (y_pred.min() < 0 or y_pred.max() > 1):
        raise ValueError(
            f"{metric}: floating y_pred of shape {y_pred.shape} is read as probabilities, but "
            f"its values run from {y_pred.min()} to {y_pred.max()}, outside [0, 1]; apply a "
            "sigmoid to logits, or pass integer labels"
        )
    return (y_pred > 0.5).astype(np.int64)


def _labels(metric: str, y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    true = _true_labels(metric, y_true)
    pred = _labels_of_predictions(metric, y_pred)
    _check_pair(metric, true, pred)
    return true, pred


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0.0 where the denominator is 0 (sklearn's zero_division=0)."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


# ---- accuracy, precision, recall, f1 -------------------------------------------------------------


def accuracy(y_true, y_pred) -> float:
    """The fraction of examples whose predicted label equals the true one.

    y_true: labels (N,) or (N, 1), or one-hot (N, K). y_pred: labels, probabilities of class
    1 (threshold 0.5), or per-class scores (N, K) (argmax); see _labels_of_predictions.
    """
    true, pred = _labels("accuracy", y_true, y_pred)
    return float(np.mean(true == pred))


def _class_counts(metric: str, y_true, y_pred, average: str, pos_label):
    """(true positives, predicted count, true count) per class, each (C,): one class, the
    positive one, for average="binary"; every class seen in either array for "macro"."""
    if average not in AVERAGES:
        raise ValueError(f"{metric}: average must be one of {AVERAGES}, got {average!r}")
    true, pred = _labels(metric, y_true, y_pred)
    # Number the classes 0..C-1 so that bincount does the counting in one pass each.
    classes, index = np.unique(np.concatenate([true, pred]), return_inverse=True)
    t, p = index[: len(true)], index[len(true) :]
    c = len(classes)
    tp = np.bincount(t[t == p], minlength=c)
    predicted, actual = np.bincount(p, minlength=c), np.bincount(t, minlength=c)
    if average == "macro":
        return tp, predicted, actual
    if c > 2:
        raise ValueError(
            f"{metric}: average='binary' needs two classes, but y_true and y_pred hold {c} "
            f"({classes[:10].tolist()}); pass average='macro'"
        )
    where = np.flatnonzero(classes == pos_label)
    if len(where) == 0:
        if c == 2:
            raise ValueError(
                f"{metric}: pos_label={pos_label!r} is not one of the classes "
                f"{classes.tolist()}; pass the positive class as pos_label"
            )
        zero = np.zeros(1, dtype=np.int64)  # only the negative class occurs
        return zero, zero, zero
    return tp[where], predicted[where], actual[where]


def precision(y_true, y_pred, average: str = "binary", pos_label=1) -> float:
    """TP / (TP + FP): of the examples predicted positive, the fraction that are.

    average: "binary" (the class `pos_label` only) or "macro" (the unweighted mean over the
    classes). A class never predicted scores 0.0. Inputs as in `accuracy`.
    """
    tp, predicted, _ = _class_counts("precision", y_true, y_pred, average, pos_label)
    return float(_divide(tp, predicted).mean())


def recall(y_true, y_pred, average: str = "binary", pos_label=1) -> float:
    """TP / (TP + FN): of the positive examples, the fraction found. A class that never
    occurs scores 0.0. average and inputs as in `precision`."""
    tp, _, actual = _class_counts("recall", y_true, y_pred, average, pos_label)
    return float(_divide(tp, actual).mean())


def f1(y_true, y_pred, average: str = "binary", pos_label=1) -> float:
    """2 TP / (2 TP + FP + FN), the harmonic mean of precision and recall, 0.0 when a class
    is neither present nor predicted. "macro" averages the per-class F1 scores (as sklearn),
    not the F1 of the averaged precision and recall."""
    tp, predicted, actual = _class_counts("f1", y_true, y_pred, average, pos_label)
    return float(_divide(2 * tp, predicted + actual).mean())


# ---- area under the ROC curve --------------------------------------------------------------------


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values` (N,), tied values sharing the mean of their ranks.

    Sorted once; each run of equal values holds positions start..end-1 (0-based), so its
    ranks are start+1..end, whose mean is (start + 1 + end) / 2.
    """
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.concatenate([[True], ordered[1:] != ordered[:-1]])  # a run starts here
    starts = np.flatnonzero(first)
    ends = np.append(starts[1:], len(values))
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = ((starts + 1 + ends) / 2)[np.cumsum(first) - 1]
    return ranks


def _binary_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting 1/2.

    That probability is the Mann-Whitney U statistic over P * Q pairs, and U comes from the
    ranks: U = (sum of the positives' ranks) - P (P + 1) / 2.
    """
    p = int(positive.sum())
    q = len(positive) - p
    if p == 0 or q == 0:
        raise ValueError(
            f"roc_auc: y_true holds only class {int(p > 0)}; the AUC is undefined unless both "
            "classes 0 and 1 occur"
        )
    u = average_ranks(scores)[positive].sum() - p * (p + 1) / 2
    return float(u / (p * q))


def roc_auc(y_true, scores, average: str = "binary") -> float:
    """The area under the ROC curve, exact (no thresholds), ties handled.

    average="binary": y_true (N,) of 0/1 (or booleans); scores (N,) or (N, 1), larger
        meaning more likely 1 (probabilities, logits, any scores).
    average="macro": one-vs-rest for K classes: y_true (N,) labels in [0, K) (or one-hot
        (N, K)); scores (N, K); the mean over classes of the AUC of class k against the rest
        by column k. Every class must occur in y_true.
    """
    if average not in AVERAGES:
        raise ValueError(f"roc_auc: average must be one of {AVERAGES}, got {average!r}")
    true = _true_labels("roc_auc", y_true)
    scores = _squeeze_column(to_numpy(scores)).astype(np.float64)
    _check_pair("roc_auc", true, scores, "scores")
    if np.isnan(scores).any():
        raise ValueError("roc_auc: scores contain NaN")
    if average == "binary":
        if scores.ndim != 1:
            raise ValueError(
                f"roc_auc: binary scores must be (N,) or (N, 1), got {scores.shape}; for K "
                "classes pass average='macro' (or the positive class's column, scores[:, 1])"
            )
        if not np.isin(true, (0, 1)).all():
            raise ValueError(
                f"roc_auc: y_true must hold binary labels 0 and 1, got values "
                f"{np.unique(true)[:10].tolist()}; for more classes pass average='macro'"
            )
        return _binary_auc(true == 1, scores)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError(
            f"roc_auc: macro average needs scores (N, K) with K >= 2, got {scores.shape}"
        )
    k = scores.shape[1]
    if not np.isin(true, np.arange(k)).all():
        raise ValueError(
            f"roc_auc: y_true must hold labels in [0, {k}) for scores {scores.shape}, got "
            f"values {np.unique(true)[:10].tolist()}"
        )
    missing = np.setdiff1d(np.arange(k), true)
    if len(missing):
        raise ValueError(
            f"roc_auc: class {int(missing[0])} of {k} does not occur in y_true; one-vs-rest "
            "AUC needs every class among the examples"
        )
    return float(np.mean([_binary_auc(true == c, scores[:, c]) for c in range(k)]))


# ---- regression errors ---------------------------------------------------------------------------


def _values(metric: str, y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    true = _squeeze_column(to_numpy(y_true)).astype(np.float64)
    pred = _squeeze_column(to_numpy(y_pred)).astype(np.float64)
    _check_pair(metric, true, pred)
    if true.shape != pred.shape:
        raise ValueError(f"{metric}: y_true has shape {true.shape}, y_pred {pred.shape}")
    return true, pred


def rmse(y_true, y_pred) -> float:
    """sqrt(mean((y_pred - y_true)**2)), over all elements."""
    true, pred = _values("rmse", y_true, y_pred)
    return float(np.sqrt(np.mean((pred - true) ** 2)))


def mae(y_true, y_pred) -> float:
    """mean(|y_pred - y_true|), over all elements."""
    true, pred = _values("mae", y_true, y_pred)
    return float(np.mean(np.abs(pred - true)))


# ---- ranking against sampled negatives -------------------------------------------------------


def positive_ranks(scores) -> np.ndarray:
    """(Q,) int64: the 0-based rank of each query's positive among its candidates.

    scores: (Q, 1 + S), row q holds the score of query q's one held-out positive in column 0
    and the scores of S sampled negatives after it (the protocol of He et al., 2017, "Neural
    Collaborative Filtering": S = 99). Rank = the negatives scoring above the positive, plus
    those tied with it: ties count against the positive, so a model that scores every item
    alike ranks each positive last, not first.
    """
    s = to_numpy(scores).astype(np.float64)
    if s.ndim != 2 or s.shape[1] < 2:
        raise ValueError(
            f"positive_ranks: scores must be (queries, 1 + negatives) with at least one "
            f"negative, got shape {s.shape}"
        )
    if not np.isfinite(s).all():
        raise ValueError("positive_ranks: scores must be finite (a NaN cannot be ranked)")
    positive = s[:, :1]  # (Q, 1)
    return (s[:, 1:] >= positive).sum(axis=1).astype(np.int64)


def hit_rate(scores, k: int = 10) -> float:
    """HR@k: the fraction of queries whose positive is among the k best-scored candidates.
    scores as in positive_ranks."""
    _check_k("hit_rate", k)
    return float(np.mean(positive_ranks(scores) < k))


def ndcg(scores, k: int = 10) -> float:
    """NDCG@k with one relevant item per query: mean of 1 / log2(rank + 2) when the positive's
    0-based rank is below k, else 0 (rank 0 scores 1, rank 1 scores 0.63, ...). scores as in
    positive_ranks."""
    _check_k("ndcg", k)
    ranks = positive_ranks(scores)
    return float(np.mean(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)))


def _check_k(metric: str, k) -> None:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"{metric}: k must be an integer >= 1, got {k!r}")
