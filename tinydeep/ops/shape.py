"""Shape ops: reshape, transpose, pad, concatenate and stack.

None of these does arithmetic; each backward moves `dy` back into the input's layout
(reshape back, transpose by the inverse permutation, slice the padding off, split).

Shapes are given per function; `...` stands for any leading axes.
"""

from __future__ import annotations

import numpy as np

from tinydeep.backend import xp_of
from tinydeep.ops.reduce import normalize_axis
from tinydeep.tensor import differentiable


def reshape_forward(x, shape):
    """y = x with a new shape of the same size (one entry may be -1)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    try:
        y = x.reshape(shape)
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {x.shape} "
            f"({x.size} elements) into shape {shape}"
        ) from None
    return y, x.shape


def reshape_backward(dy, shape):
    """dx = dy reshaped to x's shape."""
    return (dy.reshape(shape),)


def transpose_forward(x, axes=None):
    """y = x with its axes permuted by `axes` (reversed when None)."""
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(a % x.ndim for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(
            f"transpose: axes {axes} are not a permutation of the "
            f"{x.ndim} axes of a tensor of shape {x.shape}"
        )
    return x.transpose(axes), axes


def transpose_backward(dy, axes):
    """dx = dy transposed by the inverse permutation."""
    return (dy.transpose(np.argsort(axes)),)


def pad_widths(pad_width, ndim: int) -> tuple[tuple[int, int], ...]:
    """NumPy's pad_width forms (n, (before, after), or one pair per axis) as one pair per axis."""
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (ndim, 2))
    if (widths < 0).any():
        raise ValueError(f"pad: pad_width must not be negative, got {pad_width}")
    return tuple((int(before), int(after)) for before, after in widths)


def pad_forward(x, pad_width, constant_values=0.0):
    """y = x surrounded by `constant_values`: pad_width as in numpy.pad (constant mode)."""
    try:
        widths = pad_widths(pad_width, x.ndim)
    except ValueError as error:
        if "pad:" in str(error):
            raise
        raise ValueError(
            f"pad: pad_width {pad_width} does not fit a tensor of shape "
            f"{x.shape}: give n, (before, after), or one pair per axis"
        ) from None
    y = xp_of(x).pad(x, widths, mode="constant", constant_values=constant_values)
    return y, widths


def pad_backward(dy, widths):
    """dx = dy with the padding sliced off."""
    return (
        dy[tuple(slice(before, dy.shape[i] - after) for i, (before, after) in enumerate(widths))],
    )


def _check_joinable(op: str, arrays) -> None:
    """At least one tensor, all of one rank (dtypes may differ: they promote as in NumPy)."""
    if len(arrays) == 0:
        raise ValueError(f"{op}: needs at least one tensor")
    if len({a.ndim for a in arrays}) > 1:
        raise ValueError(
            f"{op}: all tensors must have the same number of dimensions, "
            f"got shapes {[a.shape for a in arrays]}"
        )


def concatenate_forward(*xs, axis=0):
    """y = the tensors joined along an existing `axis`.  (N_i, ...) -> (sum N_i, ...)."""
    _check_joinable("concatenate", xs)
    (axis,) = normalize_axis("concatenate", axis, xs[0].ndim)
    for x in xs[1:]:
        rest, first = list(x.shape), list(xs[0].shape)
        rest[axis] = first[axis] = -1
        if rest != first:
            raise ValueError(
                f"concatenate: shapes {xs[0].shape} and {x.shape} differ off "
                f"the joining axis {axis}"
            )
    y = xp_of(xs[0]).concatenate(xs, axis=axis)
    return y, (axis, [x.shape[axis] for x in xs])


def concatenate_backward(dy, cache):
    """dx_i = the slice of dy along `axis` that x_i filled."""
    axis, sizes = cache
    splits = np.cumsum(sizes)[:-1].tolist()
    return tuple(xp_of(dy).split(dy, splits, axis=axis))


def stack_forward(*xs, axis=0):
    """y = the tensors joined along a new `axis`.  k tensors of (...) -> (..., k, ...)."""
    _check_joinable("stack", xs)
    if len({x.shape for x in xs}) > 1:
        raise ValueError(f"stack: all tensors must have one shape, got {[x.shape for x in xs]}")
    (axis,) = normalize_axis("stack", axis, xs[0].ndim + 1)
    return xp_of(xs[0]).stack(xs, axis=axis), (axis, len(xs))


def stack_backward(dy, cache):
    """dx_i = dy taken at index i of the new axis."""
    axis, count = cache
    return tuple(dy.take(i, axis=axis) for i in range(count))


reshape = differentiable(reshape_forward, reshape_backward, "reshape")
transpose = differentiable(transpose_forward, transpose_backward, "transpose")
pad = differentiable(pad_forward, pad_backward, "pad")
_concatenate = differentiable(concatenate_forward, concatenate_backward, "concatenate")
_stack = differentiable(stack_forward, stack_backward, "stack")


def concatenate(tensors, axis: int = 0):
    """Join a sequence of tensors along an existing axis, as numpy.concatenate."""
    return _concatenate(*tensors, axis=axis)


def stack(tensors, axis: int = 0):
    """Join a sequence of same-shape tensors along a new axis, as numpy.stack."""
    return _stack(*tensors, axis=axis)
