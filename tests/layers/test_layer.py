"""tinydeep/layers/layer.py: the life cycle, the tree walk, training propagation, devices."""

from __future__ import annotations

import numpy as np
import pytest

import tinydeep as td
from tinydeep.layers import BatchNormalization, Dense, Dropout, Layer


class Recorder(Layer):
    """Remembers the `training` value each call saw."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def call(self, x, training=False):
        self.seen.append(training)
        return x


class Outer(Layer):
    """Holds sub-layers in an attribute, a list and a dict; calls them without `training`."""

    def __init__(self):
        super().__init__()
        self.first = Recorder()
        self.stack = [Dense(3), Dense(2)]
        self.named = {"head": Dense(1)}
        self.shared = self.stack[0]  # the same layer twice: its weights count once

    def call(self, x):  # no training argument, as Keras allows
        x = self.first(x)
        for layer in self.stack:
            x = layer(x)
        return self.named["head"](x)


def test_weights_are_built_on_the_first_call_in_the_inputs_dtype():
    layer = Dense(4)
    assert not layer.built and layer.weights == []
    layer(np.ones((2, 3)))  # float64 array
    assert layer.built and layer.kernel.shape == (3, 4) and layer.kernel.dtype == np.float64
    ints = td.layers.Embedding(5, 2)
    ints(np.array([[1, 2]]))
    assert ints.embeddings.dtype == np.float32  # integer input: the float32 default


def test_training_reaches_nested_layers_that_are_called_without_it():
    outer = Outer()
    outer(np.ones((2, 3)), training=True)
    outer(np.ones((2, 3)))
    outer(np.ones((2, 3)), training=False)
    assert outer.first.seen == [True, False, False]


def test_sub_layers_in_attributes_lists_and_dicts_are_found_each_once():
    outer = Outer()
    outer(np.ones((2, 3)))
    names = list(outer.named_weights())
    assert names == [
        "stack/0/kernel",
        "stack/0/bias",
        "stack/1/kernel",
        "stack/1/bias",
        "named/head/kernel",
        "named/head/bias",
    ]
    assert len(outer.parameters()) == 6
    assert len({id(p) for p in outer.parameters()}) == 6


def test_a_frozen_layer_keeps_its_weights_out_of_parameters():
    outer = Outer()
    outer(np.ones((2, 3)))
    outer.stack[1].trainable = False
    assert [p.shape for p in outer.parameters()] == [(3, 3), (3,), (2, 1), (1,)]
    assert len(outer.weights) == 6


def test_non_trainable_weights_are_the_moving_statistics():
    bn = BatchNormalization()
    bn(np.ones((4, 3)))
    assert [w.shape for w in bn.non_trainable_weights] == [(3,), (3,)]
    assert bn.non_trainable_weights[0] is bn.moving_mean
    assert not bn.moving_mean.requires_grad and bn.gamma.requires_grad


def test_names_are_unique_and_can_be_given():
    a, b = Dropout(0.1), Dropout(0.1)
    assert a.name != b.name and a.name.startswith("dropout")
    assert Dense(2, name="head").name == "head"
    with pytest.raises(TypeError, match=r"Dense: unexpected arguments \['units_'\]"):
        Dense(2, units_=3)


def test_to_moves_weights_in_place_and_rejects_unknown_devices():
    layer = Dense(2)
    layer(np.ones((1, 3), np.float32))
    kernel = layer.kernel
    assert layer.to("cpu") is layer and layer.kernel is kernel
    with pytest.raises(ValueError, match="device must be one of"):
        layer.to("gpu")


def test_bad_input_names_the_layer_what_it_expected_and_what_it_got():
    layer = Dense(2, name="fc")
    layer(np.ones((1, 3)))
    before = layer.kernel.data.copy()
    with pytest.raises(
        ValueError,
        match=r"Dense 'fc': expected inputs with 3 features on the "
        r"last axis .* got shape \(1, 4\)",
    ):
        layer(np.ones((1, 4)))
    with pytest.raises(
        TypeError, match="Dense 'fc': expected a floating-point input, got dtype int64"
    ):
        layer(np.ones((1, 3), dtype=np.int64))
    np.testing.assert_array_equal(layer.kernel.data, before)  # the bad calls changed nothing


def test_a_dict_of_inputs_becomes_a_dict_of_tensors():
    class Pair(Layer):
        def call(self, inputs):
            return inputs["a"] + inputs["b"]

    layer = Pair()
    y = layer({"a": np.ones(2), "b": np.full(2, 2.0)})
    np.testing.assert_array_equal(y.data, [3.0, 3.0])
    assert layer.input_shape == {"a": (2,), "b": (2,)} and layer.dtype == np.float64


class Twice(Layer):
    """Calls one BatchNormalization twice (a shared layer), then fails if asked to."""

    def __init__(self, bn):
        super().__init__()
        self.bn = bn

    def call(self, x, fail=False):
        y = self.bn(self.bn(x))
        if fail:
            raise ValueError("Twice: fails after both calls, on purpose")
        return y


def test_a_layer_called_twice_in_one_call_updates_its_state_twice_or_not_at_all():
    """The second call of a shared layer sees the first call's update, as two separate calls
    would; if the outer call then fails, both updates are taken back."""
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    twice, alone = Twice(BatchNormalization(momentum=0.5)), BatchNormalization(momentum=0.5)
    twice(x, training=True)
    alone(alone(x, training=True), training=True)
    for w, expected in zip(twice.bn.non_trainable_weights, alone.non_trainable_weights):
        np.testing.assert_array_equal(w.data, expected.data)
    before = [w.data.copy() for w in twice.weights]
    with pytest.raises(ValueError, match="on purpose"):
        twice(x * 3, training=True, fail=True)
    for w, saved in zip(twice.weights, before):
        np.testing.assert_array_equal(w.data, saved)
