"""plot_model and draw_graph (tinydeep/plot.py): the extracted graphs exactly, then the pictures.

The structure tests compare every node (label, kind, lines, box) and every edge with what the
model's code says it does: a Sequential with a Dropout in the chain, a residual block (its
`y + x` as an op node, its ReLU called twice as one node), ResNet-8 whole and expanded, Wide &
Deep (four inputs, integer ids, a concatenate op), a subclassed model with list and dict
inputs and a shared layer; and, for draw_graph, micrograd's neuron with its values and
gradients. The rendering tests read the files back: PNG dimensions, SVG text, PDF header.
Then: the model is left exactly as it was, and bad input gets a clear error.
"""

from __future__ import annotations

import struct
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from devices import needs_gpu

from tinydeep import Tensor, ops
from tinydeep.layers import Dense, Dropout, Embedding, Model, ReLU, Sequential
from tinydeep.models.resnet import ResidualBlock, ResNet
from tinydeep.models.wide_deep import WideAndDeep
from tinydeep.plot import autodiff_graph, draw_graph, model_graph, plot_model, render
from tinydeep.random import generator

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def nodes_of(graph) -> list[tuple]:
    return [(n.label, n.kind, n.details, n.group) for n in graph.nodes]


def title(layer) -> str:
    return f"{layer.name} ({type(layer).__name__})"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk, which follows the 8-byte signature."""
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">II", data[16:24])


def svg_texts(data: bytes) -> list[str]:
    root = ET.fromstring(data)
    return [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]


# ---- models to draw ------------------------------------------------------------------------------


def small_sequential() -> Sequential:
    model = Sequential(
        [Dense(4, activation="relu", name="d1"), Dropout(0.5, name="drop"), Dense(2, name="d2")]
    )
    model(np.zeros((3, 5), np.float32))
    return model


class TwoTowers(Model):
    """Two inputs as a list; one ReLU layer shared by both towers (on 3 and 4 features)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.left, self.right = Dense(3, name="left"), Dense(4, name="right")
        self.shared, self.head = ReLU(name="shared"), Dense(1, name="head")

    def call(self, inputs):
        a, b = inputs
        x, y = self.shared(self.left(a)), self.shared(self.right(b))
        return self.head(ops.concatenate([x, y], axis=1))  # (N, 7) -> (N, 1)


class ByName(Model):
    """A dict of inputs; its own call scales one of them (a `multiply` op node)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = Dense(2, name="by_name_dense")

    def call(self, inputs):
        return self.dense(inputs["features"]) + inputs["offset"] * 2.0


class Ids(Model):
    """Integer ids in, and nothing says so: plot_model cannot guess their dtype."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embedding = Embedding(10, 3, name="ids_embedding")

    def call(self, ids):
        return self.embedding(ids)


def resnet8() -> ResNet:
    model = ResNet(8)
    model(np.zeros((2, 8, 8, 3), np.float32))
    return model


# ---- model_graph: the structure --------------------------------------------------------------


def test_sequential_is_a_chain_with_every_option_shown_and_dropout_in_it():
    model = small_sequential()
    graph = model_graph(
        model, show_shapes=True, show_dtype=True, show_layer_activations=True, show_trainable=True
    )
    assert nodes_of(graph) == [
        ("input_layer (InputLayer)", "input", ("output: (None, 5)", "dtype: float32"), ()),
        (
            "d1 (Dense)",
            "layer",
            (
                "input: (None, 5)",
                "output: (None, 4)",
                "dtype: float32",
                "activation: relu",
                "trainable: True",
            ),
            (),
        ),
        (
            "drop (Dropout)",
            "layer",
            ("input: (None, 4)", "output: (None, 4)", "dtype: float32", "trainable: True"),
            (),
        ),
        (
            "d2 (Dense)",
            "layer",
            (
                "input: (None, 4)",
                "output: (None, 2)",
                "dtype: float32",
                "activation: linear",
                "trainable: True",
            ),
            (),
        ),
    ]
    # Dropout returns its input at inference: the same tensor, yet d2 reads it from Dropout.
    assert graph.edges == [(0, 1), (1, 2), (2, 3)]
    assert graph.groups == []


