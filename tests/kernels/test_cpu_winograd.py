"""Winograd's F(2x2, 3x3): the reference (tinydeep/ops/winograd.py) against im2col's conv2d
(tinydeep/ops/conv.py), the Numba kernels (kernels/cpu/winograd.py) against that reference,
the conv2d kernels' choice of it (every 3x3 stride-1 convolution), the whole conv2d op with
the kernels on against its reference, and its gradients in float64.

Tolerance. Winograd sums the same products as im2col in another order, through transforms
that mix every value of a 4x4 input tile, every weight of a filter and every gradient of a
2x2 output tile before the terms cancel back to the result. Its rounding error is therefore a
few eps relative to the magnitudes inside a tile, not to one output's own terms (a corner
pixel of dx reached by one small weight still carries the error of its tile's sums with the
large ones). The bound is |got - expected| <= NORMWISE * eps * scale, with scale the largest
tile-level magnitude (`tile_scales`): for y, sum over c of (sum of |x| over the tile) times
(sum of |w| over the 3x3 kernel); for dx the same with dy's 2x2 tiles; for dw the sum over
tiles of (|x| over the tile) times (|dy| over the tile). Over 400 random cases (1-69
channels, every padding, float32 and float64) the worst measured error was 0.93 eps of that
scale (dx, float64; the reference and the kernels against im2col alike); a fresh hypothesis
run then found a worse one, 3.0 eps (y in float64, x and w of 0.001 with one 1.0 each: the
whole op, kernels against im2col, whose own rounding adds to Winograd's). NORMWISE = 4 is
that case with a little room, while a wrong sign, a dropped term or a misplaced tile (errors
of the size of the terms) fails by orders of magnitude.
"""

from __future__ import annotations

import numpy as np
import pytest
import tinydeep_kernels.cpu.conv as conv_kernels
import tinydeep_kernels.cpu.winograd as kernels
from gradients import check_gradients
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from kernel_settings import cores, setting

import tinydeep as td
from tinydeep import ops
from tinydeep.backend import reference_only
from tinydeep.ops import conv, winograd

DTYPES = [np.float32, np.float64]
NORMWISE = 4  # units of eps, relative to the largest tile-level magnitude (module docstring)
paddings = st.one_of(
    st.just("valid"), st.just("same"), st.integers(0, 2), st.tuples(*[st.integers(0, 2)] * 2)
)


@st.composite
def case(draw, dtype, max_channels: int = 9):
    """x (N, H, W, C), w (3, 3, C, F), the Window, a dy for it and the padding: stride 1,
    every padding, odd and even sides (a last tile half outside the output), at least one
    output."""
    padding = draw(paddings)
    pad = {"valid": 0, "same": 1}.get(padding, padding)
    low = 3 - 2 * min(pad) if isinstance(pad, tuple) else 3 - 2 * pad
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, max_channels)), draw(st.integers(1, 5))
    h, w = draw(st.integers(max(1, low), 9)), draw(st.integers(max(1, low), 9))
    window = conv.window_geometry("conv2d", (n, h, w, c), (3, 3), 1, padding)
    values = st.floats(-3, 3, width=32)
    x = draw(hnp.arrays(dtype, (n, h, w, c), elements=values))
    kernel = draw(hnp.arrays(dtype, (3, 3, c, f), elements=values))
    dy = np.random.default_rng(draw(st.integers(0, 99))).uniform(-3, 3, (n, *window.out, f))
    return x, kernel, window, dy.astype(dtype), padding


def tile_scales(x, w, window, dy) -> tuple[float, float, float]:
    """The largest tile-level magnitudes of y, dx and dw (the module docstring)."""
    n, c, f = x.shape[0], x.shape[3], w.shape[3]
    th, tw = winograd.tile_count(window)
    x_tiles = np.abs(winograd.input_tiles(x, window)).sum(axis=(3, 4)).reshape(-1, c)
    dy_padded = np.zeros((n, 2 * th, 2 * tw, f))
    dy_padded[:, : dy.shape[1], : dy.shape[2]] = np.abs(dy)
    dy_tiles = dy_padded.reshape(n, th, 2, tw, 2, f).sum(axis=(2, 4)).reshape(-1, f)
    w_sums = np.abs(w).sum(axis=(0, 1)).astype(np.float64)  # (C, F)
    return (
        (x_tiles @ w_sums).max(initial=0),
        (dy_tiles @ w_sums.T).max(initial=0),
        (x_tiles.T @ dy_tiles).max(initial=0),
    )


