"""tinydeep.onnx.export: the file onnxruntime runs gives what model.predict gives.

Every model the project ships (ResNet-20 residual and plain, a ResNet with projection
shortcuts, WideAndDeep wide+deep, wide-only and deep-only, Sequential models of every layer, a
functional model with a shared layer, a model of several inputs and outputs, one of the ops
no layer uses) is exported from a batch of 2 and run by onnxruntime (CPUExecutionProvider) on
a batch of 5, so a batch size baked into the file fails. The weights are moved off their initial values first (`trained_looking`):
every bias, gamma and beta random, and the moving statistics of every batch norm those of a
batch (not 0 and 1), so that a mistake in any of them shows.

Tolerance. Both engines compute in float32, in other orders (im2col or Winograd GEMMs in
tinydeep, MLAS's convolutions in onnxruntime). A result that sums K products is within
gamma_K = K*u of the exact one, relative to the size of its terms (u = 2**-24, float32's unit
roundoff; Higham, "Accuracy and Stability of Numerical Algorithms", 3.1), so the two engines
differ by at most 2*K*u per layer; each layer hands the difference of the layers before it on
at a gain that batch norm keeps near 1, and adds its own. Over the L layers of a model (each
Dense, convolution, pooling or elementwise function rounding once, the longest sum K):

    |onnxruntime - predict| <= 2 * L * K * u * max|predict|

ResNet-20: L = 20, K = 3*3*64 = 576, 1.4e-3 of the logits' scale; WideAndDeep (test sizes):
L = 4, K = 32, 1.5e-5. Measured here: 1.0e-6 of the scale for ResNet-20, 1.1e-5 for the plain
ResNet-20 (whose gains are larger), 4e-8 for WideAndDeep. A planted bug (a kernel transposed,
a pixel of padding moved, padding counted in an average) errs by a large part of the scale.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from devices import needs_gpu

import tinydeep
from tinydeep.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GlobalAveragePooling2D,
    Layer,
    MaxPooling2D,
    Model,
    ReLU,
    Sequential,
)
from tinydeep.models import IdentityBlock, ResNet, WideAndDeep
from tinydeep.tensor import Tensor, differentiable

ONNX_SKIP_REASON = 'needs onnx and onnxruntime: pip install -e ".[onnx]"'
onnx = pytest.importorskip("onnx", reason=ONNX_SKIP_REASON)
ort = pytest.importorskip("onnxruntime", reason=ONNX_SKIP_REASON)
export, ExportError = tinydeep.onnx.export, tinydeep.onnx.ExportError

U = 2.0**-24  # float32's unit roundoff
EXAMPLE, BATCH = 2, 5  # exported from a batch of 2, run on a batch of 5


@pytest.fixture(autouse=True)
def seeded():
    """Every test's initial weights from one seed: the same models, and errors, on every run."""
    tinydeep.manual_seed(0)


def tolerance(depth: int, longest_sum: int, reference: np.ndarray) -> float:
    """2 L K u max|reference|: the module docstring's bound."""
    return 2 * depth * longest_sum * U * float(np.abs(reference).max())


def _as_tuple(values) -> tuple:
    return tuple(values) if isinstance(values, (tuple, list)) else (values,)


