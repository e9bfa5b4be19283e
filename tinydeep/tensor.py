"""The Tensor and the reverse-mode autodiff engine.

A Tensor wraps one NumPy or CuPy array (`.data`). An op on Tensors runs a plain array
function, `*_forward(arrays...) -> (out, cache)`, and, when any input needs a gradient,
records a `Node` on the output: the op's name, its input Tensors, its `*_backward(dy, cache)`
and the cache. `backward()` sorts the recorded graph once and walks it in reverse, handing
each node the gradient of its output and adding what it returns into its inputs' gradients.

Read in this order:
  1. Tensor.__init__ and the properties       what a tensor holds
  2. differentiable                           how an op's forward/backward pair joins the graph
  3. Tensor.backward, topological_order       the reverse sweep (iterative, no recursion)
  4. unbroadcast                              the one place where broadcasting is undone
  5. the operator and method wrappers         each one line into tinydeep/ops/

Left out on purpose: higher-order gradients (backward is first-order only: backward functions
run on arrays, not Tensors, so no graph of the backward pass is recorded), in-place ops on
Tensors, and gradients for non-floating dtypes.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from tinydeep import backend, trace
from tinydeep.backend import xp_of
from tinydeep.sparse import RowSparseGrad

_grad_enabled = True


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block ops record no graph: outputs have requires_grad=False."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    """False inside a `no_grad()` block."""
    return _grad_enabled


def _as_array(data, dtype=None):
    """An ndarray from `data`: arrays keep their dtype, Python scalars and lists become float32."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.generic):  # a NumPy scalar is an array of its own dtype
        data = np.asarray(data)
    if not isinstance(data, np.ndarray) and not _is_cupy(data):
        data = np.asarray(data, dtype=np.float32 if dtype is None else dtype)
    if dtype is not None and data.dtype != dtype:
        data = data.astype(dtype)
    return data


def _is_cupy(data) -> bool:
    cp = backend.cupy_module()
    return cp is not None and isinstance(data, cp.ndarray)


# A non-leaf input of at least this many bytes is kept in the graph as its handle (its array
# freed as soon as no op's cache needs it); a smaller one as itself: making a handle costs
# about 1-2 us, more than keeping 64 KiB alive for a step (benchmarks/engine_overhead.py).
HANDLE_MIN_BYTES = 1 << 16


class ArraySpec(NamedTuple):
    """The shape and dtype of an array without the array: what a graph handle keeps of a
    non-leaf input (Tensor.graph_handle), all that backward needs to undo broadcasting."""

    shape: tuple
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)


class Node:
    """How a non-leaf Tensor was made: the op, its inputs, and what its backward needs.

    inputs: the op's input tensors as the graph keeps them: a leaf (a parameter, the data) as
    itself, a non-leaf of HANDLE_MIN_BYTES or more as its `graph_handle()`, which carries its
    Node, shape and dtype but not its array. So an intermediate result (a convolution's
    output, a batch norm's before the ReLU) is freed as soon as no op's cache needs it, not
    kept alive by the graph until backward: as in PyTorch, backward keeps what the ops saved
    and nothing more.

    needs_grad: for a backward that takes a `needs_grad` argument, which inputs require a
    gradient, so that it can skip the others (the data batch of a first layer); else None.
    """

    __slots__ = ("backward", "cache", "inputs", "name", "needs_grad")

    def __init__(
        self,
        name: str,
        inputs: tuple[Tensor, ...],
        backward: Callable,
        cache,
        needs_grad: tuple[bool, ...] | None,
    ):
        self.name = name
        self.inputs = inputs
        self.backward = backward
        self.cache = cache
        self.needs_grad = needs_grad

    def input_grads(self, dy) -> tuple:
        """The op's backward: one gradient (or None) per input."""
        if self.needs_grad is None:
            return self.backward(dy, self.cache)
        return self.backward(dy, self.cache, needs_grad=self.needs_grad)

    def free(self) -> None:
        """Drop the cache and the inputs, so the arrays they hold can be released."""
        self.inputs = None
        self.cache = None


