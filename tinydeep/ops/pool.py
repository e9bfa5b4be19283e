"""2-D max and average pooling of NHWC images, through the windows of conv.py's im2col.

Shapes (NHWC): x is (N, H, W, C); the window is KH x KW (`pool_size`), the strides SH x SW
(`strides`, the window size when None, as in Keras); y is (N, OH, OW, C). Each channel is
pooled on its own.

Both ops copy the windows out with im2col, (N, OH, OW, KH, KW, C), reduce over the window
axes, and send the gradient back with col2im; only what each window's gradient is differs.
Padding is "valid" (none) or "same" (TensorFlow's rule, see conv.same_padding), and padded
positions never count: max pooling pads with -inf, average pooling divides by the number of
real pixels in each window (as TensorFlow does, unlike PyTorch's default).

Read max_pool2d first (its forward checks the settings, then max_pool2d_argmax finds the
maxima; its backward's arguments, which come from a cache, are checked before the reference
or a kernel reads them, in tinydeep/ops/checks.py), then avg_pool2d.
"""

from __future__ import annotations

from tinydeep.backend import kernelized, xp_of
from tinydeep.ops.checks import check_avg_pool2d_backward, check_max_pool2d_backward
from tinydeep.ops.conv import Window, col2im, im2col, window_geometry
from tinydeep.tensor import differentiable


def _pool_window(op: str, x, pool_size, strides, padding):
    """The Window of a pooling op; strides default to the pool size, padding is a string."""
    if padding not in ("valid", "same"):  # an explicit pad could make windows of padding only
        raise ValueError(f"{op}: padding must be 'valid' or 'same', got {padding!r}")
    strides = pool_size if strides is None else strides
    return window_geometry(op, x.shape, pool_size, strides, padding, size_name="pool_size")


def max_pool2d_forward(x, pool_size=(2, 2), strides=None, padding="valid"):
    """y (N, OH, OW, C): the largest element of each KH x KW window of x (N, H, W, C)."""
    window = _pool_window("max_pool2d", x, pool_size, strides, padding)
    y, argmax = max_pool2d_argmax(x, window)
    return y, (argmax, x.shape, window)


@kernelized  # kernels/cpu/pool.py: the same without the copy of the windows
def max_pool2d_argmax(x, window: Window):
    """y (N, OH, OW, C), the maximum of each window, and argmax (N, OH, OW, C), where it is."""
    xp = xp_of(x)
    lowest = -xp.inf if x.dtype.kind == "f" else xp.iinfo(x.dtype).min  # never a maximum
    n, (kh, kw), (oh, ow), c = x.shape[0], window.size, window.out, x.shape[3]
    windows = im2col(x, window, pad_value=lowest).reshape(n, oh, ow, kh * kw, c)
    # argmax returns the first maximum in row-major window order: ties go to it, as in
    # TensorFlow and PyTorch.
    argmax = windows.argmax(axis=3)  # (N, OH, OW, C), in [0, KH*KW)
    y = xp.take_along_axis(windows, argmax[:, :, :, None], axis=3)[:, :, :, 0]
    return y, argmax


@kernelized(check=check_max_pool2d_backward)  # kernels/cpu/pool.py: a gather, no one-hot
def max_pool2d_backward(dy, cache):
    """dx = dy routed to the position of each window's maximum (the first one if several are
    equal), summed where windows overlap; 0 elsewhere."""
    argmax, x_shape, window = cache
    kh, kw = window.size
    offsets = xp_of(dy).arange(kh * kw).reshape(kh, kw, 1, 1, 1, 1)
    dcols = (argmax == offsets) * dy  # (KH, KW, N, OH, OW, C): dy at the argmax, else 0
    return (col2im(dcols, x_shape, window),)


def avg_pool2d_forward(x, pool_size=(2, 2), strides=None, padding="valid"):
    """y (N, OH, OW, C): the mean of each KH x KW window of x (N, H, W, C), over the real
    pixels only where the window overlaps "same" padding."""
    window = _pool_window("avg_pool2d", x, pool_size, strides, padding)
    xp = xp_of(x)
    windows = im2col(x, window)  # zeros in the padding add nothing to the sums
    # Real pixels per window: the same windows over an image of ones. (1, OH, OW, 1)
    ones = xp.ones((1, *x.shape[1:3], 1), dtype=x.dtype)
    counts = im2col(ones, window).sum(axis=(3, 4))
    return windows.sum(axis=(3, 4)) / counts, (counts, x.shape, window)


def avg_pool2d_backward(dy, cache):
    """dx = dy / count spread evenly over each window's real pixels, summed where windows
    overlap."""
    counts, x_shape, window = cache
    check_avg_pool2d_backward(dy, cache)
    share = dy / counts  # (N, OH, OW, C): what each pixel of a window gets
    dcols = xp_of(dy).broadcast_to(share, (*window.size, *share.shape))  # no copy
    return (col2im(dcols, x_shape, window),)


max_pool2d = differentiable(max_pool2d_forward, max_pool2d_backward, "max_pool2d")
avg_pool2d = differentiable(avg_pool2d_forward, avg_pool2d_backward, "avg_pool2d")
