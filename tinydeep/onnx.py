"""ONNX export: `export(model, example_input, path)` writes a model as an ONNX file that
onnxruntime (or any ONNX runtime) runs without tinydeep.

    tinydeep.onnx.export(model, x[:2], "resnet20.onnx")
    session = onnxruntime.InferenceSession("resnet20.onnx", providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input_0": x})[0]        # any batch size

How: by tracing, not by reading layer classes. The model runs once on the example, in
inference mode (training=False, no_grad), inside `tinydeep.trace.tracing()`, which records
every op with its inputs and settings (tinydeep/trace.py). Each recorded op then becomes a few
ONNX nodes, looked up by its name in TRANSLATIONS, a table of small functions, one per op, each
the ONNX spelling of that op's forward in tinydeep/ops/. So anything built from tinydeep ops
exports: the layers, ResNet, WideAndDeep, a subclassed Model, a functional one.

What becomes what:
  - the model's inputs are graph inputs, named from `model.input_names` when the model has
    them, else input_0, input_1, ...; its outputs (a Tensor, or a tuple of them) graph outputs
    output_0, ... (both can be chosen: input_names=, output_names=);
  - an op whose inputs come from the model's inputs becomes nodes; an op whose inputs do not
    (BatchNorm's (moving_variance + epsilon) ** -0.5 at inference, then gamma * that) is
    folded: the value it computed in the trace is stored as a constant (an initializer),
    named after the layer and the op ("stem_bn/multiply");
  - weights are initializers named by their layer path, as in model.named_weights()
    ("blocks/0/conv1/kernel"). A Conv2D kernel is stored as ONNX's Conv wants it,
    (F, C, KH, KW) rather than tinydeep's (KH, KW, C, F), under the same name.
  - tinydeep is NHWC and ONNX's Conv and pooling are NCHW: each of those is wrapped in a
    Transpose to NCHW and one back. onnxruntime's optimizer cancels the back-to-back pairs
    between two convolutions when it loads the file, so the graph stays easy to read here and
    costs nothing there. Padding is written as explicit (top, left, bottom, right) amounts,
    computed by the same function the ops use (TensorFlow's "same" puts the odd pixel after),
    and average pooling divides by the real pixels only (count_include_pad=0), as Keras does.

The batch axis is dynamic: axis 0 of every input is a symbolic "batch". Which axes of the
other values follow the batch is found, not assumed: the model is traced a second time on the
example grown by one row, and a size that differs between the two traces is a batch size. So
Flatten's reshape to (N, H*W*C), whose N was read from x.shape[0], is written as (-1, H*W*C);
an op whose other settings, or a constant whose value, differ between the two traces (a shape
or an array computed from the data outside tinydeep ops) cannot be written for every batch
size and is an ExportError naming the op and the layer, as is an op with no translation.

Opset 18 (IR version 8): the first opset in which every reduction (ReduceSum, ReduceMean,
ReduceMax) takes its axes as an input, so each reduction here is written one way; onnxruntime
has run it since 1.14 (2023), so the files load in runtimes far older than the one in the
[onnx] extra. Every file is checked with onnx.checker (full_check: with shape inference)
before it is written, and written atomically (tinydeep/safe_npz.py: atomic_write).

Read in this order: export; the tracing (_trace, _grown); _Graph, which names every value
(graph inputs, nodes' outputs, constants) and makes nodes; the translations, elementwise
first, then shapes, reductions, lookups and the windowed ops; then the table.

Left out: training-mode graphs (Dropout and BatchNorm's batch statistics), control flow (the
file holds the one path the example took), files over 2 GB (ONNX's external data),
integer-array or boolean indexing (x[ids], x[mask]), and comparisons (x > 0 is not an op, so
its result is a constant of the trace: refused, since it differs between the two traces).
"""

from __future__ import annotations

import os

import numpy as np

from tinydeep import backend, trace
from tinydeep.layers.layer import Layer
from tinydeep.ops.conv import window_geometry
from tinydeep.ops.pool import _pool_window
from tinydeep.ops.reduce import normalize_axis
from tinydeep.ops.shape import pad_widths
from tinydeep.safe_npz import atomic_write
from tinydeep.tensor import Tensor, no_grad

