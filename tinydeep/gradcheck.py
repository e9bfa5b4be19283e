"""The public gradient checker: backward() against central differences, in float64.

`gradcheck(fn, *inputs)` runs `fn` on float64 copies of the floating inputs, computes the
gradients with backward(), estimates the same derivatives numerically as
(f(x + eps) - f(x - eps)) / (2 eps), and raises GradcheckError at the worst disagreement.

Two modes, as in PyTorch's gradcheck:
  "full"    the whole Jacobian: one backward per output element, two forwards per input
            element. Exact but O(outputs x inputs): for small shapes.
  "random"  directional derivatives u . J . v along random directions u (outputs) and v
            (inputs): a few backwards and forwards whatever the size. For big inputs.

The default tolerances are float64's, not float32's. The central difference's error has two
parts: truncation, about eps^2 / 6 * |f'''| (1.7e-13 |f'''| at eps = 1e-6), and rounding:
f(x + eps) and f(x - eps) are each off by a few units in the last place, k u |f| with
u = 1.1e-16 after k roundings, and their difference is divided by 2 eps, so the quotient is
off by about k u |f| / eps = k * 1.1e-10 |f|. For the functions of order 1-10 that ops,
layers and small models compute, that is 1e-10 to 1e-9. Over the test suite's gradient
checks (7,342 Jacobians or directional derivatives, CI's examples), the worst disagreement
of a correct backward was 1.3e-9 (a conv2d's), so atol = 1e-8 leaves a factor of eight; the
only larger ones were where the derivative itself is large, 4.7e-8 on a derivative of 699
(x**p), 7e-11 of it, so rtol = 1e-7 leaves a factor of a thousand for the truncation of
steeper functions. PyTorch's defaults (atol 1e-5, rtol 1e-3) suit float32: they let through
a backward off by 0.05%. A function with large outputs (a sum over thousands of elements,
a loss of 1e3) rounds at that scale: give it a larger atol.

An empty Jacobian (every output, or every checked input, has no elements) compares nothing,
so it is an error, not a pass. (A backward that returns a gradient of the wrong shape is
caught before this, by the engine's un-broadcasting.)

Read `gradcheck` first; the two modes follow. Left out: complex numbers, second derivatives.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinydeep.backend import xp_of
from tinydeep.sparse import RowSparseGrad
from tinydeep.tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """backward() and central differences disagree beyond the tolerance."""


def gradcheck(
    fn: Callable,
    *inputs,
    eps: float = 1e-6,
    atol: float = 1e-8,
    rtol: float = 1e-7,
    mode: str = "full",
    params=None,
    directions: int = 3,
    seed: int = 0,
) -> bool:
    """Check the gradients of `fn(*inputs)` against central differences; True when they agree.

    fn: returns a Tensor or a tuple/list of Tensors (any shapes).
    inputs: Tensors or arrays with a floating dtype are checked, as float64 copies that
        require a gradient; anything else (integer tensors, Python values) is passed unchanged.
    params: more tensors to check in place, e.g. a layer's parameters: a list, or a dict of
        name -> Tensor. They must already be float64 (build the layer on float64 input) and
        are restored bitwise afterwards.
    eps: the step of the central differences. atol, rtol: an element passes when
        |analytic - numeric| <= atol + rtol * |numeric|; the defaults are what float64
        central differences allow (the module docstring says why).
    mode: "full" compares the whole Jacobian; "random" compares `directions` random
        directional derivatives per checked tensor.

    Raises GradcheckError naming the input, the worst element, and both values, and when
    there is nothing to compare (an empty Jacobian).
    `fn` must be deterministic (no dropout) for the check to mean anything.
    """
    if mode not in ("full", "random"):
        raise ValueError(f"gradcheck: mode must be 'full' or 'random', got {mode!r}")
    args = [_checked_copy(x) for x in inputs]
    checked = [
        (f"input {i}", a) for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad
    ]
    checked += _named_params(params)
    if not checked:
        raise ValueError("gradcheck: no floating-point input or parameter to check")

    saved = [(t, t.grad) for _, t in checked]
    try:
        if mode == "full":
            _check_full(fn, args, checked, eps, atol, rtol)
        else:
            _check_random(fn, args, checked, eps, atol, rtol, directions, seed)
    finally:
        for t, grad in saved:  # leave parameters' gradients as they were
            t.grad = grad
    return True


def _checked_copy(x):
    """A float64 leaf copy of a floating Tensor or array; anything else unchanged."""
    data = x.data if isinstance(x, Tensor) else x
    if hasattr(data, "dtype") and data.dtype.kind == "f":
        return Tensor(data.astype(np.float64, copy=True), requires_grad=True)
    return x


def _named_params(params) -> list[tuple[str, Tensor]]:
    if params is None:
        return []
    items = params.items() if isinstance(params, dict) else enumerate(params)
    named = [(f"parameter {name}", p) for name, p in items]
    for name, p in named:
        if p.dtype != np.float64:
            raise ValueError(
                f"gradcheck: {name} has dtype {p.dtype}, expected float64; "
                "build the layer or model on float64 inputs first"
            )
        p.requires_grad_()
    return named


def _outputs(fn, args) -> list[Tensor]:
    out = fn(*args)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: fn must return Tensors, output {k} is {type(o).__name__}")
    return outs


def _flat_outputs(fn, args):
    """All outputs of fn, evaluated without a graph, as one flat float64 vector."""
    with no_grad():
        outs = _outputs(fn, args)
    xp = xp_of(outs[0].data)
    return xp.concatenate([o.data.astype(np.float64).ravel() for o in outs])


def _gradients(outs, upstream, checked):
    """Backward of every output with its upstream gradient; the checked tensors' gradients
    (zeros where no path reaches a tensor)."""
    for _, t in checked:
        t.grad = None
    for o, dy in zip(outs, upstream):
        if o.requires_grad:
            o.backward(dy, retain_graph=True)
    grads = []
    for _, t in checked:
        if t.grad is None:  # no path from the outputs reaches t
            grads.append(xp_of(t.data).zeros_like(t.data))
        elif isinstance(t.grad, RowSparseGrad):
            grads.append(t.grad.to_dense())
        else:
            grads.append(t.grad)
    return grads


def _check_not_empty(outs, checked) -> None:
    """An empty Jacobian compares nothing: refuse it rather than pass it."""
    if sum(o.size for o in outs) == 0:
        shapes = ", ".join(str(o.shape) for o in outs)
        raise GradcheckError(
            f"gradcheck: nothing to compare: every output is empty (shape {shapes}); "
            "test an empty case by its gradients' shapes and zeros instead"
        )
    if all(t.size == 0 for _, t in checked):
        shapes = ", ".join(f"{name} {t.shape}" for name, t in checked)
        raise GradcheckError(
            f"gradcheck: nothing to compare: every checked tensor is empty ({shapes})"
        )


def _check_full(fn, args, checked, eps, atol, rtol):
    outs = _outputs(fn, args)
    _check_not_empty(outs, checked)
    xp = xp_of(outs[0].data)
    sizes = [o.size for o in outs]
    n_out = sum(sizes)

    # analytic Jacobian, one row per output element: J[j] = d out_j / d input
    analytic = [xp.zeros((n_out, t.size)) for _, t in checked]
    row = 0
    for k, o in enumerate(outs):
        for p in range(o.size):
            upstream = [xp.zeros(q.shape, dtype=q.dtype) for q in outs]
            upstream[k].reshape(-1)[p] = 1
            for J, g in zip(analytic, _gradients(outs, upstream, checked)):
                J[row] = g.ravel()
            row += 1

    # numeric Jacobian, one column per input element
    for (name, t), J in zip(checked, analytic):
        numeric = xp.zeros_like(J)
        flat = t.data.reshape(-1)  # a view: writing it perturbs t
        for i in range(t.size):
            original = flat[i].copy()
            flat[i] = original + eps
            plus = _flat_outputs(fn, args)
            flat[i] = original - eps
            minus = _flat_outputs(fn, args)
            flat[i] = original
            numeric[:, i] = (plus - minus) / (2 * eps)
        excess = xp.abs(J - numeric) - (atol + rtol * xp.abs(numeric))
        if J.size and float(excess.max()) > 0:  # J.size is 0 for an empty input
            j, i = np.unravel_index(int(excess.argmax()), J.shape)
            k = int(np.searchsorted(np.cumsum(sizes), j, side="right"))
            p = j - sum(sizes[:k])
            raise GradcheckError(
                f"gradcheck: the gradient of {name} (shape {t.shape}) disagrees with central "
                f"differences at {name} element {_position(i, t.shape)}, output {k} "
                f"element {_position(p, outs[k].shape)}: analytic {float(J[j, i]):.6g}, "
                f"numeric {float(numeric[j, i]):.6g} (atol {atol}, rtol {rtol}, eps {eps})"
            )


def _position(flat_index: int, shape: tuple) -> tuple[int, ...]:
    """The index tuple of element `flat_index` of an array of `shape`, as plain ints."""
    return tuple(int(i) for i in np.unravel_index(flat_index, shape))


def _check_random(fn, args, checked, eps, atol, rtol, directions, seed):
    rng = np.random.default_rng(seed)
    outs = _outputs(fn, args)
    _check_not_empty(outs, checked)
    xp = xp_of(outs[0].data)
    for d in range(directions):
        upstream = [xp.asarray(rng.standard_normal(o.shape)) for o in outs]
        u = xp.concatenate([w.ravel() for w in upstream])
        grads = _gradients(outs, upstream, checked)
        for (name, t), g in zip(checked, grads):
            v = xp.asarray(rng.standard_normal(t.shape))
            analytic = float((g * v).sum())  # u . J . v
            original = t.data.copy()
            t.data[...] = original + eps * v
            plus = _flat_outputs(fn, args)
            t.data[...] = original - eps * v
            minus = _flat_outputs(fn, args)
            t.data[...] = original
            numeric = float(u @ (plus - minus)) / (2 * eps)
            if abs(analytic - numeric) > atol + rtol * abs(numeric):
                raise GradcheckError(
                    f"gradcheck: the gradient of {name} (shape {t.shape}) disagrees with central "
                    f"differences along random direction {d} (seed {seed}): analytic u.J.v "
                    f"{analytic:.6g}, numeric {numeric:.6g} (atol {atol}, rtol {rtol}, eps {eps})"
                )