def test_without_layer_names_a_node_is_its_class():
    graph = model_graph(small_sequential(), show_layer_names=False)
    assert [n.label for n in graph.nodes] == ["InputLayer", "Dense", "Dropout", "Dense"]
    assert all(n.details == () for n in graph.nodes)


def test_residual_block_draws_its_add_as_an_op_and_its_relu_once():
    block = ResidualBlock(4)
    block(np.zeros((2, 6, 6, 4), np.float32))  # same shape in and out: the identity shortcut
    graph = model_graph(block, show_shapes=True)
    shape = ("input: (None, 6, 6, 4)", "output: (None, 6, 6, 4)")
    assert nodes_of(graph) == [
        ("input_layer (InputLayer)", "input", ("output: (None, 6, 6, 4)",), ()),
        (title(block.conv1), "layer", shape, ()),
        (title(block.bn1), "layer", shape, ()),
        (title(block.relu), "layer", shape, ()),  # called twice, drawn once
        (title(block.conv2), "layer", shape, ()),
        (title(block.bn2), "layer", shape, ()),
        ("add", "op", ("output: (None, 6, 6, 4)",), ()),  # y + x, in the block's own call
    ]
    inputs, conv1, bn1, relu, conv2, bn2, add = range(7)
    assert sorted(graph.edges) == sorted(
        [
            (inputs, conv1),
            (conv1, bn1),
            (bn1, relu),
            (relu, conv2),
            (conv2, bn2),
            (bn2, add),
            (inputs, add),  # the shortcut
            (add, relu),  # the relu's second call, on the sum
        ]
    )


def test_a_strided_residual_block_draws_its_shortcut_layer():
    block = ResidualBlock(8, strides=2)
    block(np.zeros((2, 6, 6, 4), np.float32))
    graph = model_graph(block)
    labels = [n.label for n in graph.nodes]
    assert labels == ["input_layer (InputLayer)"] + [
        title(x) for x in (block.conv1, block.bn1, block.relu, block.conv2, block.bn2)
    ] + [title(block.shortcut), "add"]
    inputs, conv1, bn1, relu, conv2, bn2, shortcut, add = range(8)
    assert sorted(graph.edges) == sorted(
        [
            (inputs, conv1),
            (conv1, bn1),
            (bn1, relu),
            (relu, conv2),
            (conv2, bn2),
            (inputs, shortcut),
            (bn2, add),
            (shortcut, add),
            (add, relu),
        ]
    )


def test_resnet_top_level_is_a_chain_of_its_direct_layers():
    model = resnet8()
    graph = model_graph(model, show_shapes=True)
    layers = [model.stem, model.stem_bn, model.stem_relu, *model.blocks, model.pool, model.head]
    assert [n.label for n in graph.nodes] == ["input_layer (InputLayer)"] + [
        title(x) for x in layers
    ]
    assert all(n.kind == "layer" for n in graph.nodes[1:]) and graph.groups == []
    assert graph.edges == [(i, i + 1) for i in range(len(layers))]
    assert graph.nodes[0].details == ("output: (None, 8, 8, 3)",)
    assert graph.nodes[4].details == ("input: (None, 8, 8, 16)", "output: (None, 8, 8, 16)")
    assert graph.nodes[6].details == ("input: (None, 4, 4, 32)", "output: (None, 2, 2, 64)")
    assert graph.nodes[-1].details == ("input: (None, 64)", "output: (None, 10)")