def trained_looking(model, batch, seed: int = 0) -> None:
    """Move the weights off their initial values as training would: biases, gammas and betas
    random, all-zero kernels (the wide part's) random, and every batch norm's moving
    statistics set to the statistics of `batch` (one training-mode pass at momentum 0), so
    they match the activations and are not 0 and 1."""
    rng = np.random.default_rng(seed)
    model(batch)  # build
    for path, weight in model.named_weights().items():
        name = path.rsplit("/", 1)[-1]
        if name in ("bias", "beta"):
            weight.data[...] = rng.normal(0, 0.2, weight.shape)
        elif name == "gamma":
            weight.data[...] = rng.uniform(0.5, 1.5, weight.shape)
        elif not weight.data.any():
            weight.data[...] = rng.normal(0, 0.5, weight.shape)
    norms = [layer for _, layer, _ in model.walk() if isinstance(layer, BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    with tinydeep.no_grad():
        model(batch, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    moving = [layer.moving_variance.data for layer in norms]
    assert all(not np.allclose(v, 1) for v in moving)


def run(path, feeds: dict) -> list:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def assert_matches(path, model, inputs, names, depth: int, longest_sum: int) -> None:
    """onnxruntime on `inputs` (a list, fed under `names`) against model.predict."""
    got = run(path, dict(zip(names, inputs)))
    expected = _as_tuple(model.predict(inputs if len(inputs) > 1 else inputs[0]))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):  # each output against its own scale
        assert g.shape == e.shape and g.dtype == e.dtype
        bound = tolerance(depth, longest_sum, e)
        assert np.abs(g - e).max() <= bound, (np.abs(g - e).max(), bound)


def images(n: int, size: int = 32, channels: int = 3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, size, size, channels)).astype(np.float32)


# ---- the shipped models -------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet20_file(tmp_path_factory):
    """ResNet-20 (residual, zero-padding shortcuts), trained-looking, and its file."""
    tinydeep.manual_seed(0)
    model = ResNet(20)
    trained_looking(model, images(16, seed=0))
    path = tmp_path_factory.mktemp("onnx") / "resnet20.onnx"
    export(model, images(EXAMPLE), path)
    return model, path


def test_resnet20_matches_predict_on_another_batch_size(resnet20_file):
    model, path = resnet20_file
    assert_matches(path, model, [images(BATCH, seed=2)], ["input_0"], 20, 3 * 3 * 64)


@pytest.mark.parametrize(
    "depth, residual, shortcut", [(20, False, "zero_pad"), (8, True, "projection")]
)
def test_plain_resnet20_and_projection_shortcuts_match_predict(tmp_path, depth, residual, shortcut):
    model = ResNet(depth, residual=residual, shortcut=shortcut)
    trained_looking(model, images(16, seed=0))
    export(model, images(EXAMPLE), tmp_path / "m.onnx")
    assert_matches(tmp_path / "m.onnx", model, [images(BATCH, seed=2)], ["input_0"], depth, 576)


def test_the_file_holds_the_weights_by_layer_path_and_a_symbolic_batch(resnet20_file):
    model, path = resnet20_file
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == tinydeep.onnx.OPSET
    [graph_input] = proto.graph.input
    assert graph_input.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    stored = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    weights = model.named_weights()
    # a convolution's kernel as ONNX's Conv wants it, (F, C, KH, KW), under its own name
    kernel = weights["blocks/3/conv2/kernel"].numpy()
    np.testing.assert_array_equal(stored["blocks/3/conv2/kernel"], kernel.transpose(3, 2, 0, 1))
    for name in ("head/kernel", "head/bias", "blocks/8/bn2/moving_mean", "blocks/8/bn2/beta"):
        np.testing.assert_array_equal(stored[name], weights[name].numpy())
    # batch norm's scale, gamma / sqrt(moving_variance + epsilon), folded into one constant
    bn = model.blocks[8].bn2
    scale = bn.gamma.numpy() * (bn.moving_variance.numpy() + bn.epsilon) ** -0.5
    np.testing.assert_allclose(stored["blocks/8/bn2/multiply"], scale, rtol=4 * U)
    assert os.path.getsize(path) < 1.1 * 4 * model.count_params() + 100_000


def wide_and_deep_inputs(n: int, model: WideAndDeep, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    columns = {"wide": rng.integers(0, 1000, (n, 4)), "numeric": rng.normal(size=(n, 3))}
    columns |= {c: rng.integers(0, size, n) for c, size in model.vocab_sizes.items()}
    return [columns[name] for name in model.input_names]


@pytest.mark.parametrize(
    "wide_size, vocab_sizes, num_numeric",
    [(1000, {"city": 50, "device": 20}, 3), (1000, None, 0), (None, {"city": 50}, 3)],
    ids=["wide+deep", "wide-only", "deep-only"],
)
def test_wide_and_deep_matches_predict(tmp_path, wide_size, vocab_sizes, num_numeric):
    model = WideAndDeep(wide_size, vocab_sizes, hidden=(32, 16), num_numeric=num_numeric)
    trained_looking(model, wide_and_deep_inputs(16, model, seed=0))
    example = [x[:EXAMPLE] for x in wide_and_deep_inputs(EXAMPLE, model, seed=1)]
    export(model, example, tmp_path / "wd.onnx")
    inputs = wide_and_deep_inputs(BATCH, model, seed=2)
    assert_matches(tmp_path / "wd.onnx", model, inputs, model.input_names, 4, 32)


# ---- Sequential models of every layer -----------------------------------------------------


def test_a_cnn_of_every_image_layer_matches_predict(tmp_path):
    """Odd image sides, so that "same" padding puts its odd pixel after and average pooling's
    corner windows hold padding; Flatten's batch axis; Dropout, which inference skips."""
    model = Sequential(
        [
            Conv2D(8, 3, strides=2, padding="same", activation="relu"),  # 13 -> 7
            BatchNormalization(),
            MaxPooling2D(2, strides=1, padding="same"),  # 7 -> 7, padded after only
            AveragePooling2D(3, strides=2, padding="same"),  # 7 -> 4, a pixel of padding around
            IdentityBlock(8),  # Conv2D with bias, Activation, Add
            ReLU(),
            Conv2D(4, 2, activation="tanh"),  # "valid": 4 -> 3
            Dropout(0.5),
            Flatten(),
            Dense(16, activation="sigmoid"),
            Dense(10, activation="softmax"),
        ]
    )
    trained_looking(model, images(16, size=13, seed=0))
    export(model, images(EXAMPLE, size=13), tmp_path / "cnn.onnx")
    inputs = [images(BATCH, size=13, seed=2)]
    assert_matches(tmp_path / "cnn.onnx", model, inputs, ["input_0"], 11, 3 * 3 * 8)


def test_dense_and_activation_layers_of_every_activation_match_predict(tmp_path):
    model = Sequential(
        [Dense(12, activation=name) for name in (None, "linear", "relu", "sigmoid", "tanh")]
        + [Activation("tanh"), Dense(6), Activation("softmax")]
    )
    x = np.random.default_rng(0).normal(size=(16, 7)).astype(np.float32)
    trained_looking(model, x)
    export(model, x[:EXAMPLE], tmp_path / "mlp.onnx")
    assert_matches(tmp_path / "mlp.onnx", model, [x[:BATCH] * 2], ["input_0"], 9, 12)


class TwoHeads(Model):
    """Three inputs (an image, ids, numbers), two outputs (class probabilities, a value)."""

    def __init__(self):
        super().__init__()
        self.conv = Conv2D(6, 3, padding="same", activation="relu")
        self.pool = GlobalAveragePooling2D()
        self.embed = Embedding(30, 5)
        self.join = Concatenate()
        self.hidden = Dense(16, activation="relu")
        self.classes = Dense(3, activation="softmax")
        self.value = Dense(1)

    def call(self, inputs):
        image, ids, numbers = inputs
        h = self.join([self.pool(self.conv(image)), self.embed(ids), numbers])  # (N, 6 + 5 + 4)
        h = self.hidden(h)
        return self.classes(h), self.value(h)


def two_heads_inputs(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(n, 6, 6, 3)).astype(np.float32)
    return [image, rng.integers(0, 30, n), rng.normal(size=(n, 4)).astype(np.float32)]


def test_several_inputs_and_outputs_by_the_names_given(tmp_path):
    model = TwoHeads()
    trained_looking(model, two_heads_inputs(16, seed=0))
    names = ["image", "ids", "numbers"]
    path = tmp_path / "two.onnx"
    export(model, two_heads_inputs(EXAMPLE, 1), path, input_names=names, output_names=["p", "v"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == names
    assert [o.name for o in session.get_outputs()] == ["p", "v"]
    assert_matches(path, model, two_heads_inputs(BATCH, seed=2), names, 4, 27)


def test_unnamed_inputs_and_outputs_are_numbered(tmp_path):
    model = TwoHeads()
    export(model, two_heads_inputs(EXAMPLE, 1), tmp_path / "two.onnx")
    session = ort.InferenceSession(str(tmp_path / "two.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_0", "input_1", "input_2"]
    assert [o.name for o in session.get_outputs()] == ["output_0", "output_1"]


def test_a_functional_model_with_a_shared_layer_matches_predict(tmp_path):
    """keras.Input names the graph's inputs; the shared layer's weights are stored once."""
    wide, deep = tinydeep.keras.Input(shape=(5,), name="wide"), tinydeep.keras.Input((6,))
    shared = Dense(6, activation="tanh")
    hidden = shared(shared(deep))  # one layer called twice: one set of weights
    output = Dense(1)(tinydeep.keras.layers.concatenate([wide, hidden]))
    model = tinydeep.keras.Model(inputs=[wide, deep], outputs=output)
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(16, n)).astype(np.float32) for n in (5, 6)]
    trained_looking(model, xs)
    path = tmp_path / "functional.onnx"
    export(model, [x[:EXAMPLE] for x in xs], path)
    assert_matches(path, model, [x[:BATCH] for x in xs], model.input_names, 4, 11)
    stored = [t.name for t in onnx.load(str(path)).graph.initializer]
    assert sorted(stored) == sorted(model.named_weights())


class EveryOp(Model):
    """The ops that no layer uses: indexing, shapes, reductions, the pointwise functions, a
    cast, a constant condition; outputs of two dtypes."""

    def __init__(self):
        super().__init__()
        self.dense = Dense(6)

    def call(self, x):  # (N, 4, 5)
        h = self.dense(x)  # (N, 4, 6)
        a = h[:, 1:, ::-2][..., None, :]  # (N, 3, 1, 3): slices, a negative step, None, ...
        t = a.transpose(0, 3, 1, 2).pad(((0, 0), (1, 0), (0, 2), (0, 0)), constant_values=0.5)
        kept = t.max(axis=1, keepdims=True).mean(axis=(1, 2))  # (N, 1)
        s = tinydeep.stack([t.sum(axis=(1, 2)), kept], axis=1)  # (N, 2, 1)
        e = (h.abs() + 1).log().sqrt().exp() / 3 - h.tanh() ** 2 + h.abs() ** Tensor(0.5)
        c = tinydeep.where(np.arange(6) % 2 == 0, e.clip(-1, 1), -h.sigmoid())  # (N, 4, 6)
        d = c[:, -1].astype("float64") * h[:, 0, :].reshape(-1, 2, 3).T.reshape(6, -1).T
        picks = (h[:, -1, None, ::2, None], h[:, 1, 2])  # (N, 1, 3, 1), (N,): ints and Nones
        softmaxes = (h.log_softmax(axis=1), h.softmax(axis=-1))
        return (*picks, *softmaxes, t, s, tinydeep.concatenate([c, h], 2), d)


def test_the_ops_no_layer_uses_match_predict(tmp_path):
    model = EveryOp()
    x = np.random.default_rng(0).normal(size=(16, 4, 5)).astype(np.float32)
    trained_looking(model, x)
    export(model, x[:EXAMPLE], tmp_path / "ops.onnx")
    assert_matches(tmp_path / "ops.onnx", model, [x[:BATCH]], ["input_0"], 12, 5)


@needs_gpu
def test_a_model_on_cuda_exports_its_weights_from_the_host(tmp_path):
    model = ResNet(8)
    trained_looking(model, images(16, seed=0))
    expected = model.predict(images(BATCH, seed=2))
    model.to("cuda")
    export(model, images(EXAMPLE), tmp_path / "cuda.onnx")  # a host example is moved over
    got = run(tmp_path / "cuda.onnx", {"input_0": images(BATCH, seed=2)})[0]
    assert np.abs(got - expected).max() <= tolerance(8, 576, expected)


# ---- what cannot be exported, and bad arguments ---------------------------------------------


def _cube_forward(x):
    return x**3, x


def _cube_backward(dy, x):
    return (3 * x * x * dy,)


cube = differentiable(_cube_forward, _cube_backward, "cube")


class Cube(Layer):
    def call(self, x):
        return cube(x)


class Head(Model):
    def __init__(self):
        super().__init__()
        self.body = Sequential([Dense(4), Cube()])

    def call(self, x):
        return self.body(x)


def test_an_op_with_no_translation_names_the_op_and_the_layer_path(tmp_path):
    path = tmp_path / "head.onnx"
    path.write_bytes(b"an older file")
    with pytest.raises(ExportError, match=r"op 'cube' in layer 'body/1'"):
        export(Head(), np.ones((2, 3), np.float32), path)
    assert path.read_bytes() == b"an older file"


class ShapeFromData(Layer):
    """A constant made outside tinydeep ops from the batch size: the file would freeze it."""

    def call(self, x):
        return x + Tensor(np.zeros((x.shape[0], 1), np.float32))


class SliceFromData(Layer):
    """An index computed from the batch size: the setting would be frozen."""

    def call(self, x):
        return x[: x.shape[0] - 1]


@pytest.mark.parametrize(
    "layer, message",
    [(ShapeFromData(), "differs between two batches"), (SliceFromData(), "index=slice")],
)
def test_what_depends_on_the_batch_size_outside_the_ops_is_refused(tmp_path, layer, message):
    model = Sequential([Dense(3), layer])
    with pytest.raises(ExportError, match=message):
        export(model, np.ones((2, 3), np.float32), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_bad_arguments_are_named(tmp_path):
    model = Sequential([Dense(2)])
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"input_names must be a list of 1 distinct"):
        export(model, x, tmp_path / "m.onnx", input_names=["a", "b"])
    with pytest.raises(ValueError, match=r"output_names must be a list of 1 distinct"):
        export(model, x, tmp_path / "m.onnx", output_names=[""])
    with pytest.raises(ValueError, match=r"example_input must be arrays or Tensors with a batch"):
        export(model, np.ones((0, 3), np.float32), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match=r"model must be a tinydeep Layer, got function"):
        export(lambda x: x, x, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_without_onnx_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    with pytest.raises(ImportError, match=r'pip install -e "\.\[onnx\]"'):
        export(Sequential([Dense(2)]), np.ones((2, 3), np.float32), tmp_path / "m.onnx")
