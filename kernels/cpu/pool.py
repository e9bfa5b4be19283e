"""Numba kernels for max pooling.

replaces tinydeep/ops/pool.py:max_pool2d_argmax and tinydeep/ops/pool.py:max_pool2d_backward

The references copy every window out with im2col (padded with the lowest value), take argmax
over the window axis, and send the gradient back as col2im of a one-hot (KH, KW, ...) array.
These kernels read the windows in place and build neither. The cache is the reference's,
(argmax, x_shape, window), with argmax (N, OH, OW, C) the row-major position of each window's
maximum in [0, KH*KW), so either backward takes either forward's cache.

Loop order. The forward walks the output pixels (N, OH, OW); for each it starts from the
window's first position and compares position after position (KH, KW), the C channels
innermost, so the compare-and-select over channels vectorises. Ties keep the first maximum
and a NaN wins, as NumPy's argmax. The backward is a gather, like kernels/cpu/conv.py's
col2im: each pixel of dx (N, H, W) adds, over its windows in the reference's order, dy times
"this pixel was the argmax" (1 or 0), the very products and sums of the reference, so dx is
the reference's bit for bit. Serial loops, as in conv.py; flat arrays, unsigned offsets.

Dtypes: float32, float64 and the integers; the kernels decline the others (float16, bool:
they return NotImplemented, and the reference runs).

Shapes: x (N, H, W, C), y, argmax, dy (N, OH, OW, C). `window` is the plain tuple
((KH, KW), (SH, SW), (OH, OW), ((top, bottom), (left, right))) (tinydeep/ops/conv.py's Window).
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from .dtypes import numeric

__all__ = ["max_pool2d_argmax", "max_pool2d_backward"]


def _geometry(window) -> tuple:
    """The window as the flat int tuple the loops take: (KH, KW, SH, SW, top, left, OH, OW)."""
    (kh, kw), (sh, sw), (oh, ow), ((top, _), (left, _)) = window
    return (kh, kw, sh, sw, top, left, oh, ow)


@njit(cache=True)
def _max_pool2d_argmax_loop(x, shape, geometry, lowest, y, argmax):
    """x flat (N*H*W*C) -> y, argmax flat (N*OH*OW*C)."""
    n, h, w, c = shape
    kh, kw, sh, sw, top, left, oh, ow = geometry
    cu = uint64(c)
    o = uint64(0)  # the first channel of the output pixel (b, r, q)
    for b in range(n):
        for r in range(oh):
            for q in range(ow):
                for i in range(kh):
                    yy = r * sh + i - top  # the input row under window row i, maybe padding
                    for j in range(kw):
                        u = q * sw + j - left
                        p = i * kw + j  # this position's index in the window
                        inside = 0 <= yy < h and 0 <= u < w
                        s = uint64(((b * h + yy) * w + u) * c) if inside else uint64(0)
                        for k in range(cu):
                            v = x[s + k] if inside else lowest
                            best = y[o + k]
                            if p == 0 or v > best or (np.isnan(v) and not np.isnan(best)):
                                y[o + k] = v
                                argmax[o + k] = p
                o += cu


def max_pool2d_argmax(x: np.ndarray, window):
    """(y, argmax), each (N, OH, OW, C): the largest element of each window of x (N, H, W, C)
    and its position in the window, row-major in [0, KH*KW) (the first if several are equal)."""
    if not numeric(x.dtype):
        return NotImplemented
    _, _, (oh, ow), _ = window
    x = np.ascontiguousarray(x)
    n, _, _, c = x.shape
    lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min  # never a maximum
    y = np.empty((n, oh, ow, c), dtype=x.dtype)
    argmax = np.empty((n, oh, ow, c), dtype=np.intp)
    _max_pool2d_argmax_loop(
        x.reshape(-1),
        x.shape,
        _geometry(window),
        x.dtype.type(lowest),
        y.reshape(-1),
        argmax.reshape(-1),
    )
    return y, argmax


@njit(cache=True)
def _max_pool2d_backward_loop(dy, argmax, geometry, dx, shape):
    """dy, argmax flat (N*OH*OW*C) -> dx flat (N*H*W*C)."""
    n, h, w, c = shape
    kh, kw, sh, sw, top, left, oh, ow = geometry
    cu = uint64(c)
    o = uint64(0)  # the first channel of the pixel (b, yy, u)
    for b in range(n):
        for yy in range(h):
            for u in range(w):
                for k in range(cu):
                    dx[o + k] = 0
                for i in range(kh):
                    t = (
                        yy + top - i
                    )  # window row r took this pixel at offset i: r*SH + i = yy + top
                    if t < 0 or t % sh != 0 or t // sh >= oh:
                        continue
                    r = t // sh
                    for j in range(kw):
                        s = u + left - j
                        if s < 0 or s % sw != 0 or s // sw >= ow:
                            continue
                        d = uint64(((b * oh + r) * ow + s // sw) * c)
                        p = i * kw + j
                        for k in range(cu):
                            # (argmax == p) * dy, as the reference: 0 * dy, not a skip
                            dx[o + k] += (argmax[d + k] == p) * dy[d + k]
                o += cu


def max_pool2d_backward(dy: np.ndarray, cache: tuple):
    """(dx,): dy routed to the position of each window's maximum, summed where windows
    overlap, 0 elsewhere. The cache is the reference's, (argmax, x_shape, window)."""
    argmax, x_shape, window = cache
    if not numeric(dy.dtype):
        return NotImplemented
    dy, argmax = np.ascontiguousarray(dy), np.ascontiguousarray(argmax)
    dx = np.empty(tuple(x_shape), dtype=dy.dtype)
    _max_pool2d_backward_loop(
        dy.reshape(-1), argmax.reshape(-1), _geometry(window), dx.reshape(-1), tuple(x_shape)
    )
    return (dx,)