OPSET = 18  # see the module docstring
IR_VERSION = 8  # the IR version that opset 18 came with (onnx 1.13)
NHWC_TO_NCHW, NCHW_TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)
KERNEL_TO_OIHW = (3, 2, 0, 1)  # Conv2D's (KH, KW, C, F) -> ONNX Conv's (F, C, KH, KW)
INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)  # a Slice end past either end of an axis


class ExportError(ValueError):
    """The model cannot be written as ONNX: an op with no translation, or one whose settings
    depend on the batch size. The message names the op and the layer it ran in."""


def export(
    model,
    example_input,
    path: str | os.PathLike,
    *,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
) -> None:
    """Write `model` in inference mode as an ONNX file at `path` (see the module docstring).

    example_input: what `model(...)` takes, an array or Tensor (N, ...), or a list or dict of
    them, each with the batch axis first (N >= 1); a small N is enough. It is moved to the
    model's device; a model on CUDA exports too (its weights are copied to the host).
    input_names, output_names: the graph's names for the flattened inputs and outputs; by
    default `model.input_names` or a dict's keys, else input_0, ... and output_0, ...
    """
    onnx = _import_onnx()
    if not isinstance(model, Layer):
        raise TypeError(f"export: model must be a tinydeep Layer, got {type(model).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"export: path must be a str or os.PathLike, got {type(path).__name__}")
    first, inputs, outputs = _trace(model, _on_device(example_input, model.device))
    twin, _, twin_outputs = _trace(model, _grown(inputs))
    if [op.name for op in first.ops] != [op.name for op in twin.ops]:
        raise ExportError(
            f"export: {model.where()} ran other ops on a batch of {_batch_size(inputs) + 1} "
            f"than on the example's {_batch_size(inputs)}; a graph for every batch size "
            "cannot follow a forward pass that depends on it"
        )
    input_names = _names("input_names", input_names, _default_input_names(model, inputs), inputs)
    keys = list(outputs) if isinstance(outputs, dict) else None  # a dict's keys name its values
    output_names = _names("output_names", output_names, keys, outputs, prefix="output")
    if set(input_names) & set(output_names):
        raise ValueError(
            f"export: input_names {input_names} and output_names {output_names} share a name"
        )

    graph = _Graph(onnx, model, reserved=input_names + output_names)
    graph_inputs = [graph.add_input(name, x) for name, x in zip(input_names, _leaves(inputs))]
    for op, twin_op in zip(first.ops, twin.ops):
        graph.translate(op, twin_op)
    graph_outputs = [
        graph.add_output(name, y, y_twin, _batch_size(inputs))
        for name, y, y_twin in zip(output_names, _leaves(outputs), _leaves(twin_outputs))
    ]
    proto = onnx.helper.make_model(
        onnx.helper.make_graph(
            graph.nodes, model.name, graph_inputs, graph_outputs, list(graph.initializers.values())
        ),
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="tinydeep",
        ir_version=IR_VERSION,
    )
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        # the exporter's mistake, not the model's: say so rather than write the file
        raise ExportError(f"export: the ONNX graph failed onnx.checker: {error}") from error
    with atomic_write(path) as file:
        file.write(proto.SerializeToString())


def _import_onnx():
    try:
        import onnx
        import onnx.numpy_helper
    except ImportError as error:
        raise ImportError(
            'tinydeep.onnx.export needs the onnx package: pip install -e ".[onnx]" '
            "(or pip install onnx onnxruntime)"
        ) from error
    return onnx


# ---- tracing ---------------------------------------------------------------------------------


def _trace(model, inputs):
    """Run the model in inference mode, recording it: (the Trace, the inputs as the model's
    outermost call received them, as Tensors, and its outputs)."""
    with no_grad(), trace.tracing() as recorded:
        outputs = model(inputs, training=False)
    outermost = recorded.calls[-1]  # calls are recorded as they finish: the model's is last
    return recorded, outermost.inputs, outputs


def _on_device(inputs, device: str):
    """The example as arrays on the model's device, in the same list/tuple/dict structure."""
    if isinstance(inputs, dict):
        return {key: _on_device(x, device) for key, x in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(_on_device(x, device) for x in inputs)
    data = inputs.data if isinstance(inputs, Tensor) else inputs
    if not hasattr(data, "shape") or data.ndim == 0 or data.shape[0] < 1:
        raise ValueError(
            "export: example_input must be arrays or Tensors with a batch axis first "
            f"holding at least one example, got {getattr(data, 'shape', type(data).__name__)}"
        )
    return backend.to_device(data, device)


def _grown(inputs):
    """The same inputs with their first example repeated once more: batch N + 1."""
    if isinstance(inputs, dict):
        return {key: _grown(x) for key, x in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(_grown(x) for x in inputs)
    x = inputs.data
    return backend.xp_of(x).concatenate([x, x[:1]])


def _leaves(values) -> list:
    """The Tensors of a Tensor, or of a (nested) list, tuple or dict of them, in order."""
    if isinstance(values, dict):
        return [leaf for value in values.values() for leaf in _leaves(value)]
    if isinstance(values, (list, tuple)):
        return [leaf for value in values for leaf in _leaves(value)]
    return [values]


def _batch_size(inputs) -> int:
    return _leaves(inputs)[0].shape[0]


def _default_input_names(model, inputs) -> list[str] | None:
    """model.input_names, else a dict's keys; None: input_0, input_1, ..."""
    names = getattr(model, "input_names", None)
    if names is None and isinstance(inputs, dict):
        names = list(inputs)
    return None if names is None else [str(name) for name in names]


def _names(argument: str, given, default, values, prefix: str = "input") -> list[str]:
    """The graph names of the flattened `values`: `given`, else `default`, else prefix_i."""
    count = len(_leaves(values))
    names = given if given is not None else default
    if names is None:
        return [f"{prefix}_{i}" for i in range(count)]
    if (
        not isinstance(names, (list, tuple))
        or len(names) != count
        or not all(isinstance(name, str) and name for name in names)
        or len(set(names)) != len(names)
    ):
        raise ValueError(
            f"export: {argument} must be a list of {count} distinct non-empty strings, "
            f"one per {prefix}, got {names!r}"
        )
    return list(names)


def _onnx_type(dtype) -> int:
    import onnx.helper

    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


# ---- the graph being built -------------------------------------------------------------------


class _Graph:
    """The nodes and initializers, and the ONNX name of every traced value.

    A value that comes from the model's inputs ("live") is named when the node that computes
    it is made; any other value an op reads (a weight, a folded op's output, a number or an
    array passed to the op) becomes an initializer the first time a node reads it.
    """

    def __init__(self, onnx, model: Layer, reserved: list[str]):
        self.onnx = onnx
        self.nodes: list = []
        self.initializers: dict[str, object] = {}  # name -> TensorProto
        self.names: dict[tuple, str] = {}  # (id(value), dtype, perm) -> its ONNX name
        self.live: set[int] = set()  # ids of the Tensors computed from the model's inputs
        self.folded: dict[int, str] = {}  # id(output of a folded op) -> its name
        self.weights = {id(w): path for path, w in model.named_weights().items()}
        self.layer_paths = {id(layer): path for path, layer, _ in model.walk()}
        self.model = model
        self.scope = ""  # the op being translated, "blocks/0/conv1/conv2d": names its nodes
        self.counts = dict.fromkeys(reserved, 1)  # the graph's inputs and outputs are taken

    # ---- names ----

    def fresh(self, base: str) -> str:
        """`base`, or base_1, base_2, ... if taken: node and value names are unique."""
        count = self.counts.get(base, 0)
        self.counts[base] = count + 1
        return base if count == 0 else f"{base}_{count}"

    def add_input(self, name: str, x: Tensor):
        """A graph input for the model's input x, its axis 0 the symbolic "batch"."""
        self.names[(id(x), x.dtype, None)] = name
        self.live.add(id(x))
        shape = ("batch", *x.shape[1:])
        return self.onnx.helper.make_tensor_value_info(name, _onnx_type(x.dtype), shape)

    def add_output(self, name: str, y: Tensor, y_twin: Tensor, batch: int):
        """A graph output `name` for the model's output y (an Identity of its value). Its shape
        is y's, but for the axes whose size changed with the batch (y_twin is y in the trace
        of the batch grown by one): "batch" where it is the batch size, else unknown (None)."""
        self.scope = ""
        self.nodes.append(
            self.onnx.helper.make_node("Identity", [self.input(y)], [name], name=name)
        )
        changed = {(batch, batch + 1): "batch"}
        shape = [n if n == m else changed.get((n, m)) for n, m in zip(y.shape, y_twin.shape)]
        return self.onnx.helper.make_tensor_value_info(name, _onnx_type(y.dtype), shape)

    def where(self, op: trace.OpCall) -> str:
        """The layer path of the innermost layer an op ran in ("" for the model's own call);
        a layer made inside a call, outside the model's tree, by its name under its parent."""
        path = ""
        for layer in op.layers:
            inner = self.layer_paths.get(id(layer))
            path = inner if inner is not None else (f"{path}/{layer.name}" if path else layer.name)
        return path

    # ---- nodes and constants ----

    def node(self, op_type: str, inputs: list[str], **attributes) -> str:
        """Add a node of one output, named after the op being translated; its output's name."""
        name = self.fresh(f"{self.scope}/{op_type}" if self.scope else op_type)
        self.nodes.append(
            self.onnx.helper.make_node(op_type, inputs, [name], name=name, **attributes)
        )
        return name

    def constant(self, array, base: str) -> str:
        """An initializer holding `array` (host, any dtype); its name."""
        name = self.fresh(base)
        self.initializers[name] = self.onnx.numpy_helper.from_array(np.asarray(array), name)
        return name

    def ints(self, values) -> str:
        """An int64 vector constant: the shapes, axes and pads that ONNX takes as inputs."""
        return self.constant(np.asarray(values, dtype=np.int64), f"{self.scope}/ints")

    def input(self, value, dtype=None, perm: tuple | None = None) -> str:
        """The name of an op's input `value`, cast to `dtype` and transposed by `perm` when
        given: a live value by Cast and Transpose nodes, a constant in NumPy, once."""
        dtype = np.dtype(dtype) if dtype is not None else _dtype_of(value)
        key = (id(value), dtype, perm)
        if key in self.names:
            return self.names[key]
        if isinstance(value, Tensor) and id(value) in self.live:
            name = self.names[(id(value), value.dtype, None)]
            if dtype != value.dtype:
                name = self.node("Cast", [name], to=_onnx_type(dtype))
            if perm is not None:
                name = self.node("Transpose", [name], perm=list(perm))
        else:
            array = _host(value).astype(dtype, copy=False)
            array = array if perm is None else array.transpose(perm)
            base = self.weights.get(id(value)) or self.folded.get(id(value))
            name = self.constant(array, base or f"{self.scope}/constant")
        self.names[key] = name
        return name

    # ---- one recorded op ----

    def translate(self, op: trace.OpCall, twin: trace.OpCall) -> None:
        """Nodes for one op if it reads a live value; else fold it (its traced output is the
        constant). `twin` is the same op in the trace of the batch grown by one."""
        path = self.where(op)
        self.scope = f"{path}/{op.name}" if path else op.name
        if not any(isinstance(v, Tensor) and id(v) in self.live for v in op.inputs):
            self.folded[id(op.output)] = self.scope
            return
        where = f"layer '{path}'" if path else f"the call of {self.model.where()} itself"
        if op.name not in TRANSLATIONS:
            raise ExportError(
                f"export: op '{op.name}' in {where} has no ONNX translation; the exporter "
                f"translates {', '.join(sorted(TRANSLATIONS))}"
            )
        self.check_batch_free(op, twin, where)
        name = TRANSLATIONS[op.name](self, op, twin)
        self.live.add(id(op.output))
        self.names[(id(op.output), op.output.dtype, None)] = name

    def check_batch_free(self, op, twin, where: str) -> None:
        """The settings and the constant inputs of an op must be the same in both traces (a
        reshape's shape is the translation's to handle): else the file would hold the
        example's batch size, or values computed from the example, for every batch."""
        for key, value in op.params.items():
            if not (op.name == "reshape" and key == "shape") and not _same(value, twin.params[key]):
                raise ExportError(
                    f"export: op '{op.name}' in {where} has {key}={value!r} on the example "
                    f"but {twin.params[key]!r} on a batch one larger: a setting computed from "
                    "the batch size cannot be written for every batch size"
                )
        for i, (value, other) in enumerate(zip(op.inputs, twin.inputs)):
            live = isinstance(value, Tensor) and id(value) in self.live
            if not live and not (value is other or _same(_host(value), _host(other))):
                raise ExportError(
                    f"export: input {i} of op '{op.name}' in {where} is a constant (it is not "
                    "computed from the model's inputs by tinydeep ops) yet differs between "
                    "two batches: it was computed from the data or its size outside the ops "
                    "(from x.data, x.shape, or a comparison such as x > 0, which is not an op), "
                    "and the file would freeze it"
                )


def _host(value) -> np.ndarray:
    """A constant as a NumPy array: a Tensor's data copied to the host, or a number or array
    made a Tensor's data the way `differentiable` makes it (Python numbers become float32)."""
    return (value if isinstance(value, Tensor) else Tensor(value)).numpy()


def _dtype_of(value) -> np.dtype:
    return value.dtype if isinstance(value, Tensor) else _host(value).dtype


def _is_array(value) -> bool:
    """A Tensor, or a NumPy or CuPy array or scalar (not a dtype, which has a .shape too)."""
    cupy = backend.cupy_module()
    arrays = (Tensor, np.ndarray, np.generic) + ((cupy.ndarray,) if cupy is not None else ())
    return isinstance(value, arrays)


def _same(a, b) -> bool:
    """Equal settings or constants (arrays by value, containers item by item)."""
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if _is_array(a) or _is_array(b):
        a, b = _host(a), _host(b)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    return type(a) is type(b) and a == b


# ---- the translations: op name -> nodes ------------------------------------------------------
# Each takes the graph, the recorded op (its inputs, settings and traced output) and its twin
# in the grown batch's trace, and returns the name of the op's output. Mixed dtypes: NumPy
# promotes them (float32 * a float64 array is float64), ONNX requires one type, so inputs are
# cast to the output's dtype, which is what NumPy computes in.


def elementwise(op_type: str):
    """The ONNX op of the same name and NumPy broadcasting: add, relu, matmul, where, ..."""

    def translate(g: _Graph, op, twin) -> str:
        dtype = op.output.dtype
        names = [g.input(v, None if _dtype_of(v) == bool else dtype) for v in op.inputs]
        return g.node(op_type, names)

    return translate


def power_scalar(g: _Graph, op, twin) -> str:
    exponent = np.asarray(op.params["exponent"], dtype=op.output.dtype)  # x ** 0.5 stays float32
    return g.node("Pow", [g.input(op.inputs[0]), g.constant(exponent, f"{g.scope}/exponent")])


def clip(g: _Graph, op, twin) -> str:
    """numpy.clip is minimum(maximum(x, min), max): so with Max and Min (bounds may be arrays,
    which ONNX's Clip does not take)."""
    y = g.input(op.inputs[0])
    for bound, op_type in ((op.params.get("min"), "Max"), (op.params.get("max"), "Min")):
        if bound is not None:
            y = g.node(op_type, [y, g.input(bound, op.output.dtype)])
    return y


def astype(g: _Graph, op, twin) -> str:
    return g.node("Cast", [g.input(op.inputs[0])], to=_onnx_type(op.params["dtype"]))


def to_device(g: _Graph, op, twin) -> str:
    return g.input(op.inputs[0])  # one device in an ONNX graph: the copy is the value itself


# ---- shapes


def reshape(g: _Graph, op, twin) -> str:
    """Reshape to the traced output's shape, with -1 for the one axis whose size changed with
    the batch (Flatten's N): more than one cannot be written as an ONNX shape."""
    shape = [n if n == m else -1 for n, m in zip(op.output.shape, twin.output.shape)]
    if shape.count(-1) > 1:
        raise ExportError(
            f"export: op 'reshape' at '{g.scope}' makes shape {op.output.shape} on the "
            f"example and {twin.output.shape} on a batch one larger: an ONNX shape can leave "
            "only one axis to follow the batch size"
        )
    # allowzero: a 0 in the shape means an empty axis, not "copy the input's" (ONNX's default)
    return g.node("Reshape", [g.input(op.inputs[0]), g.ints(shape)], allowzero=int(0 in shape))


def transpose(g: _Graph, op, twin) -> str:
    ndim, axes = op.inputs[0].ndim, op.params.get("axes")
    perm = list(reversed(range(ndim))) if axes is None else [a % ndim for a in axes]
    return g.node("Transpose", [g.input(op.inputs[0])], perm=perm)


def pad(g: _Graph, op, twin) -> str:
    """ONNX's pads are all the befores, then all the afters."""
    x = op.inputs[0]
    widths = pad_widths(op.params["pad_width"], x.ndim)
    value = np.asarray(op.params.get("constant_values", 0.0), dtype=x.dtype)
    if value.size != 1:  # numpy.pad takes a value per axis and side; ONNX's Pad takes one
        raise ExportError(f"export: op 'pad' at '{g.scope}' pads with several values: {value}")
    pads = [before for before, _ in widths] + [after for _, after in widths]
    value = g.constant(value.reshape(()), f"{g.scope}/value")
    return g.node("Pad", [g.input(x), g.ints(pads), value])


def concatenate(g: _Graph, op, twin) -> str:
    (axis,) = normalize_axis("concatenate", op.params.get("axis", 0), op.output.ndim)
    return g.node("Concat", [g.input(x, op.output.dtype) for x in op.inputs], axis=axis)


def stack(g: _Graph, op, twin) -> str:
    """Each input with the new axis inserted, then joined along it."""
    (axis,) = normalize_axis("stack", op.params.get("axis", 0), op.output.ndim)
    parts = [g.node("Unsqueeze", [g.input(x, op.output.dtype), g.ints([axis])]) for x in op.inputs]
    return g.node("Concat", parts, axis=axis)


def getitem(g: _Graph, op, twin) -> str:
    """Basic indexing, x[1, ::2, None, ...]: one Slice for the slices, a Gather per integer
    (which drops its axis, negatives counting from the end as in NumPy), one Unsqueeze for
    the Nones."""
    x, index = op.inputs[0], op.params["index"]
    index = index if isinstance(index, tuple) else (index,)
    if not all(_is_basic(i) for i in index) or sum(i is Ellipsis for i in index) > 1:
        raise ExportError(
            f"export: op 'getitem' at '{g.scope}' has index {index!r}: only basic indices "
            "(ints, slices, None, one ...) are exported, not integer arrays or masks"
        )
    used = sum(i is not None and i is not Ellipsis for i in index)
    if Ellipsis in index:  # `...` stands for as many full slices as the other indices leave
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (x.ndim - used) + index[at + 1 :]
    slices, integers, new_axes = [], [], []  # (input axis, slice), (input axis, int), out axis
    axis = out = 0
    for i in index:
        if i is None:
            new_axes.append(out)
            out += 1
        elif isinstance(i, slice):
            if i != slice(None):
                slices.append((axis, i))
            axis, out = axis + 1, out + 1
        else:
            integers.append((axis, int(i)))
            axis += 1
    y = g.input(x)
    if slices:
        starts, ends, steps = zip(*(_slice_bounds(s) for _, s in slices))
        axes = [a for a, _ in slices]
        y = g.node("Slice", [y, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)])
    for axis, i in reversed(integers):  # from the last, so the earlier axes keep their number
        y = g.node("Gather", [y, g.constant(np.asarray(i, np.int64), f"{g.scope}/i")], axis=axis)
    if new_axes:
        y = g.node("Unsqueeze", [y, g.ints(new_axes)])
    return y


def _is_basic(i) -> bool:
    integer = isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))
    return integer or i is None or i is Ellipsis or isinstance(i, slice)


