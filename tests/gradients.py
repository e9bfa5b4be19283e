"""The gradient contract every differentiable op is tested against.

`check_gradients(fn, *arrays)` asserts, for one op on one set of float64 inputs:
  1. backward() matches central differences over the full Jacobian (tinydeep.gradcheck, at
     its float64 tolerances);
  2. neither forward nor backward mutates the inputs or the upstream gradient;
  3. a zero upstream gradient gives exactly zero gradients;
  4. two identical backward passes give bitwise-identical gradients.
An empty output has an empty Jacobian, which gradcheck refuses: there 1 becomes "every
gradient has its input's shape and is zero", the only right answer.
"""

from __future__ import annotations

import numpy as np

import tinydeep as td
from tinydeep.sparse import RowSparseGrad


def _backward(fn, arrays, dy):
    """Gradients of every input for upstream gradient `dy` (copies kept by the caller)."""
    leaves = [td.Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    y = fn(*leaves)
    y.backward(dy)
    grads = [leaf.grad for leaf in leaves if leaf.requires_grad]
    return y, [g.to_dense() if isinstance(g, RowSparseGrad) else g for g in grads]


def check_gradients(fn, *arrays, seed: int = 0, **tolerances):
    """Assert the four properties above for `fn` on float64 `arrays`; returns fn's output.
    `tolerances` (atol, rtol) go to gradcheck; its defaults are float64's."""
    originals = [a.copy() for a in arrays]
    out = fn(*[td.Tensor(a) for a in arrays])
    if out.size:
        assert td.gradcheck(fn, *arrays, **tolerances)

    dy = np.random.default_rng(seed).standard_normal(out.shape)
    dy_copy = dy.copy()
    y, first = _backward(fn, arrays, dy)
    _, second = _backward(fn, arrays, dy)
    for i, (a, original) in enumerate(zip(arrays, originals)):
        np.testing.assert_array_equal(a, original, err_msg=f"input {i} was mutated")
    np.testing.assert_array_equal(dy, dy_copy, err_msg="the upstream gradient was mutated")
    floating = [a for a in arrays if a.dtype.kind == "f"]
    for i, (g1, g2, a) in enumerate(zip(first, second, floating)):
        assert g1.tobytes() == g2.tobytes(), f"input {i}: two backward passes differ"
        assert g1.shape == a.shape and g1.dtype == a.dtype

    _, zeros = _backward(fn, arrays, np.zeros_like(dy))
    for i, g in enumerate(zeros):
        assert not np.any(g), f"input {i}: a zero upstream gradient gave a nonzero gradient"
    if not out.size:  # an empty upstream gradient is a zero one: the gradients are zero
        for i, g in enumerate(first):
            assert not np.any(g), f"input {i}: an empty output gave a nonzero gradient"
    return y


def check_layer_gradients(layer, *arrays, training: bool = False, mode: str = "full", **kw):
    """Gradcheck `layer` in float64 with respect to its inputs and every trainable weight.

    The layer is built on the float64 inputs first (its weights take their dtype), then
    checked; its output must not depend on anything but the inputs and weights.
    """
    layer(*[td.Tensor(a) for a in arrays], training=training)  # build in float64
    params = layer.named_weights(trainable_only=True)
    assert all(p.dtype == np.float64 for p in params.values())
    return td.gradcheck(
        lambda *ts: layer(*ts, training=training), *arrays, params=params, mode=mode, **kw
    )
