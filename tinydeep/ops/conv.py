"""2-D convolution of NHWC images, as im2col around one matrix product.

Shapes (NHWC, as in Keras):
  N batch, H x W image height and width, C input channels, F filters (output channels),
  KH x KW kernel (window) height and width, SH x SW strides, OH x OW output height and width.
  x is (N, H, W, C), w is (KH, KW, C, F), y is (N, OH, OW, F).

im2col: each output pixel is the dot product of one KH x KW x C window of the (padded) input
with each of the F filters. Copy every window into one row of a matrix `cols`
(N*OH*OW rows, KH*KW*C columns) and the whole convolution is one GEMM,
`cols @ w.reshape(KH*KW*C, F)`, the operation BLAS (and cuBLAS) is fastest at. The backward
is two more GEMMs; the gradient of the copy, col2im, adds each window's gradient back to the
pixels it was copied from (windows overlap, so pixels collect several contributions).

Read in this order:
  1. same_padding, padding_amounts, conv_output_size, window_geometry: the shapes (shared
     with the pooling ops in tinydeep/ops/pool.py)
  2. im2col, col2im: the copy and its gradient (pool.py uses them too)
  3. conv2d_forward (checks, then conv2d_gemm), conv2d_backward: the op

The checks of the arguments a kernel would read unchecked (a window and an array that come
back from a cache) are in tinydeep/ops/checks.py, run before the reference or a kernel
(`@kernelized(check=...)`).

Like every deep-learning library, "convolution" here is cross-correlation (the kernel is not
flipped). Left out: dilation, groups, and a bias (the Conv2D layer adds it).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tinydeep.backend import kernelized, xp_of
from tinydeep.ops.checks import check_col2im, check_conv2d_backward, check_im2col
from tinydeep.tensor import differentiable

# ---- 1. shapes: padding and output sizes along one axis, then the 2-D window geometry --------


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding along one axis: (before, after).

    The output has ceil(size / stride) positions; the input is padded by just enough for the
    last window to fit, half before and the odd one after (TF's rule, at any stride).
    """
    out = -(-size // stride)  # ceil(size / stride) in integers
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def padding_amounts(size: int, kernel: int, stride: int, padding) -> tuple[int, int]:
    """(before, after) along one axis for padding "valid" (none), "same" (TF's rule), or an
    int p (p on both sides, as PyTorch's `padding=p`)."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return same_padding(size, kernel, stride)
    return padding, padding


def conv_output_size(size: int, kernel: int, stride: int, padding) -> int:
    """Number of window positions along one axis: floor((padded size - kernel) / stride) + 1.
    Zero or less when the kernel is larger than the padded input."""
    before, after = padding_amounts(size, kernel, stride, padding)
    return (size + before + after - kernel) // stride + 1


class Window(NamedTuple):
    """Where a sliding-window op's windows lie: all pairs are (along H, along W)."""

    size: tuple[int, int]  # (KH, KW)
    strides: tuple[int, int]  # (SH, SW)
    out: tuple[int, int]  # (OH, OW)
    pads: tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))


def as_pair(op: str, name: str, value, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum, as a pair (the Keras convention)."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else value
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(isinstance(v, (int, np.integer)) and v >= minimum for v in pair)
    ):
        raise ValueError(
            f"{op}: {name} must be an int >= {minimum} or a pair of them, got {value!r}"
        )
    return int(pair[0]), int(pair[1])


def window_geometry(
    op: str, x_shape: tuple, size, strides, padding, size_name: str = "kernel"
) -> Window:
    """Check a sliding-window op's settings against x's shape (N, H, W, C) and work out the
    padding and output size. `size` is the window (KH, KW), named `size_name` in errors."""
    if len(x_shape) != 4:
        raise ValueError(f"{op}: x must be 4-D (N, H, W, C), got shape {x_shape}")
    kh, kw = as_pair(op, size_name, size)
    sh, sw = as_pair(op, "strides", strides)
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(
                f"{op}: padding must be 'valid', 'same', an int or a pair of ints, got {padding!r}"
            )
        ph = pw = padding
    else:
        ph, pw = as_pair(op, "padding", padding, minimum=0)
    h, w = x_shape[1], x_shape[2]
    pads = (padding_amounts(h, kh, sh, ph), padding_amounts(w, kw, sw, pw))
    hp, wp = h + sum(pads[0]), w + sum(pads[1])
    if kh > hp or kw > wp:
        raise ValueError(
            f"{op}: {size_name} {kh}x{kw} is larger than the padded input {hp}x{wp} "
            f"(x shape {x_shape}, padding {padding!r})"
        )
    out = (conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw))
    return Window((kh, kw), (sh, sw), out, pads)


# ---- 2. im2col and col2im --------------------------------------------------------------------


