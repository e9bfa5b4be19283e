"""Winograd's F(2x2, 3x3) and F(4x4, 3x3): the reference (tinydeep/ops/winograd.py) against
im2col's conv2d (tinydeep/ops/conv.py), the Numba kernels (kernels/cpu/winograd.py) against
that reference, the conv2d kernels' choice between them and im2col, the whole conv2d op with
the kernels on against its reference, and its gradients in float64.

Tolerance. Winograd sums the same products as im2col in another order, through transforms
that mix every value of an input tile, every weight of a filter and every gradient of an
output tile before the terms cancel back to the result. Its rounding error is therefore a
number of eps relative to the magnitudes inside a tile, not to one output's own terms (a
corner pixel of dx reached by one small weight still carries the error of its tile's sums
with the large ones). The bound is |got - expected| <= NORMWISE[m] * eps * scale, with scale
the largest tile-level magnitude (`tile_scales`): for y, sum over c of (sum of |x| over the
(m + 2) x (m + 2) tile) times (sum of |w| over the 3x3 kernel); for dx the same with dy's
m x m tiles; for dw the sum over tiles of (|x| over the tile) times (|dy| over the tile).

Measured over 2,200 random cases (1-69 channels, 3-13 pixels a side, every padding, float32
and float64; values uniform, log-uniform over six decades, all positive, or all 0.001 but
one 1.0), the reference and the kernels each against im2col: the worst error was 3.9 eps of
that scale for F(2x2) (dw, float32, the 0.001-and-1.0 values) and 32 eps for F(4x4) (dx,
float32, the same values; the kernel's order of sums, 15 eps by the reference's), whose
transforms weigh the values by up to 8 and 1/24 before they cancel. NORMWISE is twice each:
8 and 64. A wrong sign, a dropped term or a misplaced tile (errors of the size of the terms,
10^6 eps and more in float32) fails by orders of magnitude.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

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
TILES = [2, 4]  # m of F(m x m, 3x3)
# Units of eps, relative to the largest tile-level magnitude, per m (module docstring).
NORMWISE = {2: 8, 4: 64}
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


class Scale(NamedTuple):
    """What an error is measured against: the largest tile-level magnitude, and how many
    rounded products one output sums (for the underflow term)."""

    magnitude: float
    terms: int


def tile_scales(x, w, window, dy, m: int = 2) -> tuple[Scale, Scale, Scale]:
    """The scales of y, dx and dw for F(m x m, 3x3) (the module docstring)."""
    n, c, f = x.shape[0], x.shape[3], w.shape[3]
    th, tw = winograd.tile_count(window, m)
    x_tiles = np.abs(winograd.input_tiles(x, window, m)).sum(axis=(3, 4)).reshape(-1, c)
    dy_padded = np.zeros((n, m * th, m * tw, f))
    dy_padded[:, : dy.shape[1], : dy.shape[2]] = np.abs(dy)
    dy_tiles = dy_padded.reshape(n, th, m, tw, m, f).sum(axis=(2, 4)).reshape(-1, f)
    w_sums = np.abs(w).sum(axis=(0, 1)).astype(np.float64)  # (C, F)
    positions = (m + 2) ** 2
    return (
        Scale((x_tiles @ w_sums).max(initial=0), positions * c),
        Scale((dy_tiles @ w_sums.T).max(initial=0), positions * f),
        Scale((x_tiles.T @ dy_tiles).max(initial=0), positions * n * th * tw),
    )


def assert_close(got, expected, scale: Scale, m: int = 2) -> None:
    """|got - expected| <= NORMWISE[m] (eps magnitude + tiny terms), and the same dtype and
    shape. The second term is underflow's: below the normal range a rounding errs by up to
    half the smallest subnormal, `tiny`, whatever the value (hypothesis draws 1e-45)."""
    assert got.dtype == expected.dtype and got.shape == expected.shape
    info = np.finfo(expected.dtype)
    error = np.abs(got - expected).max(initial=0)
    bound = NORMWISE[m] * (info.eps * scale.magnitude + info.smallest_subnormal * scale.terms)
    assert error <= bound, (error, scale)


def im2col_results(x, w, window, dy) -> list[np.ndarray]:
    """[y, dx, dw] by im2col's references."""
    return [
        conv.conv2d_gemm.reference(x, w, window),
        *conv.conv2d_backward.reference(dy, (x, w, window)),
    ]


