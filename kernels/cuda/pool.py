"""CUDA kernels for max pooling (sources in pool.cu).

replaces tinydeep/ops/pool.py:max_pool2d_argmax
replaces tinydeep/ops/pool.py:max_pool2d_backward

The references copy every window out with im2col (KH*KW times the input), take argmax and
take_along_axis over it, and send the gradient back through a (KH, KW, N, OH, OW, C) array
of mostly zeros and col2im. Here the forward reads each window in place, one thread per
output element, and records the same argmax; the backward is a gather, one thread per
input pixel, over the windows that contain it: overlapping windows (strides < pool size)
need no atomics, and the sums are deterministic and equal to the reference's.

The argmax (N, OH, OW, C) int64 is the reference's (the index in [0, KH*KW) within each
window), so a kernel forward and a reference backward (or the other way round) mix freely.
Dtypes: float32, float64, int32, int64 (source.C_TYPES); the kernels decline the others
(return NotImplemented, and the CuPy reference runs). The backward indexes dy, argmax
and dx by the cache's geometry alone: tinydeep/ops/pool.py checks before dispatch that dy and
argmax are (N, OH, OW, C) for it and argmax integer (check_max_pool2d_backward).
"""

from __future__ import annotations

import cupy
import numpy as np

from . import source

__all__ = ["max_pool2d_argmax", "max_pool2d_backward"]


def _kernel(name: str, dtype) -> cupy.RawKernel | None:
    module = source.module("pool.cu", ("max_pool2d_forward", "max_pool2d_backward"))
    return source.instance(module, name, dtype)


def _geometry(x_shape: tuple, window) -> tuple:
    """The int32 sizes every pool.cu kernel takes after its arrays."""
    (kh, kw), (sh, sw), (oh, ow), ((top, _), (left, _)) = window
    n, h, w, c = x_shape
    return tuple(map(np.int32, (n, h, w, c, oh, ow, kh, kw, sh, sw, top, left)))


def max_pool2d_argmax(x: cupy.ndarray, window):
    """y (N, OH, OW, C), the largest element of each window of x (N, H, W, C), and argmax,
    where it is; `window` is the reference's checked geometry."""
    kernel = _kernel("max_pool2d_forward", x.dtype)
    if kernel is None:
        return NotImplemented
    lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min  # never a maximum
    x = cupy.ascontiguousarray(x)
    (oh, ow), n, c = window.out, x.shape[0], x.shape[3]
    y = cupy.empty((n, oh, ow, c), dtype=x.dtype)
    argmax = cupy.empty((n, oh, ow, c), dtype=cupy.int64)
    args = (x, y, argmax, x.dtype.type(lowest), *_geometry(x.shape, window), np.int64(y.size))
    source.launch(kernel, y.size, args)
    return y, argmax


def max_pool2d_backward(dy: cupy.ndarray, cache):
    """dx = dy routed to the position of each window's maximum (the first one if several are
    equal), summed where windows overlap; 0 elsewhere."""
    argmax, x_shape, window = cache
    kernel = _kernel("max_pool2d_backward", dy.dtype)
    if kernel is None:
        return NotImplemented
    dy = cupy.ascontiguousarray(dy)
    argmax = cupy.ascontiguousarray(argmax, dtype=cupy.int64)
    dx = cupy.empty(x_shape, dtype=dy.dtype)
    args = (dy, argmax, dx, *_geometry(x_shape, window), np.int64(dx.size))
    source.launch(kernel, dx.size, args)
    return (dx,)