def test_resnet_expanded_boxes_each_block_with_its_layers_and_ops():
    model = resnet8()
    graph = model_graph(model, expand_nested=True)
    assert graph.groups == [title(block) for block in model.blocks]
    expected = [
        ("input_layer (InputLayer)", "input", ()),
        (title(model.stem), "layer", ()),
        (title(model.stem_bn), "layer", ()),
        (title(model.stem_relu), "layer", ()),
    ]
    edges, feeding = [(0, 1), (1, 2), (2, 3)], 3  # `feeding`: the node that feeds the block
    for g, block in enumerate(model.blocks):
        base = len(expected)
        inner = [block.conv1, block.bn1, block.relu, block.conv2, block.bn2]
        inner += [block.shortcut] if block.shortcut is not None else []
        expected += [(title(x), "layer", (g,)) for x in inner] + [("add", "op", (g,))]
        conv1, bn1, relu, conv2, bn2 = range(base, base + 5)
        add = base + len(inner)
        edges += [(feeding, conv1), (conv1, bn1), (bn1, relu), (relu, conv2), (conv2, bn2)]
        edges += [(bn2, add), (add, relu)]
        if block.shortcut is None:
            edges.append((feeding, add))
        else:
            edges += [(feeding, base + 5), (base + 5, add)]
        feeding = relu  # the block's output is its relu's second call
    pool = len(expected)
    expected += [(title(model.pool), "layer", ()), (title(model.head), "layer", ())]
    edges += [(feeding, pool), (pool, pool + 1)]
    assert [(n.label, n.kind, n.group) for n in graph.nodes] == expected
    assert sorted(graph.edges) == sorted(edges)
    assert [block.shortcut is None for block in model.blocks] == [True, False, False]


def test_wide_and_deep_draws_its_four_inputs_and_its_own_ops():
    model = WideAndDeep(50, {"city": 10, "device": 4}, hidden=(8,), num_numeric=3)
    ids = np.zeros(5, np.int64)
    model([np.zeros((5, 2), np.int64), ids, ids, np.zeros((5, 3), np.float32)])
    graph = model_graph(model, show_shapes=True, show_dtype=True)
    city, device = model.embeddings["city"], model.embeddings["device"]
    assert nodes_of(graph) == [
        ("wide (InputLayer)", "input", ("output: (None, 2)", "dtype: int64"), ()),
        ("city (InputLayer)", "input", ("output: (None,)", "dtype: int64"), ()),
        ("device (InputLayer)", "input", ("output: (None,)", "dtype: int64"), ()),
        ("numeric (InputLayer)", "input", ("output: (None, 3)", "dtype: float32"), ()),
        (title(model.wide), "layer", ("input: (None, 2)", "output: (None, 1)", "dtype: float32"), ()),
        (title(city), "layer", ("input: (None,)", "output: (None, 8)", "dtype: float32"), ()),
        (title(device), "layer", ("input: (None,)", "output: (None, 8)", "dtype: float32"), ()),
        ("concatenate", "op", ("output: (None, 19)", "dtype: float32"), ()),
        (title(model.hidden[0]), "layer", ("input: (None, 19)", "output: (None, 8)", "dtype: float32"), ()),
        (title(model.deep_logit), "layer", ("input: (None, 8)", "output: (None, 1)", "dtype: float32"), ()),
        ("add", "op", ("output: (None, 1)", "dtype: float32"), ()),
    ]  # fmt: skip
    wide, city, device, numeric, linear, embed_city, embed_device, concat, hidden, deep, add = (
        range(11)
    )
    assert sorted(graph.edges) == sorted(
        [
            (wide, linear),
            (city, embed_city),
            (device, embed_device),
            (embed_city, concat),
            (embed_device, concat),
            (numeric, concat),
            (concat, hidden),
            (hidden, deep),
            (linear, add),
            (deep, add),
        ]
    )


def test_list_inputs_get_keras_names_and_a_shared_layer_is_one_node():
    model = TwoTowers()
    model([np.zeros((2, 5), np.float32), np.zeros((2, 6), np.float32)])
    graph = model_graph(model, show_shapes=True)
    assert nodes_of(graph) == [
        ("input_layer (InputLayer)", "input", ("output: (None, 5)",), ()),
        ("input_layer_1 (InputLayer)", "input", ("output: (None, 6)",), ()),
        ("left (Dense)", "layer", ("input: (None, 5)", "output: (None, 3)"), ()),
        ("shared (ReLU)", "layer", ("input: multiple", "output: multiple"), ()),
        ("right (Dense)", "layer", ("input: (None, 6)", "output: (None, 4)"), ()),
        ("concatenate", "op", ("output: (None, 7)",), ()),
        ("head (Dense)", "layer", ("input: (None, 7)", "output: (None, 1)"), ()),
    ]
    a, b, left, shared, right, concat, head = range(7)
    assert sorted(graph.edges) == sorted(
        [(a, left), (left, shared), (b, right), (right, shared), (shared, concat), (concat, head)]
    )


