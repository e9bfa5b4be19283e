"""Keras's functional API: keras.Input, layers called on symbolic tensors, Model(inputs, outputs).

Checked: the graph a model runs (connections, shared layers, nested models, operators on
symbolic tensors), that it is an ordinary model (fit with dict inputs, save/load, gradcheck in
float64, the CUDA path), the Sequential forms that build early, and the errors of wrong wiring
at construction, each naming the layer and the shapes.
"""

from __future__ import annotations

import numpy as np
import pytest
from devices import needs_gpu

import tinydeep as td
from tinydeep import keras
from tinydeep.keras import layers
from tinydeep.layers.functional import Functional


def two_input_model(dtype="float32"):
    """The tutorials' wide & deep shape: two inputs, a concatenate, two outputs."""
    wide = keras.Input(shape=(5,), name="wide_input", dtype=dtype)
    deep = keras.Input(shape=(6,), name="deep_input", dtype=dtype)
    hidden1 = layers.Dense(8, activation="relu", name="hidden1")(deep)
    hidden2 = layers.Dense(8, activation="tanh", name="hidden2")(hidden1)
    concat = layers.concatenate([wide, hidden2], name="concat")
    output = layers.Dense(1, name="output")(concat)
    aux = layers.Dense(1, name="aux_output")(hidden2)
    return keras.Model(inputs=[wide, deep], outputs=[output, aux], name="wide_deep")


def data(n=16, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, 5)).astype(dtype), rng.standard_normal((n, 6)).astype(dtype)]


def test_model_of_inputs_and_outputs_is_functional_and_built_with_keras_shapes():
    td.manual_seed(0)
    model = two_input_model()
    assert isinstance(model, Functional) and isinstance(model, td.Model) and model.built
    assert model.input_names == ["wide_input", "deep_input"]
    assert model.input_shape == [(None, 5), (None, 6)]
    assert model.output_shape == [(None, 1), (None, 1)]
    assert [layer.name for layer in model.layers] == [
        "wide_input",
        "deep_input",
        "hidden1",
        "hidden2",
        "concat",
        "output",
        "aux_output",
    ]
    assert model.get_layer("hidden2").kernel.shape == (8, 8)
    main, aux = model(data(3))
    assert main.shape == (3, 1) and aux.shape == (3, 1)


def test_call_computes_what_the_layers_compute_by_hand():
    td.manual_seed(1)
    model = two_input_model()
    wide, deep = data(4)
    main, aux = model([wide, deep])
    h1 = model.get_layer("hidden1")(deep)
    h2 = model.get_layer("hidden2")(h1)
    expected_main = model.get_layer("output")(td.concatenate([td.Tensor(wide), h2], axis=1))
    np.testing.assert_array_equal(main.numpy(), expected_main.numpy())
    np.testing.assert_array_equal(aux.numpy(), model.get_layer("aux_output")(h2).numpy())
    by_name = model({"deep_input": deep, "wide_input": wide})  # a dict, keyed by Input names
    np.testing.assert_array_equal(by_name[0].numpy(), main.numpy())


def test_summary_shows_output_shapes_and_connections():
    td.manual_seed(0)
    model = two_input_model()
    text = model.summary(print_fn=None)
    lines = {line.split()[0]: line for line in text.splitlines() if "(" in line}
    assert "Connected to" in text
    assert "(None, 5)" in lines["wide_input"] and "InputLayer" in lines["wide_input"]
    assert lines["hidden1"].rstrip().endswith("deep_input[0][0]")
    assert lines["concat"].rstrip().endswith("wide_input[0][0], hidden2[0][0]")
    assert "(None, 13)" in lines["concat"]
    assert lines["aux_output"].rstrip().endswith("hidden2[0][0]")
    assert "Total params: 151" in text  # (6*8 + 8) + (8*8 + 8) + (13 + 1) + (8 + 1)