def assert_close(got, expected, scale: float) -> None:
    """|got - expected| <= NORMWISE eps scale, and the same dtype and shape."""
    assert got.dtype == expected.dtype and got.shape == expected.shape
    error = np.abs(got - expected).max(initial=0)
    assert error <= NORMWISE * np.finfo(expected.dtype).eps * scale, (error, scale)


def im2col_results(x, w, window, dy) -> list[np.ndarray]:
    """[y, dx, dw] by im2col's references."""
    return [
        conv.conv2d_gemm.reference(x, w, window),
        *conv.conv2d_backward.reference(dy, (x, w, window)),
    ]


# ---- the reference against im2col -------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
@example(data=None)  # the 3x3 image with "valid" padding: a single output pixel
def test_reference_matches_im2col(dtype, data):
    if data is None:
        rng = np.random.default_rng(0)
        x, w = rng.uniform(-3, 3, (2, 3, 3, 4)), rng.uniform(-3, 3, (3, 3, 4, 2))
        x, w = x.astype(dtype), w.astype(dtype)
        window = conv.window_geometry("conv2d", x.shape, (3, 3), 1, "valid")
        dy = rng.uniform(-3, 3, (2, 1, 1, 2)).astype(dtype)
    else:
        x, w, window, dy, _ = data.draw(case(dtype))
    y = winograd.winograd_conv2d.reference(x, w, window)
    dx, dw = winograd.winograd_conv2d_backward.reference(dy, (x, w, window))
    scales = tile_scales(x, w, window, dy)
    for got, expected, scale in zip((y, dx, dw), im2col_results(x, w, window, dy), scales):
        assert_close(got, expected, scale)


def test_reference_skips_the_gradients_not_needed():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 5, 4, 3)), rng.standard_normal((3, 3, 3, 2))
    window = conv.window_geometry("conv2d", x.shape, (3, 3), 1, "same")
    dy = rng.standard_normal((2, 5, 4, 2))
    both = winograd.winograd_conv2d_backward.reference(dy, (x, w, window))
    dx, dw = winograd.winograd_conv2d_backward.reference(dy, (x, w, window), (True, False))
    assert dw is None and np.array_equal(dx, both[0])
    dx, dw = winograd.winograd_conv2d_backward.reference(dy, (x, w, window), (False, True))
    assert dx is None and np.array_equal(dw, both[1])


# ---- the kernels against the reference ---------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("split", ["whole-batch", "one-image-chunks-3-parts"])
@given(data=st.data())
def test_kernels_match_the_reference(dtype, split, data):
    x, w, window, dy, _ = data.draw(case(dtype))
    size, parts = (kernels.CHUNK_BYTES, 1) if split == "whole-batch" else (1, 3)
    with cores(parts), setting(kernels, "CHUNK_BYTES", size):
        y = kernels.winograd_conv2d(x, w, window)
        dx, dw = kernels.winograd_conv2d_backward(dy, (x, w, window))
    references = (
        winograd.winograd_conv2d.reference(x, w, window),
        *winograd.winograd_conv2d_backward.reference(dy, (x, w, window)),
    )
    for got, expected, scale in zip((y, dx, dw), references, tile_scales(x, w, window, dy)):
        assert got.flags.c_contiguous
        assert_close(got, expected, scale)


