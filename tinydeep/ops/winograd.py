"""3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, 2016),
forward and backward: the same y as im2col (tinydeep/ops/conv.py) with 2.25x fewer multiplies.

This is the readable reference of an algorithm the CPU kernels choose for the 3x3 stride-1
convolutions (kernels/cpu/conv.py says when). The conv2d op itself stays im2col: with
`TINYDEEP_KERNELS=0` every convolution is conv.py's.

The 1-D algorithm, F(2, 3). Two outputs of a 3-tap filter g over four inputs d,

    y0 = d0 g0 + d1 g1 + d2 g2
    y1 = d1 g0 + d2 g1 + d3 g2,

take six multiplications. Winograd's four products

    m0 = (d0 - d2) g0               m2 = (d2 - d1) (g0 - g1 + g2) / 2
    m1 = (d1 + d2) (g0 + g1 + g2) / 2    m3 = (d1 - d3) g2

give y0 = m0 + m1 + m2 and y1 = m1 - m2 - m3 (expand m1 + m2 = d1 g1 + d2 g0 + d2 g2 and
m1 - m2 = d1 g0 + d1 g2 + d2 g1 to check). In matrices, y = A^T [(G g) * (B^T d)] with `*`
elementwise and the constants below. The filter's transform G g costs nothing per image (the
filter is shared), the data's B^T d and the output's A^T m are additions only.

Nested in itself, F(2x2, 3x3): a 2x2 output tile from a 4x4 input tile d and a 3x3 filter g is

    Y = A^T [ U * V ] A,   U = G g G^T,   V = B^T d B   (all 4x4 but Y)

16 multiplications for 4 outputs instead of 36. Over C input and F output channels the
products are summed over c before the (linear) output transform, so for each of the 16
positions p = (a, b) of the 4x4 tile

    M[p] (tiles, F) = V[p] (tiles, C) @ U[p] (C, F)

16 matrix products of the tiles' transformed data with the transformed filters: this is where
the work goes (2 * 16 * C * F per tile of 4 outputs, im2col's is 2 * 36 * C * F).

Tiles. The output (OH, OW) is cut into 2x2 tiles, TH = ceil(OH / 2) by TW = ceil(OW / 2); tile
(t, s) reads the 4x4 patch of the padded input starting at row 2t, column 2s (neighbouring
tiles overlap by two rows or columns). The input is padded with zeros by the convolution's
padding and, at the bottom and right, as far as the last tile reads; outputs past OH or OW
are dropped.

Backward. Every step above is linear, so the gradients are the steps' transposes in reverse:

    dM = A dY A^T                   per tile (dY zero where the output was dropped)
    dU[p] = V[p]^T @ dM[p]          dw = G^T dU G       (C, F) per position, then 3x3
    dV[p] = dM[p] @ U[p]^T          dd = B dV B^T       added back where each tile was read

This is the exact gradient of the forward above (not an approximation through the im2col
form), so a gradient check of it needs no allowance for the change of algorithm.

Accuracy. The transforms add and subtract up to four terms and halve, mixing every value of
a tile before the terms cancel back to the result, so the rounding error is relative to the
magnitudes inside a tile rather than to one output's own terms: measured against im2col, it
stays under one eps of the largest of them (tests/kernels/test_cpu_winograd.py). Larger
tiles, F(4x4, 3x3) with 4x fewer multiplies, have transforms with entries up to 5 and lose
more accuracy as the tile grows (Lavin and Gray discuss it); they are not used here.

Shapes: x (N, H, W, C) NHWC, w (3, 3, C, F), y (N, OH, OW, F) with OH = H + top + bottom - 2;
tiles (N, TH, TW, 4, 4, C); V (4, 4, N, TH, TW, C), U (4, 4, C, F), M (4, 4, N, TH, TW, F).
Read in order: the constants, suits, tile_count, input_tiles, winograd_conv2d,
winograd_conv2d_backward.
"""

from __future__ import annotations

import numpy as np

from tinydeep.backend import kernelized, xp_of

# y = A^T [(G g) * (B^T d)]: the constants of F(2, 3).
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def suits(w_shape: tuple, window) -> bool:
    """Whether Winograd F(2x2, 3x3) computes this convolution: a 3x3 kernel at stride 1."""
    return tuple(w_shape[:2]) == (3, 3) and tuple(window.strides) == (1, 1)


