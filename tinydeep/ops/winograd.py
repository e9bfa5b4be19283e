"""3x3 stride-1 convolution by Winograd's minimal filtering F(m x m, 3x3) (Lavin and Gray, 2016),
forward and backward: the same y as im2col (tinydeep/ops/conv.py) with 2.25x (m = 2) or 4x
(m = 4) fewer multiplies.

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

Larger tiles, F(4x4, 3x3). The same construction with 4 outputs per axis: a 6x6 input tile,
36 products for 16 outputs (im2col's 144), so 4x fewer multiplies, and 36 GEMMs over a
quarter of the tiles: 1.78x less GEMM work than F(2x2, 3x3). The 1-D F(4, 3) evaluates the
polynomials at the points 0, 1, -1, 2, -2 and infinity (Lavin and Gray's Chinese remainder
construction; the matrices below are their F(4x4, 3x3), checked here against im2col by the
tests); its transforms multiply by up to 8 and divide by 24, so the values inside a tile are
mixed with larger weights before they cancel.

Accuracy. The transforms mix every value of a tile before the terms cancel back to the
result, so the rounding error is relative to the magnitudes inside a tile rather than to one
output's own terms. Measured against im2col over 2,200 random cases
(tests/kernels/test_cpu_winograd.py), F(2x2) stays within 4 eps of the largest of them and
F(4x4), whose transforms weigh the values by up to 8 and 1/24 before they cancel, within 32
eps. So the CPU kernels take F(4x4) in float32 only, where it measured faster
(kernels/cpu/conv.py); float64, the dtype of gradient checks, keeps F(2x2).

Shapes, with A = m + 2 the input tile's side: x (N, H, W, C) NHWC, w (3, 3, C, F), y
(N, OH, OW, F) with OH = H + top + bottom - 2; tiles (N, TH, TW, A, A, C); V (A, A, N, TH, TW,
C), U (A, A, C, F), M (A, A, N, TH, TW, F).
Read in order: the constants, suits, tile_count, input_tiles, winograd_conv2d,
winograd_conv2d_backward.
"""

from __future__ import annotations

import numpy as np

from tinydeep.backend import kernelized, xp_of

# y = A^T [(G g) * (B^T d)]: the constants of F(2, 3) ...
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)

# ... and of F(4, 3): the points 0, 1, -1, 2, -2 and infinity.
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

TRANSFORMS = {2: (BT, G, AT), 4: (BT4, G4, AT4)}  # m, the output tile's side: (B^T, G, A^T)


def suits(w_shape: tuple, window) -> bool:
    """Whether Winograd F(m x m, 3x3) computes this convolution: a 3x3 kernel at stride 1."""
    return tuple(w_shape[:2]) == (3, 3) and tuple(window.strides) == (1, 1)


