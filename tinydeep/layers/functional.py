"""Keras's functional API: a model written as the graph of its layer calls.

    wide = keras.Input(shape=(5,), name="wide_input")
    deep = keras.Input(shape=(6,), name="deep_input")
    hidden = layers.Dense(30, activation="relu")(deep)
    output = layers.Dense(1)(layers.concatenate([wide, hidden]))
    model = keras.Model(inputs=[wide, deep], outputs=output)

`Input` makes a KerasTensor (tinydeep/layers/symbolic.py); calling layers on KerasTensors
records Nodes and builds the layers. `Model(inputs=..., outputs=...)` makes a Functional
model: it walks back from the outputs, checks that every path ends at one of `inputs`, and
keeps the nodes in an order where each comes after the nodes it reads. Its `call` runs them
in that order on real tensors. It is an ordinary Model from there: fit, evaluate, predict,
save_weights (weights named "<layer name>/kernel"), gradcheck, to("cuda"), the all-or-nothing
calls and plot_model work on it as on a subclassed one. A layer called on several inputs
(a shared layer) is one layer with several nodes; its weights are shared.

Read Input, then Functional: __init__ (the checks), _order_nodes, call; the summary's
"Connected to" column last. Left out: dict outputs, subclassing a functional model, and
masks.
"""

from __future__ import annotations

import numpy as np

from tinydeep.layers.layer import Layer
from tinydeep.layers.model import Model
from tinydeep.layers.symbolic import KerasTensor, Node, flatten
from tinydeep.tensor import Tensor


class InputLayer(Layer):
    """The layer behind `Input`: it has no weights, and in a model it hands on the data."""

    def __init__(self, shape: tuple, dtype="float32", **kwargs):
        super().__init__(**kwargs)
        self.shape = (None, *shape)  # the batch axis first, None
        self.dtype = np.dtype(dtype)
        self.built = True
        self.input_shape = self.output_shape = self.shape

    def call(self, x: Tensor) -> Tensor:
        return x


def Input(shape, dtype="float32", name: str | None = None, batch_size=None) -> KerasTensor:
    """keras.Input(shape=(5,), dtype="float32", name=None): a symbolic input of examples of
    `shape` (the batch axis is not part of it). Use dtype "int64" for ids (Embedding)."""
    if isinstance(shape, int) or not all(isinstance(d, (int, np.integer)) for d in shape):
        raise TypeError(
            f"Input: shape must be a tuple of whole numbers, the shape of one example without "
            f"the batch axis, e.g. shape=(5,); got {shape!r} (None sizes other than the batch "
            "are not supported: tinydeep finds shapes by running each layer on a placeholder)"
        )
    if batch_size is not None:
        raise ValueError("Input: a fixed batch_size is not supported; the batch axis is free")
    layer = InputLayer(tuple(int(d) for d in shape), dtype, name=name or _input_name())
    node = Node(layer, [], {})
    node.outputs.append(KerasTensor(layer.shape, layer.dtype, node, 0, layer.name))
    return node.outputs[0]


def _input_name() -> str:
    from tinydeep.layers.layer import unique_name

    return unique_name("input_layer")