def test_a_layer_applied_to_its_own_output_has_an_edge_to_itself(tmp_path):
    class Twice(Model):
        def __init__(self):
            super().__init__()
            self.dense, self.relu = Dense(3, name="twice_dense"), ReLU(name="twice_relu")

        def call(self, x):
            return self.relu(self.relu(self.dense(x)))

    model = Twice()
    model(np.zeros((2, 4), np.float32))
    graph = model_graph(model)
    assert graph.edges == [(0, 1), (1, 2), (2, 2)]
    looped = png_size(plot_model(model, tmp_path / "loop.png").data)[0]
    graph.edges.remove((2, 2))
    assert looped - png_size(render(graph))[0] == pytest.approx(26 * 96 / 72, abs=2)  # its room


def test_dict_inputs_are_named_by_their_keys():
    model = ByName()
    model({"features": np.zeros((2, 3), np.float32), "offset": np.zeros((2, 2), np.float32)})
    graph = model_graph(model)
    assert [(n.label, n.kind) for n in graph.nodes] == [
        ("features (InputLayer)", "input"),
        ("offset (InputLayer)", "input"),
        ("by_name_dense (Dense)", "layer"),
        ("multiply", "op"),
        ("add", "op"),
    ]
    assert sorted(graph.edges) == [(0, 2), (1, 3), (2, 4), (3, 4)]


# ---- draw_graph: the structure ---------------------------------------------------------------


def neuron():
    """micrograd's example neuron: o = tanh(x1*w1 + x2*w2 + b), every tensor kept (retain_grad)
    so that the drawing shows every gradient, after backward(retain_graph=True)."""
    x1, x2 = Tensor(2.0, requires_grad=True), Tensor(0.0, requires_grad=True)
    w1, w2 = Tensor(-3.0, requires_grad=True), Tensor(1.0, requires_grad=True)
    b = Tensor(6.8813735870195432, requires_grad=True)
    x1w1, x2w2 = (x1 * w1).retain_grad(), (x2 * w2).retain_grad()
    n = (x1w1 + x2w2 + b).retain_grad()
    o = n.tanh().retain_grad()
    return o, {
        "x1": x1,
        "x2": x2,
        "w1": w1,
        "w2": w2,
        "b": b,
        "x1w1": x1w1,
        "x2w2": x2w2,
        "n": n,
        "o": o,
    }


def test_draw_graph_of_micrograds_neuron_shows_data_and_gradients():
    o, names = neuron()
    o.backward(retain_graph=True)
    graph = autodiff_graph(o, names)

    def t(name, data, grad):
        return (name, "tensor", ("() float32", f"data {data}", f"grad {grad}"), ())

    def op(name):
        return (name, "op", (), ())

    unnamed_sum = ("() float32", "tensor", ("data -6.0000",), ())  # x1w1 + x2w2: not retained
    assert nodes_of(graph) == [
        t("x1", "2.0000", "-1.5000"),
        t("w1", "-3.0000", "1.0000"),
        op("multiply"),
        t("x1w1", "-6.0000", "0.5000"),
        t("x2", "0.0000", "0.5000"),
        t("w2", "1.0000", "0.0000"),
        op("multiply"),
        t("x2w2", "0.0000", "0.5000"),
        op("add"),
        unnamed_sum,
        t("b", "6.8814", "0.5000"),
        op("add"),
        t("n", "0.8814", "0.5000"),
        op("tanh"),
        t("o", "0.7071", "1.0000"),
    ]
    assert graph.edges == [
        (0, 2), (1, 2), (2, 3),  # x1 * w1
        (4, 6), (5, 6), (6, 7),  # x2 * w2
        (3, 8), (7, 8), (8, 9),  # + 
        (9, 11), (10, 11), (11, 12),  # + b
        (12, 13), (13, 14),  # tanh
    ]  # fmt: skip