def _slice_bounds(s: slice) -> tuple[int, int, int]:
    """A Python slice as ONNX Slice's (start, end, step): a missing end is past the last
    element in the direction of the step, and ONNX clamps out-of-range bounds as NumPy does."""
    step = 1 if s.step is None else int(s.step)
    start = s.start if s.start is not None else (0 if step > 0 else INT64_MAX)
    end = s.stop if s.stop is not None else (INT64_MAX if step > 0 else INT64_MIN)
    return int(start), int(end), step


# ---- reductions and softmax


def reduction(op_type: str):
    """ReduceSum, ReduceMean, ReduceMax over the op's axes (all when axis=None). The input is
    cast to the output's dtype first: NumPy sums int32 as int64 and averages integers as
    float64."""

    def translate(g: _Graph, op, twin) -> str:
        x = op.inputs[0]
        axes = normalize_axis(op.name, op.params.get("axis"), x.ndim)
        keepdims = int(bool(op.params.get("keepdims", False)))
        return g.node(op_type, [g.input(x, op.output.dtype), g.ints(axes)], keepdims=keepdims)

    return translate


def softmax(op_type: str):
    def translate(g: _Graph, op, twin) -> str:
        (axis,) = normalize_axis(op.name, op.params.get("axis", -1), op.output.ndim)
        return g.node(op_type, [g.input(op.inputs[0])], axis=axis)

    return translate


