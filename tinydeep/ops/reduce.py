"""Reductions: sum, mean and max over `axis` (None, an int, or a tuple of ints).

The backward of a reduction spreads `dy` back over the reduced axes: it first puts the
reduced axes back as size-1 axes (`keepdims` shape), then broadcasts to the input's shape.

Shapes: x is any shape; y drops the reduced axes, or keeps them as size 1 with keepdims=True.
"""

from __future__ import annotations

from tinydeep.backend import xp_of
from tinydeep.tensor import differentiable


def normalize_axis(op: str, axis, ndim: int) -> tuple[int, ...]:
    """`axis` (None, int or tuple, negatives allowed) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor of {ndim} dimensions")
    normalized = tuple(sorted(a % ndim for a in axes))
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op}: axis {axis} names an axis twice")
    return normalized


def kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` with each reduced axis set to 1: the keepdims shape."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def sum_forward(x, axis=None, keepdims=False):
    """y = x summed over `axis`."""
    axes = normalize_axis("sum", axis, x.ndim)
    return x.sum(axis=axes, keepdims=keepdims), (x.shape, axes)


def sum_backward(dy, cache):
    """dx = dy broadcast back over the summed axes."""
    shape, axes = cache
    return (xp_of(dy).broadcast_to(dy.reshape(kept_shape(shape, axes)), shape),)


def mean_forward(x, axis=None, keepdims=False):
    """y = x averaged over `axis`."""
    axes = normalize_axis("mean", axis, x.ndim)
    count = 1
    for a in axes:
        count *= x.shape[a]
    if count == 0:
        raise ValueError(f"mean: cannot average over an empty axis (shape {x.shape}, axis {axis})")
    return x.mean(axis=axes, keepdims=keepdims), (x.shape, axes, count)


def mean_backward(dy, cache):
    """dx = dy / count, broadcast back over the averaged axes."""
    shape, axes, count = cache
    dx = xp_of(dy).broadcast_to(dy.reshape(kept_shape(shape, axes)), shape) / count
    return (dx,)


def max_forward(x, axis=None, keepdims=False):
    """y = the largest element of x over `axis`."""
    axes = normalize_axis("max", axis, x.ndim)
    if any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"max: cannot reduce over an empty axis (shape {x.shape}, axis {axis})")
    y_kept = x.max(axis=axes, keepdims=True)
    y = y_kept if keepdims else y_kept.reshape([n for i, n in enumerate(x.shape) if i not in axes])
    return y, (x, y_kept, axes)


def max_backward(dy, cache):
    """dx = dy at the position of the maximum, 0 elsewhere; tied maxima share dy equally
    (as numpy.amax's derivative is taken in PyTorch's `amax`)."""
    x, y_kept, axes = cache
    is_max = x == y_kept
    ties = is_max.sum(axis=axes, keepdims=True)
    return (is_max * (dy.reshape(y_kept.shape) / ties),)


sum = differentiable(sum_forward, sum_backward, "sum")
mean = differentiable(mean_forward, mean_backward, "mean")
max = differentiable(max_forward, max_backward, "max")
