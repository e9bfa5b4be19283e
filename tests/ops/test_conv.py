"""tinydeep/ops/conv.py: conv2d against the loop reference, central differences and PyTorch;
TensorFlow's "same" sizes; the errors, those of arrays that do not fit their geometry
(col2im, im2col, conv2d_backward) on the reference path and with the CPU kernels on."""

from __future__ import annotations

import re

import numpy as np
import pytest
from devices import TORCH_SKIP_REASON
from gradients import check_gradients
from hypothesis import given
from hypothesis import strategies as st
from kernel_settings import PATHS
from reference import conv2d_reference
from strategies import arrays

import tinydeep as td
from tinydeep.ops.conv import (
    col2im,
    conv2d_backward,
    conv2d_forward,
    conv_output_size,
    im2col,
    same_padding,
    window_geometry,
)


def upto(high: int) -> st.SearchStrategy:
    """1..high, drawn evenly (st.integers leans towards the small end)."""
    return st.sampled_from(range(1, high + 1))


# Each form of padding and of strides a quarter or half of the time.
paddings = st.one_of(
    st.just("valid"), st.just("same"), st.integers(0, 2), st.tuples(*[st.integers(0, 2)] * 2)
)
strides = upto(3) | st.tuples(upto(3), upto(3))


@st.composite
def conv_case(draw, max_batch: int, max_side: int, max_channels: int):
    """x (N, H, W, C), w (KH, KW, C, F), strides, padding: kernels 1-3, strides 1-3, padding
    "valid", "same", an int or a pair, and a kernel that fits the padded input."""
    padding = draw(paddings)
    n, c, f = draw(upto(max_batch)), draw(upto(max_channels)), draw(upto(max_channels))
    h, w = draw(upto(max_side)), draw(upto(max_side))
    if padding == "valid":
        pad_h = pad_w = 0
    elif padding == "same":
        pad_h = pad_w = 3  # "same" pads as much as any kernel needs
    else:
        pad_h, pad_w = (padding, padding) if isinstance(padding, int) else padding
    kh, kw = draw(upto(min(3, h + 2 * pad_h))), draw(upto(min(3, w + 2 * pad_w)))
    x = draw(arrays((n, h, w, c)))
    kernel = draw(arrays((kh, kw, c, f)))
    return x, kernel, draw(strides), padding


@given(conv_case(max_batch=3, max_side=7, max_channels=3))
def test_conv2d_matches_the_loop_reference(case):
    x, w, s, padding = case
    y = td.ops.conv2d(x, w, strides=s, padding=padding)
    np.testing.assert_allclose(y.data, conv2d_reference(x, w, s, padding), rtol=1e-12, atol=1e-12)


@given(conv_case(max_batch=2, max_side=5, max_channels=2))
def test_conv2d_gradients(case):
    x, w, s, padding = case
    check_gradients(lambda a, b: td.ops.conv2d(a, b, strides=s, padding=padding), x, w)


