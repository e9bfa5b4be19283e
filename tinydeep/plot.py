"""Pictures of a model's layers and of the graph that backward walks, drawn with matplotlib alone.

    plot_model(model, to_file="model.png", show_shapes=True)   # Keras's plot_model
    draw_graph(loss, names=model.named_weights())              # micrograd's draw_dot

Both work in two steps, and each step can be used alone. First a Graph is extracted: nodes with
their labels, and edges (`model_graph`, `autodiff_graph`); the tests check it exactly. Then
`render` places it (tinydeep/layout.py, a layered layout in plain Python) and draws it with
matplotlib's object API: a Figure of its own saved as PNG, SVG or PDF, never pyplot, so the
figures a user has open are left alone. No Graphviz to install.

model_graph does not read `call` methods, which are Python: it runs the model once, at
inference on one example of zeros, under no_grad, inside `tracing()` (tinydeep/trace.py), and
reads what happened. Its nodes are the model's inputs, each layer the model called directly
("conv1 (Conv2D)"; with expand_nested the layers inside a nested one too, in a box), and each
op its own `call` ran outside any layer (the `y + x` of a residual block). An edge joins the
node that made a tensor to each node that read it: the very tensor object (`is`), not its
shape. So subclassed models, Sequential and functional models are drawn the same way.

draw_graph reads the graph backward will walk: a node per tensor (shape and dtype; data and
gradient when it holds at most 4 numbers) and a node per op (its Node's name), edges from the
recorded Node inputs. `backward()` frees the graph as it goes unless given retain_graph=True;
drawing a freed graph is an error that says so (what is left, the root alone, teaches nothing).

Read Graph, then model_graph and its helpers, then autodiff_graph, then render, plot_model and
draw_graph. Left out: nested inputs deeper than one list or dict, layer calls given several
positional tensors (the first one is the input), and a picture of the edges a Dropout-like
layer hides: a layer that returns its input unchanged becomes the maker of that tensor, so a
later reader of the same tensor is drawn reading it from that layer.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import numpy as np

from tinydeep import activations, backend, trace
from tinydeep.layout import layered_layout
from tinydeep.safe_npz import atomic_write
from tinydeep.sparse import RowSparseGrad
from tinydeep.tensor import ArraySpec, Tensor, no_grad

FORMATS = ("png", "svg", "pdf")
VALUES_UP_TO = 4  # draw_graph shows the data and gradient of tensors of at most this many numbers


@dataclass
class GraphNode:
    """label: the first line ("conv1 (Conv2D)", "add", "w"). kind: "input", "layer" or "op"
    in a model graph, "tensor" or "op" in an autodiff graph. details: the lines below it
    (shapes, dtype, values). group: the boxes it sits in, outermost first (Graph.groups)."""

    label: str
    kind: str
    details: tuple[str, ...] = ()
    group: tuple[int, ...] = ()


@dataclass
class Graph:
    """What a picture shows: nodes, edges (from, to) between their indices, each once, and the
    labels of the boxes drawn around expanded layers."""

    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def add_node(self, label: str, kind: str, details=(), group=()) -> int:
        self.nodes.append(GraphNode(label, kind, tuple(details), tuple(group)))
        return len(self.nodes) - 1

    def add_edge(self, source: int, target: int) -> None:
        if (source, target) not in self.edges:  # x * x reads x once, as far as a picture goes
            self.edges.append((source, target))

    def links(self) -> list[tuple[str, str]]:
        """The edges by their nodes' labels: [("input_layer (InputLayer)", "dense (Dense)")]."""
        return [(self.nodes[a].label, self.nodes[b].label) for a, b in self.edges]


# ---- the layers of a model -------------------------------------------------------------------