# ---- lookups


def _ids(g: _Graph, ids) -> str:
    """Gather takes int32 or int64 indices; other integer ids are widened to int64."""
    return g.input(ids, None if _dtype_of(ids) in (np.int32, np.int64) else np.int64)


def embedding(g: _Graph, op, twin) -> str:
    table, ids = op.inputs  # (V, D), (...) -> (..., D)
    return g.node("Gather", [g.input(table), _ids(g, ids)], axis=0)


def embedding_sum(g: _Graph, op, twin) -> str:
    table, ids = op.inputs  # (V, D), (N, K) -> rows (N, K, D) -> summed (N, D)
    rows = g.node("Gather", [g.input(table), _ids(g, ids)], axis=0)
    return g.node("ReduceSum", [rows, g.ints([1])], keepdims=0)


# ---- the windowed ops, NCHW in ONNX


def conv2d(g: _Graph, op, twin) -> str:
    """Transpose to NCHW, Conv with the kernel as (F, C, KH, KW), Transpose back to NHWC."""
    x, w = op.inputs  # (N, H, W, C), (KH, KW, C, F)
    window = window_geometry("conv2d", x.shape, w.shape[:2], **_window_settings(op))
    dtype = op.output.dtype
    y = g.node(
        "Conv",
        [g.input(x, dtype, NHWC_TO_NCHW), g.input(w, dtype, KERNEL_TO_OIHW)],
        **_window_attributes(window),
    )
    return g.node("Transpose", [y], perm=list(NCHW_TO_NHWC))