@contextlib.contextmanager
def every_size_takes(m: int):
    """Inside the block the conv2d kernels take F(m x m, 3x3) for every 3x3 stride-1
    convolution, whatever its channels, size and dtype (m = 2: F(4x4) for none)."""
    everything = m == 4
    with (
        setting(conv_kernels, "F4_MIN_CHANNELS", 1 if everything else 1 << 62),
        setting(conv_kernels, "F4_MIN_SIDE", 1),
        setting(conv_kernels, "F4_DTYPES", (np.float32, np.float64) if everything else ()),
    ):
        yield


# ---- the reference against im2col -------------------------------------------------------------


@pytest.mark.parametrize("m", TILES)
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
@example(data=None)  # the 3x3 image with "valid" padding: a single output pixel
def test_reference_matches_im2col(dtype, m, data):
    if data is None:
        rng = np.random.default_rng(0)
        x, w = rng.uniform(-3, 3, (2, 3, 3, 4)), rng.uniform(-3, 3, (3, 3, 4, 2))
        x, w = x.astype(dtype), w.astype(dtype)
        window = conv.window_geometry("conv2d", x.shape, (3, 3), 1, "valid")
        dy = rng.uniform(-3, 3, (2, 1, 1, 2)).astype(dtype)
    else:
        x, w, window, dy, _ = data.draw(case(dtype))
    y = winograd.winograd_conv2d.reference(x, w, window, m)
    dx, dw = winograd.winograd_conv2d_backward.reference(dy, (x, w, window), m=m)
    scales = tile_scales(x, w, window, dy, m)
    for got, expected, scale in zip((y, dx, dw), im2col_results(x, w, window, dy), scales):
        assert_close(got, expected, scale, m)


@pytest.mark.parametrize("m", TILES)
def test_reference_skips_the_gradients_not_needed(m):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 5, 4, 3)), rng.standard_normal((3, 3, 3, 2))
    window = conv.window_geometry("conv2d", x.shape, (3, 3), 1, "same")
    dy = rng.standard_normal((2, 5, 4, 2))
    backward = winograd.winograd_conv2d_backward.reference
    both = backward(dy, (x, w, window), m=m)
    dx, dw = backward(dy, (x, w, window), (True, False), m)
    assert dw is None and np.array_equal(dx, both[0])
    dx, dw = backward(dy, (x, w, window), (False, True), m)
    assert dx is None and np.array_equal(dw, both[1])


def test_reference_refuses_a_tile_size_it_has_no_transforms_for():
    x, w = np.zeros((1, 4, 4, 1)), np.zeros((3, 3, 1, 1))
    window = conv.window_geometry("conv2d", x.shape, (3, 3), 1, "same")
    with pytest.raises(ValueError, match=r"winograd_conv2d: m must be one of \[2, 4\], got 3"):
        winograd.winograd_conv2d.reference(x, w, window, 3)


# ---- the kernels against the reference ---------------------------------------------------------