def model_graph(
    model,
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    expand_nested: bool = False,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
) -> Graph:
    """The layer graph of a built model, from one traced forward pass (see the module
    docstring); the arguments mean what they mean for plot_model. Changes nothing in it."""
    record, inputs = _trace_inference(model, "plot_model")
    graph = Graph()
    producer: dict[int, int] = {}  # id(tensor) -> the node that made it (the latest one)
    for name, x in inputs:
        details = _output_details([x], show_shapes, show_dtype)
        producer[id(x)] = graph.add_node(
            _title(name, "InputLayer", show_layer_names), "input", details
        )

    # A nested layer is expanded into a box when it called layers of its own in this pass.
    expanded = set()
    if expand_nested:
        expanded = {id(c.parents[-1]) for c in record.calls if len(c.parents) > 1}
    boxes: dict[int, int] = {}  # id(expanded layer) -> its index in graph.groups
    layer_nodes: dict[int, int] = {}  # id(layer) -> its node: a layer called twice is one node
    layer_calls: dict[int, list] = {}

    def group_of(stack: tuple) -> tuple[int, ...]:
        for layer in stack[1:]:
            if id(layer) not in boxes:
                boxes[id(layer)] = len(graph.groups)
                graph.groups.append(_title(layer.name, type(layer).__name__, show_layer_names))
        return tuple(boxes[id(layer)] for layer in stack[1:])

    for event in _shown_events(record, model, expanded):
        if isinstance(event, trace.LayerCall):
            layer = event.layer
            if id(layer) not in layer_nodes:
                title = _title(layer.name, type(layer).__name__, show_layer_names)
                layer_nodes[id(layer)] = graph.add_node(title, "layer", (), group_of(event.parents))
                layer_calls[id(layer)] = []
            node = layer_nodes[id(layer)]
            layer_calls[id(layer)].append(event)
            made = _tensors(event.outputs)
        else:  # an op of the model's own call (or of an expanded layer's)
            details = _output_details([event.output], show_shapes, show_dtype)
            node = graph.add_node(event.name, "op", details, group_of(event.layers))
            made = [event.output]
        for x in _tensors(event.inputs):
            if id(x) in producer:  # else a weight or a constant: not drawn, as in Keras
                graph.add_edge(producer[id(x)], node)
        for x in made:
            producer[id(x)] = node

    options = (show_shapes, show_dtype, show_layer_activations, show_trainable)
    for key, node in layer_nodes.items():
        graph.nodes[node].details = _layer_details(layer_calls[key], *options)
    return graph


def _shown_events(record: trace.Trace, model, expanded: set) -> list:
    """The layer calls and ops to draw, in the order they ran: those whose enclosing layer
    calls are the model and then only expanded layers. A call drawn whole hides what ran
    inside it; a call that started before op i ran before it (its `start` is i or less)."""

    def shown(stack: tuple) -> bool:
        return bool(stack) and stack[0] is model and all(id(x) in expanded for x in stack[1:])

    events = [
        ((call.start, 0, k), call)
        for k, call in enumerate(record.calls)  # in the order they ended
        if shown(call.parents) and id(call.layer) not in expanded
    ]
    events += [((i, 1, 0), op) for i, op in enumerate(record.ops) if shown(op.layers)]
    return [event for _, event in sorted(events, key=lambda pair: pair[0])]


def _trace_inference(model, caller: str) -> tuple[trace.Trace, list[tuple[str, Tensor]]]:
    """Run `model` once at inference on zeros of its built input shapes, with a batch of one
    (else of the batch it was built on), recording the pass; put back every attribute the pass
    wrote (each layer's output_shape). Returns the record and the (name, tensor) inputs."""
    from tinydeep.layers.layer import Layer  # tinydeep.layers imports much; not at start-up

    if not isinstance(model, Layer):
        raise TypeError(f"{caller}: expected a tinydeep Model or Layer, got {type(model).__name__}")
    if not model.built or model.input_shape is None:
        raise ValueError(
            f"{caller}: {model.where()} is not built yet: call it on a batch first, e.g. "
            "model(x), so that its layers exist and its input shapes are known"
        )
    names, shapes, dtypes, packing = _input_specs(model)
    batches = [1] + [s[0] for s in shapes[:1] if s and s[0] not in (None, 1)]
    for batch in batches:
        inputs = [
            (name, Tensor(backend.to_device(np.zeros((batch, *shape[1:]), dtype), model.device)))
            for name, shape, dtype in zip(names, shapes, dtypes)
        ]
        tensors = [x for _, x in inputs]
        x = dict(inputs) if packing == "dict" else tensors if packing == "list" else tensors[0]
        kept = _keep_state(model)
        try:
            with no_grad(), trace.tracing() as record:
                model(x, training=False)
            return record, inputs
        except Exception as error:  # noqa: BLE001 (reported below, with the inputs tried)
            failure = error
        finally:
            _put_back_state(kept)
    kinds = (TypeError, ValueError, RuntimeError)  # the error's own kind, as a plain one
    kind = next(k for k in kinds if isinstance(failure, k) or k is RuntimeError)
    tried = ", ".join(f"{n} {tuple(s[1:])} {d}" for n, s, d in zip(names, shapes, dtypes))
    raise kind(
        f"{caller}: running {model.where()} at inference on a zero batch ({tried}) failed: "
        f"{failure}. Set `model.input_dtype` to the dtypes its inputs need (a dtype, or one per "
        "input)"
    ) from failure


