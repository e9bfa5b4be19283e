"""kernels/cuda: each CUDA kernel against the reference it replaces, both on the GPU.

The reference runs on the same CuPy arrays under `backend.reference_only()`; the kernel is
called straight from `tinydeep_kernels.cuda`. Shapes are hypothesis-drawn and small, in
float32 and float64; then a small CNN's training step on CUDA (kernels on) against the same
step on the CPU. Every test needs a CUDA GPU and is skipped, with the reason, without one;
nothing here imports CuPy or the kernels before a test runs.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from devices import needs_gpu
from hypothesis import given, settings
from hypothesis import strategies as st

import tinydeep as td
from tinydeep import backend, sparse
from tinydeep.ops import conv, elementwise, normalization, pool

# The module, by name: `from tinydeep.ops import embedding` is the op, which shadows it.
embedding_ops = importlib.import_module("tinydeep.ops.embedding")

pytestmark = needs_gpu

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}  # relative; kernels may fuse multiply-adds
FEW = settings(max_examples=25)  # each example compiles nothing new, but launches several kernels


def kernels():
    return importlib.import_module("tinydeep_kernels.cuda")


def gpu(array, dtype=None):
    """`array` as a CuPy array (of `dtype` when given)."""
    array = np.asarray(array) if dtype is None else np.asarray(array, dtype=dtype)
    return backend.require_cuda().asarray(array)


def host(array):
    return backend.to_device(array, "cpu")


def assert_close(kernel_result, reference_result, dtype=np.float64, exact: bool = False):
    got, want = host(kernel_result), host(reference_result)
    assert got.shape == want.shape and got.dtype == want.dtype
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        tol = TOLERANCE[np.dtype(dtype).type]
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def reference(fn, *args, **kwargs):
    with backend.reference_only():
        return fn(*args, **kwargs)


def upto(high: int) -> st.SearchStrategy:
    return st.sampled_from(range(1, high + 1))


@st.composite
def window_case(draw):
    """x (N, H, W, C) float64 values, and a Window of conv.window_geometry: kernel 1-3,
    strides 1-3, padding "valid", "same" or an int, fitting the padded input."""
    n, h, w, c = draw(upto(2)), draw(upto(6)), draw(upto(6)), draw(upto(3))
    padding = draw(st.sampled_from(["valid", "same", 0, 1, 2]))
    grow = 6 if padding == "same" else 2 * (padding if isinstance(padding, int) else 0)
    kh, kw = draw(upto(min(3, h + grow))), draw(upto(min(3, w + grow)))
    strides = (draw(upto(3)), draw(upto(3)))
    window = conv.window_geometry("test", (n, h, w, c), (kh, kw), strides, padding)
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).standard_normal((n, h, w, c))
    return x, window


# ---- conv.cu: im2col, col2im ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(case=window_case(), pad_value=st.sampled_from([0.0, -np.inf, 1.5]))
def test_im2col_is_the_reference_exactly(dtype, case, pad_value):
    x, window = case
    x = gpu(x, dtype)
    assert_close(
        kernels().im2col(x, window, pad_value),
        reference(conv.im2col, x, window, pad_value),
        exact=True,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(case=window_case(), seed=st.integers(0, 2**32 - 1))
def test_col2im_is_the_reference_exactly(dtype, case, seed):
    x, window = case
    (kh, kw), (oh, ow) = window.size, window.out
    n, c = x.shape[0], x.shape[3]
    dcols = np.random.default_rng(seed).standard_normal((kh, kw, n, oh, ow, c))
    dcols = gpu(dcols, dtype)
    # The same additions in the same order: equal bit for bit, not just close.
    assert_close(
        kernels().col2im(dcols, x.shape, window),
        reference(conv.col2im, dcols, x.shape, window),
        exact=True,
    )


def test_col2im_takes_a_broadcast_view_as_avg_pooling_passes():
    cp = backend.require_cuda()
    window = conv.window_geometry("test", (1, 4, 4, 2), (2, 2), (1, 1), "valid")
    share = cp.arange(1 * 3 * 3 * 2, dtype=cp.float32).reshape(1, 3, 3, 2)
    dcols = cp.broadcast_to(share, (2, 2, *share.shape))
    assert_close(
        kernels().col2im(dcols, (1, 4, 4, 2), window),
        reference(conv.col2im, dcols, (1, 4, 4, 2), window),
        exact=True,
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_with_the_kernels_matches_the_reference(dtype):
    rng = np.random.default_rng(0)
    x, w = (
        gpu(rng.standard_normal((2, 7, 6, 3)), dtype),
        gpu(rng.standard_normal((3, 2, 3, 4)), dtype),
    )
    dy = gpu(rng.standard_normal((2, 4, 3, 4)), dtype)
    y, cache = conv.conv2d_forward(x, w, strides=(2, 2), padding="same")  # kernels on
    want_y, want_cache = reference(conv.conv2d_forward, x, w, strides=(2, 2), padding="same")
    assert_close(y, want_y, dtype)
    for got, want in zip(
        conv.conv2d_backward(dy, cache), reference(conv.conv2d_backward, dy, want_cache)
    ):
        assert_close(got, want, dtype)


# ---- pool.cu: max pooling ------------------------------------------------------------------


@st.composite
def pool_case(draw):
    """x (N, H, W, C) with distinct values, or with ties (rounded), pool 1-3, strides 1-3 or
    None, "valid" or "same" padding."""
    padding = draw(st.sampled_from(["valid", "same"]))
    n, h, w, c = draw(upto(2)), draw(upto(6)), draw(upto(6)), draw(upto(3))
    fits = (3, 3) if padding == "same" else (min(3, h), min(3, w))
    pool_size = (draw(upto(fits[0])), draw(upto(fits[1])))
    strides = draw(st.none() | st.tuples(upto(3), upto(3)))
    x = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal((n, h, w, c))
    if draw(st.booleans()):
        x = np.round(x)  # many ties: the first maximum must win, as in the reference
    return x, pool_size, strides, padding


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(case=pool_case(), seed=st.integers(0, 2**32 - 1))
def test_max_pool2d_forward_and_backward_are_the_reference_exactly(dtype, case, seed):
    x, pool_size, strides, padding = case
    x = gpu(x, dtype)
    y, cache = pool.max_pool2d_forward(x, pool_size, strides, padding)  # the CUDA argmax kernel
    want_y, want_cache = reference(pool.max_pool2d_forward, x, pool_size, strides, padding)
    assert_close(y, want_y, exact=True)
    assert_close(cache[0], want_cache[0], exact=True)  # argmax
    assert cache[1:] == want_cache[1:]  # x.shape, Window
    dy = gpu(np.random.default_rng(seed).standard_normal(y.shape), dtype)
    (dx,) = kernels().max_pool2d_backward(dy, cache)
    (want_dx,) = reference(pool.max_pool2d_backward, dy, want_cache)
    assert_close(dx, want_dx, exact=True)


def test_max_pool2d_caches_mix_with_the_references():
    rng = np.random.default_rng(1)
    x = gpu(rng.standard_normal((2, 5, 5, 3)))
    y, cache = pool.max_pool2d_forward(x, (3, 3), (1, 2), "same")  # overlapping windows
    _, want_cache = reference(pool.max_pool2d_forward, x, (3, 3), (1, 2), "same")
    dy = gpu(rng.standard_normal(y.shape))
    want = reference(pool.max_pool2d_backward, dy, want_cache)[0]
    assert_close(reference(pool.max_pool2d_backward, dy, cache)[0], want, exact=True)
    assert_close(kernels().max_pool2d_backward(dy, want_cache)[0], want, exact=True)


# ---- batch normalization -------------------------------------------------------------------


@st.composite
def channels_last(draw):
    """x (M..., C) of rank 2 or 4, values with a large mean beside their spread sometimes."""
    shape = draw(
        st.sampled_from([(draw(upto(9)), draw(upto(4))), (2, draw(upto(3)), 3, draw(upto(4)))])
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.standard_normal(shape) + draw(st.sampled_from([0.0, 100.0]))


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(x=channels_last(), seed=st.integers(0, 2**32 - 1))
def test_batch_norm_forward_backward_and_moments_match_the_reference(dtype, x, seed):
    rng = np.random.default_rng(seed)
    c = x.shape[-1]
    x = gpu(x, dtype)
    gamma, beta = gpu(rng.standard_normal(c), dtype), gpu(rng.standard_normal(c), dtype)
    dy = gpu(rng.standard_normal(x.shape), dtype)
    mean, var = kernels().batch_moments(x)
    want_mean, want_var = reference(normalization.batch_moments, x)
    assert_close(mean, want_mean, dtype)
    assert_close(var, want_var, dtype)

    y, cache = normalization.batch_norm_forward(x, gamma, beta, mean=mean, var=var, epsilon=1e-3)
    want_y, want_cache = reference(
        normalization.batch_norm_forward, x, gamma, beta, mean=mean, var=var, epsilon=1e-3
    )
    assert_close(y, want_y, dtype)
    for got, want in zip(cache, want_cache):  # (x_hat, gamma, inv_std): the same format
        assert_close(got, want, dtype)

    got = kernels().batch_norm_backward(dy, cache)
    want = reference(normalization.batch_norm_backward, dy, want_cache)
    for g, w in zip(got, want):
        assert_close(g, w, dtype)
    # A kernel forward's cache feeds the reference backward, and the other way round.
    for g, w in zip(reference(normalization.batch_norm_backward, dy, cache), want):
        assert_close(g, w, dtype)
    for g, w in zip(kernels().batch_norm_backward(dy, want_cache), want):
        assert_close(g, w, dtype)
    dx, _, _ = kernels().batch_norm_backward(dy, cache, needs_grad=(False, True, True))
    assert dx is None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(70_001, 3), (4_099, 40), (64, 33), (65, 1)])
def test_channel_sums_over_many_rows_match_float64(dtype, shape):
    """Shapes that take the channel sums' second pass (more than 64 rows: several row blocks)
    and more than one block of 32 channels, M not a multiple of anything. Against float64 on
    the host, since the reference's float32 sum has its own rounding: float32 sums of 70k
    terms split into runs of at most 64 are within a few 1e-6 of the exact sum."""
    rng = np.random.default_rng(7)
    x, dy = rng.standard_normal(shape) + 100.0, rng.standard_normal(shape)
    mean, var = kernels().batch_moments(gpu(x, dtype))
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(host(mean), x.mean(axis=0), rtol=tol)
    np.testing.assert_allclose(host(var), x.var(axis=0), rtol=tol)
    x_hat = (x - x.mean(axis=0)) / x.std(axis=0)
    cache = (gpu(x_hat, dtype), gpu(np.ones(shape[1]), dtype), gpu(np.ones(shape[1]), dtype))
    _, dgamma, dbeta = kernels().batch_norm_backward(gpu(dy, dtype), cache)
    scale = np.abs(dy).sum(axis=0) * (np.abs(x_hat).max() if dtype == np.float32 else 1)
    np.testing.assert_allclose(host(dbeta), dy.sum(axis=0), rtol=0, atol=tol * scale.max())
    np.testing.assert_allclose(
        host(dgamma), (dy * x_hat).sum(axis=0), rtol=0, atol=tol * scale.max()
    )


# ---- relu ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(seed=st.integers(0, 2**32 - 1), shape=st.lists(upto(5), min_size=0, max_size=4))
def test_relu_forward_and_backward_are_the_reference_exactly(dtype, seed, shape):
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(shape), 1)  # exact zeros too: the kink gets 0
    x = gpu(x, dtype)
    dy = gpu(rng.standard_normal(shape), dtype)
    y, cache = kernels().relu_forward(x)
    want_y, want_cache = reference(elementwise.relu_forward, x)
    assert_close(y, want_y, exact=True)
    assert_close(cache, want_cache, exact=True)
    assert_close(
        kernels().relu_backward(dy, cache)[0],
        reference(elementwise.relu_backward, dy, want_cache)[0],
        exact=True,
    )


def test_relu_forward_keeps_nan_and_works_on_strided_views():
    x = gpu(np.array([[np.nan, -1.0, 2.0], [0.0, -0.0, 3.0]]))[:, ::2]
    assert_close(
        kernels().relu_forward(x)[0], reference(elementwise.relu_forward, x)[0], exact=True
    )


# ---- embedding and scatter_add -------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@FEW
@given(
    rows=upto(6),
    d=st.sampled_from([0, 1, 3]),
    ids_shape=st.lists(st.sampled_from([0, 1, 2, 3]), min_size=1, max_size=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_embedding_forward_is_the_reference_exactly(dtype, rows, d, ids_shape, seed):
    rng = np.random.default_rng(seed)
    table = gpu(rng.standard_normal((rows, d)), dtype)
    ids = gpu(rng.integers(0, rows, ids_shape))
    y, cache = kernels().embedding_forward(table, ids)
    want_y, want_cache = reference(embedding_ops.embedding_forward, table, ids)
    assert_close(y, want_y, exact=True)
    assert cache[0] is ids and cache[1] == want_cache[1]
    if len(ids_shape) == 2:
        y, _ = kernels().embedding_sum_forward(table, ids)
        want_y, _ = reference(embedding_ops.embedding_sum_forward, table, ids)
        assert_close(y, want_y, dtype)


@pytest.mark.parametrize("bad", [-1, 5])
@pytest.mark.parametrize("op", ["embedding_forward", "embedding_sum_forward"])
def test_embedding_out_of_range_ids_raise_as_in_the_reference(op, bad):
    table = gpu(np.zeros((5, 2)))
    ids = gpu(np.array([[0, bad], [1, 2]]))
    name = op.removesuffix("_forward")
    with pytest.raises(ValueError, match=rf"{name}: id {bad} is out of range .* V=5 rows"):
        getattr(kernels(), op)(table, ids)
    # The dtype is checked before dispatch (tinydeep/ops/embedding.py), for either device.
    with pytest.raises(TypeError, match=f"{name}: ids must be an integer array"):
        getattr(embedding_ops, op)(table, ids.astype(np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_add_adds_up_repeated_rows(dtype):
    rng = np.random.default_rng(3)
    indices = gpu(np.array([0, 3, 0, 2, 3, 3]))
    values = gpu(rng.standard_normal((6, 4)), dtype)
    got, want = gpu(np.zeros((5, 4)), dtype), gpu(np.zeros((5, 4)), dtype)
    kernels().scatter_add(got, indices, values)
    reference(sparse.scatter_add, want, indices, values)
    assert_close(got, want, dtype)  # atomics: the order of the additions may differ


# ---- optimizer updates ---------------------------------------------------------------------

OPTIMIZER_CASES = {
    "sgd": (
        "sgd_update",
        {"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
    ),
    "sgd_decay": (
        "sgd_update",
        {"lr": 0.1, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.01},
    ),
    "momentum": (
        "sgd_update",
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": False, "weight_decay": 0.01},
    ),
    "nesterov": (
        "sgd_update",
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "nesterov": True, "weight_decay": 0.0},
    ),
    "adagrad": ("adagrad_update", {"clr": 0.05, "eps": 1e-10, "weight_decay": 0.0}),
    "adagrad_decay": ("adagrad_update", {"clr": 0.05, "eps": 1e-10, "weight_decay": 0.01}),
    "adam": (
        "adam_update",
        {
            "lr": 1e-3,
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-8,
            "weight_decay": 0.01,
            "decoupled": False,
        },
    ),
    "adamw": (
        "adam_update",
        {
            "lr": 1e-3,
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-8,
            "weight_decay": 0.01,
            "decoupled": True,
        },
    ),
}


def _state(name: str, param):
    """The state arrays after `param` for update function `name` (copies, so two runs can
    start from the same values)."""
    cp = backend.require_cuda()
    if name == "adagrad_update":
        return [cp.full_like(param, 0.1)]
    if name == "adam_update":
        return [cp.zeros_like(param), cp.zeros_like(param)]
    return [None]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(OPTIMIZER_CASES))
def test_optimizer_updates_match_the_reference_over_three_steps(case, dtype):
    name, settings_ = OPTIMIZER_CASES[case]
    rng = np.random.default_rng(4)
    param = gpu(rng.standard_normal((3, 5)), dtype)[:, 1:]  # a strided view, updated in place
    mine, theirs = param.copy(), param.copy()
    mine_state, their_state = _state(name, param), _state(name, param)
    for step in (1, 2, 3):
        grad = gpu(rng.standard_normal(param.shape), dtype)
        extra = {"step": step} if name == "adam_update" else {}
        got = getattr(kernels(), name)(mine, grad, *mine_state, **settings_, **extra)
        ref_fn = getattr(td.optim, name)
        want = reference(ref_fn, theirs, grad, *their_state, **settings_, **extra)
        if name == "sgd_update":  # returns the momentum buffer, kept by the caller
            assert (got is None) == (want is None)
            mine_state, their_state = [got], [want]
        assert_close(mine, theirs, dtype)
        for a, b in zip(mine_state, their_state):
            if a is not None:
                assert_close(a, b, dtype)


def test_optimizer_updates_write_into_the_given_arrays():
    param = gpu(np.ones((2, 3), dtype=np.float32))
    exp_avg, exp_avg_sq = param * 0, param * 0
    pointer = param.data.ptr
    kernels().adam_update(
        param,
        param * 0 + 1,
        exp_avg,
        exp_avg_sq,
        step=1,
        lr=0.1,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0.0,
        decoupled=False,
    )
    assert param.data.ptr == pointer
    np.testing.assert_allclose(host(param), 0.9, rtol=1e-6)  # Adam's first step is lr * sign
    assert float(exp_avg.max()) > 0 and float(exp_avg_sq.max()) > 0


# ---- dispatch and a whole training step ----------------------------------------------------

KERNEL_NAMES = [
    ("tinydeep.ops.conv", "im2col"),
    ("tinydeep.ops.conv", "col2im"),
    ("tinydeep.ops.pool", "max_pool2d_argmax"),
    ("tinydeep.ops.pool", "max_pool2d_backward"),
    ("tinydeep.ops.normalization", "batch_moments"),
    ("tinydeep.ops.normalization", "batch_norm_normalize"),
    ("tinydeep.ops.normalization", "batch_norm_backward"),
    ("tinydeep.ops.elementwise", "relu_forward"),
    ("tinydeep.ops.elementwise", "relu_backward"),
    ("tinydeep.ops.embedding", "embedding_forward"),
    ("tinydeep.sparse", "scatter_add"),
    ("tinydeep.optim", "sgd_update"),
    ("tinydeep.optim", "adagrad_update"),
    ("tinydeep.optim", "adam_update"),
]


@pytest.mark.parametrize(("module", "name"), KERNEL_NAMES)
def test_each_reference_dispatches_to_its_cuda_kernel(module, name):
    function = getattr(importlib.import_module(module), name)
    assert hasattr(function, "reference"), f"{module}.{name} is not @kernelized"
    assert backend.find_kernel(name, "cuda") is getattr(kernels(), name)


def test_dtypes_without_a_kernel_are_declined_and_the_reference_runs():
    """float16 has no instance in the .cu sources, and the channel sums take no integers: the
    kernels return NotImplemented, and each op (kernels on) gives its CuPy reference's result
    (tinydeep/backend.py, kernelized)."""
    x = gpu(np.arange(96).reshape(2, 4, 4, 3) % 7, np.float16)
    window = conv.window_geometry("max_pool2d", x.shape, (2, 2), (2, 2), "valid")
    dcols = gpu(np.ones((2, 2, 2, 2, 2, 3)), np.float16)  # (KH, KW, N, OH, OW, C)
    cases = [
        (conv.im2col, (x, window)),
        (conv.col2im, (dcols, x.shape, window)),
        (pool.max_pool2d_argmax, (x, window)),
        (normalization.batch_moments, (x.reshape(-1, 3),)),
        (normalization.batch_moments, (x.reshape(-1, 3).astype(np.int64),)),
    ]
    for function, args in cases:
        assert getattr(kernels(), function.__name__)(*args) is NotImplemented
        got, want = function(*args), reference(function, *args)
        got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
        for g, w in zip(got, want, strict=True):
            assert_close(g, w, exact=True)


def _small_cnn():
    # No bias before the batch norm, as in a ResNet: the norm subtracts the batch mean, so that
    # bias's gradient is 0 in exact arithmetic and rounding noise (1e-17) on either device;
    # Adam divides it by its own noise-sized second moment plus eps and moves the bias by
    # lr * noise / eps, a different 1e-10 on each device (seen on an H200, 2026-12-01).
    return td.Sequential(
        [
            td.layers.Conv2D(4, 3, padding="same", use_bias=False),
            td.layers.BatchNormalization(),
            td.layers.ReLU(),
            td.layers.MaxPooling2D(2),
            td.layers.Flatten(),
            td.layers.Dense(3),
        ]
    )


@pytest.mark.parametrize("optimizer", [td.optim.SGD, td.optim.Adam])
def test_a_training_step_on_cuda_matches_the_cpu(optimizer):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6, 6, 2))
    labels = rng.integers(0, 3, 4)
    cpu = _small_cnn()
    cpu(td.Tensor(x))  # build the weights (float64, from x)
    gpu_model = copy.deepcopy(cpu).to("cuda")
    results = []
    for model, device in ((cpu, "cpu"), (gpu_model, "cuda")):
        opt = optimizer(model.trainable_weights, lr=0.1)
        for _ in range(2):
            logits = model(td.Tensor(x).to(device), training=True)
            loss = td.losses.cross_entropy(logits, backend.to_device(labels, device))
            opt.zero_grad()
            loss.backward()
            opt.step()
        results.append([host(w.data) for w in model.weights])
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


# ---- the NVRTC compile test compiles what CuPy launches ------------------------------------

# Run in a fresh process with an empty kernel cache, so that CuPy compiles (and hands to its
# cache's `save`) the source of each launch; prints whether the source that
# tests/nvrtc_compile.py generates for the same launch is among them. CuPy prepends its
# headers (#include <cupy/carray.cuh>, ...) when it compiles, in both cases.
FAITHFUL = """
import json, sys
import cupy
from cupy.cuda import compiler
sources = []
store = compiler._kernel_cache_backend
original = store.save
def save(name, payload, source):
    sources.append(source)
    return original(name, payload, source)
