"""Loss functions: cross-entropy over classes, binary cross-entropy on logits, mean squared error.

Each loss takes the model's raw outputs as a Tensor and the targets (an array or a Tensor) and
returns a one-element Tensor, the mean over the batch (or the sum, or one loss per element,
with `reduction="sum"` / `"none"`). `get("mse")` looks a loss up by its Keras name.

The two cross-entropies are single fused ops, taking logits rather than probabilities,
because that is what makes them stable:
  - cross_entropy computes log softmax as (x - max) - log(sum(exp(x - max))): every exponent
    is <= 0 so nothing overflows, and the sum is >= 1 so the log never sees 0. Softmax
    followed by log would turn a probability of e**-800 into log(0) = -inf.
  - binary_cross_entropy_with_logits uses max(z, 0) - z*t + log1p(exp(-|z|)), equal to
    -t*log(sigmoid(z)) - (1-t)*log(1 - sigmoid(z)) but with exp only of non-positive numbers.
Fused, their backwards are also the well-known short forms, softmax - onehot and sigmoid - t,
with no division by a probability that may have rounded to 0.

Shapes: N examples, K classes. Read in order: cross_entropy, binary_cross_entropy_with_logits,
mse, sparse_categorical_crossentropy (Keras's, on probabilities), get. Left out: class
weights, label smoothing.
"""

from __future__ import annotations

from collections.abc import Callable

from tinydeep.backend import xp_of
from tinydeep.tensor import Tensor, differentiable

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(loss: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{loss}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(loss: str, losses, reduction: str):
    """The per-element `losses` (an array, or a Tensor) averaged, summed or left as they are."""
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    if losses.size == 0:
        raise ValueError(f"{loss}: cannot average over an empty batch (shape {losses.shape})")
    return losses.mean()


def _per_element(dy, reduction: str, count: int):
    """The upstream gradient of each element's loss: dy / count for a mean, else dy
    (a scalar for "mean" and "sum", one value per element for "none")."""
    return dy / count if reduction == "mean" else dy


def _check_floating(loss: str, argument: str, array) -> None:
    """A model's outputs are floating-point: an integer, boolean or complex array passed
    as predictions is a mistake (and has no gradient), so it is a TypeError, not a cast."""
    if array.dtype.kind != "f":
        raise TypeError(
            f"{loss}: {argument} must be floating-point (a model's raw outputs), "
            f"got dtype {array.dtype}"
        )


def _targets_like(loss: str, targets, predictions: Tensor) -> Tensor:
    """`targets` as a Tensor, cast to the predictions' dtype unless it requires a gradient
    (integer 0/1 targets with float32 outputs must not turn the loss into float64). Targets
    are real numbers: booleans, integers or floats; complex ones are a TypeError."""
    data = predictions.data
    targets = targets.data if isinstance(targets, Tensor) and not targets.requires_grad else targets
    if not hasattr(targets, "dtype"):  # lists and numbers go to the predictions' device
        targets = xp_of(data).asarray(targets)
    if targets.dtype.kind not in "biuf":
        raise TypeError(
            f"{loss}: targets must be real numbers (floats, integers or booleans), "
            f"got dtype {targets.dtype}"
        )
    if isinstance(targets, Tensor):  # requires a gradient: soft targets from another model
        return targets
    if data.dtype.kind == "f" and targets.dtype != data.dtype:
        targets = targets.astype(data.dtype)
    return Tensor(targets)


def _check_same_shape(loss: str, predictions, targets, names: tuple[str, str]) -> None:
    if predictions.shape != targets.shape:
        raise ValueError(
            f"{loss}: {names[1]} must have the shape of {names[0]}, {predictions.shape}, "
            f"got {targets.shape} (no broadcasting: (N, 1) against (N,) would compare every "
            "prediction with every target; reshape one of them)"
        )


# ---- cross-entropy over K classes --------------------------------------------------------------


def check_labels(loss: str, labels, scores_shape: tuple[int, int]):
    """Integer class indices (N,) or (N, 1) in [0, K) for scores (N, K), as shape (N,);
    else a ValueError naming the loss, what was expected and what was received."""
    n, k = scores_shape
    if labels.dtype.kind not in "iu":
        raise ValueError(
            f"{loss}: labels must be integer class indices, got dtype {labels.dtype}; "
            "convert with labels.astype('int64') (one-hot labels: labels.argmax(axis=1))"
        )
    if labels.shape not in ((n,), (n, 1)):
        raise ValueError(
            f"{loss}: labels must have shape ({n},), one class per row of the scores "
            f"{scores_shape}, got {labels.shape}"
        )
    labels = labels.reshape(n)
    low, high = (int(labels.min()), int(labels.max())) if n else (0, 0)
    if low < 0 or high >= k:
        bad = low if low < 0 else high
        raise ValueError(f"{loss}: labels must be in [0, {k}) for K={k} classes, got {bad}")
    return labels


def cross_entropy_forward(logits, labels, reduction: str = "mean"):
    """loss[n] = -log softmax(logits[n])[labels[n]] = log(sum_k exp(logits[n, k])) -
    logits[n, labels[n]], then averaged (or summed) over the batch.

    logits (N, K) floating; labels (N,) (or (N, 1)) integers in [0, K).
    """
    _check_reduction("cross_entropy", reduction)
    _check_floating("cross_entropy", "logits", logits)
    if logits.ndim != 2 or logits.shape[1] == 0:
        raise ValueError(f"cross_entropy: logits must be (N, K), got shape {logits.shape}")
    n = logits.shape[0]
    labels = check_labels("cross_entropy", labels, logits.shape)

    xp = xp_of(logits)
    rows = xp.arange(n)
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, K), every exponent <= 0
    e = xp.exp(shifted)
    total = e.sum(axis=1)  # (N,), >= 1: the largest term is exp(0)
    losses = xp.log(total) - shifted[rows, labels]  # (N,)
    return _reduce("cross_entropy", losses, reduction), (e, total, labels, reduction)