def _input_specs(model) -> tuple[list[str], list[tuple], list[np.dtype], str]:
    """Names, built shapes, dtypes of the model's inputs, and how they are passed: "one"
    tensor, a "list" or a "dict". Names: a dict's keys, else `model.input_names`, else
    Keras's input_layer, input_layer_1, ... Dtypes: `model.input_dtype` (recorded on the
    first call), else the model's own (float32)."""
    shape = model.input_shape
    if isinstance(shape, dict):
        packing, names, shapes = "dict", list(shape), [tuple(s) for s in shape.values()]
    elif isinstance(shape, list) and all(isinstance(s, (tuple, list)) for s in shape):
        packing, names, shapes = "list", None, [tuple(s) for s in shape]
    else:
        packing, names, shapes = "one", None, [tuple(shape)]
    declared = getattr(model, "input_names", None)
    if names is None and isinstance(declared, (list, tuple)) and len(declared) == len(shapes):
        names = [str(name) for name in declared]
    if names is None:
        names = ["input_layer"] + [f"input_layer_{i}" for i in range(1, len(shapes))]
    return names, shapes, _input_dtypes(model, names), packing


def _input_dtypes(model, names: list[str]) -> list[np.dtype]:
    """The dtype of each input, from `model.input_dtype`: recorded on a model's first call
    (a functional model's from its Inputs), one dtype, one per input, or a dict by name, and
    a user may overwrite it; else the model's own dtype, float32 by default."""
    own = np.dtype(model.dtype if model.dtype is not None else np.float32)
    declared = getattr(model, "input_dtype", None)
    if declared is None:
        return [own] * len(names)
    if isinstance(declared, Mapping):
        return [np.dtype(declared.get(name, own)) for name in names]
    if not isinstance(declared, (list, tuple)):
        return [np.dtype(declared)] * len(names)
    if len(declared) != len(names):
        raise ValueError(
            f"plot_model: {model.where()}.input_dtype has {len(declared)} dtypes, but the "
            f"model was built on {len(names)} inputs {names}"
        )
    return [np.dtype(d) for d in declared]


def _keep_state(model) -> list:
    """Every layer of the tree with its attributes, weights and trainable names as they are."""
    return [
        (layer, dict(vars(layer)), dict(layer._weights), set(layer._trainable_names))
        for _, layer, _ in model.walk()
    ]


def _put_back_state(kept: list) -> None:
    """The attributes as they were: those the pass set again (output_shape) get their old
    values, those it added go; a layer the pass built is unbuilt (its weight registry too)."""
    for layer, attributes, weights, trainable in kept:
        vars(layer).clear()
        vars(layer).update(attributes)
        layer._weights.clear()
        layer._weights.update(weights)
        layer._trainable_names.clear()
        layer._trainable_names.update(trainable)


def _tensors(value) -> list[Tensor]:
    """The Tensors in a layer's or op's inputs or outputs: one, or a list, tuple or dict."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [x for item in value for x in _tensors(item)]
    return []


def _title(name: str, kind: str, show_name: bool) -> str:
    return f"{name} ({kind})" if show_name else kind


def _shape_text(tensors: list[Tensor]) -> str:
    """Keras's shapes: the batch axis as None, "(None, 32, 32, 16)"; a list for several."""
    from tinydeep.layers.model import _batch_free  # the summary's, so the two agree

    shapes = [_batch_free(tuple(x.shape)) for x in tensors]
    return shapes[0] if len(shapes) == 1 else f"[{', '.join(shapes)}]"


