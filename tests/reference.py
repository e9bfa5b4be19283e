"""Slow, obviously correct references that the op tests compare the library against.

Each reference is written from the definition with plain Python loops (over output pixels,
say), shares no code with tinydeep, and is only fast enough for the small shapes tests draw.
Add the reference of a new op here, next to the ones below.

Contents: conv2d_reference, max_pool2d_reference, avg_pool2d_reference (all NHWC).
"""

from __future__ import annotations

import math

import numpy as np


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _axis(size: int, kernel: int, stride: int, padding) -> tuple[int, int]:
    """(number of outputs, padding before) along one axis, from each padding's definition."""
    if padding == "valid":
        return (size - kernel) // stride + 1, 0
    if padding == "same":  # TensorFlow: ceil(size / stride) outputs, the odd pad row after
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return out, total // 2
    return (size + 2 * padding - kernel) // stride + 1, padding  # an int: p on both sides


def _geometry(x_shape, window, strides, padding):
    """(OH, OW), (top, left), (KH, KW), (SH, SW) of a sliding window over x (N, H, W, C)."""
    (kh, kw), (sh, sw) = _pair(window), _pair(strides)
    ph, pw = (padding, padding) if isinstance(padding, str) else _pair(padding)
    oh, top = _axis(x_shape[1], kh, sh, ph)
    ow, left = _axis(x_shape[2], kw, sw, pw)
    return (oh, ow), (top, left), (kh, kw), (sh, sw)


def _window(x, n, i, j, geometry):
    """The pixels of output (n, i, j)'s window that lie inside the image, as a list of
    ((di, dj), x[n, h, w, :]) with (di, dj) the offset in the window; padding is left out."""
    _, (top, left), (kh, kw), (sh, sw) = geometry
    pixels = []
    for di in range(kh):
        for dj in range(kw):
            h, w = i * sh - top + di, j * sw - left + dj
            if 0 <= h < x.shape[1] and 0 <= w < x.shape[2]:
                pixels.append(((di, dj), x[n, h, w, :]))
    return pixels


def conv2d_reference(x, w, strides=(1, 1), padding="valid"):
    """y[n, i, j, f] = sum over the window's (di, dj, c) of x[n, i*SH - top + di,
    j*SW - left + dj, c] * w[di, dj, c, f], with x zero outside the image."""
    geometry = _geometry(x.shape, w.shape[:2], strides, padding)
    oh, ow = geometry[0]
    y = np.zeros((x.shape[0], oh, ow, w.shape[3]), dtype=np.result_type(x, w))
    for n in range(x.shape[0]):
        for i in range(oh):
            for j in range(ow):
                for (di, dj), pixel in _window(x, n, i, j, geometry):
                    y[n, i, j, :] += pixel @ w[di, dj]
    return y


def _pool_reference(reduce, x, pool_size, strides, padding):
    """y[n, i, j, :] = reduce over the channel vectors of the window's pixels in the image."""
    geometry = _geometry(x.shape, pool_size, pool_size if strides is None else strides, padding)
    oh, ow = geometry[0]
    y = np.zeros((x.shape[0], oh, ow, x.shape[3]), dtype=x.dtype)
    for n in range(x.shape[0]):
        for i in range(oh):
            for j in range(ow):
                y[n, i, j, :] = reduce([pixel for _, pixel in _window(x, n, i, j, geometry)])
    return y


def max_pool2d_reference(x, pool_size=(2, 2), strides=None, padding="valid"):
    """y[n, i, j, c] = the largest x[n, h, w, c] over the window's pixels inside the image."""
    return _pool_reference(lambda pixels: np.max(pixels, axis=0), x, pool_size, strides, padding)


def avg_pool2d_reference(x, pool_size=(2, 2), strides=None, padding="valid"):
    """y[n, i, j, c] = the mean of x[n, h, w, c] over the window's pixels inside the image
    (TensorFlow's "same": padding does not count)."""
    return _pool_reference(lambda pixels: np.mean(pixels, axis=0), x, pool_size, strides, padding)
