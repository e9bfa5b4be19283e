"""tinydeep/tensor.py: the Tensor's contract and the engine's (sorting, accumulation, freeing)."""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest

import tinydeep as td
from tinydeep import backend
from tinydeep.tensor import differentiable

# ---- construction and dtypes ------------------------------------------------------------------


def test_python_scalars_and_lists_become_float32():
    assert td.Tensor(3).dtype == np.float32
    assert td.Tensor(2.5).dtype == np.float32
    assert td.Tensor([[1, 2], [3, 4]]).dtype == np.float32


def test_arrays_keep_their_dtype_and_are_not_copied():
    a = np.arange(6, dtype=np.int64)
    assert td.Tensor(a).data is a
    assert td.Tensor(np.float64(1.5)).dtype == np.float64
    assert td.Tensor(np.ones(2, dtype=np.float16)).dtype == np.float16


def test_a_python_number_takes_the_floating_tensors_dtype():
    for dtype in (np.float32, np.float64):
        x = td.Tensor(np.ones(3, dtype=dtype))
        for y in (x * 2, 2 * x, x + 1.5, 1 - x, x / 3, 3 / x, x**2, 2**x):
            assert y.dtype == dtype


def test_properties_numpy_and_item():
    x = td.Tensor(np.arange(6.0).reshape(2, 3))
    assert (x.shape, x.ndim, x.size, x.device, len(x)) == ((2, 3), 2, 6, "cpu", 2)
    assert isinstance(x.numpy(), np.ndarray)
    assert x[1, 2].item() == 5.0
    with pytest.raises(ValueError, match=r"item: needs a tensor with one element, got shape"):
        x.item()
    assert "requires_grad=True" in repr(td.Tensor([1.0], requires_grad=True))


def test_a_gradient_asked_of_an_integer_tensor_is_a_type_error_naming_the_dtype():
    with pytest.raises(TypeError, match="requires_grad needs a floating-point dtype, got int64"):
        td.Tensor(np.arange(3), requires_grad=True)


def test_comparisons_give_boolean_tensors_without_gradient():
    x = td.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    for y, expected in (
        (x < 2, [1, 0, 0]),
        (x <= 2, [1, 1, 0]),
        (x > 2, [0, 0, 1]),
        (x >= 2, [0, 1, 1]),
        (x == 2, [0, 1, 0]),
        (x != 2, [1, 0, 1]),
    ):
        assert y.dtype == bool and not y.requires_grad
        np.testing.assert_array_equal(y.data, expected)


# ---- backward ---------------------------------------------------------------------------------


def test_a_reused_node_accumulates_its_gradients():
    x = td.Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    h = x * x  # used twice below: a diamond
    y = (h + h.exp() + x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 2 * x.data * np.exp(x.data**2) + 1)