def cross_entropy_backward(dy, cache, needs_grad=(True, False)):
    """dlogits[n] = (softmax(logits[n]) - onehot(labels[n])) * g[n], with g = dy / N for the
    mean (dy for the sum, dy[n] per example for "none"). The one-hot is never built: 1 is
    subtracted at each row's label. No gradient for the labels (integers)."""
    e, total, labels, reduction = cache
    g = _per_element(dy, reduction, len(total))
    dlogits = e * (g / total)[..., None]  # softmax * g, in one pass over (N, K)
    dlogits[xp_of(e).arange(len(total)), labels] -= g
    return dlogits, None


_cross_entropy = differentiable(cross_entropy_forward, cross_entropy_backward, "cross_entropy")


def cross_entropy(logits, labels, reduction: str = "mean") -> Tensor:
    """The mean over the batch of -log softmax(logits)[label]: the classification loss.

    logits (N, K): raw scores, no softmax applied. labels (N,) (or (N, 1), as Keras passes
    them): integer class indices in [0, K), an array, a Tensor or a list. reduction: "mean"
    (a scalar), "sum" (a scalar) or "none" ((N,), one loss per example).
    """
    logits = logits if isinstance(logits, Tensor) else Tensor(logits)
    labels = labels.data if isinstance(labels, Tensor) else labels
    if not hasattr(labels, "dtype"):  # a list goes to the logits' device
        labels = xp_of(logits.data).asarray(labels)
    return _cross_entropy(logits, labels, reduction=reduction)


# ---- binary cross-entropy on logits ------------------------------------------------------------


def binary_cross_entropy_with_logits_forward(logits, targets, reduction: str = "mean"):
    """loss = max(z, 0) - z*t + log1p(exp(-|z|)) elementwise (z the logits, t the targets),
    then averaged (or summed) over all elements.

    logits, targets: the same shape, any; targets in [0, 1] (labels or probabilities).
    """
    name = "binary_cross_entropy_with_logits"
    _check_reduction(name, reduction)
    _check_floating(name, "logits", logits)
    _check_same_shape(name, logits, targets, ("logits", "targets"))
    xp = xp_of(logits)
    # Elementwise, not min and max: a NaN target (legal, it makes the loss NaN) would make
    # them NaN and hide an infinity beside it.
    if bool(((targets < 0) | (targets > 1)).any()):
        seen = targets[~xp.isnan(targets)]
        raise ValueError(
            f"{name}: targets must be in [0, 1], got values from {float(seen.min())} "
            f"to {float(seen.max())}"
        )
    e = xp.exp(-xp.abs(logits))  # in (0, 1]: never overflows
    losses = xp.maximum(logits, 0) - logits * targets + xp.log1p(e)
    return _reduce(name, losses, reduction), (logits, targets, e, reduction)