def test_a_shared_layer_is_one_layer_with_two_nodes_and_one_set_of_weights():
    td.manual_seed(2)
    left, right = keras.Input(shape=(3,), name="left"), keras.Input(shape=(3,), name="right")
    shared = layers.Dense(4, name="shared")
    merged = layers.Add(name="sum")([shared(left), shared(right)])
    model = keras.Model([left, right], merged)
    assert list(model.named_weights()) == ["shared/kernel", "shared/bias"]
    text = model.summary(print_fn=None)
    shared_line = next(line for line in text.splitlines() if line.startswith("shared"))
    assert shared_line.rstrip().endswith("left[0][0], right[0][0]")
    sum_line = next(line for line in text.splitlines() if line.startswith("sum"))
    assert sum_line.rstrip().endswith("shared[0][0], shared[1][0]")
    a, b = np.ones((2, 3), np.float32), 2 * np.ones((2, 3), np.float32)
    expected = (a + b) @ shared.kernel.numpy() + 2 * shared.bias.numpy()
    np.testing.assert_allclose(model([a, b]).numpy(), expected, rtol=1e-6)


def test_gradients_of_a_functional_model_pass_gradcheck_in_float64():
    """Shared weights, a concatenate, two outputs, an operator on symbolic tensors, and a
    batch norm in training mode: every parameter and both inputs checked."""
    td.manual_seed(3)
    a = keras.Input(shape=(4,), dtype="float64", name="a")
    b = keras.Input(shape=(4,), dtype="float64", name="b")
    shared = layers.Dense(3, activation="tanh")
    sa, sb = shared(a), shared(b)
    joined = layers.BatchNormalization()(layers.concatenate([sa, sb * 2.0 - sa]))
    out1 = layers.Dense(2)(joined)
    out2 = layers.Dense(1, activation="sigmoid")(sa + sb)
    model = keras.Model(inputs=[a, b], outputs=[out1, out2])
    rng = np.random.default_rng(3)
    xa, xb = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    for weight in model.weights:  # move gamma/beta/bias off 1 and 0, so they are checked
        weight.data[...] += rng.uniform(-0.5, 0.5, weight.shape)
    assert td.gradcheck(
        lambda x, y: model([x, y], training=True),
        xa,
        xb,
        params=model.named_weights(trainable_only=True),
    )


def test_fit_evaluate_predict_with_lists_and_dicts_and_weights_round_trip(tmp_path):
    td.manual_seed(4)
    model = two_input_model()
    x = data(64, seed=4)
    y = (x[0][:, :1] - x[1][:, 1:2]).astype(np.float32)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse")
    named = {"wide_input": x[0], "deep_input": x[1]}
    history = model.fit(named, [y, y], epochs=4, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    logs = model.evaluate(x, [y, y])
    assert set(logs) >= {"loss"}
    main, aux = model.predict(named)
    path = tmp_path / "wide_deep.npz"
    model.save_weights(path)
    td.manual_seed(99)
    twin = two_input_model()
    twin.load_weights(path)
    twin_main, twin_aux = twin.predict(x)
    np.testing.assert_array_equal(twin_main, main)
    np.testing.assert_array_equal(twin_aux, aux)


def test_a_functional_model_is_a_layer_of_another():
    td.manual_seed(5)
    inner_in = keras.Input(shape=(4,))
    inner = keras.Model(inner_in, layers.Dense(2, name="inner_dense")(inner_in), name="inner")
    outer_in = keras.Input(shape=(4,))
    outer = keras.Model(outer_in, layers.Dense(1, name="head")(inner(outer_in)), name="outer")
    assert list(outer.named_weights()) == [
        "inner/inner_dense/kernel",
        "inner/inner_dense/bias",
        "head/kernel",
        "head/bias",
    ]
    x = np.ones((3, 4), np.float32)
    np.testing.assert_array_equal(outer(x).numpy(), outer.get_layer("head")(inner(x)).numpy())


def test_integer_inputs_feed_an_embedding():
    td.manual_seed(6)
    ids = keras.Input(shape=(3,), dtype="int64", name="ids")
    pooled = layers.Lambda(lambda e: e.mean(axis=1))(layers.Embedding(10, 4)(ids))
    model = keras.Model(ids, layers.Dense(1)(pooled))
    assert model(np.array([[1, 2, 3], [9, 0, 0]])).shape == (2, 1)


def test_sequential_built_from_an_input_or_input_shape_before_any_data():
    td.manual_seed(7)
    model = keras.Sequential([keras.Input(shape=(6,)), layers.Dense(4), layers.Dense(2)])
    assert model.built and model.input_shape == (None, 6)
    assert "Total params: 38" in model.summary(print_fn=None)
    other = keras.Sequential([layers.Dense(4, input_shape=(6,)), layers.ReLU()])
    assert other.built and other.layers[0].kernel.shape == (6, 4)
    with pytest.raises(ValueError, match=r"Conv2D '.*'.*called on input shape \(None, 2\)"):
        model.add(layers.Conv2D(3, 3))
    assert len(model.layers) == 2  # the layer that did not fit was not added
    assert model(np.ones((1, 6), np.float32)).shape == (1, 2)


# ---- wrong wiring fails at construction, naming the layer and the shapes -----------------------


def test_a_layer_given_the_wrong_shape_fails_where_it_is_called():
    x = keras.Input(shape=(12,), name="features")
    with pytest.raises(ValueError, match=r"Conv2D 'c'.*called on input shape \(None, 12\)"):
        layers.Conv2D(2, 3, name="c")(x)
    hidden = layers.Dense(4, name="hidden")(x)
    with pytest.raises(ValueError, match=r"Dense 'd'.*12 features.*\(None, 4\)"):
        dense = layers.Dense(2, name="d")
        dense(x)
        dense(hidden)  # built on 12 features, now given 4
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(4,))
    with pytest.raises(ValueError, match=r"Add 'sum'.*\[\(None, 3\), \(None, 4\)\]"):
        layers.Add(name="sum")([a, b])


