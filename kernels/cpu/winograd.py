"""Numba kernels for Winograd's F(2x2, 3x3) and F(4x4, 3x3) convolutions, forward and backward.

replaces tinydeep/ops/winograd.py:winograd_conv2d
replaces tinydeep/ops/winograd.py:winograd_conv2d_backward

The reference (tinydeep/ops/winograd.py, which derives the algorithm) transforms every tile of
the whole batch with einsum, through a padded copy of x. Here the batch runs as conv2d's
im2col kernels do (kernels/cpu/conv.py): one contiguous part of the images per core, a chunk
of images at a time through buffers that stay in the caches, BLAS on one thread per part,
dw's shares added in batch order (kernels/cpu/threads.py). The 16 products per chunk stay in
NumPy (BLAS): np.matmul over the stacked positions.

The transforms work a tile-row at a time, not a tile at a time. A tile's loops run over its
C channels only (16 values at ResNet-20's first stage), too short for the vectorized loop:
tile by tile, the input transform measured 130-140 us per 32x32x16 image, more than the
multiplies it saves. Along a tile-row every step is instead one long loop:

  _input_rows          copy the row's 4 input rows into a zero-padded strip, apply B^T
                       along them (4 loops over the whole strip), then B along the columns
                       for every column q of the strip, even and odd alike (16 loops): tile
                       tx is column 2 tx, so V is read at the even columns, a (T, C) matrix
                       whose rows are 2 C apart, which BLAS takes as it is (its lda). The odd
                       columns are computed for free by the flat loops and never read.
                       28 us per 32x32x16 image.
  _output_rows         A^T along the rows of M for a whole tile-row (8 loops), then A along
                       the columns into each tile's two output pixels.
  _output_rows_adjoint the transposes, dY -> dM.
  _input_rows_adjoint  the transposes of _input_rows in reverse (dV at the even columns,
                       zeros at the odd), the overlapping tile-rows added up in one padded
                       image, then cropped into dx.

F(4x4, 3x3) (`m=4`) has loops of its own, in the same order (its section below says how they
differ): its 36 products per tile are a quarter of F(2x2)'s tiles, 1.78x less GEMM work, for
transforms that cost about the same per image. kernels/cpu/conv.py chooses between them.

Layouts, all flat: a chunk's V (16, T, 2 C) for its T = images * TH * TW tiles (F(4x4): (36,
T, C)), M and dM (16, T, F) (F(4x4): 36), position-major so that each position's product
reads one matrix. Flat arrays and unsigned offsets, as conv.py's loops: with signed indices
(and any int literal times an unsigned one is signed in Numba) the loops check each index for
wraparound and do not vectorize.

Results differ from the reference by float rounding only: the same sums in another order
(tests/kernels/test_cpu_winograd.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from . import threads
from .dtypes import FLOATS

__all__ = ["winograd_conv2d", "winograd_conv2d_backward"]

# Bytes of a chunk's V (with its odd columns) per core; 1-2 MiB measured fastest on ResNet-20's
# 3x3 layers (2-core EPYC, 512 KiB L2 per core).
CHUNK_BYTES = 1 << 20

# The transforms, as the reference's (kernels do not import tinydeep): F(2, 3)'s B^T and A^T
# are written into its loops; G w G^T and its transpose are tiny (C * F * A * A), left to NumPy.
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
BT4 = np.array(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    dtype=np.float64,
)
G4 = np.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    dtype=np.float64,
)
AT4 = np.array(
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    dtype=np.float64,
)


def _geometry(window, m: int = 2) -> tuple:
    """(top, left, TH, TW, OH, OW) as the loops take it, for m x m output tiles."""
    (oh, ow), ((top, _), (left, _)) = window[2], window[3]
    return (top, left, -(-oh // m), -(-ow // m), oh, ow)


# ---- the four transforms, a tile-row at a time ------------------------------------------------


@njit(inline="always")
def _copy_or_zero(src_array, bits, mask, src, inside, count, dst_array, dst):
    """dst_array[dst : dst + count] = src_array[src : src + count] when `inside`, else zeros.
    Returns whether a copied value is an infinity or a NaN (its exponent bits, `mask`, all
    set in `bits`, the source's bytes as unsigned integers)."""
    special = False
    if inside:
        for k in range(count):
            dst_array[dst + k] = src_array[src + k]
            special |= (bits[src + k] & mask) == mask
    else:
        for k in range(count):
            dst_array[dst + k] = 0
    return special


@njit(inline="always")
def _strip(x, bits, mask, b, first_row, count, sizes, d, row, first):
    """Copy rows first_row .. first_row + count - 1 of image b of x (flat; `sizes` is (H, W,
    C)) into the padded strip d, its rows `row` apart and the image `first` into each, zeros
    for rows outside the image. Returns whether a copied value is an infinity or a NaN:
    `bits` is x's bytes as unsigned integers, and a value is one when its exponent bits,
    `mask`, are all set."""
    h, w, cu = sizes
    image = uint64(w) * cu
    special = False
    for i in range(count):
        r = first_row + i
        dst = uint64(i) * row + first
        inside = 0 <= r < h
        src = uint64((b * h + r) * w) * cu if inside else uint64(0)
        special |= _copy_or_zero(x, bits, mask, src, inside, image, d, dst)
    return special


@njit(cache=True, nogil=True)
def _input_rows(x, bits, mask, shape, geometry, u):
    """V = B^T d B for every tile of x (n, H, W, C), a whole tile-row at a time, into u
    (16, n*TH, 2*TW, C), all flat: tile (row, tx) at column 2 tx; the odd columns hold the
    same sums one column on, which a flat loop computes for free and nothing reads.
    Returns whether x holds an infinity or a NaN: `bits` is x's bytes as unsigned integers,
    and a value is one when its exponent bits, `mask`, are all set."""
    n, h, w, c = shape
    top, left, th, tw, _, _ = geometry
    cu = uint64(c)
    # One padded input row, flat: the 2 TW + 2 columns the tiles read, and a spare zero column
    # that the odd columns' last sum reads.
    row = uint64(2 * tw + 3) * cu
    span = uint64(2 * tw) * cu  # one tile-row of one position of u
    plane = uint64(n * th) * span  # one position of u
    first = uint64(left) * cu  # where the image starts in a padded row
    d = np.zeros(4 * (2 * tw + 3) * c, dtype=x.dtype)  # 4 padded rows; the sides stay zero
    t = np.empty(4 * (2 * tw + 3) * c, dtype=x.dtype)  # B^T d, 4 rows
    out = uint64(0)
    special = False
    for b in range(n):
        for ty in range(th):
            # the tile-row's 4 input rows, zeros outside the image
            special |= _strip(x, bits, mask, b, 2 * ty - top, 4, (h, w, cu), d, row, first)
            r1, r2, r3 = row, row + row, row + row + row
            for k in range(row):  # B^T along the rows: (1,0,-1,0) (0,1,1,0) (0,-1,1,0) (0,1,0,-1)
                t[k] = d[k] - d[r2 + k]
            for k in range(row):
                t[r1 + k] = d[r1 + k] + d[r2 + k]
            for k in range(row):
                t[r2 + k] = d[r2 + k] - d[r1 + k]
            for k in range(row):
                t[r3 + k] = d[r1 + k] - d[r3 + k]
            c1, c2, c3 = cu, cu + cu, cu + cu + cu
            for a in range(4):  # B along the columns, for every column q of the tile-row
                ta = uint64(a) * row
                p0 = uint64(4 * a) * plane + out
                p1, p2, p3 = p0 + plane, p0 + plane + plane, p0 + plane + plane + plane
                for k in range(span):
                    u[p0 + k] = t[ta + k] - t[ta + c2 + k]
                for k in range(span):
                    u[p1 + k] = t[ta + c1 + k] + t[ta + c2 + k]
                for k in range(span):
                    u[p2 + k] = t[ta + c2 + k] - t[ta + c1 + k]
                for k in range(span):
                    u[p3 + k] = t[ta + c1 + k] - t[ta + c3 + k]
            out += span
    return special


@njit(cache=True, nogil=True)
def _input_rows_adjoint(gu, geometry, dx, shape):
    """dx (n, H, W, C) from gu (16, n*TH, 2*TW, C), dV at the even columns and zeros at the
    odd, all flat: the transposes of _input_rows' steps in reverse, the overlapping
    tile-rows added up in a padded image, then cropped."""
    n, h, w, c = shape
    top, left, th, tw, _, _ = geometry
    cu = uint64(c)
    row = uint64(2 * tw + 3) * cu  # as in _input_rows
    span = uint64(2 * tw) * cu
    plane = uint64(n * th) * span
    image = uint64(w) * cu
    first = uint64(left) * cu
    padded = np.empty((2 * th + 2) * (2 * tw + 3) * c, dtype=dx.dtype)  # one image's dx
    gt = np.empty(4 * (2 * tw + 3) * c, dtype=dx.dtype)  # the gradient of B^T d, 4 rows
    c1, c2, c3 = cu, cu + cu, cu + cu + cu
    r1, r2, r3 = row, row + row, row + row + row
    src = uint64(0)
    for b in range(n):
        padded[:] = 0
        for ty in range(th):
            gt[:] = 0
            for a in range(4):  # the transpose of B along the columns
                ta = uint64(a) * row
                p0 = uint64(4 * a) * plane + src
                p1, p2, p3 = p0 + plane, p0 + plane + plane, p0 + plane + plane + plane
                for k in range(span):  # u0 = t0 - t2
                    gt[ta + k] += gu[p0 + k]
                for k in range(span):
                    gt[ta + c2 + k] -= gu[p0 + k]
                for k in range(span):  # u1 = t1 + t2
                    gt[ta + c1 + k] += gu[p1 + k]
                for k in range(span):
                    gt[ta + c2 + k] += gu[p1 + k]
                for k in range(span):  # u2 = t2 - t1
                    gt[ta + c2 + k] += gu[p2 + k]
                for k in range(span):
                    gt[ta + c1 + k] -= gu[p2 + k]
                for k in range(span):  # u3 = t1 - t3
                    gt[ta + c1 + k] += gu[p3 + k]
                for k in range(span):
                    gt[ta + c3 + k] -= gu[p3 + k]
            base = uint64(2 * ty) * row  # the transpose of B^T along the rows, added up
            for k in range(row):
                padded[base + k] += gt[k]
            for k in range(row):
                padded[base + r1 + k] += gt[r1 + k] - gt[r2 + k] + gt[r3 + k]
            for k in range(row):
                padded[base + r2 + k] += gt[r1 + k] + gt[r2 + k] - gt[k]
            for k in range(row):
                padded[base + r3 + k] -= gt[r3 + k]
            src += span
        for r in range(h):  # crop the padding away
            s = uint64(r + top) * row + first
            dst = uint64((b * h + r) * w) * cu
            for k in range(image):
                dx[dst + k] = padded[s + k]


@njit(cache=True, nogil=True)
def _output_rows(m, geometry, y, shape):
    """Y = A^T M A for every tile, m (16, n*TH*TW, F), into y (n, OH, OW, F), all flat, a
    tile-row at a time: the rows' sums over whole tile-rows, then each tile's 2x2 outputs
    (those past OH or OW dropped)."""
    n, oh, ow, f = shape
    _, _, th, tw, _, _ = geometry
    fu = uint64(f)
    span = uint64(tw) * fu  # one tile-row of one position of m
    plane = uint64(n * th) * span
    s = np.empty(8 * tw * f, dtype=y.dtype)  # A^T M: rows u = 0, 1 of the 4 columns b
    src = uint64(0)
    for b in range(n):
        for ty in range(th):
            for j in range(4):  # A^T along the rows: (1,1,1,0) and (0,1,-1,-1)
                p0 = uint64(j) * plane + src
                p1, p2, p3 = p0 + uint64(4) * plane, p0 + uint64(8) * plane, p0 + uint64(12) * plane
                e0, e1 = uint64(j) * span, uint64(4 + j) * span
                for k in range(span):
                    s[e0 + k] = m[p0 + k] + m[p1 + k] + m[p2 + k]
                for k in range(span):
                    s[e1 + k] = m[p1 + k] - m[p2 + k] - m[p3 + k]
            for u in range(2):  # and A along the columns, into the tile's two pixels
                r = 2 * ty + u
                if r >= oh:
                    continue
                e0 = uint64(4 * u) * span
                e1, e2, e3 = e0 + span, e0 + span + span, e0 + span + span + span
                line = uint64((b * oh + r) * ow) * fu
                for tx in range(tw):
                    o = uint64(tx) * fu
                    dst = line + uint64(2 * tx) * fu
                    for k in range(fu):
                        y[dst + k] = s[e0 + o + k] + s[e1 + o + k] + s[e2 + o + k]
                    if 2 * tx + 1 < ow:
                        for k in range(fu):
                            y[dst + fu + k] = s[e1 + o + k] - s[e2 + o + k] - s[e3 + o + k]
            src += span


@njit(inline="always")
def _gather(dy, bits, mask, b, ty, m, sizes, g, span):
    """The m x m gradients of every tile of tile-row ty of image b of dy (flat; `sizes` is
    (OH, OW, TW, F)) into g, (u, v) at (m u + v) * span, zeros past OH or OW. Returns whether
    one is an infinity or a NaN (as _strip)."""
    oh, ow, tw, fu = sizes
    special = False
    for u in range(m):
        r = m * ty + u
        for v in range(m):
            e = uint64(m * u + v) * span
            for tx in range(tw):
                o = e + uint64(tx) * fu
                q = m * tx + v
                inside = r < oh and q < ow
                src = uint64((b * oh + r) * ow + q) * fu if inside else uint64(0)
                special |= _copy_or_zero(dy, bits, mask, src, inside, fu, g, o)
    return special


@njit(cache=True, nogil=True)
def _output_rows_adjoint(dy, bits, mask, shape, geometry, dm):
    """dM = A dY A^T for every tile of dy (n, OH, OW, F) into dm (16, n*TH*TW, F), all flat,
    a tile-row at a time: each tile's 2x2 gradients gathered (zeros past OH or OW), then the
    sums over whole tile-rows. Returns whether dy holds an infinity or a NaN (as
    _input_rows)."""
    n, oh, ow, f = shape
    _, _, th, tw, _, _ = geometry
    fu = uint64(f)
    span = uint64(tw) * fu
    plane = uint64(n * th) * span
    g = np.empty(4 * tw * f, dtype=dy.dtype)  # dY: (u, v) at (2 u + v) * span
    r4 = np.empty(8 * tw * f, dtype=dy.dtype)  # A dY: row a, column v at (2 a + v) * span
    dst = uint64(0)
    special = False
    for b in range(n):
        for ty in range(th):
            special |= _gather(dy, bits, mask, b, ty, 2, (oh, ow, tw, fu), g, span)
            g2 = span + span  # where dY's second row starts
            for v in range(2):  # A along the rows: (1,0) (1,1) (1,-1) (0,-1)
                gv = uint64(v) * span  # dY[0, v]; dY[1, v] is g2 further
                for k in range(span):
                    r4[gv + k] = g[gv + k]
                for k in range(span):
                    r4[g2 + gv + k] = g[gv + k] + g[g2 + gv + k]
                for k in range(span):
                    r4[uint64(4) * span + gv + k] = g[gv + k] - g[g2 + gv + k]
                for k in range(span):
                    r4[uint64(6) * span + gv + k] = -g[g2 + gv + k]
            for a in range(4):  # and A^T along the columns
                e0 = uint64(2 * a) * span
                e1 = e0 + span
                p0 = uint64(4 * a) * plane + dst
                p1, p2, p3 = p0 + plane, p0 + plane + plane, p0 + plane + plane + plane
                for k in range(span):
                    dm[p0 + k] = r4[e0 + k]
                for k in range(span):
                    dm[p1 + k] = r4[e0 + k] + r4[e1 + k]
                for k in range(span):
                    dm[p2 + k] = r4[e0 + k] - r4[e1 + k]
                for k in range(span):
                    dm[p3 + k] = -r4[e1 + k]
            dst += span
    return special


# ---- F(4x4, 3x3): the same four transforms for 6x6 tiles ---------------------------------------
#
# The row passes run over whole tile-rows as F(2x2)'s do. The column passes do not compute
# every column: with 6-term sums, computing all columns and reading every fourth (F(2x2)'s
# trick) measured 2.8x slower than visiting each tile's 6 columns, a loop over C per tile (the
# tiles are a quarter as many), and V is written dense, (36, T, C). The matrices come in as
# arguments (BT4, AT4 in the data's dtype); each sum is written out with its six coefficients,
# zeros included, a loop that vectorizes as it stands. 27-31 us per 32x32x16 image for the
# input transform, as F(2x2)'s 28.


@njit(inline="always")
def _five_after(base, step):
    """The five offsets base + step, ..., base + 5 step (unsigned, as the loops index)."""
    return (
        base + step,
        base + step + step,
        base + uint64(3) * step,
        base + uint64(4) * step,
        base + uint64(5) * step,
    )


@njit(cache=True, nogil=True)
def _input_rows4(x, bits, mask, shape, geometry, bt, u):
    """V = B^T d B for every 6x6 tile of x (n, H, W, C), a tile-row at a time, into u (36,
    n*TH*TW, C), all flat. Returns whether x holds an infinity or a NaN (as _input_rows)."""
    n, h, w, c = shape
    top, left, th, tw, _, _ = geometry
    cu = uint64(c)
    row = uint64(4 * tw + 2) * cu  # one padded input row: the columns the tiles read
    span = uint64(tw) * cu  # one tile-row of one position of u
    plane = uint64(n * th) * span  # one position of u
    first = uint64(left) * cu
    d = np.zeros(6 * (4 * tw + 2) * c, dtype=x.dtype)  # 6 padded rows; the sides stay zero
    t = np.empty(6 * (4 * tw + 2) * c, dtype=x.dtype)  # B^T d, 6 rows
    r1, r2, r3, r4, r5 = _five_after(uint64(0), row)  # the rows of d and t
    out = uint64(0)
    special = False
    for b in range(n):
        for ty in range(th):
            # the tile-row's 6 input rows, zeros outside the image
            special |= _strip(x, bits, mask, b, 4 * ty - top, 6, (h, w, cu), d, row, first)
            for a in range(6):  # B^T along the rows: t[a] = sum over j of B^T[a, j] d[j]
                c0, c1, c2, c3, c4, c5 = bt[a]
                ta = uint64(a) * row
                for k in range(row):
                    t[ta + k] = (
                        c0 * d[k] + c1 * d[r1 + k] + c2 * d[r2 + k]
                        + c3 * d[r3 + k] + c4 * d[r4 + k] + c5 * d[r5 + k]
                    )  # fmt: skip
            for a in range(6):  # B along the columns: tile tx reads columns 4 tx to 4 tx + 5
                ta = uint64(a) * row
                for e in range(6):
                    c0, c1, c2, c3, c4, c5 = bt[e]
                    p = uint64(6 * a + e) * plane + out
                    for tx in range(tw):
                        q0 = ta + uint64(4 * tx) * cu
                        q1, q2, q3, q4, q5 = _five_after(q0, cu)
                        pt = p + uint64(tx) * cu
                        for k in range(cu):
                            u[pt + k] = (
                                c0 * t[q0 + k] + c1 * t[q1 + k] + c2 * t[q2 + k]
                                + c3 * t[q3 + k] + c4 * t[q4 + k] + c5 * t[q5 + k]
                            )  # fmt: skip
            out += span
    return special


@njit(cache=True, nogil=True)
def _input_rows4_adjoint(gu, geometry, bt, dx, shape):
    """dx (n, H, W, C) from gu (36, n*TH*TW, C), all flat: the transposes of _input_rows4's
    steps in reverse, the overlapping tiles added up in a padded image, then cropped."""
    n, h, w, c = shape
    top, left, th, tw, _, _ = geometry
    cu = uint64(c)
    row = uint64(4 * tw + 2) * cu  # as in _input_rows4
    span = uint64(tw) * cu
    plane = uint64(n * th) * span
    image = uint64(w) * cu
    first = uint64(left) * cu
    padded = np.empty((4 * th + 2) * (4 * tw + 2) * c, dtype=dx.dtype)  # one image's dx
    gt = np.empty(6 * (4 * tw + 2) * c, dtype=dx.dtype)  # the gradient of B^T d, 6 rows
    r1, r2, r3, r4, r5 = _five_after(uint64(0), row)  # the rows of gt and padded
    p1, p2, p3, p4, p5 = _five_after(uint64(0), plane)  # gu's positions (a, e)
    src = uint64(0)
    for b in range(n):
        padded[:] = 0
        for ty in range(th):
            gt[:] = 0
            for a in range(6):  # the transpose of B along the columns, tiles overlapping
                ta = uint64(a) * row
                p0 = uint64(6 * a) * plane + src
                for j in range(6):  # column 4 tx + j of every tile gets sum_e B^T[e, j] dV[a, e]
                    c0, c1, c2, c3, c4, c5 = bt[:, j]
                    for tx in range(tw):
                        q = ta + uint64(4 * tx + j) * cu
                        pt = p0 + uint64(tx) * cu
                        for k in range(cu):
                            gt[q + k] += (
                                c0 * gu[pt + k] + c1 * gu[pt + p1 + k] + c2 * gu[pt + p2 + k]
                                + c3 * gu[pt + p3 + k] + c4 * gu[pt + p4 + k] + c5 * gu[pt + p5 + k]
                            )  # fmt: skip
            base = uint64(4 * ty) * row  # the transpose of B^T along the rows, added up
            for j in range(6):
                c0, c1, c2, c3, c4, c5 = bt[:, j]
                pj = base + uint64(j) * row
                for k in range(row):
                    padded[pj + k] += (
                        c0 * gt[k] + c1 * gt[r1 + k] + c2 * gt[r2 + k]
                        + c3 * gt[r3 + k] + c4 * gt[r4 + k] + c5 * gt[r5 + k]
                    )  # fmt: skip
            src += span
        for r in range(h):  # crop the padding away
            s = uint64(r + top) * row + first
            dst = uint64((b * h + r) * w) * cu
            for k in range(image):
                dx[dst + k] = padded[s + k]


@njit(cache=True, nogil=True)
def _output_rows4(m, geometry, at, y, shape):
    """Y = A^T M A for every tile, m (36, n*TH*TW, F), into y (n, OH, OW, F), all flat, a
    tile-row at a time: A^T along the rows over whole tile-rows, then each tile's 4x4 outputs
    (those past OH or OW dropped)."""
    n, oh, ow, f = shape
    _, _, th, tw, _, _ = geometry
    fu = uint64(f)
    span = uint64(tw) * fu  # one tile-row of one position of m
    plane = uint64(n * th) * span
    p6 = uint64(6) * plane  # from position (a, j) to (a + 1, j)
    s = np.empty(24 * tw * f, dtype=y.dtype)  # A^T M: row u, column j at (6 u + j) * span
    src = uint64(0)
    for b in range(n):
        for ty in range(th):
            for i in range(4):
                c0, c1, c2, c3, c4, c5 = at[i]
                for j in range(6):
                    p0 = uint64(j) * plane + src
                    p1, p2, p3, p4, p5 = _five_after(p0, p6)
                    e = uint64(6 * i + j) * span
                    for k in range(span):
                        s[e + k] = (
                            c0 * m[p0 + k] + c1 * m[p1 + k] + c2 * m[p2 + k]
                            + c3 * m[p3 + k] + c4 * m[p4 + k] + c5 * m[p5 + k]
                        )  # fmt: skip
            for i in range(4):  # and A along the columns, into the tile's 4x4 pixels
                r = 4 * ty + i
                if r >= oh:
                    continue
                line = uint64((b * oh + r) * ow) * fu
                for v in range(4):
                    c0, c1, c2, c3, c4, c5 = at[v]
                    for tx in range(tw):
                        q = 4 * tx + v
                        if q >= ow:
                            continue
                        o0 = uint64(6 * i) * span + uint64(tx) * fu
                        o1, o2, o3, o4, o5 = _five_after(o0, span)
                        dst = line + uint64(q) * fu
                        for k in range(fu):
                            y[dst + k] = (
                                c0 * s[o0 + k] + c1 * s[o1 + k] + c2 * s[o2 + k]
                                + c3 * s[o3 + k] + c4 * s[o4 + k] + c5 * s[o5 + k]
                            )  # fmt: skip
            src += span


@njit(cache=True, nogil=True)
def _output_rows4_adjoint(dy, bits, mask, shape, geometry, at, dm):
    """dM = A dY A^T for every tile of dy (n, OH, OW, F) into dm (36, n*TH*TW, F), all flat,
    a tile-row at a time: each tile's 4x4 gradients gathered (zeros past OH or OW), then the
    sums over whole tile-rows. Returns whether dy holds an infinity or a NaN (as
    _input_rows)."""
    n, oh, ow, f = shape
    _, _, th, tw, _, _ = geometry
    fu = uint64(f)
    span = uint64(tw) * fu
    plane = uint64(n * th) * span
    g = np.empty(16 * tw * f, dtype=dy.dtype)  # dY: (u, v) at (4 u + v) * span
    r6 = np.empty(24 * tw * f, dtype=dy.dtype)  # A dY: row a, column v at (4 a + v) * span
    s4 = uint64(4) * span  # from dY[u, v] to dY[u + 1, v]
    dst = uint64(0)
    special = False
    for b in range(n):
        for ty in range(th):
            special |= _gather(dy, bits, mask, b, ty, 4, (oh, ow, tw, fu), g, span)
            for a in range(6):  # A along the rows: row a = sum over u of A^T[u, a] dY[u]
                c0, c1, c2, c3 = at[:, a]
                for v in range(4):
                    g0 = uint64(v) * span
                    g1, g2, g3 = _five_after(g0, s4)[:3]
                    e = uint64(4 * a + v) * span
                    for k in range(span):
                        r6[e + k] = (
                            c0 * g[g0 + k] + c1 * g[g1 + k] + c2 * g[g2 + k] + c3 * g[g3 + k]
                        )
            for a in range(6):  # and A^T along the columns
                e0 = uint64(4 * a) * span
                e1, e2, e3 = _five_after(e0, span)[:3]
                for j in range(6):
                    c0, c1, c2, c3 = at[:, j]
                    p = uint64(6 * a + j) * plane + dst
                    for k in range(span):
                        dm[p + k] = (
                            c0 * r6[e0 + k] + c1 * r6[e1 + k] + c2 * r6[e2 + k] + c3 * r6[e3 + k]
                        )
            dst += span
    return special


# ---- the convolution, a part of the batch per core --------------------------------------------


def _filters(w: np.ndarray, m: int = 2) -> np.ndarray:
    """U = G w G^T per position: (A*A, C, F), in w's dtype (two small products, not one
    three-operand einsum, which loops over every index at once)."""
    g = (G if m == 2 else G4).astype(w.dtype)
    gw = np.tensordot(g, w, axes=(1, 0))  # (A, 3, C, F): G along the kernel's rows
    return np.tensordot(gw, g, axes=(1, 1)).transpose(0, 3, 1, 2).reshape(-1, *w.shape[2:])


class _Tiles:
    """F(m x m, 3x3)'s loops and layout: the positions per tile, the row width of V in its
    buffer (F(2x2) keeps the odd columns: 2 C; F(4x4) is dense: C), the four transforms with
    one signature, and the matrices they take."""

    def __init__(self, m: int, dtype) -> None:
        self.positions, self.spread = (m + 2) ** 2, 2 if m == 2 else 1
        if m == 2:
            self.input, self.input_adjoint = _input_rows, _input_rows_adjoint
            self.output, self.output_adjoint = _output_rows, _output_rows_adjoint
            self.bt = self.at = None
        else:
            self.bt, self.at = BT4.astype(dtype), AT4.astype(dtype)
            self.input = lambda x, bits, mask, shape, geo, u: _input_rows4(
                x, bits, mask, shape, geo, self.bt, u
            )
            self.input_adjoint = lambda gu, geo, dx, shape: _input_rows4_adjoint(
                gu, geo, self.bt, dx, shape
            )
            self.output = lambda mm, geo, y, shape: _output_rows4(mm, geo, self.at, y, shape)
            self.output_adjoint = lambda dy, bits, mask, shape, geo, dm: _output_rows4_adjoint(
                dy, bits, mask, shape, geo, self.at, dm
            )


def _plan(n: int, tiles: int, width: int, itemsize: int) -> tuple[int, int]:
    """(images per chunk, parts): as many images as keep V (tiles * width values an image)
    within CHUNK_BYTES (at least 1), one part per core unless the batch is a single chunk."""
    step = max(1, min(n, CHUNK_BYTES // max(1, tiles * width * itemsize)))
    return step, 1 if step >= n else min(threads.cores(), n)


def _bits(a: np.ndarray) -> tuple[np.ndarray, np.unsignedinteger]:
    """a's bytes as unsigned integers of its width, flat, and the mask of its exponent bits:
    an element is an infinity or a NaN when all of them are set."""
    if a.dtype == np.float32:
        return a.reshape(-1).view(np.uint32), np.uint32(0x7F800000)
    return a.reshape(-1).view(np.uint64), np.uint64(0x7FF0000000000000)


def winograd_conv2d(x, w, window, m=2):
    """y (N, OH, OW, F) by F(m x m, 3x3), as the reference, in chunks of images per core."""
    if not _handled(m, x, w):
        return NotImplemented
    return forward(x, w, window, m)[0]


def winograd_conv2d_backward(dy, cache, needs_grad=(True, True), m=2):
    """(dx, dw) of the F(m x m, 3x3) forward, as the reference, in chunks of images per core."""
    if not _handled(m, dy, *cache[:2]):
        return NotImplemented
    return backward(dy, cache, needs_grad, m)[:2]


def _handled(m, *arrays) -> bool:
    """Whether these loops compute F(m x m, 3x3) of these arrays: m is 2 or 4 and the arrays
    promote to float32 or float64. The two kernels above decline anything else; the
    reference then computes it (float16) or raises (another m)."""
    return m in (2, 4) and np.result_type(*arrays) in FLOATS


def forward(x, w, window, m=2) -> tuple[np.ndarray, bool]:
    """(y, finite): y as winograd_conv2d, and whether x and w were all finite. An infinity
    meets itself with the opposite sign in the transforms and gives NaN where the direct sum
    keeps the infinity: kernels/cpu/conv.py then computes y by im2col instead."""
    dtype = np.result_type(x, w)
    x, w = np.ascontiguousarray(x, dtype=dtype), np.ascontiguousarray(w, dtype=dtype)
    n, c, f = x.shape[0], x.shape[3], w.shape[3]
    loops = _Tiles(m, dtype)
    p, lda = loops.positions, loops.spread * c  # V's positions and its row width
    geometry = _geometry(window, m)
    tiles = geometry[2] * geometry[3]  # per image
    filters = _filters(w, m)  # U, (P, C, F)
    y = np.empty((n, *window[2], f), dtype=dtype)
    step, parts = _plan(n, tiles, p * lda, x.itemsize)
    ranges = threads.split(n, parts)

    bits, mask = _bits(x)
    per_image = x[:1].size  # (0 for an empty batch)

    def part(t: int) -> bool:  # images ranges[t]; returns whether they held a non-finite x
        start, stop = ranges[t]
        u_buffer = np.empty(p * step * tiles * lda, dtype=dtype)
        m_buffer = np.empty(p * step * tiles * f, dtype=dtype)
        special = False
        for b0 in range(start, stop, step):
            b1 = min(stop, b0 + step)
            rows = (b1 - b0) * tiles
            u = u_buffer[: p * rows * lda]
            prod = m_buffer[: p * rows * f]
            chunk_bits = bits[b0 * per_image : b1 * per_image]
            special |= loops.input(
                x[b0:b1].reshape(-1), chunk_bits, mask, x[b0:b1].shape, geometry, u
            )
            v = u.reshape(p, rows, lda)[:, :, :c]  # (P, T, C), rows lda apart: BLAS's lda
            np.matmul(v, filters, out=prod.reshape(p, rows, f))
            loops.output(prod, geometry, y[b0:b1].reshape(-1), y[b0:b1].shape)
        return special

    with threads.blas_for(parts):
        specials = threads.run_parts(part, parts)
    return y, not any(specials) and bool(np.isfinite(w).all())


def backward(dy, cache, needs_grad=(True, True), m=2) -> tuple:
    """(dx, dw, finite): dx and dw as winograd_conv2d_backward (dw the sum of the parts'
    shares in batch order), and whether dy, w and (when dw is needed) x were all finite
    (see forward)."""
    x, w, window = cache
    dtype = np.result_type(dy, x, w)
    x, w = np.ascontiguousarray(x, dtype=dtype), np.ascontiguousarray(w, dtype=dtype)
    dy = np.ascontiguousarray(dy, dtype=dtype)
    n, c, f = x.shape[0], x.shape[3], w.shape[3]
    loops = _Tiles(m, dtype)
    p, lda = loops.positions, loops.spread * c
    geometry = _geometry(window, m)
    tiles = geometry[2] * geometry[3]
    u_t = _filters(w, m).transpose(0, 2, 1) if needs_grad[0] else None  # (P, F, C)
    dx = np.empty(x.shape, dtype=dtype) if needs_grad[0] else None
    step, parts = _plan(n, tiles, p * loops.spread * max(c, f), x.itemsize)
    ranges = threads.split(n, parts)

    x_bits, mask = _bits(x)
    dy_bits, _ = _bits(dy)
    x_image, dy_image = x[:1].size, dy[:1].size

    def part(t: int):  # images ranges[t]; returns their share of dU (P, C, F) and specials
        start, stop = ranges[t]
        special = False
        dm_buffer = np.empty(p * step * tiles * f, dtype=dtype)  # a chunk's dM, flat
        u_buffer = np.empty(p * step * tiles * lda, dtype=dtype)  # V
        gu_buffer = np.zeros(p * step * tiles * lda, dtype=dtype)  # dV (F(2x2): odd ones 0)
        du = du_chunk = None
        for b0 in range(start, stop, step):
            b1 = min(stop, b0 + step)
            rows = (b1 - b0) * tiles
            dm = dm_buffer[: p * rows * f]
            special |= loops.output_adjoint(
                dy[b0:b1].reshape(-1),
                dy_bits[b0 * dy_image : b1 * dy_image],
                mask,
                dy[b0:b1].shape,
                geometry,
                dm,
            )
            dm = dm.reshape(p, rows, f)
            if needs_grad[1]:
                u = u_buffer[: p * rows * lda]
                chunk_bits = x_bits[b0 * x_image : b1 * x_image]
                special |= loops.input(
                    x[b0:b1].reshape(-1), chunk_bits, mask, x[b0:b1].shape, geometry, u
                )
                v_t = u.reshape(p, rows, lda)[:, :, :c].transpose(0, 2, 1)  # V^T (P, C, T)
                if du is None:
                    du = np.matmul(v_t, dm)  # V^T dM per position
                else:
                    if du_chunk is None:
                        du_chunk = np.empty((p, c, f), dtype=dtype)
                    du += np.matmul(v_t, dm, out=du_chunk)
            if needs_grad[0]:
                gu = gu_buffer[: p * rows * lda]
                np.matmul(dm, u_t, out=gu.reshape(p, rows, lda)[:, :, :c])  # dV = dM U^T
                loops.input_adjoint(gu, geometry, dx[b0:b1].reshape(-1), dx[b0:b1].shape)
        return du, special

    with threads.blas_for(parts):
        results = threads.run_parts(part, parts)
    finite = not any(special for _, special in results) and bool(np.isfinite(w).all())
    dw = None
    if needs_grad[1]:
        du = results[0][0]
        for share, _ in results[1:]:  # in batch order: the same bits on every run
            du += share
        a = m + 2
        g = (G if m == 2 else G4).astype(dtype)
        gdu = np.tensordot(g, du.reshape(a, a, c, f), axes=(0, 0))  # (3, A, C, F)
        dw = np.tensordot(gdu, g, axes=(1, 0)).transpose(0, 3, 1, 2)  # G^T dU G, (3, 3, C, F)
        dw = np.ascontiguousarray(dw)
    return dx, dw, finite
