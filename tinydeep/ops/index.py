"""Indexing: `x[index]` with ints, slices, None, Ellipsis, integer arrays and boolean masks.

Forward is NumPy's indexing. Backward scatters `dy` into zeros of x's shape. With basic
indices and boolean masks each element of x is picked at most once, so an assignment does;
integer arrays may pick an element several times (x[[0, 0]]), so their gradients are added
with an unbuffered scatter-add (numpy.add.at; cupyx.scatter_add on the GPU).

Shapes: x is any shape; y's shape is NumPy's result shape for the index.
"""

from __future__ import annotations

import numpy as np

from tinydeep.backend import check_same_device, xp_of
from tinydeep.tensor import Tensor, differentiable


def normalize_index(index, xp):
    """The index with Tensors and lists turned into arrays of `xp` (a tuple stays a tuple)."""
    if isinstance(index, tuple):
        return tuple(normalize_index(i, xp) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return xp.asarray(index)
    return index


def _picks_repeatable(index) -> bool:
    """True when the index holds an integer array, which may name one element twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "dtype") and p.dtype.kind in "iu" for p in parts)


def getitem_forward(x, index):
    """y = x[index]."""
    xp = xp_of(x)
    index = normalize_index(index, xp)
    arrays = [p for p in (index if isinstance(index, tuple) else (index,)) if hasattr(p, "ndim")]
    check_same_device("getitem", [x, *arrays])
    try:
        y = x[index]
    except IndexError as error:
        raise IndexError(f"getitem: index does not fit a tensor of shape {x.shape}: {error}")
    return y, (x.shape, index)


def getitem_backward(dy, cache):
    """dx = zeros of x's shape with dy added at the indexed places (repeats add up)."""
    shape, index = cache
    xp = xp_of(dy)
    dx = xp.zeros(shape, dtype=dy.dtype)
    if not _picks_repeatable(index):
        dx[index] = dy
    elif xp is np:
        np.add.at(dx, index, dy)
    else:
        import cupyx

        cupyx.scatter_add(dx, index, dy)
    return (dx,)


getitem = differentiable(getitem_forward, getitem_backward, "getitem")