@kernelized(check=check_im2col)  # kernels/cpu/conv.py: the same copy without np.pad
def im2col(x, window: Window, pad_value=0.0):
    """Every window of x (N, H, W, C), padded with `pad_value`, as cols (N, OH, OW, KH, KW, C),
    a contiguous copy.

    A strided view first: stepping one output pixel moves SH (or SW) input rows (columns),
    stepping inside the window moves one, so no index arrays are built. The copy into a
    contiguous array is the only data movement. (Measured on ResNet-20's largest conv, x
    (128, 32, 32, 16) float32, 3x3 "same": 10 ms through this view, 39 ms for a loop over
    the KH*KW offsets that copies one strided slice each.)
    """
    xp = xp_of(x)
    (kh, kw), (sh, sw), (oh, ow) = window.size, window.strides, window.out
    if window.pads != ((0, 0), (0, 0)):
        x = xp.pad(x, ((0, 0), *window.pads, (0, 0)), constant_values=pad_value)
    n, _, _, c = x.shape
    s_n, s_h, s_w, s_c = x.strides  # in bytes, whatever x's layout
    view = xp.lib.stride_tricks.as_strided(
        x, (n, oh, ow, kh, kw, c), (s_n, s_h * sh, s_w * sw, s_h, s_w, s_c)
    )
    return xp.ascontiguousarray(view)


@kernelized(check=check_col2im)  # kernels/cpu/conv.py: a gather without the padded buffer
def col2im(dcols, x_shape: tuple, window: Window):
    """The gradient of im2col: dx (x_shape) with each window's gradient added back where the
    window was copied from; what falls on the padding is dropped.

    dcols is offset-major, (KH, KW, N, OH, OW, C). One strided slice add per kernel offset
    (i, j): output pixel (oh, ow) took padded-input pixel (oh*SH + i, ow*SW + j) at that
    offset. Offset-major makes each added block contiguous, twice as fast as reading it out
    of the (N, OH, OW, KH, KW, C) layout.
    """
    (kh, kw), (sh, sw), (oh, ow) = window.size, window.strides, window.out
    (top, bottom), (left, right) = window.pads
    n, h, w, c = x_shape
    dx = xp_of(dcols).zeros((n, top + h + bottom, left + w + right, c), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, i : i + sh * oh : sh, j : j + sw * ow : sw, :] += dcols[i, j]
    return dx[:, top : top + h, left : left + w, :]


# ---- 3. the op -------------------------------------------------------------------------------


def conv2d_forward(x, w, strides=(1, 1), padding="valid"):
    """y (N, OH, OW, F) = x (N, H, W, C) convolved with w (KH, KW, C, F).

    strides: an int or a pair (SH, SW). padding: "valid" (none), "same" (TensorFlow's rule:
    OH = ceil(H / SH)), or an int or pair (PH, PW) of zeros on both sides of each axis.
    """
    if w.ndim != 4:
        raise ValueError(f"conv2d: w must be 4-D (KH, KW, C, F), got shape {w.shape}")
    window = window_geometry("conv2d", x.shape, w.shape[:2], strides, padding)
    if x.shape[3] != w.shape[2]:
        raise ValueError(
            f"conv2d: x has {x.shape[3]} channels (shape {x.shape}) but w expects "
            f"C={w.shape[2]} (shape {w.shape}, layout (KH, KW, C, F))"
        )
    # Cache x, not cols: cols is KH*KW times x's size for every layer of a network, and the
    # backward rebuilds it in one copy (as Caffe does).
    return conv2d_gemm(x, w, window), (x, w, window)


@kernelized  # kernels/cpu/conv.py: the same, a few images at a time
def conv2d_gemm(x, w, window: Window):
    """y (N, OH, OW, F): the convolution proper, once conv2d_forward has checked the shapes."""
    kh, kw, c, f = w.shape
    cols = im2col(x, window)  # (N, OH, OW, KH, KW, C)
    y = cols.reshape(-1, kh * kw * c) @ w.reshape(kh * kw * c, f)  # (N*OH*OW, F)
    return y.reshape(x.shape[0], *window.out, f)


@kernelized(check=check_conv2d_backward)  # kernels/cpu/conv.py: a few images at a time
def conv2d_backward(dy, cache, needs_grad=(True, True)):
    """The forward was y2 = cols @ w2, with cols = im2col(x) as (N*OH*OW, KH*KW*C), w2 = w
    as (KH*KW*C, F), and y2 = y as (N*OH*OW, F); dy2 is dy in that shape. So

        dw = cols^T @ dy2                       (KH*KW*C, F), reshaped to (KH, KW, C, F)
        dx = col2im(dcols), dcols = dy2 @ w2^T  (N*OH*OW, KH*KW*C) -> (N, H, W, C)

    dx is skipped when x needs no gradient (the input batch of a first layer), dw when w
    needs none (a frozen layer).
    """
    x, w, window = cache
    kh, kw, c, f = w.shape
    dy2 = dy.reshape(-1, f)  # (N*OH*OW, F)
    dx = dw = None
    if needs_grad[1]:
        cols = im2col(x, window).reshape(-1, kh * kw * c)
        dw = (cols.T @ dy2).reshape(w.shape)
    if needs_grad[0]:
        # dcols = dy2 @ w2^T as one batched GEMM over the KH*KW offsets, so that it comes out
        # offset-major, (KH*KW, N*OH*OW, C), the layout col2im adds fastest.
        dcols = dy2 @ w.reshape(kh * kw, c, f).transpose(0, 2, 1)
        dx = col2im(dcols.reshape(kh, kw, *dy.shape[:3], c), x.shape, window)
    return dx, dw


conv2d = differentiable(conv2d_forward, conv2d_backward, "conv2d")