def tile_count(window, m: int = 2) -> tuple[int, int]:
    """(TH, TW): the m x m output tiles that cover (OH, OW)."""
    oh, ow = window.out
    return -(-oh // m), -(-ow // m)


def input_tiles(x, window, m: int = 2):
    """The (m + 2) x (m + 2) input patch of every m x m output tile, (N, TH, TW, A, A, C): a
    strided view of x padded with zeros (top and left by the conv's padding, bottom and right
    as far as the last tile reads)."""
    xp = xp_of(x)
    (top, _), (left, _) = window.pads
    th, tw = tile_count(window, m)
    n, h, w, c = x.shape
    a = m + 2
    # m * TH + 2 >= OH + 2 = H + top + bottom rows: x always fits whole.
    padded = xp.zeros((n, m * th + 2, m * tw + 2, c), dtype=x.dtype)
    padded[:, top : top + h, left : left + w] = x
    s_n, s_h, s_w, s_c = padded.strides
    return xp.lib.stride_tricks.as_strided(
        padded, (n, th, tw, a, a, c), (s_n, m * s_h, m * s_w, s_h, s_w, s_c)
    )


def _constants(xp, dtype, m: int):
    if m not in TRANSFORMS:
        raise ValueError(f"winograd_conv2d: m must be one of {sorted(TRANSFORMS)}, got {m!r}")
    return (xp.asarray(t, dtype=dtype) for t in TRANSFORMS[m])


@kernelized  # kernels/cpu/winograd.py: the same, a chunk of images at a time per core
def winograd_conv2d(x, w, window, m=2):
    """y (N, OH, OW, F) = x (N, H, W, C) convolved with w (3, 3, C, F) at stride 1, padding
    as in `window` (conv.py's Window), by F(m x m, 3x3), m = 2 or 4."""
    xp = xp_of(x)
    bt, g, at = _constants(xp, np.result_type(x, w), m)
    n, c, f = x.shape[0], x.shape[3], w.shape[3]
    a = m + 2  # the input tile's side; a * a positions
    th, tw = tile_count(window, m)
    d = input_tiles(x, window, m)  # (N, TH, TW, A, A, C)
    v = xp.einsum("ai,ntsijc,bj->abntsc", bt, d, bt, optimize=True)  # B^T d B
    u = xp.einsum("ai,ijcf,bj->abcf", g, w, g, optimize=True)  # G w G^T, (A, A, C, F)
    prod = v.reshape(a * a, -1, c) @ u.reshape(a * a, c, f)  # (A*A, N*TH*TW, F): sum over c
    prod = prod.reshape(a, a, n, th, tw, f)
    y = xp.einsum("ua,abntsf,vb->ntusvf", at, prod, at, optimize=True)  # A^T M A, m x m tiles
    oh, ow = window.out
    return xp.ascontiguousarray(y.reshape(n, m * th, m * tw, f)[:, :oh, :ow])


@kernelized  # kernels/cpu/winograd.py: the same, a chunk of images at a time per core
def winograd_conv2d_backward(dy, cache, needs_grad=(True, True), m=2):
    """(dx, dw) of winograd_conv2d: each step's transpose, in reverse (the module docstring).
    The cache is conv2d's, (x, w, window); dx or dw is None when not needed."""
    x, w, window = cache
    xp = xp_of(dy)
    bt, g, at = _constants(xp, np.result_type(dy, x, w), m)
    n, h, wd, c = x.shape
    f = w.shape[3]
    a = m + 2
    th, tw = tile_count(window, m)
    oh, ow = window.out
    dy_tiles = xp.zeros((n, m * th, m * tw, f), dtype=dy.dtype)  # dropped outputs: zero
    dy_tiles[:, :oh, :ow] = dy
    dy_tiles = dy_tiles.reshape(n, th, m, tw, m, f)
    dm = xp.einsum("ua,ntusvf,vb->abntsf", at, dy_tiles, at, optimize=True)  # A dY A^T
    dm = dm.reshape(a * a, -1, f)  # (A*A, N*TH*TW, F)
    dx = dw = None
    if needs_grad[1]:
        d = input_tiles(x, window, m)
        v = xp.einsum("ai,ntsijc,bj->abntsc", bt, d, bt, optimize=True).reshape(a * a, -1, c)
        du = (v.transpose(0, 2, 1) @ dm).reshape(a, a, c, f)  # V^T dM per position
        dw = xp.einsum("ai,abcf,bj->ijcf", g, du, g, optimize=True)  # G^T dU G
    if needs_grad[0]:
        u = xp.einsum("ai,ijcf,bj->abcf", g, w, g, optimize=True).reshape(a * a, c, f)
        dv = (dm @ u.transpose(0, 2, 1)).reshape(a, a, n, th, tw, c)  # dM U^T per position
        dd = xp.einsum("ai,abntsc,bj->ntsijc", bt, dv, bt, optimize=True)  # B dV B^T
        (top, _), (left, _) = window.pads
        padded = xp.zeros((n, m * th + 2, m * tw + 2, c), dtype=dd.dtype)
        for i in range(a):  # each tile's gradient, added back where it was read
            for j in range(a):
                padded[:, i : i + m * th : m, j : j + m * tw : m] += dd[:, :, :, i, j]
        dx = xp.ascontiguousarray(padded[:, top : top + h, left : left + wd])
    return dx, dw