def test_draw_graph_labels_weights_by_their_layer_path_and_hides_big_values():
    model = Sequential([Dense(2)])
    x = Tensor(np.ones((4, 3), np.float32))
    loss = (model(x) ** 2).mean()
    graph = autodiff_graph(loss, model.named_weights())
    tensors = {n.label: n.details for n in graph.nodes if n.kind == "tensor"}
    assert tensors["0/kernel"] == ("(3, 2) float32",)  # 6 numbers: too many to show
    assert tensors["0/bias"] == ("(2,) float32", "data [0.0000, 0.0000]")
    assert tensors["(4, 3) float32"] == ()  # the batch: unnamed, labelled by its shape
    assert [n.label for n in graph.nodes if n.kind == "op"] == [
        "matmul",
        "add",
        "power_scalar",
        "mean",
    ]


def test_a_big_intermediate_kept_as_a_handle_is_its_tensor_named_once():
    x = Tensor(np.ones((200, 100), np.float32), requires_grad=True)  # 80 KB: over 64 KiB
    y = x * 2.0  # non-leaf and big: its readers keep its graph handle, not y itself
    loss = (y.exp() + y * 3.0).sum()
    readers = [t._node for t in loss._node.inputs[0]._node.inputs]  # exp, and multiply by 3
    assert all(r.inputs[0] is not y and r.inputs[0]._node is y._node for r in readers)
    graph = autodiff_graph(loss, {"x": x, "y": y})
    labels = [n.label for n in graph.nodes]
    assert labels.count("y") == 1  # named through its handle: both carry y's Node
    y_node = labels.index("y")
    assert graph.nodes[y_node].details == ("(200, 100) float32",)  # a handle holds no data
    made_by = [labels[a] for a, b in graph.edges if b == y_node]
    read_by = [labels[b] for a, b in graph.edges if a == y_node]
    assert made_by == ["multiply"] and sorted(read_by) == ["exp", "multiply"]


def test_draw_graph_of_a_freed_graph_says_so():
    o, _ = neuron()
    o.backward()  # frees the graph
    with pytest.raises(RuntimeError, match="freed by backward.*retain_graph=True"):
        autodiff_graph(o)


def test_draw_graph_of_a_leaf_is_that_one_tensor():
    graph = autodiff_graph(Tensor([1.0, 2.0]))
    assert nodes_of(graph) == [("(2,) float32", "tensor", ("data [1.0000, 2.0000]",), ())]
    assert graph.edges == []


# ---- rendering ----------------------------------------------------------------------------------


def test_png_file_is_the_returned_picture_and_grows_with_the_graph(tmp_path):
    small = plot_model(small_sequential(), tmp_path / "small.png")
    model = resnet8()
    top = plot_model(model, tmp_path / "top.png", show_shapes=True)
    expanded = plot_model(model, tmp_path / "sub" / "expanded.png", expand_nested=True)
    assert (tmp_path / "small.png").read_bytes() == small.data == small._repr_png_()
    assert small._repr_svg_() is None
    sizes = [png_size(d.data) for d in (small, top, expanded)]
    assert sizes[0][1] < sizes[1][1] < sizes[2][1]  # taller with each rank
    assert sizes[0][0] < sizes[1][0]  # wider with the shapes shown
    assert png_size((tmp_path / "sub" / "expanded.png").read_bytes()) == sizes[2]
    double = plot_model(small_sequential(), tmp_path / "double.png", dpi=192)
    assert abs(png_size(double.data)[0] - 2 * sizes[0][0]) <= 2


def test_rankdir_lr_lays_a_chain_out_left_to_right(tmp_path):
    model = small_sequential()
    tall = png_size(plot_model(model, tmp_path / "tb.png").data)
    wide = png_size(plot_model(model, tmp_path / "lr.png", rankdir="LR").data)
    assert tall[1] > tall[0] and wide[0] > wide[1]