def test_a_ten_thousand_op_chain_backpropagates_without_recursion():
    x = td.Tensor(np.array([0.5]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100)  # a recursive sort would need ~10,000 frames
    try:
        y.sum().backward()
    finally:
        sys.setrecursionlimit(limit)
    np.testing.assert_allclose(x.grad, [1.0001**10_000])


def test_leaf_gradients_accumulate_across_backward_calls_and_can_be_reset():
    x = td.Tensor(np.array([2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0])


def test_the_graph_is_freed_after_backward_unless_retained():
    x = td.Tensor(np.ones(3), requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()  # the retained graph runs again, and is freed now
    np.testing.assert_allclose(x.grad, 4 * np.e * np.ones(3))
    with pytest.raises(RuntimeError, match="graph through 'sum' was freed .* retain_graph=True"):
        y.backward()


def test_freeing_releases_the_intermediate_arrays():
    x = td.Tensor(np.ones(1000), requires_grad=True)
    hidden = x.exp()
    y = (hidden * 2).sum()
    alive = weakref.ref(hidden)
    del hidden
    y.backward()
    gc.collect()
    assert alive() is None, "backward kept an intermediate tensor alive through the graph"


def test_leaf_gradients_never_share_memory_with_each_other_or_the_upstream():
    x = td.Tensor(np.ones((2, 3)), requires_grad=True)
    w = td.Tensor(np.ones(6), requires_grad=True)
    dy = np.ones(6)
    (x.reshape(6) + w).backward(dy)
    assert not np.shares_memory(x.grad, w.grad)
    assert not np.shares_memory(w.grad, dy)


def test_backward_errors_say_what_is_wrong():
    x = td.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(
        ValueError,
        match=r"grad may be omitted only for a one-element tensor; "
        r"this one has shape \(3,\)",
    ):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"grad has shape \(2,\), expected .* \(3,\)"):
        (x * 2).backward(np.ones(2))
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        td.Tensor(np.ones(3)).sum().backward()


def test_inputs_that_do_not_require_grad_get_none_and_non_leaves_keep_none_by_default():
    x = td.Tensor(np.ones(2), requires_grad=True)
    c = td.Tensor(np.ones(2))
    h = x * c
    kept = (x + 1).retain_grad()
    (h * kept).sum().backward()
    assert c.grad is None and h.grad is None
    np.testing.assert_array_equal(kept.grad, [1.0, 1.0])


def test_no_grad_records_nothing_and_restores_on_error():
    x = td.Tensor(np.ones(2), requires_grad=True)
    with td.no_grad():
        y = x * 2
        assert not td.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    with pytest.raises(ZeroDivisionError), td.no_grad():
        raise ZeroDivisionError
    assert td.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = td.Tensor(np.ones(2), requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf


# ---- devices ----------------------------------------------------------------------------------


def test_to_the_current_device_is_the_same_tensor_and_unknown_devices_are_rejected():
    x = td.Tensor([1.0])
    assert x.to("cpu") is x
    with pytest.raises(ValueError, match=r"device must be one of \('cpu', 'cuda'\), got 'tpu'"):
        x.to("tpu")


def test_to_cuda_without_cupy_says_what_is_missing_and_how_to_install_it(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)  # as if `import cupy` had failed
    with pytest.raises(RuntimeError, match=r"needs CuPy, which is not installed: .*pip install"):
        td.Tensor([1.0]).to("cuda")


def test_a_backward_that_asks_is_told_which_inputs_need_a_gradient():
    seen = []

    def backward(dy, cache, needs_grad=(True, True)):
        seen.append(needs_grad)
        return (dy if needs_grad[0] else None), (dy if needs_grad[1] else None)

    plus = differentiable(lambda a, b: (a + b, None), backward, "plus")
    x, c = td.Tensor(np.ones(2), requires_grad=True), td.Tensor(np.ones(2))
    plus(x, c).sum().backward()
    plus(c, x).sum().backward()
    assert seen == [(True, False), (False, True)]
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


# ---- what the graph keeps alive ---------------------------------------------------------------


def test_the_graph_does_not_keep_an_intermediate_array_alive():
    """A non-leaf input is kept as a handle (its Node, shape, dtype), not with its data: an
    intermediate no op cached is freed before backward, and backward still works."""
    x = td.Tensor(np.arange(3.0 * 2**13).reshape(-1, 3), requires_grad=True)  # 192 KiB
    y = x * 3.0  # multiply caches its inputs: x and the scalar, not y
    z = y + 1.0  # add caches nothing of y
    loss = (z * z).sum()  # caches z
    y_data = weakref.ref(y.data)
    del y
    gc.collect()
    assert y_data() is None
    loss.backward()
    np.testing.assert_array_equal(x.grad, 2 * (3 * x.data + 1) * 3)


def test_a_small_intermediate_is_kept_as_itself():
    """Under HANDLE_MIN_BYTES a handle would cost more time than the array costs memory."""
    x = td.Tensor(np.ones(3), requires_grad=True)
    y = x * 2.0
    z = y + 1.0
    assert z._node.inputs[0] is y


def test_a_tensor_used_twice_through_its_handle_gets_both_gradients_once():
    x = td.Tensor(np.linspace(-1, 1, 2**14), requires_grad=True)  # 128 KiB
    y = x * 2.0
    (y * y + y).sum().backward()  # d/dy = 2y + 1, through one handle
    np.testing.assert_array_equal(x.grad, (2 * 2 * x.data + 1) * 2)
    assert y.graph_handle() is y.graph_handle()


def test_retain_grad_after_the_tensor_was_used_still_fills_its_grad():
    x = td.Tensor(np.linspace(-1, 1, 2**14), requires_grad=True)
    y = x * 2.0
    z = (y * y).sum()  # y is an input already: through its handle
    y.retain_grad()
    z.backward()
    np.testing.assert_array_equal(y.grad, 2 * y.data)
    assert y.graph_handle() is y  # from now on the graph keeps y itself