store.save = save
import nvrtc_compile as nc
from tinydeep_kernels.cuda import elementwise, optim
elementwise.relu_forward(cupy.arange(-5, 5, dtype=cupy.float32))
p, g = cupy.ones(10, cupy.float32), cupy.ones(10, cupy.float32)
optim.sgd_update(p, g, None, lr=0.1, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0)
cupy.cuda.Device().synchronize()
layout = nc.Layout("contiguous", ndim=1, contiguous=True, offsets_32bit=True)
wanted = {
    "relu_forward": nc.elementwise_source(elementwise._relu, nc.Launch({"T": "float32"}, layout)),
    "sgd_update": nc.elementwise_source(
        optim._sgd, nc.Launch({"T": "float32"}, layout, frozenset({"lr", "weight_decay"}))
    ),
}
print(json.dumps({k: any(s.endswith(w) for s in sources) for k, w in wanted.items()}))
"""


def test_the_compile_test_generates_the_source_cupy_launches(tmp_path):
    """tests/kernels/test_cuda_compile.py compiles sources it builds with CuPy's internals;
    on a GPU, two real launches show that CuPy compiles those very sources. (Run as a script
    on an H200, 2026-12-01: both equal after CuPy's header lines.)"""
    tests = Path(__file__).resolve().parent.parent
    path = os.pathsep.join(filter(None, [str(tests), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "CUPY_CACHE_DIR": str(tmp_path), "PYTHONPATH": path}
    env.pop("CUPY_CACHE_IN_MEMORY", None)
    done = subprocess.run(
        [sys.executable, "-c", FAITHFUL], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "relu_forward": True,
        "sgd_update": True,
    }