def test_kernels_give_the_same_bits_every_run():
    """Parts on several threads, dw's shares added in batch order: no run-to-run noise."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 8, 8, 32), dtype=np.float32)
    w = rng.standard_normal((3, 3, 32, 32), dtype=np.float32)
    window = conv.window_geometry("conv2d", x.shape, (3, 3), 1, "same")
    dy = rng.standard_normal((6, 8, 8, 32), dtype=np.float32)
    with cores(2), setting(kernels, "CHUNK_BYTES", 1):
        first = kernels.winograd_conv2d_backward(dy, (x, w, window))
        for _ in range(3):
            again = kernels.winograd_conv2d_backward(dy, (x, w, window))
            assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_kernels_take_non_contiguous_and_mixed_dtype_arrays():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 7, 4)).astype(np.float32).transpose(0, 2, 1, 3)
    w = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)[::-1]
    window = conv.window_geometry("conv2d", x.shape, (3, 3), 1, "same")
    for kernel in (w, w.astype(np.float64)):
        dy = np.ones((3, 7, 5, 2), np.result_type(x, kernel))[:, ::-1]  # non-contiguous too
        got = [kernels.winograd_conv2d(x, kernel, window)]
        got += kernels.winograd_conv2d_backward(dy, (x, kernel, window))
        expected = [winograd.winograd_conv2d.reference(x, kernel, window)]
        expected += winograd.winograd_conv2d_backward.reference(dy, (x, kernel, window))
        for a, b, scale in zip(got, expected, tile_scales(x, kernel, window, dy)):
            assert_close(a, b, scale)  # and the reference's dtype (NumPy's promotion)


# ---- the conv2d kernels' choice, and the gradients ------------------------------------------


def test_conv2d_kernels_take_winograd_for_3x3_stride_1_and_im2col_otherwise():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 6, 5, 3)), rng.standard_normal((3, 3, 3, 4))
    same = conv.window_geometry("conv2d", x.shape, (3, 3), 1, "same")
    dy = rng.standard_normal((2, 6, 5, 4))
    assert np.array_equal(conv_kernels.conv2d_gemm(x, w, same), kernels.winograd_conv2d(x, w, same))
    for a, b in zip(
        conv_kernels.conv2d_backward(dy, (x, w, same)),
        kernels.winograd_conv2d_backward(dy, (x, w, same)),
    ):
        assert np.array_equal(a, b)
    strided = conv.window_geometry("conv2d", x.shape, (3, 3), 2, "same")  # not Winograd's
    np.testing.assert_array_equal(
        conv_kernels.conv2d_gemm(x, w, strided), conv.conv2d_gemm.reference(x, w, strided)
    )
    with setting(conv_kernels, "WINOGRAD", False):
        np.testing.assert_array_equal(
            conv_kernels.conv2d_gemm(x, w, same), conv.conv2d_gemm.reference(x, w, same)
        )


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_conv2d_op_with_kernels_is_the_reference_to_rounding(dtype, data):
    """The whole conv2d op, kernels on (so Winograd) against `reference_only()` (im2col)."""
    x, w, window, dy, padding = data.draw(case(dtype))

    def run():
        xt, wt = td.Tensor(x, requires_grad=True), td.Tensor(w, requires_grad=True)
        y = ops.conv2d(xt, wt, strides=1, padding=padding)
        y.backward(dy)
        return y.data, xt.grad, wt.grad

    with_kernels = run()
    with reference_only():
        reference = run()
    for got, expected, scale in zip(with_kernels, reference, tile_scales(x, w, window, dy)):
        assert_close(got, expected, scale)


@given(data=st.data())
def test_conv2d_gradients_through_winograd_in_float64(data):
    """The whole conv2d op with the kernels on, so its backward is Winograd's, against
    central differences, at gradcheck's tolerances. conv2d is linear in x and in w, so a
    central difference has no truncation error at any step: the step of 1e-3 (gradcheck's
    default is 1e-6) keeps the forward's rounding, which Winograd spreads over a tile
    (1e-14 of values near 100, then divided by twice the step), out of the numeric
    derivative."""
    x, w, _, _, padding = data.draw(case(np.float64, max_channels=4))
    check_gradients(lambda a, b: ops.conv2d(a, b, strides=1, padding=padding), x, w, eps=1e-3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", ["x", "w", "dy"])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_values_give_the_reference_s_result(dtype, where, value):
    """Winograd's transforms subtract an infinity from itself (NaN) where the direct sum keeps
    it: the conv2d kernels see the non-finite value and compute by im2col instead, so the
    result is the reference's, infinities and NaNs in the same places."""
    rng = np.random.default_rng(6)
    arrays = {
        "x": rng.standard_normal((3, 5, 6, 4)).astype(dtype),
        "w": rng.standard_normal((3, 3, 4, 2)).astype(dtype),
        "dy": rng.standard_normal((3, 5, 6, 2)).astype(dtype),
    }
    arrays[where].flat[7] = value
    x, w, dy = arrays["x"], arrays["w"], arrays["dy"]
    window = conv.window_geometry("conv2d", x.shape, (3, 3), 1, "same")
    with np.errstate(invalid="ignore"):  # inf - inf and 0 * inf, in both
        y = conv_kernels.conv2d_gemm(x, w, window)
        dx, dw = conv_kernels.conv2d_backward(dy, (x, w, window))
        expected = [
            conv.conv2d_gemm.reference(x, w, window),
            *conv.conv2d_backward.reference(dy, (x, w, window)),
        ]
    for got, want in zip((y, dx, dw), expected):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
    _, finite = kernels.forward(x, w, window)
    assert finite == (where == "dy")  # the forward never sees dy
