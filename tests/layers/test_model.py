"""tinydeep/layers/model.py: Model and Sequential, summary, several inputs and outputs."""

from __future__ import annotations

import numpy as np
import pytest
from weights import randomize_constant_weights

import tinydeep as td
from tinydeep.layers import BatchNormalization, Conv2D, Dense, Flatten, Model, Sequential


class TwoHeads(Model):
    """Two inputs, two outputs."""

    def __init__(self):
        super().__init__()
        self.left = Dense(4, activation="relu")
        self.main = Dense(1)
        self.aux = Dense(1)

    def call(self, inputs):
        a, b = inputs
        hidden = self.left(b)
        return self.main(td.concatenate([a, hidden], axis=-1)), self.aux(hidden)


def test_several_inputs_and_outputs():
    model = TwoHeads()
    main, aux = model([np.ones((3, 2), np.float32), np.ones((3, 5), np.float32)])
    assert main.shape == (3, 1) and aux.shape == (3, 1)
    assert model.input_shape == [(3, 2), (3, 5)] and model.output_shape == [(3, 1), (3, 1)]
    assert [layer.name for layer in model.layers] == [
        model.left.name,
        model.main.name,
        model.aux.name,
    ]


def test_sequential_chains_layers_and_names_weights_by_position():
    model = Sequential([Conv2D(2, 3, padding="same"), BatchNormalization(), Flatten(), Dense(3)])
    y = model(np.ones((2, 4, 4, 1), np.float32), training=True)
    assert y.shape == (2, 3)
    assert list(model.named_weights())[:2] == ["0/kernel", "0/bias"]
    assert len(model.parameters()) == 6  # conv kernel, bias; gamma, beta; dense kernel, bias


def test_summary_lists_layers_shapes_and_counts():
    model = Sequential([Dense(4), Dense(2)], name="mlp")
    with pytest.raises(ValueError, match="call the model on a batch first"):
        model.summary(print_fn=None)
    model(np.ones((1, 3), np.float32))
    text = model.summary(print_fn=None)
    assert 'Model: "mlp"' in text
    assert "0 (Dense)" in text and "(None, 4)" in text and "16" in text
    assert "Total params: 26" in text and "Trainable params: 26" in text


def test_a_whole_model_passes_gradcheck_in_float64():
    td.manual_seed(0)
    model = Sequential(
        [
            Conv2D(2, 3, strides=2, padding="same", activation="tanh"),
            BatchNormalization(),
            Flatten(),
            Dense(3, activation="softmax"),
        ]
    )
    x = np.random.default_rng(0).standard_normal((3, 5, 5, 2))
    model(x, training=True)
    randomize_constant_weights(model)  # biases, gamma and beta
    assert td.gradcheck(
        lambda t: model(t, training=True),
        x,
        params=model.named_weights(trainable_only=True),
        mode="random",
        directions=4,
    )