def _output_details(outputs: list[Tensor], show_shapes: bool, show_dtype: bool) -> list[str]:
    lines = [f"output: {_shape_text(outputs)}"] if show_shapes else []
    if show_dtype:
        lines.append(f"dtype: {', '.join(dict.fromkeys(str(x.dtype) for x in outputs))}")
    return lines


def _layer_details(calls: list, show_shapes, show_dtype, show_activation, show_trainable):
    """The lines under a layer's title; for a layer called several times with different
    shapes, "multiple", as Keras writes."""

    def one_or_multiple(texts) -> str:
        texts = list(dict.fromkeys(texts))
        return texts[0] if len(texts) == 1 else "multiple"

    lines, layer = [], calls[0].layer
    if show_shapes:
        lines.append(f"input: {one_or_multiple(_shape_text(_tensors(c.inputs)) for c in calls)}")
        lines.append(f"output: {one_or_multiple(_shape_text(_tensors(c.outputs)) for c in calls)}")
    if show_dtype:
        dtypes = (", ".join(str(x.dtype) for x in _tensors(c.outputs)) for c in calls)
        lines.append(f"dtype: {one_or_multiple(dtypes)}")
    if show_activation and callable(getattr(layer, "activation", None)):
        lines.append(f"activation: {activations.name_of(layer.activation)}")
    if show_trainable:
        lines.append(f"trainable: {layer.trainable}")
    return tuple(lines)


# ---- the autodiff graph behind a tensor ------------------------------------------------------


def autodiff_graph(root: Tensor, names: Mapping[str, Tensor] | None = None) -> Graph:
    """The graph backward() walks from `root`: a "tensor" node per tensor and an "op" node per
    recorded op, inputs first. names: {name: tensor} to label tensors by (e.g.
    model.named_weights(), or {"a": a, "b": b}); unnamed tensors are labelled by shape and
    dtype. A non-leaf input the graph keeps as a handle (tinydeep/tensor.py) is the same node
    as its tensor: both carry the op's Node, which is what identifies them here."""
    if not isinstance(root, Tensor):
        raise TypeError(
            f"draw_graph: root must be a Tensor (e.g. a loss), got {type(root).__name__}"
        )
    if names is not None and not isinstance(names, Mapping):
        raise TypeError(
            f"draw_graph: names must be a mapping {{name: Tensor}} such as "
            f"model.named_weights(), got {type(names).__name__}"
        )
    labels: dict[tuple, str] = {}
    for name, tensor in (names or {}).items():
        if not isinstance(tensor, Tensor):
            raise TypeError(
                f"draw_graph: names[{name!r}] must be a Tensor, got {type(tensor).__name__}"
            )
        labels.setdefault(_identity(tensor), str(name))

    graph, node_of = Graph(), {}
    for tensor in _inputs_first(root):
        made_by = tensor._node
        if made_by is not None:
            op = graph.add_node(made_by.name, "op")
            for x in made_by.inputs:
                graph.add_edge(node_of[_identity(x)], op)
        label, details = _tensor_text(tensor, labels.get(_identity(tensor)))
        node_of[_identity(tensor)] = graph.add_node(label, "tensor", details)
        if made_by is not None:
            graph.add_edge(op, node_of[_identity(tensor)])
    return graph


def _identity(tensor: Tensor) -> tuple:
    """What one tensor of the graph is: its Node for a non-leaf (shared with its handle), the
    object itself for a leaf."""
    return ("node", id(tensor._node)) if tensor._node is not None else ("leaf", id(tensor))


