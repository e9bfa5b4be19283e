"""Numba kernels for training-mode batch normalization.

replaces tinydeep/ops/normalization.py:batch_moments
replaces tinydeep/ops/normalization.py:batch_norm_normalize
replaces tinydeep/ops/normalization.py:batch_norm_backward

x (N, ..., C) is read as a matrix (M, C): M = N*H*W rows, the channels the fast, contiguous
axis. NumPy reduces such an array over its rows one row at a time, which is slow for 16-64
channels; here every per-channel reduction splits the rows into fixed blocks of BLOCK rows,
sums each block into its own row of a (blocks, C) float64 array, then adds the blocks up.
Every pass is cut into one part per core (kernels/cpu/threads.py, the convolutions' helper:
no Numba or OpenBLAS thread pool spins against the other). The parts of a reduction are whole
blocks, so each block's sum is the same whether one thread or several computed it, and the
blocks are added up in order after: the results do not depend on the number of cores.

Accuracy. The sums run in float64 for float32 data too. batch_moments sums d = x - shift and
d*d, with shift one row of x per channel, and takes var = mean(d*d) - mean(d)**2: the shift
bounds the cancellation in that difference by M (var >= (x0 - mean)**2 / M for any row x0),
which float64 absorbs for float32 data in one pass. float64 data takes a second pass shifted
by the mean itself (the corrected two-pass algorithm of Chan, Golub and LeVeque), as accurate
as the reference's two passes.

batch_norm_normalize returns the reference's (y, x_hat), so the forward and the backward can
be swapped for their references independently; it writes y and x_hat in one pass. The
settings are checked once, and promoted to one dtype, in the reference's batch_norm_forward,
which calls it; batch_norm_backward's dy is checked against the cache before dispatch.

Dtypes: each kernel takes float32 or float64, one dtype for all its arrays, and declines
anything else (returns NotImplemented, and the reference runs): float16, an integer x of
batch_moments, arrays of mixed dtypes, and, for batch_moments and the backward, an empty
batch (whose statistics are the reference's NaNs) and an x that is not (N, ..., C).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import threads
from .dtypes import FLOATS

__all__ = ["batch_moments", "batch_norm_backward", "batch_norm_normalize"]

BLOCK = 256  # rows per block of a reduction
STRIP = 256  # values per strip of rows, at least (see _strip_width)


@njit(cache=True)
def _strip_width(c):
    """Rows per strip: a strip of U rows, U * C values, is summed into U * C accumulators, so
    one row's sums never wait on the previous row's (a chain through memory that would cap
    the loop at one row per few cycles)."""
    return max(1, STRIP // c)


@njit(cache=True, nogil=True)
def _shifted_sums(x, shifts, s1, s2):
    """Per block of BLOCK rows of x (M, C), sum(x - shift) and sum((x - shift)**2) in float64,
    into row b of s1 and s2 (blocks, U * C); `shifts` is the shift repeated U times."""
    m, c = x.shape
    u = _strip_width(c)
    w = u * c
    flat = x.reshape(-1)
    for b in range(s1.shape[0]):
        a1, a2 = s1[b], s2[b]
        i, stop = b * BLOCK, min(m, (b + 1) * BLOCK)
        while i + u <= stop:  # whole strips of u rows
            for k in range(w):
                d = flat[i * c + k] - shifts[k]
                a1[k] += d
                a2[k] += d * d
            i += u
        for k in range((stop - i) * c):  # the last rows of the array
            d = flat[i * c + k] - shifts[k]
            a1[k] += d
            a2[k] += d * d


@njit(cache=True, nogil=True)
def _grad_sums(dy, x_hat, s1, s2):
    """Per block of BLOCK rows, sum(dy) and sum(dy * x_hat) in float64, into row b of s1 and
    s2 (blocks, U * C)."""
    m, c = dy.shape
    w = s1.shape[1]
    flat_dy, flat_xh = dy.reshape(-1), x_hat.reshape(-1)
    for b in range(s1.shape[0]):
        a1, a2 = s1[b], s2[b]
        start, stop = b * BLOCK * c, min(m, (b + 1) * BLOCK) * c
        for base in range(start, stop, w):
            for k in range(min(w, stop - base)):
                g = np.float64(flat_dy[base + k])
                a1[k] += g
                a2[k] += g * flat_xh[base + k]


def _block_sums(loop, matrices: tuple, *settings):
    """loop(*row blocks of `matrices` (each (M, C)), *settings, s1 blocks, s2 blocks) in parts
    of whole blocks, one part per core, then the blocks folded in order: (sum1, sum2), each
    (C,) in float64."""
    m, c = matrices[0].shape
    blocks = (m + BLOCK - 1) // BLOCK
    w = _strip_width(c) * c
    s1, s2 = np.zeros((blocks, w)), np.zeros((blocks, w))

    def part(b0: int, b1: int) -> None:
        rows = slice(b0 * BLOCK, b1 * BLOCK)
        loop(*(a[rows] for a in matrices), *settings, s1[b0:b1], s2[b0:b1])

    threads.run_ranges(part, blocks, threads.parts_for(m * c))
    return _fold(s1, c), _fold(s2, c)


def _row_parts(loop, inputs: tuple, settings: tuple, outputs: tuple) -> None:
    """loop(*inputs, *settings, *outputs) on one range of rows per core; inputs and outputs
    are (M, C) matrices, settings (C,) vectors."""
    m, c = inputs[0].shape

    def part(a: int, b: int) -> None:
        loop(*(x[a:b] for x in inputs), *settings, *(x[a:b] for x in outputs))

    threads.run_ranges(part, m, threads.parts_for(m * c))


@njit(cache=True)
def _fold(partial, c):
    """(blocks, U * C) partial sums -> (C,), added in the order they lie: block by block,
    each block's U rows of C in turn."""
    out = np.zeros(c)
    for b in range(partial.shape[0]):
        for u in range(partial.shape[1] // c):
            for j in range(c):  # one channel per step: a loop that vectorizes
                out[j] += partial[b, u * c + j]
    return out


@njit(cache=True, nogil=True)
def _forward_loop(x, mean, inv_std, gamma, beta, y, x_hat):
    m, c = x.shape
    for b in range((m + BLOCK - 1) // BLOCK):
        for i in range(b * BLOCK, min(m, (b + 1) * BLOCK)):
            for j in range(c):
                h = (x[i, j] - mean[j]) * inv_std[j]  # the reference's operations, in its dtype
                x_hat[i, j] = h
                y[i, j] = h * gamma[j] + beta[j]


@njit(cache=True, nogil=True)
def _dx_loop(dy, x_hat, scale, shift, slope, dx):
    """dx = scale * dy + slope * x_hat + shift per channel, in float64, rounded once."""
    m, c = dy.shape
    for b in range((m + BLOCK - 1) // BLOCK):
        for i in range(b * BLOCK, min(m, (b + 1) * BLOCK)):
            for j in range(c):
                dx[i, j] = scale[j] * dy[i, j] + slope[j] * x_hat[i, j] + shift[j]


def _rows(a: np.ndarray) -> np.ndarray:
    """a (..., C) as a C-contiguous (M, C) matrix: a view when it can be, else a copy."""
    return np.ascontiguousarray(a).reshape(-1, a.shape[-1])


def batch_moments(x):
    """(mean, var) of x (..., C) per channel, over all axes but the last; each (C,), biased."""
    if x.dtype not in FLOATS or x.size == 0:
        return NotImplemented
    rows = _rows(x)
    m = rows.shape[0]
    repeats = _strip_width(rows.shape[1])  # the shift, once per row of a strip
    shift = rows[0].astype(np.float64)
    s1, s2 = _block_sums(_shifted_sums, (rows,), np.tile(shift, repeats))
    if x.dtype == np.float64:  # a second pass, shifted by the mean of the first
        shift = shift + s1 / m
        s1, s2 = _block_sums(_shifted_sums, (rows,), np.tile(shift, repeats))
    d_mean = s1 / m
    var = np.maximum(s2 / m - d_mean * d_mean, 0.0)
    return (shift + d_mean).astype(x.dtype), var.astype(x.dtype)


def batch_norm_normalize(x, gamma, beta, mean, inv_std):
    """y = x_hat * gamma + beta and x_hat = (x - mean) * inv_std, in one pass; (y, x_hat)."""
    dtype = x.dtype
    if dtype not in FLOATS or any(a.dtype != dtype for a in (gamma, beta, mean, inv_std)):
        return NotImplemented
    rows = _rows(x)
    y = np.empty(x.shape, dtype=dtype)
    x_hat = np.empty(x.shape, dtype=dtype)
    per_channel = [np.ascontiguousarray(v) for v in (mean, inv_std, gamma, beta)]
    outputs = (y.reshape(rows.shape), x_hat.reshape(rows.shape))
    _row_parts(_forward_loop, (rows,), per_channel, outputs)
    return y, x_hat


def batch_norm_backward(dy, cache, needs_grad=(True, True, True)):
    """(dx, dgamma, dbeta): dbeta = sum(dy), dgamma = sum(dy * x_hat), then
    dx = gamma * inv_std / M * (M * dy - dbeta - x_hat * dgamma), per channel."""
    x_hat, gamma, inv_std = cache  # of dy's dtype, checked before dispatch
    dtype = dy.dtype
    if dtype not in FLOATS or dy.size == 0:
        return NotImplemented
    dy_rows, x_hat_rows = _rows(dy), _rows(x_hat)
    sum_dy, sum_dy_xhat = _block_sums(_grad_sums, (dy_rows, x_hat_rows))
    dx = None
    if needs_grad[0]:  # skipped for a batch norm applied straight to the data
        m = dy_rows.shape[0]
        scale = gamma.astype(np.float64) * inv_std.astype(np.float64)  # (C,)
        dx = np.empty(dy.shape, dtype=dtype)
        # dx = scale * dy + slope * x_hat + shift, per channel
        shift, slope = -scale * sum_dy / m, -scale * sum_dy_xhat / m
        outputs = (dx.reshape(dy_rows.shape),)
        _row_parts(_dx_loop, (dy_rows, x_hat_rows), (scale, shift, slope), outputs)
    return dx, sum_dy_xhat.astype(dtype), sum_dy.astype(dtype)