def binary_cross_entropy_with_logits_backward(dy, cache, needs_grad=(True, True)):
    """dlogits = (sigmoid(z) - t) * g, dtargets = -z * g, with g = dy / count for the mean
    (count = number of elements), dy for the sum and for "none". sigmoid(z) comes from the
    forward's e = exp(-|z|): 1 / (1 + e) for z >= 0, e / (1 + e) below."""
    z, t, e, reduction = cache
    g = _per_element(dy, reduction, z.size)
    dz = dt = None
    if needs_grad[0]:
        sigmoid = xp_of(z).where(z >= 0, 1, e) / (1 + e)
        dz = (sigmoid - t) * g
    if needs_grad[1]:  # soft targets produced by another network (distillation)
        dt = -z * g
    return dz, dt


_binary_cross_entropy_with_logits = differentiable(
    binary_cross_entropy_with_logits_forward,
    binary_cross_entropy_with_logits_backward,
    "binary_cross_entropy_with_logits",
)


def binary_cross_entropy_with_logits(logits, targets, reduction: str = "mean") -> Tensor:
    """The mean of the binary cross-entropy between sigmoid(logits) and targets, computed
    from the logits. logits and targets have exactly the same shape (say (N,) or (N, 1),
    not one of each); targets in [0, 1], integers or floats."""
    logits = logits if isinstance(logits, Tensor) else Tensor(logits)
    targets = _targets_like("binary_cross_entropy_with_logits", targets, logits)
    return _binary_cross_entropy_with_logits(logits, targets, reduction=reduction)


# ---- mean squared error ------------------------------------------------------------------------


def mse(predictions, targets, reduction: str = "mean") -> Tensor:
    """The mean over all elements of (predictions - targets)**2; shapes must match exactly.

    Built from Tensor ops (subtract, multiply, mean): nothing here needs a fused form.
    """
    _check_reduction("mse", reduction)
    predictions = predictions if isinstance(predictions, Tensor) else Tensor(predictions)
    _check_floating("mse", "predictions", predictions)
    targets = _targets_like("mse", targets, predictions)
    _check_same_shape("mse", predictions, targets, ("predictions", "targets"))
    diff = predictions - targets
    return _reduce("mse", diff * diff, reduction)


# ---- Keras's cross-entropy on probabilities -------------------------------------------------

PROBABILITY_EPSILON = 1e-7  # Keras's backend epsilon: probabilities are clipped to [eps, 1-eps]


def sparse_categorical_crossentropy(probabilities, labels, reduction: str = "mean") -> Tensor:
    """Keras's `loss="sparse_categorical_crossentropy"` (from_logits=False): the mean of
    -log p[label] for a model whose last layer is a softmax; p is renormalized to sum to 1
    and clipped to [1e-7, 1 - 1e-7], as Keras does, so a probability rounded to 0 gives a
    large finite loss rather than infinity. Prefer `cross_entropy` on logits: it needs no
    clipping, and its gradient does not vanish where the softmax saturates.

    probabilities (N, K); labels (N,) or (N, 1) integers in [0, K).
    """
    _check_reduction("sparse_categorical_crossentropy", reduction)
    p = probabilities if isinstance(probabilities, Tensor) else Tensor(probabilities)
    _check_floating("sparse_categorical_crossentropy", "probabilities", p)
    if p.ndim != 2:
        raise ValueError(
            f"sparse_categorical_crossentropy: probabilities must be (N, K), got shape {p.shape}"
        )
    labels = labels.data if isinstance(labels, Tensor) else labels
    labels = labels if hasattr(labels, "dtype") else xp_of(p.data).asarray(labels)
    labels = check_labels("sparse_categorical_crossentropy", labels, p.shape)
    p = (p / p.sum(axis=-1, keepdims=True)).clip(PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON)
    losses = -p[xp_of(p.data).arange(p.shape[0]), labels].log()  # (N,)
    return _reduce("sparse_categorical_crossentropy", losses, reduction)


# ---- look-up by name ---------------------------------------------------------------------------

LOSSES: dict[str, Callable] = {
    "mse": mse,
    "mean_squared_error": mse,
    "cross_entropy": cross_entropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "binary_crossentropy_from_logits": binary_cross_entropy_with_logits,
}


def get(name: str | Callable) -> Callable:
    """The loss function called `name` (Keras names too: `loss="mse"`); a callable is
    returned unchanged. As in Keras, "sparse_categorical_crossentropy" takes probabilities
    (a softmax output); "cross_entropy" takes logits."""
    if callable(name):
        return name
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"losses.get: unknown loss {name!r}; known: {sorted(LOSSES)}") from None