def _inputs_first(root: Tensor) -> list[Tensor]:
    """Every tensor of root's graph, each after its inputs (an iterative depth-first search, as
    tensor.py's topological_order, but through every input, not only those needing a grad)."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)
            continue
        if _identity(tensor) in seen:
            continue
        seen.add(_identity(tensor))
        stack.append((tensor, True))
        node = tensor._node
        if node is not None and node.inputs is None:
            raise RuntimeError(
                f"draw_graph: the graph through '{node.name}' was freed by backward(); draw "
                "it before calling backward, or call backward(retain_graph=True) to keep it"
            )
        for x in reversed(node.inputs if node is not None else ()):
            stack.append((x, False))
    return order


def _tensor_text(tensor: Tensor, name: str | None) -> tuple[str, tuple[str, ...]]:
    """A tensor's label (its name, else its shape and dtype) and the lines under it: its shape
    and dtype when named, then, for at most VALUES_UP_TO numbers, its data and gradient (a
    handle keeps no data: its ArraySpec has the shape and dtype)."""
    data = tensor.data
    kind = f"{tuple(data.shape)} {np.dtype(data.dtype)}"
    lines = [kind] if name is not None else []
    small = int(np.prod(data.shape)) <= VALUES_UP_TO
    if small and not isinstance(data, ArraySpec):
        lines.append(f"data {_numbers(data)}")
    grad = tensor.grad if tensor._owner is None else tensor._owner.grad
    if small and grad is not None:
        lines.append(
            "grad (row-sparse)" if isinstance(grad, RowSparseGrad) else f"grad {_numbers(grad)}"
        )
    return (kind if name is None else name), tuple(lines)


def _numbers(array) -> str:
    values = np.asarray(backend.to_device(array, "cpu"))
    return np.array2string(values, precision=4, floatmode="fixed", separator=", ")


# ---- drawing -----------------------------------------------------------------------------------

FONT, SMALL = 10.0, 8.5  # points: a title line, a detail line
PAD_X, PAD_Y = 8.0, 5.0  # points between a node's text and its border
FILL = {"input": "#d5eed5", "layer": "#d6e6f7", "op": "#fdf0c4", "tensor": "#ffffff"}
NODE = {"edgecolor": "#6b6b6b", "linewidth": 0.8, "zorder": 2}
BOX = {"edgecolor": "#9a9a9a", "linestyle": "--", "linewidth": 0.8, "zorder": 0}
ARROW = {
    "arrowstyle": "-|>,head_length=0.5,head_width=0.25",
    "mutation_scale": 10,
    "linewidth": 0.9,
    "color": "#505050",
    "zorder": 1,
}
TEXT = {"parse_math": False, "zorder": 3}  # a "$" in a layer's name is not mathematics


def render(graph: Graph, format: str = "png", rankdir: str = "TB", dpi: float = 96) -> bytes:
    """The picture of `graph` as the bytes of a PNG, SVG or PDF file. Fonts and gaps are fixed
    in points, so the figure grows with the graph and every label stays legible; text stays
    text in an SVG (searchable, and checked by the tests)."""
    Figure, Path, patches, rc_context = _matplotlib()
    sizes = [_node_size(node) for node in graph.nodes]  # (width, height) in points
    tb = rankdir == "TB"
    layout = layered_layout(
        [(w, h) if tb else (h, w) for w, h in sizes],  # (along a rank, across ranks)
        graph.edges,
        [node.group for node in graph.nodes],
        label_axis="across" if tb else "along",  # a box's label goes on its top side
    )

    def xy(point) -> tuple[float, float]:  # layout (along, across) -> drawing (x, y), y down
        return point if tb else (point[1], point[0])

    # One unit of the axes is one point, so sizes in points are drawn as they were measured.
    margin = 6.0
    width, height = (extent + 2 * margin for extent in xy(layout.size))
    width += 26 if None in layout.routes else 0  # room for self-loops, drawn to the right
    if format == "png":  # Agg draws at most 2^16 pixels a side: a huge graph gets a lower dpi
        dpi = min(dpi, 65000 * 72 / max(width, height))
    figure = Figure(figsize=(width / 72, height / 72), dpi=dpi)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(-margin, width - margin)
    axes.set_ylim(height - margin, -margin)  # y grows downwards, as ranks do in a TB drawing
    axes.axis("off")

    for path, box in sorted(layout.boxes.items(), key=lambda item: len(item[0])):  # outer first
        (x0, y0), (x1, y1) = xy(box[:2]), xy(box[2:])
        shade = (max(0.97 - 0.025 * len(path), 0.85),) * 3  # deeper boxes a little darker
        style = "round,pad=0,rounding_size=6"
        axes.add_patch(
            patches.FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, style, facecolor=shade, **BOX)
        )
        label = graph.groups[path[-1]]
        axes.text(
            x0 + 6, y0 + 3, label, ha="left", va="top", fontsize=SMALL, style="italic", **TEXT
        )
    for (source, _), route in zip(graph.edges, layout.routes):
        if route is None:  # a self-loop
            verts, codes = _loop(xy(layout.centers[source]), sizes[source], Path)
        else:
            verts, codes = _curve([xy(p) for p in route], tb, Path)
        axes.add_patch(patches.FancyArrowPatch(path=Path(verts, codes), **ARROW))
    for node, center, (w, h) in zip(graph.nodes, layout.centers, sizes):
        x, y = xy(center)
        style = f"round,pad=0,rounding_size={h / 2 if node.kind == 'op' else 4}"  # ops: pills
        fill = FILL.get(node.kind, "#ffffff")
        axes.add_patch(
            patches.FancyBboxPatch((x - w / 2, y - h / 2), w, h, style, facecolor=fill, **NODE)
        )
        top = y - h / 2 + PAD_Y
        axes.text(x, top + FONT * 0.65, node.label, ha="center", va="center", fontsize=FONT, **TEXT)
        for i, line in enumerate(node.details):
            line_y = top + FONT * 1.3 + SMALL * 1.25 * (i + 0.5)
            axes.text(x, line_y, line, ha="center", va="center", fontsize=SMALL, **TEXT)

    buffer = io.BytesIO()
    # Text as text in an SVG (not as paths), and the SVG's element ids the same on every run.
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "tinydeep"}):
        figure.savefig(buffer, format=format, dpi=dpi)
    return buffer.getvalue()


def _node_size(node: GraphNode) -> tuple[float, float]:
    """(width, height) in points: the widest line, the lines' heights, the padding; an op's
    pill shape needs its round ends added."""
    width = max([_text_width(node.label, FONT)] + [_text_width(t, SMALL) for t in node.details])
    width += 2 * PAD_X + (FONT if node.kind == "op" else 0.0)
    height = 2 * PAD_Y + FONT * 1.3 + SMALL * 1.25 * len(node.details)
    return width, height


@lru_cache(maxsize=4096)
def _text_width(text: str, size: float) -> float:
    """How wide matplotlib's default font draws `text` at `size` points, in points."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    width, _, _ = TextToPath().get_text_width_height_descent(text, FontProperties(size=size), False)
    return width