@given(conv_case(max_batch=3, max_side=9, max_channels=4))
def test_conv2d_matches_pytorch_forward_and_backward(case):
    torch = pytest.importorskip("torch", reason=TORCH_SKIP_REASON)
    x, w, s, padding = case
    sh, sw = (s, s) if isinstance(s, int) else s
    # NHWC -> NCHW and (KH, KW, C, F) -> (F, C, KH, KW), copied to fresh C-ordered arrays
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    wt = torch.tensor(w.transpose(3, 2, 0, 1).copy(), requires_grad=True)
    if padding == "same":  # PyTorch pads symmetrically; TF's "same" may put one more after
        (top, bottom), (left, right) = (
            same_padding(x.shape[1], w.shape[0], sh),
            same_padding(x.shape[2], w.shape[1], sw),
        )
        yt = torch.nn.functional.conv2d(
            torch.nn.functional.pad(xt, (left, right, top, bottom)), wt, stride=(sh, sw)
        )
    else:
        yt = torch.nn.functional.conv2d(
            xt, wt, stride=(sh, sw), padding=0 if padding == "valid" else padding
        )
    dy = np.random.default_rng(0).standard_normal(yt.shape)  # NCHW
    yt.backward(torch.tensor(dy))

    xd, wd = td.Tensor(x, requires_grad=True), td.Tensor(w, requires_grad=True)
    y = td.ops.conv2d(xd, wd, strides=s, padding=padding)
    y.backward(dy.transpose(0, 2, 3, 1))
    tol = {"rtol": 1e-10, "atol": 1e-10}
    np.testing.assert_allclose(y.data, yt.detach().numpy().transpose(0, 2, 3, 1), **tol)
    np.testing.assert_allclose(xd.grad, xt.grad.numpy().transpose(0, 2, 3, 1), **tol)
    np.testing.assert_allclose(wd.grad, wt.grad.numpy().transpose(2, 3, 1, 0), **tol)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "out", "pads"),
    [
        (5, 3, 2, 3, (1, 1)),
        (6, 3, 2, 3, (0, 1)),  # the odd pad row goes after, as in TensorFlow
        (32, 3, 2, 16, (0, 1)),  # a ResNet downsampling layer
        (5, 3, 1, 5, (1, 1)),
        (4, 2, 1, 4, (0, 1)),
        (7, 1, 3, 3, (0, 0)),
        (2, 5, 1, 2, (2, 2)),  # a kernel larger than the image
    ],
)
def test_same_padding_follows_tensorflow(size, kernel, stride, out, pads):
    assert same_padding(size, kernel, stride) == pads
    assert conv_output_size(size, kernel, stride, "same") == out
    x, w = np.ones((1, size, size, 1)), np.ones((kernel, kernel, 1, 1))
    assert td.ops.conv2d(x, w, strides=stride, padding="same").shape == (1, out, out, 1)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "out"),
    [(5, 3, 2, "valid", 2), (6, 3, 2, "valid", 2), (3, 3, 1, "valid", 1), (5, 3, 2, 1, 3)],
)
def test_output_size_of_valid_and_explicit_padding(size, kernel, stride, padding, out):
    assert conv_output_size(size, kernel, stride, padding) == out


def test_conv2d_keeps_float32():
    x, w = np.ones((2, 4, 4, 3), np.float32), np.ones((3, 3, 3, 5), np.float32)
    assert td.ops.conv2d(x, w, padding="same").dtype == np.float32