class Functional(Model):
    """Model(inputs=..., outputs=..., name=None): see the module docstring. `inputs` is one
    `Input` or a list of them; `outputs` one KerasTensor or a list (the model then returns a
    tuple, as tinydeep's multi-output models do)."""

    def __init__(self, inputs, outputs, name: str | None = None, trainable: bool = True):
        super().__init__(name=name, trainable=trainable)
        self.inputs = _checked_list(self, inputs, "inputs")
        self.outputs = _checked_list(self, outputs, "outputs")
        self._single_output = not isinstance(outputs, (list, tuple))
        for i, x in enumerate(self.inputs):
            if not isinstance(x.node.layer, InputLayer):
                raise TypeError(
                    f"{self.where()}: inputs[{i}] must come straight from keras.Input, got the "
                    f"output of {x.node.layer.where()} (shape {x.shape})"
                )
        self._nodes = self._order_nodes()
        names = [layer.name for layer in self.layers]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{self.where()}: layer names must be unique, {repeated} repeat")
        # Built already: the layers were built when they were called on the inputs.
        self.built = True
        self.dtype = self.inputs[0].dtype
        shapes, dtypes = [x.shape for x in self.inputs], [x.dtype for x in self.inputs]
        self.input_shape = shapes[0] if len(shapes) == 1 else shapes
        self.input_dtype = dtypes[0] if len(dtypes) == 1 else dtypes
        shapes = [x.shape for x in self.outputs]
        self.output_shape = shapes[0] if self._single_output else shapes

    def _order_nodes(self) -> list[Node]:
        """Every node the outputs depend on, each after the nodes it reads (a depth-first
        post-order, iterative); an Input that is not in `inputs` means a disconnected graph."""
        order: list[Node] = []
        done: set[int] = set()
        given = {id(x.node) for x in self.inputs}
        for output in self.outputs:
            stack = [(output.node, False)]
            while stack:
                node, expanded = stack.pop()
                if id(node) in done:
                    continue
                if expanded:
                    done.add(id(node))
                    order.append(node)
                    continue
                if isinstance(node.layer, InputLayer) and id(node) not in given:
                    raise ValueError(
                        f"{self.where()}: the graph is disconnected: the outputs need Input "
                        f"{node.layer.name!r} (shape {node.layer.shape}), which is not in "
                        f"inputs={[x.name for x in self.inputs]}"
                    )
                stack.append((node, True))
                for x in reversed(node.input_tensors()):
                    stack.append((x.node, False))
        return order

    @property
    def input_names(self) -> list[str]:
        """The names of the Inputs, in order: the keys of a dict of inputs for call and fit."""
        return [x.node.layer.name for x in self.inputs]

    @property
    def layers(self) -> list[Layer]:
        """The InputLayers, then every other layer once, in the order they run (as Keras)."""
        layers: list[Layer] = [x.node.layer for x in self.inputs]
        for node in self._nodes:
            if all(node.layer is not layer for layer in layers):
                layers.append(node.layer)
        return layers

    def named_sublayers(self) -> list[tuple[str, Layer]]:
        """Every layer with weights-bearing potential, by its name: weights are saved as
        "<layer name>/kernel". The InputLayers hold nothing and are left out."""
        return [(layer.name, layer) for layer in self.layers if not isinstance(layer, InputLayer)]

    def call(self, inputs, training: bool = False):
        """Run the nodes in order: each layer on the tensors its node reads."""
        values: dict[int, Tensor] = {}  # id(KerasTensor) -> its Tensor in this call
        for x, tensor in zip(self.inputs, self._match_inputs(inputs)):
            values[id(x)] = tensor
        for node in self._nodes:
            if isinstance(node.layer, InputLayer):
                continue
            args = _replace(node.inputs, values)
            outputs = node.layer(args, **node.kwargs)  # training: inherited from this call
            for x, tensor in zip(node.outputs, flatten(outputs)):
                values[id(x)] = tensor
        results = tuple(values[id(x)] for x in self.outputs)
        return results[0] if self._single_output else results

    def _match_inputs(self, inputs) -> list[Tensor]:
        """The inputs as a list in the order of `self.inputs`: one tensor, a list or tuple, or
        a dict keyed by the Inputs' names; each of the shape its Input declared."""
        if isinstance(inputs, dict):
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise ValueError(
                    f"{self.where()}: the dict of inputs has no {missing}; it needs the keys "
                    f"{self.input_names}, got {sorted(inputs)}"
                )
            inputs = [inputs[n] for n in self.input_names]
        elif not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        if len(inputs) != len(self.inputs):
            raise ValueError(
                f"{self.where()}: expected {len(self.inputs)} inputs {self.input_names}, "
                f"got {len(inputs)}"
            )
        for x, tensor in zip(self.inputs, inputs):
            if not isinstance(tensor, Tensor):
                raise TypeError(
                    f"{self.where()}: input {x.name!r} must be an array or a Tensor, "
                    f"got {type(tensor).__name__}"
                )
            if tensor.shape[1:] != x.shape[1:] or tensor.ndim != x.ndim:
                raise ValueError(
                    f"{self.where()}: input {x.name!r} expects shape {x.shape}, got "
                    f"{tuple(tensor.shape)}"
                )
        return list(inputs)

    def connections(self, layer: Layer) -> list[str]:
        """What `layer`'s calls read, as Keras's summary writes it: "dense[0][0]" is output 0
        of the first call of the layer named dense."""
        calls: dict[int, int] = {}  # id(node) -> which call of its layer it is
        counts: dict[int, int] = {}
        for node in self._nodes:
            calls[id(node)] = counts.get(id(node.layer), 0)
            counts[id(node.layer)] = calls[id(node)] + 1
        return [
            f"{x.node.layer.name}[{calls[id(x.node)]}][{x.index}]"
            for node in self._nodes
            if node.layer is layer
            for x in node.input_tensors()
        ]


def _checked_list(model: Functional, values, argument: str) -> list[KerasTensor]:
    items = list(values) if isinstance(values, (list, tuple)) else [values]
    if not items:
        raise ValueError(f"{model.where()}: {argument} is empty")
    for i, x in enumerate(items):
        if not isinstance(x, KerasTensor):
            raise TypeError(
                f"{model.where()}: {argument}[{i}] must be a tensor from keras.Input or from a "
                f"layer called on one, got {type(x).__name__}"
            )
    return items


def _replace(structure, values: dict):
    """The structure of KerasTensors a node was called on, with this call's Tensors."""
    if isinstance(structure, (list, tuple)):
        return type(structure)(_replace(item, values) for item in structure)
    return values[id(structure)]