def _curve(points: list, tb: bool, Path) -> tuple[list, list]:
    """A smooth route through `points`: one cubic Bezier curve from rank to rank, leaving and
    arriving along the rank direction, as Graphviz draws its splines."""
    verts, codes = [points[0]], [Path.MOVETO]
    for (x0, y0), (x1, y1) in pairwise(points):
        if tb:
            middle = (y0 + y1) / 2
            verts += [(x0, middle), (x1, middle), (x1, y1)]
        else:
            middle = (x0 + x1) / 2
            verts += [(middle, y0), (middle, y1), (x1, y1)]
        codes += [Path.CURVE4] * 3
    return verts, codes


def _loop(center, size, Path) -> tuple[list, list]:
    """An edge from a node to itself: a loop out of its right side and back in."""
    (x, y), (w, h) = center, size
    right = x + w / 2
    verts = [
        (right, y - h / 4),
        (right + 24, y - h / 2),
        (right + 24, y + h / 2),
        (right, y + h / 4),
    ]
    return verts, [Path.MOVETO] + [Path.CURVE4] * 3


def _matplotlib():
    try:
        from matplotlib import patches, rc_context
        from matplotlib.figure import Figure
        from matplotlib.path import Path
    except ImportError as error:
        raise ImportError(
            "plot_model and draw_graph draw with matplotlib: pip install 'tinydeep[plot]' "
            "(or pip install matplotlib)"
        ) from error
    return Figure, Path, patches, rc_context


