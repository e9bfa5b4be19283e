"""Softmax and log-softmax along one axis, both stable for any logits.

Subtracting the maximum before exponentiating changes nothing mathematically
(softmax(x) = softmax(x - c)) and keeps every exponent at or below 0, so logits of 1e4 neither
overflow nor lose the answer.

Shapes: x and y are the same shape; the normalization runs along `axis` (default the last).
"""

from __future__ import annotations

from tinydeep.backend import xp_of
from tinydeep.ops.reduce import normalize_axis
from tinydeep.tensor import differentiable


def softmax_forward(x, axis=-1):
    """y = exp(x) / sum(exp(x)) along `axis`."""
    (axis,) = normalize_axis("softmax", axis, x.ndim)
    e = xp_of(x).exp(x - x.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)
    return y, (y, axis)


def softmax_backward(dy, cache):
    """dx = y * (dy - sum(dy * y)) along `axis` (the softmax Jacobian applied to dy)."""
    y, axis = cache
    return (y * (dy - (dy * y).sum(axis=axis, keepdims=True)),)


def log_softmax_forward(x, axis=-1):
    """y = x - log(sum(exp(x))) along `axis`."""
    (axis,) = normalize_axis("log_softmax", axis, x.ndim)
    xp = xp_of(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    return y, (y, axis)


def log_softmax_backward(dy, cache):
    """dx = dy - softmax(x) * sum(dy) along `axis`, with softmax(x) = exp(y)."""
    y, axis = cache
    return (dy - xp_of(y).exp(y) * dy.sum(axis=axis, keepdims=True),)


softmax = differentiable(softmax_forward, softmax_backward, "softmax")
log_softmax = differentiable(log_softmax_forward, log_softmax_backward, "log_softmax")
