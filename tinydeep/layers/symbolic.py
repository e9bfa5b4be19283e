"""Symbolic tensors: what a layer returns when it is called on `keras.Input`s instead of data.

Keras's functional API writes a model as the graph of its layer calls:

    inputs = Input(shape=(5,))                 # a KerasTensor: shape (None, 5), no values
    hidden = Dense(30, activation="relu")(inputs)

A KerasTensor has a shape (None for the batch axis), a dtype and the Node that made it. A layer
called on KerasTensors (`Layer.__call__` sends it here, to `call_symbolic`) computes nothing
the user sees: it records a Node (this layer, on these inputs) and returns KerasTensors for its
outputs. Their shapes come from running the layer once on a placeholder batch of one example
of zeros, under no_grad and with training=False. That run also builds the layer, as Keras
builds a layer called on symbolic inputs, so a wrong wiring (a Dense layer given the wrong
number of features) fails at that line, naming the layer and the symbolic shapes.

tinydeep/layers/functional.py turns the recorded graph into a Model. Read KerasTensor, Node,
then call_symbolic. Left out: dimensions other than the batch that are None (the placeholder
needs whole sizes), masks, and KerasTensor methods beyond the arithmetic operators.
"""

from __future__ import annotations

import operator

import numpy as np

from tinydeep.tensor import Tensor, no_grad


class KerasTensor:
    """A symbolic tensor: `shape` (the batch axis None), `dtype`, and `node`, the layer call
    that made it (its `index`-th output). `name` is the Input's, or the layer's."""

    def __init__(self, shape: tuple, dtype, node: Node | None = None, index: int = 0, name=None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def placeholder(self) -> Tensor:
        """Zeros of this shape with a batch of one: what call_symbolic runs a layer on (zero
        is a valid value for ids too)."""
        return Tensor(np.zeros((1, *self.shape[1:]), self.dtype))

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name!r}>"

    # Arithmetic between KerasTensors (and numbers) records a Lambda layer, as Keras records
    # an operation: `inputs + x` in a residual connection works in the functional API too.
    def __add__(self, other):
        return _operation(operator.add, "add", self, other)

    def __radd__(self, other):
        return _operation(operator.add, "add", other, self)

    def __sub__(self, other):
        return _operation(operator.sub, "subtract", self, other)

    def __rsub__(self, other):
        return _operation(operator.sub, "subtract", other, self)

    def __mul__(self, other):
        return _operation(operator.mul, "multiply", self, other)

    def __rmul__(self, other):
        return _operation(operator.mul, "multiply", other, self)

    def __truediv__(self, other):
        return _operation(operator.truediv, "divide", self, other)

    def __matmul__(self, other):
        return _operation(operator.matmul, "matmul", self, other)

    def __neg__(self):
        return _operation(operator.neg, "negative", self)


class Node:
    """One layer call in a functional graph: `layer` called on `inputs` (a KerasTensor, or a
    list/tuple of them) with `kwargs`; `outputs` is the list of KerasTensors it returned."""

    def __init__(self, layer, inputs, kwargs: dict):
        self.layer = layer
        self.inputs = inputs
        self.kwargs = kwargs
        self.outputs: list[KerasTensor] = []

    def input_tensors(self) -> list[KerasTensor]:
        """The KerasTensors this call reads, in order."""
        return flatten(self.inputs)


def call_symbolic(layer, inputs, kwargs: dict):
    """`layer(inputs, **kwargs)` where the inputs are KerasTensors: build the layer on a
    placeholder batch, record the Node, and return the outputs as KerasTensors (the same
    structure the layer returns: one, or a list/tuple)."""
    for x in flatten(inputs):
        if not isinstance(x, KerasTensor):
            raise TypeError(
                f"{layer.where()}: called on a mix of keras.Input-derived tensors and "
                f"{type(x).__name__}; in the functional API every input must come from keras.Input"
            )
    placeholders = _map(inputs, KerasTensor.placeholder)
    settings = {key: value for key, value in kwargs.items() if key != "training"}
    try:
        with no_grad():
            outputs = layer(placeholders, training=False, **settings)
    except (TypeError, ValueError) as error:
        shapes = [x.shape for x in flatten(inputs)]
        shown = shapes[0] if len(shapes) == 1 else shapes
        raise type(error)(
            f"{error} (in the functional API: {layer.where()} called on input shape {shown})"
        ) from None
    node = Node(layer, inputs, dict(kwargs))
    for i, out in enumerate(flatten(outputs)):
        node.outputs.append(KerasTensor((None, *out.shape[1:]), out.dtype, node, i, layer.name))
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(node.outputs)
    return node.outputs[0]


def holds_symbolic(inputs) -> bool:
    """True when `inputs` is a KerasTensor or a list/tuple/dict holding one."""
    if isinstance(inputs, KerasTensor):
        return True
    if isinstance(inputs, (list, tuple)):
        return any(holds_symbolic(x) for x in inputs)
    if isinstance(inputs, dict):
        return any(holds_symbolic(x) for x in inputs.values())
    return False


def flatten(structure) -> list:
    """The leaves of a value, list or tuple, in order."""
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    return [structure]


def _map(structure, fn):
    if isinstance(structure, (list, tuple)):
        return type(structure)(_map(item, fn) for item in structure)
    return fn(structure)


def _operation(fn, name: str, *operands):
    """Record `fn(*operands)` as a Lambda layer on the KerasTensor operands; numbers stay
    constants of the function."""
    # Lambda is a Layer, and layer.py imports this module: import it when first needed.
    from tinydeep.layers.lambda_layer import Lambda
    from tinydeep.layers.layer import unique_name

    symbolic = [x for x in operands if isinstance(x, KerasTensor)]

    def apply(inputs):
        values = iter(inputs)
        return fn(*(next(values) if isinstance(x, KerasTensor) else x for x in operands))

    return Lambda(apply, name=unique_name(name))(symbolic)
