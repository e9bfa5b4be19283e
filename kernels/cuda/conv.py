"""CUDA kernels for the window copies of convolution and pooling (sources in conv.cu).

replaces tinydeep/ops/conv.py:im2col
replaces tinydeep/ops/conv.py:col2im

The references pad x with cupy.pad and copy a strided view (im2col), and add each kernel
offset's gradient block into a padded buffer that is then cropped (col2im): a padded copy of
the image made and touched each time, and KH*KW separate adds. These kernels never build the
padded copy: im2col writes `pad_value` where a window hangs over the border, one thread per
window and channel copying its KH*KW values; col2im is a gather, one thread per pixel of dx
summing the windows that copied it, in the reference's order, so it is deterministic (no
atomics) and matches the reference bit for bit. The GEMMs around them
(conv2d_forward/backward) stay cupy.matmul, i.e. cuBLAS.

Shapes as in tinydeep/ops/conv.py: x (N, H, W, C), cols (N, OH, OW, KH, KW, C), dcols
offset-major (KH, KW, N, OH, OW, C). `window` is conv.py's Window, read as the plain tuple
((KH, KW), (SH, SW), (OH, OW), ((top, bottom), (left, right))).
Dtypes: float32, float64, int32, int64 (source.C_TYPES); the kernels decline the others
(return NotImplemented, and the CuPy reference runs). The kernels index by the geometry
alone, with no bounds checks: tinydeep/ops/conv.py checks before dispatch that x and dcols
fit the window (check_im2col, check_col2im).
"""

from __future__ import annotations

import cupy
import numpy as np

from . import source

__all__ = ["col2im", "im2col"]


def _kernel(name: str, dtype) -> cupy.RawKernel | None:
    return source.instance(source.module("conv.cu", ("im2col", "col2im")), name, dtype)


def im2col(x: cupy.ndarray, window, pad_value=0.0) -> cupy.ndarray:
    """Every window of x (N, H, W, C), padded with `pad_value`, as cols (N, OH, OW, KH, KW, C),
    a new contiguous array."""
    (kh, kw), (sh, sw), (oh, ow), ((top, _), (left, _)) = window
    kernel = _kernel("im2col", x.dtype)
    if kernel is None:
        return NotImplemented
    x = cupy.ascontiguousarray(x)
    n, h, w, c = x.shape
    cols = cupy.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    pad = x.dtype.type(pad_value)  # in x's dtype, as cupy.pad casts it
    dims = (n, h, w, c, oh, ow, kh, kw, sh, sw, top, left)
    threads = n * oh * ow * c  # one per (image, window, channel): each copies KH*KW values
    source.launch(kernel, threads, (x, cols, pad, *map(np.int32, dims), np.int64(threads)))
    return cols


def col2im(dcols: cupy.ndarray, x_shape: tuple, window) -> cupy.ndarray:
    """The gradient of im2col: dx (x_shape), each window's gradient from dcols
    (KH, KW, N, OH, OW, C) added back where the window was copied from; padding dropped."""
    (kh, kw), (sh, sw), (oh, ow), ((top, _), (left, _)) = window
    kernel = _kernel("col2im", dcols.dtype)
    if kernel is None:
        return NotImplemented
    dcols = cupy.ascontiguousarray(dcols)  # avg pooling passes a broadcast view
    n, h, w, c = x_shape
    dx = cupy.empty((n, h, w, c), dtype=dcols.dtype)
    dims = (n, h, w, c, oh, ow, kh, kw, sh, sw, top, left)
    source.launch(kernel, dx.size, (dcols, dx, *map(np.int32, dims), np.int64(dx.size)))
    return dx
