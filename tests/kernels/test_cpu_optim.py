"""kernels/cpu/optim.py against tinydeep/optim.py: ten steps of each update rule.

SGD (plain, momentum, dampening, Nesterov, weight decay), AdaGrad and Adam / AdamW, float32
and float64, on hypothesis-drawn shapes; the momentum buffer the first step creates; a
non-contiguous parameter.
"""

from __future__ import annotations

import numpy as np
import pytest
import tinydeep_kernels.cpu.optim as kernels
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinydeep import optim

RTOL = {np.float32: 1e-6, np.float64: 1e-12}
SGD_SETTINGS = [
    {"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
    {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
    {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "nesterov": False, "weight_decay": 1e-2},
    {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "nesterov": True, "weight_decay": 5e-4},
    {"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 1e-2},
]


@st.composite
def param_and_grads(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=7))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    param = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(10)]
    return param, grads


def close(mine, theirs):
    np.testing.assert_allclose(mine, theirs, rtol=RTOL[theirs.dtype.type], atol=0)


@settings(max_examples=20)
@given(param_and_grads(), st.sampled_from(SGD_SETTINGS))
def test_sgd_matches_the_reference_over_ten_steps(case, options):
    param, grads = case
    mine, theirs, buf, ref_buf = param.copy(), param.copy(), None, None
    for g in grads:
        buf = kernels.sgd_update(mine, g, buf, **options)
        ref_buf = optim.sgd_update.reference(theirs, g, ref_buf, **options)
        close(mine, theirs)
        assert (buf is None) == (ref_buf is None)
        if buf is not None:
            close(buf, ref_buf)


def test_the_first_momentum_step_makes_a_new_buffer_from_the_gradient():
    param, grad = np.ones(3, np.float32), np.array([1.0, 2.0, 3.0], np.float32)
    buf = kernels.sgd_update(
        param, grad, None, lr=0.1, momentum=0.9, dampening=0.5, nesterov=False, weight_decay=0.5
    )
    assert buf is not grad and buf.dtype == np.float32
    np.testing.assert_array_equal(buf, grad + 0.5)  # g = grad + weight_decay * param, undamped
    np.testing.assert_array_equal(grad, [1, 2, 3])  # the gradient is not touched
    np.testing.assert_allclose(param, 1 - 0.1 * (grad + 0.5))


@settings(max_examples=20)
@given(param_and_grads(), st.sampled_from([0.0, 1e-2]))
def test_adagrad_matches_the_reference_over_ten_steps(case, weight_decay):
    param, grads = case
    mine, theirs = param.copy(), param.copy()
    sum_sq, ref_sum_sq = np.full_like(param, 0.1), np.full_like(param, 0.1)
    for step, g in enumerate(grads):
        clr = 0.1 / (1 + step * 0.01)
        kernels.adagrad_update(mine, g, sum_sq, clr=clr, eps=1e-10, weight_decay=weight_decay)
        optim.adagrad_update.reference(
            theirs, g, ref_sum_sq, clr=clr, eps=1e-10, weight_decay=weight_decay
        )
        close(mine, theirs)
        close(sum_sq, ref_sum_sq)


@settings(max_examples=20)
@given(param_and_grads(), st.sampled_from([(0.0, False), (1e-2, False), (1e-2, True)]))
def test_adam_matches_the_reference_over_ten_steps(case, decay):
    param, grads = case
    weight_decay, decoupled = decay
    mine, theirs = param.copy(), param.copy()
    moments = [np.zeros_like(param) for _ in range(4)]
    options = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": weight_decay}
    for step, g in enumerate(grads, start=1):
        kernels.adam_update(mine, g, *moments[:2], step=step, decoupled=decoupled, **options)
        optim.adam_update.reference(
            theirs, g, *moments[2:], step=step, decoupled=decoupled, **options
        )
        close(mine, theirs)
        close(moments[0], moments[2])
        close(moments[1], moments[3])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_contiguous_parameters_and_gradients_are_updated_in_place(dtype):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((6, 8)).astype(dtype)
    mine, theirs = base.copy(), base.copy()
    grad = rng.standard_normal((8, 3)).astype(dtype).T  # (3, 8), transposed
    exp_avg, exp_avg_sq = np.zeros((3, 8), dtype)[:, ::-1], np.zeros((3, 8), dtype)
    options = {
        "step": 1,
        "lr": 1e-2,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "weight_decay": 0.1,
    }
    kernels.adam_update(mine[::2], grad, exp_avg, exp_avg_sq, decoupled=True, **options)
    optim.adam_update.reference(
        theirs[::2], grad, np.zeros((3, 8), dtype), np.zeros((3, 8), dtype), decoupled=True,
        **options,
    )  # fmt: skip
    close(mine, theirs)
    assert np.any(exp_avg != 0)
