"""Numba kernels for ReLU, forward and backward.

replaces tinydeep/ops/elementwise.py:relu_forward
replaces tinydeep/ops/elementwise.py:relu_backward

NumPy's backward, dy * (y > 0), makes a boolean array and then multiplies: two passes and a
temporary. Here each is one pass over the flattened arrays, cut into one part per core
(kernels/cpu/threads.py), with the
reference's exact arithmetic (dy times 0 or 1, so a NaN or infinite dy where y <= 0 still
gives NaN, and max(x, 0) keeps a NaN x), so the results are the reference's bit for bit.
They decline (return NotImplemented: the reference runs) other dtypes than float32 and
float64, and a dy and y of different shapes, which the reference broadcasts.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import threads
from .dtypes import FLOATS

__all__ = ["relu_backward", "relu_forward"]


@njit(cache=True, nogil=True)
def _relu_loop(x, y):
    for i in range(x.size):
        v = x[i]
        y[i] = v if v > 0 or np.isnan(v) else 0  # as np.maximum: NaN kept, -0.0 becomes 0.0


@njit(cache=True, nogil=True)
def _relu_backward_loop(dy, y, dx):
    for i in range(dy.size):
        dx[i] = dy[i] * (y[i] > 0)


def relu_forward(x):
    """y = max(x, 0); the cache is y."""
    if x.dtype not in FLOATS:
        return NotImplemented
    y = np.empty(x.shape, dtype=x.dtype)
    x1, y1 = np.ascontiguousarray(x).reshape(-1), y.reshape(-1)
    threads.run_ranges(lambda a, b: _relu_loop(x1[a:b], y1[a:b]), x.size, threads.parts_for(x.size))
    return y, y


def relu_backward(dy, y):
    """dx = dy where y > 0, else 0 (times 0, as the reference)."""
    if dy.dtype not in FLOATS or dy.shape != y.shape:
        return NotImplemented
    dx = np.empty(dy.shape, dtype=dy.dtype)
    dy1, y1 = np.ascontiguousarray(dy).reshape(-1), np.ascontiguousarray(y).reshape(-1)
    dx1 = dx.reshape(-1)

    def part(a: int, b: int) -> None:
        _relu_backward_loop(dy1[a:b], y1[a:b], dx1[a:b])

    threads.run_ranges(part, dy.size, threads.parts_for(dy.size))
    return (dx,)
