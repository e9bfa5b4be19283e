"""Numba kernels for convolution: im2col and col2im, and the whole conv2d computed in chunks.

replaces tinydeep/ops/conv.py:im2col, tinydeep/ops/conv.py:col2im,
         tinydeep/ops/conv.py:conv2d_gemm and tinydeep/ops/conv.py:conv2d_backward

The references pad x with np.pad, copy every window into one cols array (KH*KW times the size
of x: 75 MB for ResNet-20's first 32x32x16 layer at batch 128), and run one GEMM over it;
col2im adds into a padded buffer that is then cropped. Here:

- im2col / col2im never build a padded copy: im2col writes `pad_value` where a window hangs
  over the border, col2im only visits real pixels.
- conv2d_gemm / conv2d_backward cut the batch into one contiguous part per core and run
  each part on its own thread (kernels/cpu/threads.py), a few images at a time, through one
  buffer of at most CHUNK_BYTES that stays in the caches: the big cols array is never written
  out to memory and read back, and both cores copy and multiply at once instead of taking
  turns between serial copies and two-thread GEMMs. The GEMMs stay in NumPy (BLAS, on one
  thread per part). When the batch fits in one chunk these are the reference's very GEMM
  calls and the results are the reference's bit for bit. In several chunks they differ from
  it by float rounding only: dw is summed chunk by chunk and part by part (in batch order,
  so every run gives the same bits), and BLAS may round a GEMM of fewer rows differently.
- Two other algorithms where they measured faster: 3x3 stride-1 convolutions run by
  Winograd's minimal filtering (kernels/cpu/winograd.py; derived in tinydeep/ops/winograd.py),
  F(4x4, 3x3) in float32 with 16 or more input channels and outputs of at least 8x8 pixels,
  else F(2x2, 3x3) (float64 keeps F(2x2), the more accurate: it is the dtype of gradient
  checks); and at other kernel sizes at stride 1, dx is dy convolved forward with the kernel
  turned round (flipped, C and F swapped) instead of dcols and col2im. They give the
  reference's results to float rounding (Winograd's bound: tests/kernels/test_cpu_winograd.py).

Measured at batch 128, float32, forward + backward, im2col (with the turned-round dx) against
Winograd F(2x2) (2-core EPYC, 2026-11-30, medians of 9): the stem 32x32x3 -> 16 (no dx) 14.4
ms against 12.9; 32x32x8 -> 16 27.0 against 20.0; ResNet-20's 32x32x16 -> 16 36-37 against
29-30; 16x16x32 -> 32 21 against 18; 8x8x64 -> 64 17 against 13. (dx by dcols and col2im
instead of the turned-round kernel: about 8 ms more at 32x32x16.) F(2x2) against F(4x4), the
same way (medians of 8): 32x32x16 -> 16 29.2 against 23.1 ms; 16x16x32 -> 32 19.3 against
14.1; 8x8x64 -> 64 13.7 against 12.6; 4x4x64 -> 64 5.1 against 5.1; the stem 12.0 against
15.5 (F(4x4)'s per-tile loops run over the channels, too short at 3).

Loop order. im2col walks the output pixels (N, OH, OW), then KH, KW, C: the writes to cols are
one contiguous stream, the reads C-long runs of x. col2im is a gather, not a scatter: each
real pixel of dx (N, H, W) sums the gradients of the windows that copied it, in the
reference's order (kernel offset (i, j) row-major, starting from 0), so it matches the
reference bit for bit. Both index flat arrays with unsigned offsets: with signed ones Numba
checks every index for wraparound and the C-long inner copy is not vectorised (6x slower).
They are compiled with nogil=True, so the two parts' copies run at once.

Shapes as in tinydeep/ops/conv.py: x (N, H, W, C), w (KH, KW, C, F), y (N, OH, OW, F), cols
(N, OH, OW, KH, KW, C), dcols offset-major (KH, KW, N, OH, OW, C). `window` is the plain tuple
((KH, KW), (SH, SW), (OH, OW), ((top, bottom), (left, right))) (conv.py's Window).
Dtypes: im2col and col2im take float32, float64 and the integers, conv2d_gemm and
conv2d_backward one dtype for all their arrays, float32 or float64. Each declines the rest
(returns NotImplemented), and the reference runs.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from . import threads, winograd
from .dtypes import FLOATS, numeric

__all__ = ["col2im", "conv2d_backward", "conv2d_gemm", "im2col"]

# cols of one chunk of images, per part. Measured on the ResNet-20 layers (2-core EPYC, 512 KiB
# L2 per core, 32 MiB L3, two parts): 2 MiB fastest; 512 KiB-1 MiB make too many small GEMMs,
# 4 MiB per part was 10-30% slower.
CHUNK_BYTES = 1 << 21

# 3x3 stride-1 convolutions by Winograd (see above); tests turn it off to check the im2col path
# alone. F(4x4, 3x3) from this many input channels and output pixels per side, in these dtypes.
WINOGRAD = True
F4_MIN_CHANNELS = 16
F4_MIN_SIDE = 8
F4_DTYPES = (np.float32,)


def _geometry(window) -> tuple:
    """The window as the flat int tuple the loops take: (KH, KW, SH, SW, top, left, OH, OW)."""
    (kh, kw), (sh, sw), (oh, ow), ((top, _), (left, _)) = window
    return (kh, kw, sh, sw, top, left, oh, ow)


# ---- im2col and col2im ------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _im2col_loop(x, shape, geometry, pad_value, cols):
    """x flat (N*H*W*C) -> cols flat (N*OH*OW*KH*KW*C)."""
    n, h, w, c = shape
    kh, kw, sh, sw, top, left, oh, ow = geometry
    cu = uint64(c)
    o = uint64(0)  # the next element of cols to write
    for b in range(n):
        for r in range(oh):
            for q in range(ow):
                for i in range(kh):
                    y = r * sh + i - top  # the input row under window row i, maybe padding
                    for j in range(kw):
                        u = q * sw + j - left
                        if 0 <= y < h and 0 <= u < w:
                            s = uint64(((b * h + y) * w + u) * c)
                            for k in range(cu):
                                cols[o + k] = x[s + k]
                        else:
                            for k in range(cu):
                                cols[o + k] = pad_value
                        o += cu


def im2col(x: np.ndarray, window, pad_value=0.0) -> np.ndarray:
    """Every window of x (N, H, W, C), padded with `pad_value`, as cols (N, OH, OW, KH, KW, C),
    a new contiguous array (the reference's result, exactly)."""
    if not numeric(x.dtype):
        return NotImplemented
    (kh, kw), _, (oh, ow), _ = window
    x = np.ascontiguousarray(x)
    n, _, _, c = x.shape
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    pad = x.dtype.type(pad_value)
    _im2col_loop(x.reshape(-1), x.shape, _geometry(window), pad, cols.reshape(-1))
    return cols


@njit(cache=True, nogil=True)
def _col2im_loop(dcols, dcols_n, geometry, dx, shape):
    """dcols flat (KH*KW*dcols_n*OH*OW*C) -> dx flat (N*H*W*C), N <= dcols_n images."""
    n, h, w, c = shape
    kh, kw, sh, sw, top, left, oh, ow = geometry
    cu = uint64(c)
    block = uint64(dcols_n * oh * ow * c)  # the size of one kernel offset's slab of dcols
    o = uint64(0)  # the next element of dx to write
    for b in range(n):
        for y in range(h):
            for u in range(w):
                for k in range(cu):
                    dx[o + k] = 0
                for i in range(kh):
                    t = y + top - i  # window row r took this pixel at offset i: r*SH + i = y + top
                    if t < 0 or t % sh != 0 or t // sh >= oh:
                        continue
                    r = t // sh
                    for j in range(kw):
                        s = u + left - j
                        if s < 0 or s % sw != 0 or s // sw >= ow:
                            continue
                        d = uint64(i * kw + j) * block + uint64(((b * oh + r) * ow + s // sw) * c)
                        for k in range(cu):
                            dx[o + k] += dcols[d + k]
                o += cu


def col2im(dcols: np.ndarray, x_shape: tuple, window) -> np.ndarray:
    """The gradient of im2col: dx (x_shape), each window's gradient from dcols
    (KH, KW, N, OH, OW, C) added back where the window was copied from; padding dropped."""
    if not numeric(dcols.dtype):
        return NotImplemented
    dcols = np.ascontiguousarray(dcols)  # avg pooling passes a broadcast view
    dx = np.empty(tuple(x_shape), dtype=dcols.dtype)
    geometry = _geometry(window)
    _col2im_loop(dcols.reshape(-1), x_shape[0], geometry, dx.reshape(-1), tuple(x_shape))
    return dx


# ---- conv2d in chunks of images, one part of the batch per core -------------------------------


def _one_float(*arrays) -> bool:
    """Whether the arrays share one dtype, float32 or float64: what the kernels below compute
    in. They decline anything else (the reference's type promotion, which the chunks'
    preallocated outputs would not follow)."""
    return all(a.dtype == arrays[0].dtype for a in arrays) and arrays[0].dtype in FLOATS


def _winograd(x, w, window) -> int:
    """The output tile side m of the Winograd F(m x m, 3x3) this convolution takes
    (kernels/cpu/winograd.py), or 0 for none: a 3x3 kernel at stride 1, unless WINOGRAD is
    off; m = 4 where it measured faster (see above), else 2."""
    (kh, kw), strides, (oh, ow) = w.shape[:2], window[1], window[2]
    if not (WINOGRAD and (kh, kw) == (3, 3) and tuple(strides) == (1, 1)):
        return 0
    large = x.shape[3] >= F4_MIN_CHANNELS and min(oh, ow) >= F4_MIN_SIDE
    return 4 if large and x.dtype in F4_DTYPES else 2


def _images_per_chunk(n: int, oh: int, ow: int, k: int, itemsize: int) -> int:
    """How many images' cols (OH*OW rows of K values each) fit in CHUNK_BYTES (at least 1)."""
    return max(1, min(n, CHUNK_BYTES // max(1, oh * ow * k * itemsize)))


def _parts(n: int, step: int) -> int:
    """How many threads share the batch: one per core, or 1 when it fits in one chunk (then
    the kernels make the reference's very GEMM calls) or is smaller than the cores."""
    return 1 if step >= n else min(threads.cores(), n)


def conv2d_gemm(x: np.ndarray, w: np.ndarray, window) -> np.ndarray:
    """y (N, OH, OW, F) = im2col(x) (N*OH*OW, KH*KW*C) @ w (KH*KW*C, F), a chunk of images at a
    time, each core its own part of the batch (the reference's y; to float rounding when in
    several chunks)."""
    if not _one_float(x, w):
        return NotImplemented
    m = _winograd(x, w, window)
    if m:
        y, finite = winograd.forward(x, w, window, m)
        if finite:
            return y
        # An infinity in x or w: Winograd's transforms make NaN of it where the direct sum
        # keeps it (inf - inf), so this convolution goes by im2col, as the reference.
    kh, kw, c, f = w.shape
    (oh, ow), k = window[2], kh * kw * c
    x, w2 = np.ascontiguousarray(x), np.ascontiguousarray(w).reshape(k, f)
    n, rows = x.shape[0], oh * ow  # rows of cols per image
    step = _images_per_chunk(n, oh, ow, k, x.itemsize)
    geometry, zero = _geometry(window), x.dtype.type(0)
    y = np.empty((n, oh, ow, f), dtype=x.dtype)
    y2 = y.reshape(-1, f)
    parts = _parts(n, step)
    ranges = threads.split(n, parts)

    def part(t: int) -> None:  # images ranges[t], a chunk at a time, on one thread
        start, stop = ranges[t]
        buffer = np.empty(step * rows * k, dtype=x.dtype)
        for b0 in range(start, stop, step):
            b1 = min(stop, b0 + step)
            cols = buffer[: (b1 - b0) * rows * k]
            _im2col_loop(x[b0:b1].reshape(-1), x[b0:b1].shape, geometry, zero, cols)
            np.matmul(cols.reshape(-1, k), w2, out=y2[b0 * rows : b1 * rows])

    with threads.blas_for(parts):
        threads.run_parts(part, parts)
    return y


def _transposable(w_shape: tuple, window) -> bool:
    """Whether dx is a forward convolution of dy: stride 1, and no side padded by more than
    the kernel's size less one (else the turned-round kernel would need negative padding)."""
    (kh, kw), strides, _, ((top, bottom), (left, right)) = w_shape[:2], *window[1:]
    return tuple(strides) == (1, 1) and max(top, bottom) < kh and max(left, right) < kw


def _transposed(window, x_shape: tuple) -> tuple:
    """The window of dx = dy convolved with the turned-round kernel: output (H, W), each side
    padded by KH - 1 (KW - 1) less the forward's padding on it."""
    (kh, kw), strides, _, ((top, bottom), (left, right)) = window
    pads = ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right))
    return ((kh, kw), strides, tuple(x_shape[1:3]), pads)


def conv2d_backward(dy: np.ndarray, cache: tuple, needs_grad=(True, True)):
    """(dx, dw) as the reference computes them (dw = cols^T @ dy2, dx = col2im(dy2 @ w2^T)),
    a chunk of images at a time, each core its own part of the batch, dw as the sum of the
    chunks' cols^T @ dy2 in batch order (the reference's results; to float rounding when in
    several chunks). The cache is the reference's, (x, w, window)."""
    x, w, window = cache
    if not _one_float(dy, x, w):
        return NotImplemented
    m = _winograd(x, w, window)
    if m:
        dx, dw, finite = winograd.backward(dy, cache, needs_grad, m)
        if finite:
            return dx, dw
        # An infinity in dy, x or w: by the turned-round kernel or im2col, as the forward.
    if (
        needs_grad[0]
        and _transposable(w.shape, window)
        and np.isfinite(w).all()  # else the zeros padding dy would meet an infinite weight
    ):
        # Stride 1: dx is dy convolved forward with the kernel turned round (flipped, C and F
        # swapped), one im2col GEMM instead of KH*KW thin ones and col2im's gather: 12 ms
        # instead of 20 for ResNet-20's 32x32x16 layer at batch 128 (2-core EPYC). (The
        # reference never multiplies padding in dx: 0 * inf would be NaN here, not there.)
        dx = conv2d_gemm(dy, w[::-1, ::-1].transpose(0, 1, 3, 2), _transposed(window, x.shape))
        return dx, conv2d_backward(dy, cache, (False, needs_grad[1]))[1]
    kh, kw, c, f = w.shape
    (oh, ow), k = window[2], kh * kw * c
    dx = dw = None
    x, dy2 = np.ascontiguousarray(x), np.ascontiguousarray(dy).reshape(-1, f)
    n, rows = x.shape[0], oh * ow
    step = _images_per_chunk(n, oh, ow, k, x.itemsize)
    geometry, zero = _geometry(window), x.dtype.type(0)
    if needs_grad[0]:
        dx = np.empty_like(x)
        w_t = w.reshape(kh * kw, c, f).transpose(0, 2, 1)  # (KH*KW, F, C)
    parts = _parts(n, step)
    ranges = threads.split(n, parts)

    def part(t: int):  # images ranges[t] on one thread; returns their share of dw
        start, stop = ranges[t]
        buffer = np.empty(step * rows * k, dtype=x.dtype)  # cols, then dcols, of one chunk
        dw_part = dw_chunk = None
        for b0 in range(start, stop, step):
            b1 = min(stop, b0 + step)
            m, dy_chunk = (b1 - b0) * rows, dy2[b0 * rows : b1 * rows]
            if needs_grad[1]:
                cols = buffer[: m * k]
                _im2col_loop(x[b0:b1].reshape(-1), x[b0:b1].shape, geometry, zero, cols)
                if dw_part is None:  # one chunk: the reference's very GEMM
                    dw_part = np.matmul(cols.reshape(m, k).T, dy_chunk)
                else:
                    if dw_chunk is None:
                        dw_chunk = np.empty((k, f), dtype=x.dtype)
                    dw_part += np.matmul(cols.reshape(m, k).T, dy_chunk, out=dw_chunk)
            if needs_grad[0]:
                dcols = buffer[: m * k]  # offset-major (KH*KW, m, C), as col2im reads it
                np.matmul(dy_chunk, w_t, out=dcols.reshape(kh * kw, m, c))
                _col2im_loop(dcols, b1 - b0, geometry, dx[b0:b1].reshape(-1), dx[b0:b1].shape)
        return dw_part

    with threads.blas_for(parts):
        shares = threads.run_parts(part, parts)
    if needs_grad[1]:
        dw = shares[0]
        for share in shares[1:]:  # in batch order: the same bits on every run
            dw += share
        dw = dw.reshape(w.shape)
    return dx, dw