def test_svg_parses_and_holds_every_label_as_text(tmp_path):
    model = resnet8()
    picture = plot_model(model, tmp_path / "model.svg", show_shapes=True, expand_nested=True)
    assert picture._repr_png_() is None and picture._repr_svg_() == picture.data.decode()
    texts = svg_texts((tmp_path / "model.svg").read_bytes())
    graph = model_graph(model, show_shapes=True, expand_nested=True)
    wanted = [n.label for n in graph.nodes] + [t for n in graph.nodes for t in n.details]
    assert sorted(texts) == sorted(wanted + graph.groups)


def test_pdf_is_written_and_a_png_shown(tmp_path):
    picture = plot_model(small_sequential(), tmp_path / "model.pdf")
    assert (tmp_path / "model.pdf").read_bytes()[:5] == b"%PDF-"
    assert picture.format == "png" and picture.data[:8] == PNG_MAGIC


def test_draw_graph_renders_without_a_file_and_to_svg(tmp_path):
    o, names = neuron()
    assert draw_graph(o).data[:8] == PNG_MAGIC
    draw_graph(o, tmp_path / "neuron.svg", names=names)
    texts = svg_texts((tmp_path / "neuron.svg").read_bytes())
    assert {"x1", "w2", "multiply", "tanh", "data 0.7071"} <= set(texts)


def test_drawing_leaves_pyplot_alone(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    figure = plt.figure()
    try:
        numbers, backend = plt.get_fignums(), matplotlib.get_backend()
        plot_model(small_sequential(), tmp_path / "model.svg")
        assert plt.get_fignums() == numbers and plt.gcf() is figure
        assert matplotlib.get_backend() == backend
        assert matplotlib.rcParams["svg.fonttype"] == "path"  # set only while saving
    finally:
        plt.close(figure)


# ---- the model is left as it was ----------------------------------------------------------------


def state_of(model) -> tuple:
    """Every weight's values, and every layer's attributes (shapes seen, built, ...)."""
    weights = {name: w.numpy().copy() for name, w in model.named_weights().items()}
    grads = [w.grad for w in model.weights]
    attributes = [
        (path, {k: v for k, v in vars(layer).items() if not k.startswith("_")})
        for path, layer, _ in model.walk()
    ]
    return weights, grads, attributes, generator().bit_generator.state


def test_plotting_changes_nothing_in_the_model(tmp_path):
    model = resnet8()
    model(np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32), training=True)
    weights, grads, attributes, random_state = state_of(model)
    assert model.output_shape == (2, 10) and model.blocks[1].conv1.output_shape == (2, 4, 4, 32)
    plot_model(model, tmp_path / "model.png", show_shapes=True, expand_nested=True)
    model_graph(model)
    after = state_of(model)
    assert after[0].keys() == weights.keys()
    for name, values in weights.items():  # BatchNorm's moving statistics among them
        np.testing.assert_array_equal(after[0][name], values, err_msg=name)
    assert after[1:] == (grads, attributes, random_state)
    assert all(g is None for g in after[1])


# ---- errors -----------------------------------------------------------------------------------------


def test_an_unbuilt_model_is_an_error_saying_to_call_it_first(tmp_path):
    with pytest.raises(ValueError, match="plot_model: .* is not built yet: call it on a batch"):
        plot_model(Sequential([Dense(2)]), tmp_path / "model.png")
    assert not (tmp_path / "model.png").exists()


def test_a_model_that_fails_on_zeros_is_named_and_left_as_it_was(tmp_path):
    model = Ids(name="ids")
    model(np.zeros((2, 4), np.int64))
    assert model.input_dtype == np.int64  # recorded on the first call: plot_model uses it
    labels = [n.label for n in model_graph(model).nodes]
    assert labels == ["input_layer (InputLayer)", "ids_embedding (Embedding)"]
    model.input_dtype = "float32"  # as if it said the wrong thing: the pass fails on zeros
    before = state_of(model)
    with pytest.raises(TypeError, match=r"plot_model: running Ids .*\(4,\) float32.*input_dtype"):
        plot_model(model, tmp_path / "model.png")
    assert not (tmp_path / "model.png").exists()
    assert state_of(model)[2] == before[2]
    model.input_dtype = ["int64", "int64"]
    with pytest.raises(
        ValueError, match=r"Ids 'ids'.input_dtype has 2 dtypes, .* built on 1 inputs"
    ):
        plot_model(model, tmp_path / "model.png")
    model.input_dtype = "int64"
    labels = [n.label for n in model_graph(model).nodes]
    assert labels == ["input_layer (InputLayer)", "ids_embedding (Embedding)"]