def test_conv2d_backward_skips_the_gradients_not_needed():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 5, 5, 3)), rng.standard_normal((3, 3, 3, 4))
    y, cache = conv2d_forward(x, w, padding="same")
    dx, dw = conv2d_backward(np.ones_like(y), cache, needs_grad=(False, True))
    assert dx is None and dw.shape == w.shape
    dx, dw = conv2d_backward(np.ones_like(y), cache, needs_grad=(True, False))
    assert dw is None and dx.shape == x.shape

    # Through the engine: the data batch of a first layer needs no gradient.
    _, dw_both = conv2d_backward(np.ones_like(y), cache)
    weights = td.Tensor(w, requires_grad=True)
    td.ops.conv2d(td.Tensor(x), weights, padding="same").sum().backward()
    np.testing.assert_array_equal(weights.grad, dw_both)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kwargs", "message"),
    [
        (
            (4, 4, 3),
            (3, 3, 3, 2),
            {},
            r"conv2d: x must be 4-D \(N, H, W, C\), got shape \(4, 4, 3\)",
        ),
        (
            (1, 4, 4, 3),
            (3, 3, 3),
            {},
            r"conv2d: w must be 4-D \(KH, KW, C, F\), got shape \(3, 3, 3\)",
        ),
        (
            (1, 4, 4, 3),
            (3, 3, 2, 8),
            {},
            r"conv2d: x has 3 channels \(shape \(1, 4, 4, 3\)\) but w expects C=2",
        ),
        (
            (1, 2, 5, 1),
            (3, 3, 1, 1),
            {},
            (
                r"conv2d: kernel 3x3 is larger than the padded input 2x5 "
                r"\(x shape \(1, 2, 5, 1\), padding 'valid'\)"
            ),
        ),
        (
            (1, 4, 4, 1),
            (3, 3, 1, 1),
            {"padding": "full"},
            r"conv2d: padding must be 'valid', 'same'",
        ),
        ((1, 4, 4, 1), (3, 3, 1, 1), {"padding": -1}, r"conv2d: padding must be an int >= 0 .* -1"),
        ((1, 4, 4, 1), (3, 3, 1, 1), {"strides": 0}, r"conv2d: strides must be an int >= 1 .* 0"),
        (
            (1, 4, 4, 1),
            (3, 3, 1, 1),
            {"strides": (1, 2, 3)},
            r"conv2d: strides must be an int >= 1 or a pair of them, got \(1, 2, 3\)",
        ),
    ],
)
def test_conv2d_errors_name_the_argument(x_shape, w_shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        td.ops.conv2d(np.ones(x_shape), np.ones(w_shape), **kwargs)


# ---- arrays that do not fit their geometry ----------------------------------------------------
# The Numba and CUDA kernels read by the geometry they are told, with no bounds checks, so a
# dcols or dy of the wrong shape would be read out of bounds: each is an error before the
# reference or a kernel runs, the same on both paths.

X_SHAPE = (2, 5, 5, 3)  # N, H, W, C
WINDOW = window_geometry("test", X_SHAPE, (3, 3), (2, 2), "same")  # OH, OW = 3, 3


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "dcols_shape",
    [
        (3, 3, 1, 3, 3, 3),  # one image fewer than x_shape's N = 2
        (3, 3, 2, 3, 3, 4),  # a channel more
        (3, 3, 2, 2, 3, 3),  # an output row fewer
        (2, 3, 3, 3, 3, 3),  # (N, OH, OW, KH, KW, C): im2col's layout, not col2im's
    ],
)
def test_col2im_rejects_dcols_that_do_not_fit_the_geometry(path, dcols_shape):
    dcols = np.ones(dcols_shape)
    message = (
        r"col2im: dcols must have shape \(KH, KW, N, OH, OW, C\) = \(3, 3, 2, 3, 3, 3\), "
        rf"got shape {re.escape(str(dcols_shape))}"
    )
    with PATHS[path](), pytest.raises(ValueError, match=message):
        col2im(dcols, X_SHAPE, WINDOW)
    with PATHS[path]():  # the shape that fits, as a control
        assert col2im(np.ones((3, 3, 2, 3, 3, 3)), X_SHAPE, WINDOW).shape == X_SHAPE


@pytest.mark.parametrize("path", PATHS)
def test_a_window_that_does_not_fit_x_shape_is_an_error(path):
    other = window_geometry("test", (2, 9, 9, 3), (3, 3), (2, 2), "same")  # OH, OW = 5, 5
    fits = r"the window's output 5x5 does not fit x_shape \(2, 5, 5, 3\).* gives 3x3"
    with PATHS[path]():
        with pytest.raises(ValueError, match="col2im: " + fits):
            col2im(np.ones((3, 3, 2, 5, 5, 3)), X_SHAPE, other)
        with pytest.raises(ValueError, match="im2col: " + fits):
            im2col(np.ones(X_SHAPE), other)
        with pytest.raises(ValueError, match=r"col2im: x_shape must be \(N, H, W, C\)"):
            col2im(np.ones((3, 3, 2, 3, 3, 3)), X_SHAPE[1:], WINDOW)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dy_shape", [(2, 3, 3, 5), (1, 3, 3, 4), (2, 3, 4, 4), (2, 9, 4)])
def test_conv2d_backward_rejects_a_dy_that_is_not_the_outputs_shape(path, dy_shape):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(X_SHAPE), rng.standard_normal((3, 3, 3, 4))
    y, cache = conv2d_forward(x, w, strides=2, padding="same")
    message = (
        r"conv2d_backward: dy must have shape \(N, OH, OW, F\) = \(2, 3, 3, 4\), "
        rf"got shape {re.escape(str(dy_shape))}"
    )
    with PATHS[path]():
        with pytest.raises(ValueError, match=message):
            conv2d_backward(np.ones(dy_shape), cache)
        dx, dw = conv2d_backward(np.ones_like(y), cache)  # the shape that fits, as a control
    assert dx.shape == x.shape and dw.shape == w.shape
