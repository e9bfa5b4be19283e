"""kernels/cpu/conv.py: each Numba kernel against the reference it replaces in
tinydeep/ops/conv.py (im2col, col2im, conv2d_gemm, conv2d_backward), and the whole conv2d op
with kernels on against `reference_only()`.

Copies and gathers match exactly, and so does the whole conv2d when the batch fits in one chunk
(the kernels then make the reference's very GEMM calls), but for dx at stride 1, which the
kernel computes as a forward convolution of dy with the kernel turned round: the same sums
in another order, checked to float rounding like the chunked results below. In several chunks the GEMMs run on
fewer rows, which BLAS may round differently, and dw is a sum of the chunks' GEMMs: there each
result is checked to float rounding against the sum of the magnitudes of its terms (for y,
|cols| @ |w2|), the scale rounding errors are relative to.
"""

from __future__ import annotations

import numpy as np
import pytest
import tinydeep_kernels.cpu as kernels
import tinydeep_kernels.cpu.conv as conv_kernels
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from kernel_settings import cores, declined, setting

import tinydeep as td
from tinydeep.backend import reference_only
from tinydeep.ops import conv

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-6, np.float64: 1e-12}


def upto(high: int) -> st.SearchStrategy:
    """1..high, drawn evenly."""
    return st.sampled_from(range(1, high + 1))


paddings = st.one_of(
    st.just("valid"), st.just("same"), st.integers(0, 2), st.tuples(*[st.integers(0, 2)] * 2)
)


@st.composite
def conv_case(draw, dtype, max_batch: int = 3, max_side: int = 7):
    """x (N, H, W, C), w (KH, KW, C, F) of `dtype`, the Window, strides and padding: kernels
    1-3, strides 1-3, every form of padding, C and F 1-4, a kernel that fits the padded input."""
    padding = draw(paddings)
    n, c, f = draw(upto(max_batch)), draw(upto(4)), draw(upto(4))
    h, w = draw(upto(max_side)), draw(upto(max_side))
    if padding == "valid":
        pad_h = pad_w = 0
    elif padding == "same":
        pad_h = pad_w = 1  # "same" pads at least this much for a 3-wide kernel
    else:
        pad_h, pad_w = (padding, padding) if isinstance(padding, int) else padding
    kh, kw = draw(upto(min(3, h + 2 * pad_h))), draw(upto(min(3, w + 2 * pad_w)))
    strides = draw(st.tuples(upto(3), upto(3)))
    window = conv.window_geometry("conv2d", (n, h, w, c), (kh, kw), strides, padding)
    elements = st.floats(-3, 3, width=32)
    x = draw(hnp.arrays(dtype, (n, h, w, c), elements=elements))
    kernel = draw(hnp.arrays(dtype, (kh, kw, c, f), elements=elements))
    return x, kernel, window, strides, padding


def dy_for(x, w, window, seed: int = 0):
    """A random gradient of the conv's output, in x's dtype."""
    shape = (x.shape[0], *window.out, w.shape[3])
    return np.random.default_rng(seed).standard_normal(shape).astype(x.dtype)


@pytest.fixture(autouse=True, scope="module")
def im2col_only():
    """This file checks the im2col path: Winograd, which the kernels take for 3x3 stride-1
    convolutions, is checked in test_cpu_winograd.py."""
    with setting(conv_kernels, "WINOGRAD", False):
        yield


def chunk_bytes(size: int):
    """Inside this block the conv2d kernels take chunks of cols of at most `size` bytes
    (1: one image per chunk)."""
    return setting(conv_kernels, "CHUNK_BYTES", size)