@pytest.mark.parametrize(
    ("arguments", "kind", "message"),
    [
        ({"to_file": "model.jpg"}, ValueError, "to_file must end in .png, .svg or .pdf"),
        ({"to_file": 3}, TypeError, "to_file must be a path, got int"),
        ({"rankdir": "BT"}, ValueError, "rankdir must be 'TB' or 'LR', got 'BT'"),
        ({"dpi": 0}, ValueError, "dpi must be a positive number, got 0"),
    ],
)
def test_bad_arguments_are_named(tmp_path, monkeypatch, arguments, kind, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(kind, match=f"plot_model: {message}"):
        plot_model(small_sequential(), **arguments)
    assert list(tmp_path.iterdir()) == []


def test_plot_model_needs_a_layer():
    with pytest.raises(TypeError, match="plot_model: expected a tinydeep Model or Layer, got dict"):
        plot_model({}, "model.png")


def test_draw_graph_bad_arguments_are_named():
    x = Tensor(1.0, requires_grad=True)
    with pytest.raises(TypeError, match="draw_graph: root must be a Tensor.*got ndarray"):
        draw_graph(np.ones(2))
    with pytest.raises(TypeError, match="draw_graph: names must be a mapping.*got list"):
        draw_graph(x * 2, names=[x])
    with pytest.raises(TypeError, match=r"draw_graph: names\['x'\] must be a Tensor, got float"):
        draw_graph(x * 2, names={"x": 1.0})
    with pytest.raises(ValueError, match="draw_graph: to_file must end in .png, .svg or .pdf"):
        draw_graph(x * 2, "graph.gif")


def test_without_matplotlib_the_error_says_what_to_install(monkeypatch, tmp_path):
    model = small_sequential()
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: an ImportError
    with pytest.raises(ImportError, match=r"pip install 'tinydeep\[plot\]'"):
        plot_model(model, tmp_path / "model.png")
    assert not (tmp_path / "model.png").exists()


@needs_gpu
def test_a_model_on_the_gpu_is_drawn_from_a_batch_on_the_gpu():
    model = ResNet(8).to("cuda")
    model(Tensor(np.zeros((2, 8, 8, 3), np.float32)).to("cuda"))
    graph = model_graph(model, expand_nested=True)
    assert len(graph.nodes) == 26 and len(graph.groups) == 3


def test_a_functional_model_is_drawn_from_its_inputs_with_their_names():
    """The tutorials' functional Wide & Deep: named Inputs, a concatenate that reads an input
    and a hidden layer, two outputs."""
    from tinydeep import keras, manual_seed

    manual_seed(0)
    wide = keras.Input(shape=[1], name="Wide_Input")
    deep = keras.Input(shape=[1], name="Deep_Input")
    hidden_1 = Dense(30, activation="relu", name="h1")(deep)
    hidden_2 = Dense(30, activation="relu", name="h2")(hidden_1)
    output = Dense(1, name="Output")(keras.layers.concatenate([wide, hidden_2], name="cat"))
    aux = Dense(1, name="aux_Output")(hidden_2)
    model = keras.Model(inputs=[wide, deep], outputs=[output, aux])
    graph = model_graph(model, show_shapes=True)
    labels = [node.label for node in graph.nodes]
    assert labels == [
        "Wide_Input (InputLayer)",
        "Deep_Input (InputLayer)",
        "h1 (Dense)",
        "h2 (Dense)",
        "cat (Concatenate)",
        "Output (Dense)",
        "aux_Output (Dense)",
    ]
    named = {(labels[a].split()[0], labels[b].split()[0]) for a, b in graph.edges}
    assert named == {
        ("Deep_Input", "h1"),
        ("h1", "h2"),
        ("Wide_Input", "cat"),
        ("h2", "cat"),
        ("cat", "Output"),
        ("h2", "aux_Output"),
    }
    assert "output: (None, 31)" in graph.nodes[4].details