@pytest.mark.parametrize("m", TILES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("split", ["whole-batch", "one-image-chunks-3-parts"])
@given(data=st.data())
def test_kernels_match_the_reference(dtype, split, m, data):
    x, w, window, dy, _ = data.draw(case(dtype))
    size, parts = (kernels.CHUNK_BYTES, 1) if split == "whole-batch" else (1, 3)
    with cores(parts), setting(kernels, "CHUNK_BYTES", size):
        y = kernels.winograd_conv2d(x, w, window, m)
        dx, dw = kernels.winograd_conv2d_backward(dy, (x, w, window), m=m)
    references = (
        winograd.winograd_conv2d.reference(x, w, window, m),
        *winograd.winograd_conv2d_backward.reference(dy, (x, w, window), m=m),
    )
    scales = tile_scales(x, w, window, dy, m)
    for got, expected, scale in zip((y, dx, dw), references, scales):
        assert got.flags.c_contiguous
        assert_close(got, expected, scale, m)


@pytest.mark.parametrize("m", TILES)
def test_kernels_give_the_same_bits_every_run(m):
    """Parts on several threads, dw's shares added in batch order: no run-to-run noise."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 8, 8, 32), dtype=np.float32)
    w = rng.standard_normal((3, 3, 32, 32), dtype=np.float32)
    window = conv.window_geometry("conv2d", x.shape, (3, 3), 1, "same")
    dy = rng.standard_normal((6, 8, 8, 32), dtype=np.float32)
    with cores(2), setting(kernels, "CHUNK_BYTES", 1):
        first = kernels.winograd_conv2d_backward(dy, (x, w, window), m=m)
        for _ in range(3):
            again = kernels.winograd_conv2d_backward(dy, (x, w, window), m=m)
            assert all(np.array_equal(a, b) for a, b in zip(first, again))


@pytest.mark.parametrize("m", TILES)
def test_kernels_take_non_contiguous_and_mixed_dtype_arrays(m):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 7, 4)).astype(np.float32).transpose(0, 2, 1, 3)
    w = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)[::-1]
    window = conv.window_geometry("conv2d", x.shape, (3, 3), 1, "same")
    for kernel in (w, w.astype(np.float64)):
        dy = np.ones((3, 7, 5, 2), np.result_type(x, kernel))[:, ::-1]  # non-contiguous too
        got = [kernels.winograd_conv2d(x, kernel, window, m)]
        got += kernels.winograd_conv2d_backward(dy, (x, kernel, window), m=m)
        expected = [winograd.winograd_conv2d.reference(x, kernel, window, m)]
        expected += winograd.winograd_conv2d_backward.reference(dy, (x, kernel, window), m=m)
        for a, b, scale in zip(got, expected, tile_scales(x, kernel, window, dy, m)):
            assert_close(a, b, scale, m)  # and the reference's dtype (NumPy's promotion)


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


@pytest.mark.parametrize(
    "shape, dtype, m",
    [
        ((2, 8, 8, 16), np.float32, 4),  # the smallest F(4x4) takes: 16 channels, 8x8 out
        ((2, 8, 8, 15), np.float32, 2),  # too few channels
        ((2, 7, 8, 16), np.float32, 2),  # too few output rows
        ((2, 8, 8, 16), np.float64, 2),  # float64 keeps the more accurate F(2x2)
    ],
)
def test_conv2d_kernels_take_f4_where_it_is_faster(shape, dtype, m):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((3, 3, shape[3], 4)).astype(dtype)
    window = conv.window_geometry("conv2d", x.shape, (3, 3), 1, "same")
    dy = rng.standard_normal((*shape[:3], 4)).astype(dtype)
    assert conv_kernels._winograd(x, w, window) == m
    assert np.array_equal(
        conv_kernels.conv2d_gemm(x, w, window), kernels.winograd_conv2d(x, w, window, m)
    )
    for a, b in zip(
        conv_kernels.conv2d_backward(dy, (x, w, window)),
        kernels.winograd_conv2d_backward(dy, (x, w, window), m=m),
    ):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("m", TILES)
@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_conv2d_op_with_kernels_is_the_reference_to_rounding(dtype, m, data):
    """The whole conv2d op, kernels on (so Winograd, F(m x m) at any size and dtype here)
    against `reference_only()` (im2col)."""
    x, w, window, dy, padding = data.draw(case(dtype))

    def run():
        xt, wt = td.Tensor(x, requires_grad=True), td.Tensor(w, requires_grad=True)
        y = ops.conv2d(xt, wt, strides=1, padding=padding)
        y.backward(dy)
        return y.data, xt.grad, wt.grad

    with every_size_takes(m):
        with_kernels = run()
    with reference_only():
        reference = run()
    for got, expected, scale in zip(with_kernels, reference, tile_scales(x, w, window, dy, m)):
        assert_close(got, expected, scale, m)


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


@pytest.mark.parametrize("m", TILES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", ["x", "w", "dy"])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_values_give_the_reference_s_result(dtype, where, value, m):
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
    with np.errstate(invalid="ignore"), every_size_takes(m):  # inf - inf and 0 * inf, in both
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
    with np.errstate(invalid="ignore"):
        _, finite = kernels.forward(x, w, window, m)
        assert finite == (where == "dy")  # the forward never sees dy
        *_, finite = kernels.backward(dy, (x, w, window), m=m)
        assert not finite