def test_inputs_must_come_from_keras_input():
    x = keras.Input(shape=(3,))
    hidden = layers.Dense(2, name="hidden")(x)
    with pytest.raises(
        TypeError,
        match=r"inputs\[0\] must come straight from keras.Input.*"
        r"Dense 'hidden' \(shape \(None, 2\)\)",
    ):
        keras.Model(inputs=hidden, outputs=layers.Dense(1)(hidden))
    with pytest.raises(TypeError, match=r"inputs\[1\] must be a tensor from keras.Input.*ndarray"):
        keras.Model(inputs=[x, np.ones(3)], outputs=hidden)
    with pytest.raises(TypeError, match="mix of keras.Input-derived tensors and ndarray"):
        layers.Add()([x, np.ones((1, 3), np.float32)])


def test_a_disconnected_graph_names_the_missing_input():
    a, b = keras.Input(shape=(3,), name="a"), keras.Input(shape=(3,), name="forgotten")
    out = layers.Add()([a, b])
    with pytest.raises(
        ValueError,
        match=r"disconnected.*Input 'forgotten' \(shape \(None, 3\)\)"
        r".*inputs=\['a'\]",
    ):
        keras.Model(inputs=a, outputs=out)


def test_repeated_layer_names_and_bad_calls_are_refused():
    x = keras.Input(shape=(3,))
    with pytest.raises(ValueError, match=r"layer names must be unique, \['same'\] repeat"):
        keras.Model(x, layers.Dense(1, name="same")(layers.Dense(3, name="same")(x)))
    model = keras.Model(x, layers.Dense(2)(x))
    with pytest.raises(
        ValueError, match=r"input 'input_layer.*' expects shape \(None, 3\), got \(2, 4\)"
    ):
        model(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="expected 1 inputs"):
        model([np.ones((2, 3), np.float32)] * 2)
    with pytest.raises(TypeError, match="a subclass of Model defines call"):

        class Sub(keras.Model):
            pass

        Sub(inputs=x, outputs=x)
    with pytest.raises(TypeError, match="Input: shape must be a tuple of whole numbers"):
        keras.Input(shape=(None, 3))


@needs_gpu
def test_a_functional_model_runs_on_cuda_as_on_the_cpu():
    td.manual_seed(8)
    model = two_input_model()
    x = data(8, seed=8)
    cpu = model.predict(x)
    model.to("cuda")
    gpu = model.predict(x)
    for c, g in zip(cpu, gpu):
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-6)