class Tensor:
    """An n-dimensional array on the CPU (NumPy) or a GPU (CuPy) that can record gradients.

    Tensor(data, requires_grad=False, dtype=None). Python scalars and lists become float32;
    NumPy and CuPy arrays keep their dtype and are not copied. Only floating tensors can
    require a gradient.
    """

    __slots__ = (
        "__weakref__",
        "_handle",
        "_node",
        "_owner",
        "_retain_grad",
        "data",
        "grad",
        "requires_grad",
    )
    __array_ufunc__ = None  # numpy_array + tensor calls Tensor.__radd__, not numpy's ufunc

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _as_array(data, dtype)
        self.grad = None  # an array of the same shape, dtype and device, set by backward()
        self._node: Node | None = None  # None for a leaf (a tensor no op made)
        self._retain_grad = False
        self._handle = self._owner = None  # see graph_handle
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_()

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Mark this tensor as needing a gradient (in place); it must be floating point."""
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"Tensor: requires_grad needs a floating-point dtype, got "
                f"{self.data.dtype} (shape {self.data.shape}); convert it first, "
                "e.g. x.astype('float32')"
            )
        self.requires_grad = requires_grad
        return self

    # ---- what a tensor holds ---------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def device(self) -> str:
        """ "cpu" or "cuda": the device is the type of the array."""
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        """True for a tensor that no recorded op produced (inputs and parameters)."""
        return self._node is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        device = "" if self.device == "cpu" else ", device='cuda'"
        body = np.array2string(self.numpy(), separator=", ", prefix="Tensor(")
        return f"Tensor({body}, dtype={self.dtype}{device}{grad})"

    def __bool__(self) -> bool:
        return bool(self.data)

    __hash__ = object.__hash__  # == is elementwise, so hash by identity

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU when on CUDA)."""
        return backend.to_device(self.data, "cpu")

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item: needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """The same data as a new leaf that records no gradient."""
        return Tensor(self.data)

    def retain_grad(self) -> Tensor:
        """Keep this non-leaf tensor's gradient in `.grad` after backward (leaves always do)."""
        self._retain_grad = True
        if self._handle is not None:  # already an op's input: its handle fills our .grad
            self._handle._retain_grad, self._handle._owner = True, self
        return self

    def graph_handle(self) -> Tensor:
        """What an op's Node keeps of this tensor as its input: a leaf, or a tensor whose
        gradient is retained, as itself; any other non-leaf as a stand-in with its Node,
        requires_grad, shape and dtype, whose data is an ArraySpec (backward reads only the
        shape and dtype of an input). One stand-in per tensor, so
        that the gradients of all its uses add up before its own op's backward runs."""
        if self._node is None or self._retain_grad:
            return self
        if self._handle is None:
            handle = Tensor.__new__(Tensor)
            handle.data = ArraySpec(self.data.shape, self.data.dtype)
            handle.grad, handle._node, handle.requires_grad = None, self._node, self.requires_grad
            handle._retain_grad, handle._handle, handle._owner = False, None, None
            self._handle = handle
        return self._handle

    # ---- operators and NumPy-named methods, each one line into tinydeep/ops/ ----------

    # arithmetic, with a Python number taking the tensor's dtype
    def __add__(self, other):
        return ops.add(self, _scalar_like(other, self))

    def __radd__(self, other):
        return ops.add(_scalar_like(other, self), self)

    def __sub__(self, other):
        return ops.subtract(self, _scalar_like(other, self))

    def __rsub__(self, other):
        return ops.subtract(_scalar_like(other, self), self)

    def __mul__(self, other):
        return ops.multiply(self, _scalar_like(other, self))

    def __rmul__(self, other):
        return ops.multiply(_scalar_like(other, self), self)

    def __truediv__(self, other):
        return ops.divide(self, _scalar_like(other, self))

    def __rtruediv__(self, other):
        return ops.divide(_scalar_like(other, self), self)

    def __pow__(self, exponent):
        if isinstance(exponent, (int, float)):
            return ops.power_scalar(self, exponent=exponent)
        return ops.power(self, exponent)

    def __rpow__(self, base):
        return ops.power(_scalar_like(base, self), self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.negative(self)

    def __getitem__(self, index):
        return ops.getitem(self, index=index)

    # comparisons: boolean tensors, no gradient
    def __eq__(self, other):
        return Tensor(self.data == _operand_array(other, self))

    def __ne__(self, other):
        return Tensor(self.data != _operand_array(other, self))

    def __lt__(self, other):
        return Tensor(self.data < _operand_array(other, self))

    def __le__(self, other):
        return Tensor(self.data <= _operand_array(other, self))

    def __gt__(self, other):
        return Tensor(self.data > _operand_array(other, self))

    def __ge__(self, other):
        return Tensor(self.data >= _operand_array(other, self))

    # reductions
    def sum(self, axis=None, keepdims=False):
        return ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return ops.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return ops.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return -ops.max(-self, axis=axis, keepdims=keepdims)

    # shape
    def reshape(self, *shape):
        return ops.reshape(self, shape=shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes):
        return ops.transpose(self, axes=axes[0] if len(axes) == 1 else (axes or None))

    @property
    def T(self):
        return ops.transpose(self, axes=None)

    def flatten(self):
        return ops.reshape(self, shape=(-1,))

    def pad(self, pad_width, constant_values=0.0):
        return ops.pad(self, pad_width=pad_width, constant_values=constant_values)

    # elementwise functions
    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def sqrt(self):
        return ops.sqrt(self)

    def tanh(self):
        return ops.tanh(self)

    def sigmoid(self):
        return ops.sigmoid(self)

    def relu(self):
        return ops.relu(self)

    def abs(self):
        return ops.absolute(self)

    def clip(self, min=None, max=None):
        return ops.clip(self, min=min, max=max)

    def softmax(self, axis=-1):
        return ops.softmax(self, axis=axis)

    def log_softmax(self, axis=-1):
        return ops.log_softmax(self, axis=axis)

    # conversions
    def astype(self, dtype):
        return ops.astype(self, dtype=np.dtype(dtype))

    def to(self, device: str):
        """This tensor on `device` ("cpu" or "cuda"); itself when already there. Gradients
        flow back across the copy."""
        if backend.check_device(device) == self.device:
            return self
        return ops.to_device(self, device=device)

    # DLPack (tinydeep/dlpack.py): torch.from_dlpack(t), np.from_dlpack(t), cupy.from_dlpack(t)
    # wrap this tensor's memory without a copy, through the array's own DLPack capsule. Only
    # the data is shared: the gradient and the graph stay here, even when requires_grad is set.
    def __dlpack__(self, **kwargs):
        """A DLPack capsule of `.data` (the keywords of the protocol: stream, max_version, ...)."""
        return self.data.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        """(DLPack device type, device index): (1, 0) on the CPU, (2, index) on a CUDA GPU."""
        return self.data.__dlpack_device__()

    # ---- backward --------------------------------------------------------------------------

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf), weighted by `grad`, into `.grad` of every leaf that
        requires a gradient.

        grad: the gradient of the final objective with respect to this tensor, same shape;
            optional for a one-element tensor (taken as 1).
        retain_graph: keep the caches so backward can run through this graph again.

        Gradients of a tensor used several times add up. Only first-order gradients are
        computed. `.grad` of leaves accumulates across calls: reset it to None between steps.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require a gradient (no input "
                "of the ops that made it has requires_grad=True)"
            )
        xp = xp_of(self.data)
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward: grad may be omitted only for a one-element "
                    f"tensor; this one has shape {self.shape}"
                )
            grad = xp.ones_like(self.data)
        else:
            grad = _as_array(grad, self.dtype)
            backend.check_same_device("backward", [self.data, grad])
            if grad.shape != self.shape:
                raise ValueError(
                    f"backward: grad has shape {grad.shape}, expected the "
                    f"tensor's shape {self.shape}"
                )

        grads = {id(self): grad}  # id(tensor) -> d(objective)/d(tensor) collected so far
        for tensor in reversed(topological_order(self)):
            dy = grads.pop(id(tensor), None)
            if dy is None:  # no path from self reaches this tensor with a gradient
                continue
            node = tensor._node
            if node is None or tensor._retain_grad:
                # A leaf owns its .grad: copy the first time, since dy may be shared or a view.
                # (A retained tensor's handle fills the tensor's .grad: its _owner.)
                owner = tensor if tensor._owner is None else tensor._owner
                owner.grad = dy.copy() if owner.grad is None else owner.grad + dy
            if node is None:
                continue
            for inp, dx in zip(node.inputs, node.input_grads(dy)):
                if dx is None or not inp.requires_grad:
                    continue
                dx = unbroadcast(dx, inp.data)
                previous = grads.get(id(inp))
                grads[id(inp)] = dx if previous is None else previous + dx  # never in place
            if not retain_graph:
                node.free()


def topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor that `root` depends on and that requires a gradient, each after its inputs.

    Depth-first search with an explicit stack, so a chain of any length works without
    recursion. Raises RuntimeError when a node's graph was freed by an earlier backward.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:  # every input is already in `order`
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        node = tensor._node
        if node is None:
            continue
        if node.inputs is None:
            raise RuntimeError(
                f"backward: the graph through '{node.name}' was freed by an "
                "earlier backward; pass retain_graph=True to the first "
                "backward() to run backward through it twice"
            )
        for inp in node.inputs:
            if inp.requires_grad and id(inp) not in visited:
                stack.append((inp, False))
    return order


def unbroadcast(dx, like):
    """Sum `dx` down to the shape of the array `like` (or ArraySpec) and cast it to its dtype.

    Ops broadcast their inputs and return gradients of the broadcast shape; this is the one
    place that undoes it: summed over the leading axes that broadcasting added, and over the
    axes where `like` had size 1.

    The common case, a bias gradient ((N, H, W, C) -> (C,): the summed axes are the leading
    ones of a C-contiguous float array), is computed as a (M, C) matrix times a vector of M
    ones: BLAS does that several times faster than NumPy's sum over the rows of a matrix
    with few columns.
    """
    if isinstance(dx, RowSparseGrad):  # an embedding's gradient: already the table's shape
        if dx.dtype != like.dtype:
            dx = RowSparseGrad(dx.indices, dx.values.astype(like.dtype), dx.shape)
        return dx
    xp = xp_of(dx)  # `like` may be an ArraySpec, which has no device
    dx = xp.asarray(dx)  # NumPy reductions to 0-d return scalars
    if dx.shape != like.shape:
        extra = dx.ndim - like.ndim
        axes = tuple(range(extra)) + tuple(
            extra + i for i, n in enumerate(like.shape) if n == 1 and dx.shape[extra + i] != 1
        )
        k = len(axes)
        leading = 0 < k < dx.ndim and axes[-1] == k - 1  # axes == (0, 1, ..., k - 1)
        if leading and dx.size and dx.dtype.kind == "f" and dx.flags.c_contiguous:
            rows = dx.reshape(-1, int(np.prod(dx.shape[k:])))  # (M, rest): a view, no copy
            dx = (xp.ones(rows.shape[0], dtype=dx.dtype) @ rows).reshape(like.shape)
        else:
            dx = dx.sum(axis=axes, keepdims=True).reshape(like.shape)
    if dx.dtype != like.dtype:
        dx = dx.astype(like.dtype)
    return dx