# ---- im2col and col2im: exact -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_im2col_matches_the_reference_exactly(dtype, data):
    x, _, window, _, _ = data.draw(conv_case(dtype))
    expected = conv.im2col.reference(x, window)
    np.testing.assert_array_equal(kernels.im2col(x, window), expected)
    # -inf padding (max pooling) and a non-contiguous x (a reversed channel axis)
    got = kernels.im2col(x[..., ::-1], window, pad_value=-np.inf)
    np.testing.assert_array_equal(got, conv.im2col.reference(x[..., ::-1], window, -np.inf))
    assert got.dtype == dtype and got.flags.c_contiguous


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_col2im_matches_the_reference_exactly(dtype, data):
    x, _, window, _, _ = data.draw(conv_case(dtype))
    (kh, kw), (oh, ow) = window.size, window.out
    shape = (kh, kw, x.shape[0], oh, ow, x.shape[3])
    dcols = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    got = kernels.col2im(dcols, x.shape, window)
    np.testing.assert_array_equal(got, conv.col2im.reference(dcols, x.shape, window))
    assert got.dtype == dtype
    # a broadcast view, as average pooling passes
    share = dcols[0, 0]
    view = np.broadcast_to(share, shape)
    expected = conv.col2im.reference(view, x.shape, window)
    np.testing.assert_array_equal(kernels.col2im(view, x.shape, window), expected)


# ---- conv2d_gemm and conv2d_backward ----------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_conv2d_kernels_match_the_reference_exactly_in_one_chunk(dtype, data):
    x, w, window, _, _ = data.draw(conv_case(dtype))
    y = kernels.conv2d_gemm(x, w, window)
    np.testing.assert_array_equal(y, conv.conv2d_gemm.reference(x, w, window))
    assert y.dtype == dtype
    dy, cache = dy_for(x, w, window), (x, w, window)
    dx, dw = kernels.conv2d_backward(dy, cache)
    dx_ref, dw_ref = conv.conv2d_backward.reference(dy, cache)
    np.testing.assert_array_equal(dw, dw_ref)
    if conv_kernels._transposable(w.shape, window):  # dx by another GEMM: to rounding
        magnitude = conv.conv2d_backward.reference(np.abs(dy), (np.abs(x), np.abs(w), window))[0]
        assert np.all(np.abs(dx - dx_ref) <= RTOL[dtype] * magnitude)
    else:
        np.testing.assert_array_equal(dx, dx_ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("parts", [1, 3])
@given(data=st.data())
def test_conv2d_kernels_in_chunks_of_one_image(dtype, parts, data):
    x, w, window, _, _ = data.draw(conv_case(dtype))
    dy, cache = dy_for(x, w, window), (x, w, window)
    with chunk_bytes(1), cores(parts):
        y = kernels.conv2d_gemm(x, w, window)
        dx, dw = kernels.conv2d_backward(dy, cache)
    dx_ref, dw_ref = conv.conv2d_backward.reference(dy, cache)
    # Each result against the same formula on absolute values: its terms' total magnitude.
    x_abs, w_abs, dy_abs = np.abs(x), np.abs(w), np.abs(dy)
    for got, expected, magnitude in [
        (
            y,
            conv.conv2d_gemm.reference(x, w, window),
            conv.conv2d_gemm.reference(x_abs, w_abs, window),
        ),
        (dx, dx_ref, conv.conv2d_backward.reference(dy_abs, (x_abs, w_abs, window))[0]),
        (dw, dw_ref, conv.conv2d_backward.reference(dy_abs, (x_abs, w_abs, window))[1]),
    ]:
        assert np.all(np.abs(got - expected) <= RTOL[dtype] * magnitude)


def test_conv2d_backward_kernel_skips_the_gradients_not_needed():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 6, 5, 3)), rng.standard_normal((3, 2, 3, 4))
    window = conv.window_geometry("conv2d", x.shape, (3, 2), (2, 1), "same")
    dy, cache = dy_for(x, w, window), (x, w, window)
    dx, dw = kernels.conv2d_backward(dy, cache, needs_grad=(False, True))
    assert dx is None
    np.testing.assert_array_equal(dw, conv.conv2d_backward.reference(dy, cache)[1])
    dx, dw = kernels.conv2d_backward(dy, cache, needs_grad=(True, False))
    assert dw is None
    np.testing.assert_array_equal(dx, conv.conv2d_backward.reference(dy, cache)[0])