def tile_count(window) -> tuple[int, int]:
    """(TH, TW): the 2x2 output tiles that cover (OH, OW)."""
    oh, ow = window.out
    return -(-oh // 2), -(-ow // 2)


def input_tiles(x, window):
    """The 4x4 input patch of every output tile, (N, TH, TW, 4, 4, C): a strided view of x
    padded with zeros (top and left by the conv's padding, bottom and right as far as the
    last tile reads)."""
    xp = xp_of(x)
    (top, _), (left, _) = window.pads
    th, tw = tile_count(window)
    n, h, w, c = x.shape
    # 2 * TH + 2 >= OH + 2 = H + top + bottom rows: x always fits whole.
    padded = xp.zeros((n, 2 * th + 2, 2 * tw + 2, c), dtype=x.dtype)
    padded[:, top : top + h, left : left + w] = x
    s_n, s_h, s_w, s_c = padded.strides
    return xp.lib.stride_tricks.as_strided(
        padded, (n, th, tw, 4, 4, c), (s_n, 2 * s_h, 2 * s_w, s_h, s_w, s_c)
    )


def _constants(xp, dtype):
    return (xp.asarray(m, dtype=dtype) for m in (BT, G, AT))


@kernelized  # kernels/cpu/winograd.py: the same, a chunk of images at a time per core
def winograd_conv2d(x, w, window):
    """y (N, OH, OW, F) = x (N, H, W, C) convolved with w (3, 3, C, F) at stride 1, padding
    as in `window` (conv.py's Window), by F(2x2, 3x3)."""
    xp = xp_of(x)
    bt, g, at = _constants(xp, np.result_type(x, w))
    n, c, f = x.shape[0], x.shape[3], w.shape[3]
    th, tw = tile_count(window)
    d = input_tiles(x, window)  # (N, TH, TW, 4, 4, C)
    v = xp.einsum("ai,ntsijc,bj->abntsc", bt, d, bt, optimize=True)  # B^T d B
    u = xp.einsum("ai,ijcf,bj->abcf", g, w, g, optimize=True)  # G w G^T, (4, 4, C, F)
    m = v.reshape(16, -1, c) @ u.reshape(16, c, f)  # (16, N*TH*TW, F): sum over c
    m = m.reshape(4, 4, n, th, tw, f)
    y = xp.einsum("ua,abntsf,vb->ntusvf", at, m, at, optimize=True)  # A^T M A, 2x2 tiles
    oh, ow = window.out
    return xp.ascontiguousarray(y.reshape(n, 2 * th, 2 * tw, f)[:, :oh, :ow])


@kernelized  # kernels/cpu/winograd.py: the same, a chunk of images at a time per core
def winograd_conv2d_backward(dy, cache, needs_grad=(True, True)):
    """(dx, dw) of winograd_conv2d: each step's transpose, in reverse (the module docstring).
    The cache is conv2d's, (x, w, window); dx or dw is None when not needed."""
    x, w, window = cache
    xp = xp_of(dy)
    bt, g, at = _constants(xp, np.result_type(dy, x, w))
    n, h, wd, c = x.shape
    f = w.shape[3]
    th, tw = tile_count(window)
    oh, ow = window.out
    dy_tiles = xp.zeros((n, 2 * th, 2 * tw, f), dtype=dy.dtype)  # dropped outputs: zero
    dy_tiles[:, :oh, :ow] = dy
    dy_tiles = dy_tiles.reshape(n, th, 2, tw, 2, f)
    dm = xp.einsum("ua,ntusvf,vb->abntsf", at, dy_tiles, at, optimize=True)  # A dY A^T
    dm = dm.reshape(16, -1, f)  # (16, N*TH*TW, F)
    dx = dw = None
    if needs_grad[1]:
        d = input_tiles(x, window)
        v = xp.einsum("ai,ntsijc,bj->abntsc", bt, d, bt, optimize=True).reshape(16, -1, c)
        du = (v.transpose(0, 2, 1) @ dm).reshape(4, 4, c, f)  # V^T dM per position
        dw = xp.einsum("ai,abcf,bj->ijcf", g, du, g, optimize=True)  # G^T dU G
    if needs_grad[0]:
        u = xp.einsum("ai,ijcf,bj->abcf", g, w, g, optimize=True).reshape(16, c, f)
        dv = (dm @ u.transpose(0, 2, 1)).reshape(4, 4, n, th, tw, c)  # dM U^T per position
        dd = xp.einsum("ai,abntsc,bj->ntsijc", bt, dv, bt, optimize=True)  # B dV B^T
        (top, _), (left, _) = window.pads
        padded = xp.zeros((n, 2 * th + 2, 2 * tw + 2, c), dtype=dd.dtype)
        for i in range(4):  # each tile's 4x4 gradient, added back where it was read
            for j in range(4):
                padded[:, i : i + 2 * th : 2, j : j + 2 * tw : 2] += dd[:, :, :, i, j]
        dx = xp.ascontiguousarray(padded[:, top : top + h, left : left + wd])
    return dx, dw
