"""Every CPU kernel that declines an input: it returns NotImplemented, and the op gives the
reference's result, bit for bit (tinydeep/backend.py, kernelized).

One case per kind of input a kernel leaves out (a dtype Numba does not compile, mixed
dtypes, a layout the loops do not read, ids out of range, an empty batch). Each case builds
its arguments twice: once for the dispatcher with kernels on, which must see the kernel
decline (kernel_settings.declined), once for `.reference`; results, and arrays updated in
place, must be equal, or both calls raise the same error.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
from kernel_settings import declined

from tinydeep import optim, sparse
from tinydeep.ops import conv, elementwise, normalization, pool, winograd

# tinydeep.ops.embedding, the module (the package exports the op under the same name)
embedding = importlib.import_module("tinydeep.ops.embedding")

F16, F32, F64 = np.float16, np.float32, np.float64


def ones(shape, dtype=F64):
    """Arrays with varied values: 1 + k / 8 for the k-th element."""
    return (1 + np.arange(int(np.prod(shape))) / 8).reshape(shape).astype(dtype)


WINDOW = conv.window_geometry("conv2d", (2, 4, 4, 3), (3, 3), 1, "same")
DCOLS = (3, 3, 2, 4, 4, 3)  # (KH, KW, N, OH, OW, C) for WINDOW
POOL = conv.window_geometry("max_pool2d", (2, 4, 4, 3), (2, 2), (2, 2), "valid")


def bn_cache(dtype):
    return ones((4, 3), dtype) - 1.5, ones(3, dtype), ones(3, dtype)


def sgd(dtype):
    settings = {"lr": 0.1, "momentum": 0.9, "dampening": 0, "nesterov": True, "weight_decay": 0.1}
    return (ones((2, 3), dtype), ones((2, 3), dtype) - 1, None), settings


CASES = {
    # name: (the kernelized function, a function making (args, kwargs) afresh)
    "relu-integers": (elementwise.relu_forward, lambda: ((np.arange(-2, 3),), {})),
    "relu-backward-broadcast": (
        elementwise.relu_backward,
        lambda: ((ones((2, 3)), np.array([1.0, 0.0, -1.0])), {}),
    ),
    "im2col-float16": (conv.im2col, lambda: ((ones((2, 4, 4, 3), F16), WINDOW), {})),
    "col2im-float16": (conv.col2im, lambda: ((ones(DCOLS, F16), (2, 4, 4, 3), WINDOW), {})),
    "conv2d-mixed-dtypes": (
        conv.conv2d_gemm,
        lambda: ((ones((2, 4, 4, 3), F32), ones((3, 3, 3, 2)), WINDOW), {}),
    ),
    "conv2d-integers": (
        conv.conv2d_gemm,
        lambda: ((np.ones((2, 4, 4, 3), int), np.ones((3, 3, 3, 2), int), WINDOW), {}),
    ),
    "conv2d-backward-mixed-dtypes": (
        conv.conv2d_backward,
        lambda: ((ones((2, 4, 4, 2)), (ones((2, 4, 4, 3), F32), ones((3, 3, 3, 2)), WINDOW)), {}),
    ),
    "winograd-float16": (
        winograd.winograd_conv2d,
        lambda: ((ones((2, 4, 4, 3), F16), ones((3, 3, 3, 2), F16), WINDOW), {}),
    ),
    "winograd-m-3": (  # the reference raises
        winograd.winograd_conv2d,
        lambda: ((ones((2, 4, 4, 3)), ones((3, 3, 3, 2)), WINDOW, 3), {}),
    ),
    "winograd-backward-float16": (
        winograd.winograd_conv2d_backward,
        lambda: (
            (ones((2, 4, 4, 2), F16), (ones((2, 4, 4, 3), F16), ones((3, 3, 3, 2), F16), WINDOW)),
            {},
        ),
    ),
    "max-pool-float16": (pool.max_pool2d_argmax, lambda: ((ones((2, 4, 4, 3), F16), POOL), {})),
    "max-pool-backward-float16": (
        pool.max_pool2d_backward,
        lambda: ((ones((2, 2, 2, 3), F16), (np.zeros((2, 2, 2, 3), int), (2, 4, 4, 3), POOL)), {}),
    ),
    "moments-integers": (normalization.batch_moments, lambda: ((np.arange(12).reshape(4, 3),), {})),
    "moments-float16": (normalization.batch_moments, lambda: ((ones((4, 3), F16),), {})),
    "moments-empty-batch": (normalization.batch_moments, lambda: ((np.zeros((0, 3)),), {})),
    "normalize-float16": (
        normalization.batch_norm_normalize,
        lambda: ((ones((4, 3), F16), *[ones(3, F16)] * 4), {}),
    ),
    "normalize-mixed-dtypes": (
        normalization.batch_norm_normalize,
        lambda: ((ones((4, 3), F32), ones(3), ones(3, F32), ones(3, F32), ones(3)), {}),
    ),
    "bn-backward-float16": (
        normalization.batch_norm_backward,
        lambda: ((ones((4, 3), F16), bn_cache(F16)), {}),
    ),
    "bn-backward-empty-batch": (
        normalization.batch_norm_backward,
        lambda: ((np.zeros((0, 3)), (np.zeros((0, 3)), ones(3), ones(3))), {}),
    ),
    "gather-integer-table": (
        embedding.gather_rows,
        lambda: ((np.arange(6).reshape(3, 2), np.array([2, 0, 2])), {}),
    ),
    "gather-id-out-of-range": (  # the reference raises
        embedding.gather_rows,
        lambda: ((ones((3, 2)), np.array([0, 3])), {}),
    ),
    "gather-sum-of-no-rows": (
        embedding.gather_rows_sum,
        lambda: ((ones((3, 2)), np.zeros((2, 0), int)), {}),
    ),
    "scatter-add-broadcast-values": (
        sparse.scatter_add,
        lambda: ((np.zeros((3, 2)), np.array([2, 0, 2]), np.ones(2)), {}),
    ),
    "coalesce-integers": (
        sparse.coalesce_rows,
        lambda: ((np.array([2, 0, 2]), np.arange(6).reshape(3, 2)), {}),
    ),
    "sgd-float16": (optim.sgd_update, lambda: sgd(F16)),
    "adagrad-float16": (
        optim.adagrad_update,
        lambda: (
            (ones((2, 3), F16), ones((2, 3), F16), np.zeros((2, 3), F16)),
            {"clr": 0.1, "eps": 1e-3, "weight_decay": 0.0},
        ),
    ),
    "adam-float16": (
        optim.adam_update,
        lambda: (
            (ones((2, 3), F16), ones((2, 3), F16), np.zeros((2, 3), F16), np.zeros((2, 3), F16)),
            {
                "step": 1,
                "lr": 0.1,
                "beta1": 0.9,
                "beta2": 0.999,
                "eps": 1e-3,
                "weight_decay": 0.1,
                "decoupled": True,
            },
        ),
    ),
}


def outcome(run):
    """(result, None) or (None, the error's type and message), warnings silenced: an empty
    batch's NaN moments warn in the reference, here on both sides."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return run(), None
        except (ValueError, TypeError, IndexError) as error:
            return None, (type(error), str(error))


def assert_same(mine, theirs):
    """Equal results: arrays of one dtype and equal values (NaN equal to NaN), in the same
    nesting of tuples, anything else equal (None, sizes)."""
    if isinstance(theirs, tuple):
        assert type(mine) is type(theirs) and len(mine) == len(theirs)
        for a, b in zip(mine, theirs):
            assert_same(a, b)
    elif isinstance(theirs, np.ndarray):
        assert isinstance(mine, np.ndarray) and mine.dtype == theirs.dtype
        np.testing.assert_array_equal(mine, theirs)
    else:
        assert mine == theirs


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_declined_input_gets_the_reference_s_result(name):
    function, make = CASES[name]
    args, kwargs = make()
    mine = outcome(lambda: declined(function, *args, **kwargs))
    ref_args, ref_kwargs = make()
    theirs = outcome(lambda: function.reference(*ref_args, **ref_kwargs))
    assert_same(mine[0], theirs[0])
    assert mine[1] == theirs[1]
    assert_same(args, ref_args)  # what the call updated in place