def the_kernel(function, *args):
    """The CPU kernel that replaces the kernelized `function`, called on args."""
    return getattr(kernels, function.__name__)(*args)


def test_conv2d_kernels_take_non_contiguous_arrays_and_decline_mixed_dtypes():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5, 7, 4)).astype(np.float32).transpose(0, 2, 1, 3)  # (3, 7, 5, 4)
    w = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)[::-1]
    window = conv.window_geometry("conv2d", x.shape, (3, 3), (1, 2), "same")
    for kernel in (w, w.astype(np.float64)):  # float64 weights: NumPy's promotion, as the ref
        # Mixed dtypes are declined: the op (kernels on) runs the reference instead.
        run = declined if kernel.dtype != x.dtype else the_kernel
        y = run(conv.conv2d_gemm, x, kernel, window)
        expected = conv.conv2d_gemm.reference(x, kernel, window)
        np.testing.assert_array_equal(y, expected)
        assert y.dtype == expected.dtype
        dy = dy_for(x, kernel, window)[:, ::-1]  # a non-contiguous gradient
        got = run(conv.conv2d_backward, dy, (x, kernel, window))
        for a, b in zip(got, conv.conv2d_backward.reference(dy, (x, kernel, window))):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype


def test_conv2d_dw_in_chunks_is_within_float_rounding_at_a_resnet_shape():
    """ResNet-20's 16x16x32 layer at batch 16, in chunks of 2 images:
    dw against float64 is as accurate as the reference's."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 16, 16, 32), dtype=np.float32)
    w = rng.standard_normal((3, 3, 32, 32), dtype=np.float32)
    window = conv.window_geometry("conv2d", x.shape, (3, 3), 1, "same")
    dy = dy_for(x, w, window)
    with chunk_bytes(1 << 20):  # 8 chunks
        dx, dw = kernels.conv2d_backward(dy, (x, w, window))
    dx_ref, dw_ref = conv.conv2d_backward.reference(dy, (x, w, window))
    magnitude = conv.conv2d_backward.reference(np.abs(dy), (np.abs(x), np.abs(w), window))[0]
    assert np.all(np.abs(dx - dx_ref) <= 1e-6 * magnitude)
    cache64 = (x.astype(np.float64), w.astype(np.float64), window)
    dw64 = conv.conv2d_backward.reference(dy.astype(np.float64), cache64)[1]
    scale = np.abs(dw64).max()
    assert np.abs(dw - dw64).max() <= 2 * max(np.abs(dw_ref - dw64).max(), 1e-7 * scale)


# ---- the whole op: kernels on and off ---------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_conv2d_op_is_the_same_with_kernels_and_under_reference_only(dtype, data):
    x, w, window, strides, padding = data.draw(conv_case(dtype))
    dy = dy_for(x, w, window)

    def run():
        xt, wt = td.Tensor(x, requires_grad=True), td.Tensor(w, requires_grad=True)
        y = td.ops.conv2d(xt, wt, strides=strides, padding=padding)
        y.backward(dy)
        return y.data, xt.grad, wt.grad

    with_kernels = run()
    with reference_only():
        reference = run()
    dx_abs = conv.conv2d_backward.reference(np.abs(dy), (np.abs(x), np.abs(w), window))[0]
    for got, expected, magnitude in zip(with_kernels, reference, (None, dx_abs, None)):
        if magnitude is not None and conv_kernels._transposable(w.shape, window):
            # dx at stride 1: the turned-round kernel's GEMM, to rounding (1-4 channels:
            # never Winograd, so y is exact)
            assert np.all(np.abs(got - expected) <= RTOL[dtype] * magnitude)
        else:
            np.testing.assert_array_equal(got, expected)
        assert got.dtype == dtype