def pooling(op_type: str, **extra):
    """MaxPool, or AveragePool dividing by the real pixels only (count_include_pad=0), as
    tinydeep and Keras do, between Transposes."""

    def translate(g: _Graph, op, twin) -> str:
        x = op.inputs[0]
        settings = {"pool_size": (2, 2), "strides": None, "padding": "valid", **op.params}
        window = _pool_window(op.name, x, **settings)
        y = g.node(op_type, [g.input(x, perm=NHWC_TO_NCHW)], **_window_attributes(window), **extra)
        return g.node("Transpose", [y], perm=list(NCHW_TO_NHWC))

    return translate


def _window_settings(op) -> dict:
    return {
        "strides": op.params.get("strides", (1, 1)),
        "padding": op.params.get("padding", "valid"),
    }


def _window_attributes(window) -> dict:
    """The window, strides and explicit padding as ONNX wants them: pads are
    (top, left, bottom, right), computed by the ops' own rule (ops/conv.py: same_padding)."""
    (top, bottom), (left, right) = window.pads
    return {
        "kernel_shape": list(window.size),
        "strides": list(window.strides),
        "pads": [top, left, bottom, right],
    }


TRANSLATIONS = {
    # elementwise, with NumPy's broadcasting, which ONNX shares
    "add": elementwise("Add"),
    "subtract": elementwise("Sub"),
    "multiply": elementwise("Mul"),
    "divide": elementwise("Div"),
    "power": elementwise("Pow"),
    "power_scalar": power_scalar,
    "negative": elementwise("Neg"),
    "exp": elementwise("Exp"),
    "log": elementwise("Log"),
    "sqrt": elementwise("Sqrt"),
    "tanh": elementwise("Tanh"),
    "sigmoid": elementwise("Sigmoid"),
    "relu": elementwise("Relu"),
    "absolute": elementwise("Abs"),
    "clip": clip,
    "where": elementwise("Where"),
    "matmul": elementwise("MatMul"),
    "astype": astype,
    "to_device": to_device,
    # shapes
    "reshape": reshape,
    "transpose": transpose,
    "pad": pad,
    "concatenate": concatenate,
    "stack": stack,
    "getitem": getitem,
    # reductions
    "sum": reduction("ReduceSum"),
    "mean": reduction("ReduceMean"),
    "max": reduction("ReduceMax"),
    "softmax": softmax("Softmax"),
    "log_softmax": softmax("LogSoftmax"),
    # lookups
    "embedding": embedding,
    "embedding_sum": embedding_sum,
    # windows
    "conv2d": conv2d,
    "max_pool2d": pooling("MaxPool"),
    "avg_pool2d": pooling("AveragePool", count_include_pad=0),
}
