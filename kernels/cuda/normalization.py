"""CUDA kernels for training-mode batch normalization.

replaces tinydeep/ops/normalization.py:batch_moments
replaces tinydeep/ops/normalization.py:batch_norm_normalize
replaces tinydeep/ops/normalization.py:batch_norm_backward

The references spend a temporary (N, ..., C) array on nearly every line (x - mean, its
square, x_hat, x_hat * gamma, dy * x_hat, m * dy, ...). Here each per-element line is one
ElementwiseKernel and each per-channel sum one launch of normalization.cu's channel_sums
(plus one tiny launch for its partials), which computes its summand on the fly, so a
(N, ..., C) array is written only where the reference returns or caches one.
The per-channel (C,) arithmetic stays CuPy expressions: it is tiny.

x is viewed as (M, C), M = N*H*W, the channel last; (C,) arrays broadcast against it.
Caches are the references' own, (x_hat, gamma, inv_std), so kernels and references mix.
Every operand of a kernel below is one type T, and CuPy casts no array to it (only Python
scalars): the op promotes x, gamma, beta, mean and var to one dtype before dispatch, and
checks that dy has y's shape and dtype (tinydeep/ops/normalization.py), so these kernels
never see two. batch_moments and batch_norm_backward sum in float32 or float64 only and
decline other dtypes (an integer or float16 x): they return NotImplemented, and the CuPy
reference runs.
"""

from __future__ import annotations

import cupy
import numpy as np

from . import source

__all__ = ["batch_moments", "batch_norm_backward", "batch_norm_normalize"]

# The channel sums (normalization.cu): rows split over a grid of blocks; see the .cu header.
SUM, SQUARED_DEVIATIONS, PRODUCTS = 0, 1, 2  # its modes
ROWS_PER_THREAD = 8  # at least, before the grid grows: fewer rows are not worth a block
MAX_ROW_BLOCKS = 1024  # blocks down the rows: enough to fill every SM of a large GPU


def _channel_sums(x2: cupy.ndarray, mode: int = SUM, a=None) -> cupy.ndarray:
    """(C,) sums over the M rows of x2 (M, C), of x, (x - a)^2 or x * a (the modes above),
    in x2's floating dtype: partial sums from a grid of blocks, then one block adds them."""
    module = source.module("normalization.cu", ("channel_sums",))
    kernel = source.instance(module, "channel_sums", x2.dtype)  # float or double: see callers
    m, c = x2.shape
    x2 = cupy.ascontiguousarray(x2)
    a = x2 if a is None else cupy.ascontiguousarray(a, dtype=x2.dtype)
    blocks = (c + 31) // 32, max(1, min(MAX_ROW_BLOCKS, m // (8 * ROWS_PER_THREAD)))
    partial = cupy.empty((blocks[1], c), dtype=x2.dtype)
    if m and c:
        kernel(blocks, (32, 8), (x2, a, partial, np.int64(m), np.int32(c), np.int32(mode)))
    else:
        partial.fill(0)
    if blocks[1] == 1:
        return partial[0]
    sums = cupy.empty((1, c), dtype=x2.dtype)
    kernel(
        (blocks[0], 1),
        (32, 8),
        (partial, partial, sums, np.int64(blocks[1]), np.int32(c), np.int32(SUM)),
    )
    return sums[0]


# x_hat = (x - mean) * inv_std ; y = x_hat * gamma + beta   (the reference's two lines)
_normalize = cupy.ElementwiseKernel(
    "T x, T mean, T inv_std, T gamma, T beta",
    "T x_hat, T y",
    """
    x_hat = (x - mean) * inv_std;
    y = x_hat * gamma + beta;
    """,
    "batch_norm_normalize",
)

# dx = scale * (m * dy - dbeta - x_hat * dgamma), scale = gamma * inv_std / m  (C,)
_input_gradient = cupy.ElementwiseKernel(
    "T dy, T x_hat, T scale, T m, T dbeta, T dgamma",
    "T dx",
    "dx = scale * (m * dy - dbeta - x_hat * dgamma)",
    "batch_norm_backward",
)


def batch_moments(x: cupy.ndarray):
    """(mean, var) of x (..., C) per channel, over all axes but the last; each (C,).
    Two passes, as the reference: the mean, then the mean squared deviation from it."""
    if x.dtype not in source.FLOATS:
        return NotImplemented
    x2 = x.reshape(-1, x.shape[-1])  # (M, C), a view when x is contiguous
    m = x2.shape[0]
    mean = _channel_sums(x2) / m  # (C,)
    var = _channel_sums(x2, SQUARED_DEVIATIONS, mean) / m
    return mean, var


def batch_norm_normalize(x: cupy.ndarray, gamma, beta, mean, inv_std):
    """y = x_hat * gamma + beta and x_hat = (x - mean) * inv_std, per channel; (y, x_hat)."""
    x_hat, y = _normalize(x, mean, inv_std, gamma, beta)
    return y, x_hat


def batch_norm_backward(dy: cupy.ndarray, cache, needs_grad=(True, True, True)):
    """(dx, dgamma, dbeta): dbeta = sum(dy), dgamma = sum(dy * x_hat),
    dx = gamma * inv_std / M * (M * dy - dbeta - x_hat * dgamma), sums over M per channel."""
    x_hat, gamma, inv_std = cache
    if dy.dtype not in source.FLOATS:
        return NotImplemented
    channels = dy.shape[-1]
    dy2, x_hat2 = dy.reshape(-1, channels), x_hat.reshape(-1, channels)  # (M, C)
    m = x_hat2.shape[0]
    dbeta = _channel_sums(dy2)  # (C,)
    dgamma = _channel_sums(dy2, PRODUCTS, x_hat2)  # (C,)
    dx = None
    if needs_grad[0]:  # skipped for a batch norm applied straight to the data
        dx = _input_gradient(dy, x_hat, gamma * inv_std / m, m, dbeta, dgamma)
    return dx, dgamma, dbeta