def differentiable(forward: Callable, backward: Callable, name: str) -> Callable:
    """Make a Tensor function from an array op: `forward(*arrays, **params) -> (out, cache)`
    and `backward(dy, cache) -> (dx for each array)`.

    Every positional argument of the Tensor function is an input (a Tensor, an array, or a
    Python number or list, which becomes a float32 tensor); keyword arguments are passed to
    `forward` unchanged, so settings must be given by keyword: max_pool2d(x, pool_size=2).
    The output records a Node when gradients are on, the output is floating point and some
    input requires a gradient. A backward that declares a
    `needs_grad` parameter is told which inputs need one, and may return None for the others.
    """
    takes_needs_grad = "needs_grad" in inspect.signature(backward).parameters

    def op(*inputs, **params) -> Tensor:
        # A plain loop, not generator expressions: this runs once per op and its cost shows.
        tensors, arrays, needs_grad = [], [], []
        for x in inputs:
            t = x if isinstance(x, Tensor) else Tensor(x)
            keep = t._node is None or t.data.nbytes < HANDLE_MIN_BYTES  # leaf, or small
            tensors.append(t if keep else t.graph_handle())
            arrays.append(t.data)
            needs_grad.append(t.requires_grad)
        if len(arrays) > 1:
            backend.check_same_device(name, arrays)
        out, cache = forward(*arrays, **params)
        if isinstance(out, np.generic):  # NumPy reductions to 0-d return scalars
            out = np.asarray(out)
        result = Tensor.__new__(Tensor)
        result.data, result.grad, result._retain_grad = out, None, False
        result._handle = result._owner = None
        result.requires_grad = _grad_enabled and True in needs_grad and out.dtype.kind == "f"
        result._node = None
        if result.requires_grad:
            needs = tuple(needs_grad) if takes_needs_grad else None
            result._node = Node(name, tuple(tensors), backward, cache, needs)
        if trace.active is not None:  # a drawing or an export is recording (trace.py)
            trace.active.op(name, inputs, params, result)
        return result

    op.__name__ = op.__qualname__ = name
    op.__doc__ = forward.__doc__
    op.forward, op.backward = forward, backward
    return op


def _scalar_like(value, tensor: Tensor):
    """A Python number combined with a floating tensor takes the tensor's dtype (as in NumPy 2
    and PyTorch), so `x * 2` stays float64 for a float64 x and float32 for a float32 x."""
    if isinstance(value, (int, float)) and tensor.data.dtype.kind == "f":
        return xp_of(tensor.data).asarray(value, dtype=tensor.data.dtype)
    return value


def _operand_array(value, tensor: Tensor):
    """The array of `value` for a comparison with `tensor` (no gradient involved)."""
    value = _scalar_like(value, tensor)
    return value.data if isinstance(value, Tensor) else value


# Tensor's methods call tinydeep/ops/, whose files import `differentiable` from this module;
# so ops is imported last, once everything it needs exists.
from tinydeep import ops
