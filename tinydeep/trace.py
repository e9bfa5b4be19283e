"""Recording what one forward pass did: the ops it ran and the layers it called.

The tools that look at a whole model from outside it (`tinydeep.keras.utils.plot_model`, which
draws the layers and how they connect, and `tinydeep.onnx.export`, which writes the ops as an
ONNX graph) do not read `call` methods: they run the model once inside `with tracing() as t:`
and read what happened. Two hooks feed the record, each one line at the place it watches:
`differentiable` (tinydeep/tensor.py) reports every op, and the layer-call machinery
(tinydeep/layers/calls.py, tinydeep/layers/layer.py) reports every layer call. Outside a
`tracing()` block both hooks are a single `is None` test.

    with tracing() as t:
        model(x)
    t.ops     # [OpCall(name="conv2d", inputs=(x, kernel), params={"strides": ...}, ...), ...]
    t.calls   # [LayerCall(layer=conv, inputs=x, outputs=y, parents=(model,), ...), ...]

An op's `layers` (a LayerCall's `parents`) is the stack of layer calls in progress when it ran,
outermost first, so a tool can say which layer an op belongs to at any depth. Every Tensor in
the record is the object the model used, so identity (`is`) joins an op's output to the next
op's input. This module imports nothing from tinydeep: the engine imports it.

Left out: ops that run on arrays outside `differentiable` (none in tinydeep's layers), and
control flow: the record is of one pass, on one input.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

active: Trace | None = None  # the trace being recorded, read by the hooks; None: not tracing


@dataclass
class OpCall:
    """One op: its name (as `differentiable` was given it), its positional inputs as passed
    (Tensors, or the numbers and arrays an op turns into constants), its keyword settings,
    the Tensor it returned, and the layer calls in progress (outermost first)."""

    name: str
    inputs: tuple
    params: dict
    output: object
    layers: tuple


@dataclass
class LayerCall:
    """One layer call: the layer, its inputs and outputs as passed and returned (a Tensor, or
    a list/tuple/dict of them), the layer calls around it (outermost first), and the slice
    `ops[start:end]` of the ops that ran inside it."""

    layer: object
    inputs: object
    outputs: object
    parents: tuple
    start: int
    end: int


@dataclass
class Trace:
    ops: list[OpCall] = field(default_factory=list)
    calls: list[LayerCall] = field(default_factory=list)  # in the order the calls finished
    _stack: list = field(default_factory=list)  # (layer, index of its first op) per open call
    _finished: tuple | None = None  # (start, end) of the call that just ended

    def op(self, name: str, inputs: tuple, params: dict, output) -> None:
        layers = tuple(layer for layer, _ in self._stack)
        self.ops.append(OpCall(name, tuple(inputs), dict(params), output, layers))

    def enter(self, layer) -> None:
        self._stack.append((layer, len(self.ops)))

    def leave(self, layer) -> None:
        _, start = self._stack.pop()
        self._finished = (start, len(self.ops))

    def called(self, layer, inputs, outputs) -> None:
        """The layer call that just left (`leave`) returned `outputs`."""
        start, end = self._finished
        parents = tuple(open_layer for open_layer, _ in self._stack)
        self.calls.append(LayerCall(layer, inputs, outputs, parents, start, end))


@contextmanager
def tracing():
    """with tracing() as t: record every op and layer call made inside (see the module
    docstring). Traces do not nest: a tool records one pass at a time."""
    global active
    if active is not None:
        raise RuntimeError("tracing: a trace is being recorded already; traces do not nest")
    active = Trace()
    try:
        yield active
    finally:
        active = None
