"""Numba kernels for Winograd's F(2x2, 3x3) convolution, forward and backward.

replaces tinydeep/ops/winograd.py:winograd_conv2d
replaces tinydeep/ops/winograd.py:winograd_conv2d_backward

The reference (tinydeep/ops/winograd.py, which derives the algorithm) transforms every tile of
the whole batch with einsum, through a padded copy of x. Here the four transforms are Numba
loops that read x, dy and write dx directly (no padded copy: a tile's rows and columns
outside the image read as zeros, or are skipped), and the batch runs as conv2d's im2col
kernels do (kernels/cpu/conv.py): one contiguous part of the images per core, a chunk of
images at a time through buffers that stay in the caches, BLAS on one thread per part, dw's
parts added in order (kernels/cpu/threads.py). The 16 products per chunk stay in NumPy (BLAS):
np.matmul over the stacked positions.

Layouts: a chunk's transformed data V is (16, T, C) for its T = images * TH * TW tiles,
position-major so that each position's product reads one contiguous (T, C) matrix; M and dM
(16, T, F); dV (16, T, C). Inside a tile the loops run over the channels last: x's
contiguous axis, which the compiler vectorizes.

Results differ from the reference by float rounding only: the same sums in another order
(tests/kernels/test_cpu_winograd.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from . import threads

__all__ = ["winograd_conv2d", "winograd_conv2d_backward"]

# Bytes of V for one chunk of images (per core): measured on ResNet-20's 3x3 layers (2-core
# EPYC, 512 KiB L2 per core): 1-2 MiB fastest.
CHUNK_BYTES = 1 << 20

# The filter transforms, G w G^T and its transpose: tiny (C * F * 16), left to NumPy.
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def _geometry(window) -> tuple:
    """(top, left, TH, TW, OH, OW) as the loops take it."""
    (oh, ow), ((top, _), (left, _)) = window[2], window[3]
    return (top, left, -(-oh // 2), -(-ow // 2), oh, ow)


# ---- the four transforms, per chunk of images --------------------------------------------------
#
# Flat arrays and unsigned offsets, as kernels/cpu/conv.py's loops: with signed indices Numba
# checks each one for wraparound and the C-long inner loops are not vectorized. A tile's 4x4
# values are kept in a small flat scratch array, position (i, j) at offset (4 i + j) * C.


@njit(cache=True, nogil=True)
def _input_transform(x, shape, geometry, v):
    """V = B^T d B for every tile of x (n, H, W, C) into v (16, n*TH*TW, C), all flat."""
    n, h, w, c = shape
    top, left, th, tw, _, _ = geometry
    cu = uint64(c)
    plane = uint64(n * th * tw) * cu  # one position's (T, C) matrix
    d = np.empty(16 * c, dtype=x.dtype)  # the tile, zeros outside the image
    t = np.empty(16 * c, dtype=x.dtype)  # B^T d
    o = uint64(0)  # the tile's row in each position's matrix, times C
    for b in range(n):
        for ty in range(th):
            for tx in range(tw):
                for i in range(4):
                    r = 2 * ty + i - top
                    for j in range(4):
                        q = 2 * tx + j - left
                        e = uint64(4 * i + j) * cu
                        if 0 <= r < h and 0 <= q < w:
                            src = uint64(((b * h + r) * w + q) * c)
                            for k in range(cu):
                                d[e + k] = x[src + k]
                        else:
                            for k in range(cu):
                                d[e + k] = 0
                for j in range(4):  # B^T along the rows: rows i = 0..3 at offsets 4 C apart
                    e0 = uint64(j) * cu
                    e1, e2, e3 = e0 + uint64(4) * cu, e0 + uint64(8) * cu, e0 + uint64(12) * cu
                    for k in range(cu):
                        t[e0 + k] = d[e0 + k] - d[e2 + k]
                        t[e1 + k] = d[e1 + k] + d[e2 + k]
                        t[e2 + k] = d[e2 + k] - d[e1 + k]
                        t[e3 + k] = d[e1 + k] - d[e3 + k]
                for a in range(4):  # and B along the columns: columns at offsets C apart
                    e0 = uint64(4 * a) * cu
                    e1, e2, e3 = e0 + cu, e0 + uint64(2) * cu, e0 + uint64(3) * cu
                    p0 = uint64(4 * a) * plane + o
                    p1, p2, p3 = p0 + plane, p0 + uint64(2) * plane, p0 + uint64(3) * plane
                    for k in range(cu):
                        v[p0 + k] = t[e0 + k] - t[e2 + k]
                        v[p1 + k] = t[e1 + k] + t[e2 + k]
                        v[p2 + k] = t[e2 + k] - t[e1 + k]
                        v[p3 + k] = t[e1 + k] - t[e3 + k]
                o += cu


@njit(cache=True, nogil=True)
def _output_transform(m, geometry, y, shape):
    """Y = A^T M A for every tile, m (16, n*TH*TW, F), into y (n, OH, OW, F), all flat,
    dropping the outputs past OH or OW."""
    n, oh, ow, f = shape
    _, _, th, tw, _, _ = geometry
    fu = uint64(f)
    plane = uint64(n * th * tw) * fu
    s = np.empty(8 * f, dtype=y.dtype)  # A^T M: 2 rows of 4
    o = uint64(0)
    for b in range(n):
        for ty in range(th):
            for tx in range(tw):
                for j in range(4):  # A^T along the rows: (1,1,1,0) and (0,1,-1,-1)
                    p0 = uint64(j) * plane + o
                    p1, p2, p3 = (
                        p0 + uint64(4) * plane,
                        p0 + uint64(8) * plane,
                        p0 + uint64(12) * plane,
                    )
                    e0, e1 = uint64(j) * fu, uint64(4 + j) * fu
                    for k in range(fu):
                        s[e0 + k] = m[p0 + k] + m[p1 + k] + m[p2 + k]
                        s[e1 + k] = m[p1 + k] - m[p2 + k] - m[p3 + k]
                for u in range(2):  # and A along the columns
                    r = 2 * ty + u
                    if r >= oh:
                        continue
                    e0 = uint64(4 * u) * fu
                    e1, e2, e3 = e0 + fu, e0 + uint64(2) * fu, e0 + uint64(3) * fu
                    dst = uint64(((b * oh + r) * ow + 2 * tx) * f)
                    for k in range(fu):
                        y[dst + k] = s[e0 + k] + s[e1 + k] + s[e2 + k]
                    if 2 * tx + 1 < ow:
                        for k in range(fu):
                            y[dst + fu + k] = s[e1 + k] - s[e2 + k] - s[e3 + k]
                o += fu


@njit(cache=True, nogil=True)
def _output_adjoint(dy, shape, geometry, dm):
    """dM = A dY A^T for every tile of dy (n, OH, OW, F) into dm (16, n*TH*TW, F), all flat;
    the dropped outputs count as zero."""
    n, oh, ow, f = shape
    _, _, th, tw, _, _ = geometry
    fu = uint64(f)
    plane = uint64(n * th * tw) * fu
    g = np.empty(4 * f, dtype=dy.dtype)  # the tile's 2x2 dY
    r4 = np.empty(8 * f, dtype=dy.dtype)  # A dY: 4 rows of 2
    o = uint64(0)
    for b in range(n):
        for ty in range(th):
            for tx in range(tw):
                for u in range(2):
                    for e in range(2):
                        dst = uint64(2 * u + e) * fu
                        if 2 * ty + u < oh and 2 * tx + e < ow:
                            src = uint64(((b * oh + 2 * ty + u) * ow + 2 * tx + e) * f)
                            for k in range(fu):
                                g[dst + k] = dy[src + k]
                        else:
                            for k in range(fu):
                                g[dst + k] = 0
                for e in range(2):  # A along the rows: (1,0) (1,1) (1,-1) (0,-1)
                    g0, g1 = uint64(e) * fu, uint64(2 + e) * fu
                    for k in range(fu):
                        r4[g0 + k] = g[g0 + k]
                        r4[uint64(2) * fu + g0 + k] = g[g0 + k] + g[g1 + k]
                        r4[uint64(4) * fu + g0 + k] = g[g0 + k] - g[g1 + k]
                        r4[uint64(6) * fu + g0 + k] = -g[g1 + k]
                for a in range(4):  # and A^T along the columns
                    e0, e1 = uint64(2 * a) * fu, uint64(2 * a + 1) * fu
                    p0 = uint64(4 * a) * plane + o
                    p1, p2, p3 = p0 + plane, p0 + uint64(2) * plane, p0 + uint64(3) * plane
                    for k in range(fu):
                        dm[p0 + k] = r4[e0 + k]
                        dm[p1 + k] = r4[e0 + k] + r4[e1 + k]
                        dm[p2 + k] = r4[e0 + k] - r4[e1 + k]
                        dm[p3 + k] = -r4[e1 + k]
                o += fu


@njit(cache=True, nogil=True)
def _input_adjoint(dv, geometry, dx, shape):
    """dd = B dV B^T for every tile, dv (16, n*TH*TW, C), added into dx (n, H, W, C) where the
    tile was read, all flat (dx starts at zero); what falls on the padding is dropped."""
    n, h, w, c = shape
    top, left, th, tw, _, _ = geometry
    cu = uint64(c)
    plane = uint64(n * th * tw) * cu
    e = np.empty(16 * c, dtype=dx.dtype)  # B dV, (i, b) at (4 i + b) * C
    dd = np.empty(16 * c, dtype=dx.dtype)  # B dV B^T, (i, j) at (4 i + j) * C
    o = uint64(0)
    for b in range(n):
        for ty in range(th):
            for tx in range(tw):
                for q in range(4):  # B along the rows: columns of B^T are (1,0,0,0)
                    p0 = uint64(q) * plane + o  # (0,1,-1,1) (-1,1,1,0) (0,0,0,-1)
                    p1, p2, p3 = (
                        p0 + uint64(4) * plane,
                        p0 + uint64(8) * plane,
                        p0 + uint64(12) * plane,
                    )
                    e0 = uint64(q) * cu
                    e1, e2, e3 = e0 + uint64(4) * cu, e0 + uint64(8) * cu, e0 + uint64(12) * cu
                    for k in range(cu):
                        e[e0 + k] = dv[p0 + k]
                        e[e1 + k] = dv[p1 + k] - dv[p2 + k] + dv[p3 + k]
                        e[e2 + k] = dv[p1 + k] + dv[p2 + k] - dv[p0 + k]
                        e[e3 + k] = -dv[p3 + k]
                for i in range(4):  # and B^T along the columns
                    e0 = uint64(4 * i) * cu
                    e1, e2, e3 = e0 + cu, e0 + uint64(2) * cu, e0 + uint64(3) * cu
                    for k in range(cu):
                        dd[e0 + k] = e[e0 + k]
                        dd[e1 + k] = e[e1 + k] - e[e2 + k] + e[e3 + k]
                        dd[e2 + k] = e[e1 + k] + e[e2 + k] - e[e0 + k]
                        dd[e3 + k] = -e[e3 + k]
                for i in range(4):
                    r = 2 * ty + i - top
                    if r < 0 or r >= h:
                        continue
                    for j in range(4):
                        q = 2 * tx + j - left
                        if 0 <= q < w:
                            dst = uint64(((b * h + r) * w + q) * c)
                            src = uint64(4 * i + j) * cu
                            for k in range(cu):
                                dx[dst + k] += dd[src + k]
                o += cu


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


def winograd_conv2d(x, w, window):
    """y (N, OH, OW, F) by F(2x2, 3x3), as the reference, in chunks of images per core."""
    dtype = np.result_type(x, w)
    x, w = np.ascontiguousarray(x, dtype=dtype), np.ascontiguousarray(w, dtype=dtype)
    n, c, f = x.shape[0], x.shape[3], w.shape[3]
    geometry = _geometry(window)
    tiles = geometry[2] * geometry[3]  # per image
    u = _filters(w)
    y = np.empty((n, *window[2], f), dtype=dtype)
    step, parts = _plan(n, tiles, c, x.itemsize)
    ranges = threads.split(n, parts)

    def part(t: int) -> None:
        start, stop = ranges[t]
        v = np.empty(16 * step * tiles * c, dtype=dtype)  # a chunk's V, flat
        m = np.empty(16 * step * tiles * f, dtype=dtype)
        for b0 in range(start, stop, step):
            b1 = min(stop, b0 + step)
            rows = (b1 - b0) * tiles
            vc, mc = (
                v[: 16 * rows * c].reshape(16, rows, c),
                m[: 16 * rows * f].reshape(16, rows, f),
            )
            _input_transform(x[b0:b1].reshape(-1), x[b0:b1].shape, geometry, vc.reshape(-1))
            np.matmul(vc, u, out=mc)
            _output_transform(mc.reshape(-1), geometry, y[b0:b1].reshape(-1), y[b0:b1].shape)

    with threads.blas_for(parts):
        threads.run_parts(part, parts)
    return y


def winograd_conv2d_backward(dy, cache, needs_grad=(True, True)):
    """(dx, dw) of the F(2x2, 3x3) forward, as the reference, in chunks of images per core;
    dw is the sum of the parts' shares in batch order."""
    x, w, window = cache
    dtype = np.result_type(dy, x, w)
    x, w = np.ascontiguousarray(x, dtype=dtype), np.ascontiguousarray(w, dtype=dtype)
    dy = np.ascontiguousarray(dy, dtype=dtype)
    n, c, f = x.shape[0], x.shape[3], w.shape[3]
    geometry = _geometry(window)
    tiles = geometry[2] * geometry[3]
    u_t = _filters(w).transpose(0, 2, 1) if needs_grad[0] else None  # (16, F, C)
    dx = np.zeros(x.shape, dtype=dtype) if needs_grad[0] else None
    step, parts = _plan(n, tiles, max(c, f), x.itemsize)
    ranges = threads.split(n, parts)

    def part(t: int):  # images ranges[t]; returns their share of dU (16, C, F)
        start, stop = ranges[t]
        dm_buffer = np.empty(16 * step * tiles * f, dtype=dtype)  # a chunk's dM, flat
        v_buffer = np.empty(16 * step * tiles * c, dtype=dtype)  # its V, then its dV
        du = du_chunk = None
        for b0 in range(start, stop, step):
            b1 = min(stop, b0 + step)
            rows = (b1 - b0) * tiles
            dm = dm_buffer[: 16 * rows * f].reshape(16, rows, f)
            v = v_buffer[: 16 * rows * c].reshape(16, rows, c)
            _output_adjoint(dy[b0:b1].reshape(-1), dy[b0:b1].shape, geometry, dm.reshape(-1))
            if needs_grad[1]:
                _input_transform(x[b0:b1].reshape(-1), x[b0:b1].shape, geometry, v.reshape(-1))
                if du is None:
                    du = np.matmul(v.transpose(0, 2, 1), dm)  # V^T dM per position
                else:
                    if du_chunk is None:
                        du_chunk = np.empty((16, c, f), dtype=dtype)
                    du += np.matmul(v.transpose(0, 2, 1), dm, out=du_chunk)
            if needs_grad[0]:
                np.matmul(dm, u_t, out=v)  # dV = dM U^T per position
                _input_adjoint(v.reshape(-1), geometry, dx[b0:b1].reshape(-1), dx[b0:b1].shape)
        return du

    with threads.blas_for(parts):
        shares = threads.run_parts(part, parts)
    dw = None
    if needs_grad[1]:
        du = shares[0]
        for share in shares[1:]:  # in batch order: the same bits on every run
            du += share
        g = G.astype(dtype)
        gdu = np.tensordot(g, du.reshape(4, 4, c, f), axes=(0, 0))  # (3, 4, C, F)
        dw = np.tensordot(gdu, g, axes=(1, 0)).transpose(0, 3, 1, 2)  # G^T dU G, (3, 3, C, F)
        dw = np.ascontiguousarray(dw)
    return dx, dw