# ---- the front doors -------------------------------------------------------------------------


class Drawing:
    """A finished picture: `data`, the bytes of a PNG (or of an SVG: `format`). A notebook
    shows it, as Keras's plot_model returns an image there."""

    def __init__(self, data: bytes, format: str):
        self.data, self.format = data, format

    def _repr_png_(self) -> bytes | None:
        return self.data if self.format == "png" else None

    def _repr_svg_(self) -> str | None:
        return self.data.decode() if self.format == "svg" else None

    def __repr__(self) -> str:
        return f"<Drawing: {self.format.upper()}, {len(self.data):,} bytes>"


def plot_model(
    model,
    to_file: str | Path = "model.png",
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: float = 96,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
) -> Drawing:
    """Draw the layer graph of a built model into `to_file` (.png, .svg or .pdf), as Keras's
    keras.utils.plot_model, and return the picture (a PNG, or the SVG), which a notebook shows.

    show_shapes: each layer's input and output shapes, the batch axis as None. show_dtype: the
    outputs' dtype. show_layer_names: "name (Class)" rather than "Class". rankdir: "TB" (top
    to bottom) or "LR" (left to right). expand_nested: draw the layers inside nested models
    and blocks, boxed under the outer layer's name. dpi: of a PNG (Keras 3's default is 200;
    96 keeps big graphs small). show_layer_activations: a layer's activation function.
    show_trainable: whether each layer is trainable.

    The model runs once on a batch of one example of zeros, at inference, and is left as it
    was; it must have been built (called on a batch). Needs matplotlib (tinydeep[plot])."""
    format = _format_of(to_file, "plot_model")
    _check_drawing_args("plot_model", rankdir, dpi)
    graph = model_graph(
        model,
        show_shapes,
        show_dtype,
        show_layer_names,
        expand_nested,
        show_layer_activations,
        show_trainable,
    )
    return _save_and_show(graph, to_file, format, rankdir, dpi)


def draw_graph(
    root: Tensor,
    to_file: str | Path | None = None,
    rankdir: str = "LR",
    names: Mapping[str, Tensor] | None = None,
    dpi: float = 96,
) -> Drawing:
    """Draw the autodiff graph behind `root` (a loss), as micrograd's draw_dot: a box per
    tensor (its shape and dtype; its data and gradient when it holds at most 4 numbers) and a
    pill per op. names: {name: tensor} labels, e.g. model.named_weights() or {"a": a}.

    Returns the picture (PNG, or SVG when to_file ends in .svg), which a notebook shows, and
    writes it to `to_file` when given. Draw before backward(), or pass retain_graph=True to
    backward: it frees the graph (drawing a freed one raises RuntimeError). To see the
    gradients of intermediate tensors, call .retain_grad() on them before backward."""
    format = "png" if to_file is None else _format_of(to_file, "draw_graph")
    _check_drawing_args("draw_graph", rankdir, dpi)
    return _save_and_show(autodiff_graph(root, names), to_file, format, rankdir, dpi)


def _save_and_show(graph: Graph, to_file, format: str, rankdir: str, dpi: float) -> Drawing:
    data = render(graph, format, rankdir, dpi)
    if to_file is not None:
        with atomic_write(to_file) as file:  # a picture half written is never left behind
            file.write(data)
    if format == "pdf":  # a notebook cannot show a PDF: show the same picture as a PNG
        return Drawing(render(graph, "png", rankdir, dpi), "png")
    return Drawing(data, format)


def _format_of(to_file, caller: str) -> str:
    if not isinstance(to_file, (str, Path)):
        raise TypeError(f"{caller}: to_file must be a path, got {type(to_file).__name__}")
    suffix = Path(to_file).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ValueError(
            f"{caller}: to_file must end in .png, .svg or .pdf (the format is taken from it), "
            f"got {str(to_file)!r}"
        )
    return suffix


def _check_drawing_args(caller: str, rankdir, dpi) -> None:
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"{caller}: rankdir must be 'TB' or 'LR', got {rankdir!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not dpi > 0:
        raise ValueError(f"{caller}: dpi must be a positive number, got {dpi!r}")
