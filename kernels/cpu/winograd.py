"""Numba kernels for Winograd's F(2x2, 3x3) convolution, forward and backward.

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

Layouts, all flat: a chunk's V (16, T, 2 C) for its T = images * TH * TW tiles, M and dM
(16, T, F), position-major so that each position's product reads one matrix. Flat arrays and
unsigned offsets, as conv.py's loops: with signed indices (and any int literal times an
unsigned one is signed in Numba) the loops check each index for wraparound and do not vectorize.

Results differ from the reference by float rounding only: the same sums in another order
(tests/kernels/test_cpu_winograd.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from . import threads

__all__ = ["winograd_conv2d", "winograd_conv2d_backward"]

# Bytes of a chunk's V (with its odd columns) per core; 1-2 MiB measured fastest on ResNet-20's
# 3x3 layers (2-core EPYC, 512 KiB L2 per core).
CHUNK_BYTES = 1 << 20

# The filter transforms, G w G^T and its transpose: tiny (C * F * 16), left to NumPy.
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def _geometry(window) -> tuple:
    """(top, left, TH, TW, OH, OW) as the loops take it."""
    (oh, ow), ((top, _), (left, _)) = window[2], window[3]
    return (top, left, -(-oh // 2), -(-ow // 2), oh, ow)


# ---- the four transforms, a tile-row at a time ------------------------------------------------


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
    image = uint64(w) * cu
    first = uint64(left) * cu  # where the image starts in a padded row
    d = np.zeros(4 * (2 * tw + 3) * c, dtype=x.dtype)  # 4 padded rows; the sides stay zero
    t = np.empty(4 * (2 * tw + 3) * c, dtype=x.dtype)  # B^T d, 4 rows
    out = uint64(0)
    special = False
    for b in range(n):
        for ty in range(th):
            for i in range(4):  # the tile-row's 4 input rows, zeros outside the image
                r = 2 * ty + i - top
                dst = uint64(i) * row + first
                if 0 <= r < h:
                    src = uint64((b * h + r) * w) * cu
                    for k in range(image):
                        d[dst + k] = x[src + k]
                        special |= (bits[src + k] & mask) == mask
                else:
                    for k in range(image):
                        d[dst + k] = 0
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
            for u in range(2):
                for v in range(2):
                    e = uint64(2 * u + v) * span
                    r = 2 * ty + u
                    for tx in range(tw):
                        o = e + uint64(tx) * fu
                        q = 2 * tx + v
                        if r < oh and q < ow:
                            src = uint64((b * oh + r) * ow + q) * fu
                            for k in range(fu):
                                g[o + k] = dy[src + k]
                                special |= (bits[src + k] & mask) == mask
                        else:
                            for k in range(fu):
                                g[o + k] = 0
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


# ---- the convolution, a part of the batch per core --------------------------------------------


def _filters(w: np.ndarray) -> np.ndarray:
    """U = G w G^T per position: (16, C, F), in w's dtype (two small products, not one
    three-operand einsum, which loops over every index at once)."""
    g = G.astype(w.dtype)
    gw = np.tensordot(g, w, axes=(1, 0))  # (4, 3, C, F): G along the kernel's rows
    return np.tensordot(gw, g, axes=(1, 1)).transpose(0, 3, 1, 2).reshape(16, *w.shape[2:])


def _plan(n: int, tiles: int, c: int, itemsize: int) -> tuple[int, int]:
    """(images per chunk, parts): as many images as keep V within CHUNK_BYTES (at least 1),
    one part per core unless the batch is a single chunk."""
    step = max(1, min(n, CHUNK_BYTES // max(1, 16 * tiles * c * itemsize)))
    return step, 1 if step >= n else min(threads.cores(), n)


def _bits(a: np.ndarray) -> tuple[np.ndarray, np.unsignedinteger]:
    """a's bytes as unsigned integers of its width, flat, and the mask of its exponent bits:
    an element is an infinity or a NaN when all of them are set."""
    if a.dtype == np.float32:
        return a.reshape(-1).view(np.uint32), np.uint32(0x7F800000)
    return a.reshape(-1).view(np.uint64), np.uint64(0x7FF0000000000000)


def winograd_conv2d(x, w, window):
    """y (N, OH, OW, F) by F(2x2, 3x3), as the reference, in chunks of images per core."""
    return forward(x, w, window)[0]


def winograd_conv2d_backward(dy, cache, needs_grad=(True, True)):
    """(dx, dw) of the F(2x2, 3x3) forward, as the reference, in chunks of images per core."""
    return backward(dy, cache, needs_grad)[:2]


def forward(x, w, window) -> tuple[np.ndarray, bool]:
    """(y, finite): y as winograd_conv2d, and whether x and w were all finite. An infinity
    meets itself with the opposite sign in the transforms and gives NaN where the direct sum
    keeps the infinity: kernels/cpu/conv.py then computes y by im2col instead."""
    dtype = np.result_type(x, w)
    x, w = np.ascontiguousarray(x, dtype=dtype), np.ascontiguousarray(w, dtype=dtype)
    n, c, f = x.shape[0], x.shape[3], w.shape[3]
    geometry = _geometry(window)
    tiles = geometry[2] * geometry[3]  # per image
    filters = _filters(w)  # U, (16, C, F)
    y = np.empty((n, *window[2], f), dtype=dtype)
    step, parts = _plan(n, tiles, 2 * c, x.itemsize)
    ranges = threads.split(n, parts)

    bits, mask = _bits(x)
    per_image = x[:1].size  # (0 for an empty batch)

    def part(t: int) -> bool:  # images ranges[t]; returns whether they held a non-finite x
        start, stop = ranges[t]
        u_buffer = np.empty(16 * step * tiles * 2 * c, dtype=dtype)  # V at the even columns
        m_buffer = np.empty(16 * step * tiles * f, dtype=dtype)
        special = False
        for b0 in range(start, stop, step):
            b1 = min(stop, b0 + step)
            rows = (b1 - b0) * tiles
            u = u_buffer[: 16 * rows * 2 * c]
            m = m_buffer[: 16 * rows * f]
            chunk_bits = bits[b0 * per_image : b1 * per_image]
            special |= _input_rows(
                x[b0:b1].reshape(-1), chunk_bits, mask, x[b0:b1].shape, geometry, u
            )
            v = u.reshape(16, rows, 2 * c)[:, :, :c]  # (16, T, C), rows 2 C apart: BLAS's lda
            np.matmul(v, filters, out=m.reshape(16, rows, f))
            _output_rows(m, geometry, y[b0:b1].reshape(-1), y[b0:b1].shape)
        return special

    with threads.blas_for(parts):
        specials = threads.run_parts(part, parts)
    return y, not any(specials) and bool(np.isfinite(w).all())


def backward(dy, cache, needs_grad=(True, True)) -> tuple:
    """(dx, dw, finite): dx and dw as winograd_conv2d_backward (dw the sum of the parts'
    shares in batch order), and whether dy, w and (when dw is needed) x were all finite
    (see forward)."""
    x, w, window = cache
    dtype = np.result_type(dy, x, w)
    x, w = np.ascontiguousarray(x, dtype=dtype), np.ascontiguousarray(w, dtype=dtype)
    dy = np.ascontiguousarray(dy, dtype=dtype)
    n, c, f = x.shape[0], x.shape[3], w.shape[3]
    geometry = _geometry(window)
    tiles = geometry[2] * geometry[3]
    u_t = _filters(w).transpose(0, 2, 1) if needs_grad[0] else None  # (16, F, C)
    dx = np.empty(x.shape, dtype=dtype) if needs_grad[0] else None
    step, parts = _plan(n, tiles, 2 * max(c, f), x.itemsize)
    ranges = threads.split(n, parts)

    x_bits, mask = _bits(x)
    dy_bits, _ = _bits(dy)
    x_image, dy_image = x[:1].size, dy[:1].size

    def part(t: int):  # images ranges[t]; returns their share of dU (16, C, F) and specials
        start, stop = ranges[t]
        special = False
        dm_buffer = np.empty(16 * step * tiles * f, dtype=dtype)  # a chunk's dM, flat
        u_buffer = np.empty(16 * step * tiles * 2 * c, dtype=dtype)  # V at the even columns
        gu_buffer = np.zeros(16 * step * tiles * 2 * c, dtype=dtype)  # dV there; odd ones 0
        du = du_chunk = None
        for b0 in range(start, stop, step):
            b1 = min(stop, b0 + step)
            rows = (b1 - b0) * tiles
            dm = dm_buffer[: 16 * rows * f]
            special |= _output_rows_adjoint(
                dy[b0:b1].reshape(-1),
                dy_bits[b0 * dy_image : b1 * dy_image],
                mask,
                dy[b0:b1].shape,
                geometry,
                dm,
            )
            dm = dm.reshape(16, rows, f)
            if needs_grad[1]:
                u = u_buffer[: 16 * rows * 2 * c]
                chunk_bits = x_bits[b0 * x_image : b1 * x_image]
                special |= _input_rows(
                    x[b0:b1].reshape(-1), chunk_bits, mask, x[b0:b1].shape, geometry, u
                )
                v_t = u.reshape(16, rows, 2 * c)[:, :, :c].transpose(0, 2, 1)  # V^T (16, C, T)
                if du is None:
                    du = np.matmul(v_t, dm)  # V^T dM per position
                else:
                    if du_chunk is None:
                        du_chunk = np.empty((16, c, f), dtype=dtype)
                    du += np.matmul(v_t, dm, out=du_chunk)
            if needs_grad[0]:
                gu = gu_buffer[: 16 * rows * 2 * c]
                np.matmul(dm, u_t, out=gu.reshape(16, rows, 2 * c)[:, :, :c])  # dV = dM U^T
                _input_rows_adjoint(gu, geometry, dx[b0:b1].reshape(-1), dx[b0:b1].shape)
        return du, special

    with threads.blas_for(parts):
        results = threads.run_parts(part, parts)
    finite = not any(special for _, special in results) and bool(np.isfinite(w).all())
    dw = None
    if needs_grad[1]:
        du = results[0][0]
        for share, _ in results[1:]:  # in batch order: the same bits on every run
            du += share
        g = G.astype(dtype)
        gdu = np.tensordot(g, du.reshape(4, 4, c, f), axes=(0, 0))  # (3, 4, C, F)
        dw = np.tensordot(gdu, g, axes=(1, 0)).transpose(0, 3, 1, 2)  # G^T dU G, (3, 3, C, F)
        dw = np.ascontiguousarray(dw)
    return dx, dw, finite
