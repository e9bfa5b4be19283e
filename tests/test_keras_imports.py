"""Every import form of Keras code works with `tensorflow` renamed `tinydeep`, and the names
it reaches are tinydeep's own objects (nothing is defined twice), with Keras's argument names."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import tinydeep
from tinydeep import callbacks, layers, optim
from tinydeep.layers.functional import Input

# (the Keras statement, renamed; the names it must bind, and what each must be)
FORMS = [
    ("import tinydeep as tf", {"tf": tinydeep}),
    ("from tinydeep import keras", {"keras": tinydeep.keras}),
    (
        "from tinydeep.keras.layers import Dense, Conv2D, Layer, Input, concatenate",
        {
            "Dense": layers.Dense,
            "Conv2D": layers.Conv2D,
            "Layer": layers.Layer,
            "Input": Input,
            "concatenate": layers.concatenate,
        },
    ),
    (
        "from tinydeep.keras import Model, Sequential, layers, Input",
        {"Model": tinydeep.Model, "Sequential": tinydeep.Sequential, "Input": Input},
    ),
    ("from tinydeep.keras.models import Model", {"Model": tinydeep.Model}),
    (
        "from tinydeep.keras.optimizers import SGD, Adam, Adagrad, Ftrl",
        {"SGD": optim.SGD, "Adam": optim.Adam, "Adagrad": optim.AdaGrad, "Ftrl": optim.FTRL},
    ),
    (
        "from tinydeep.keras.callbacks import EarlyStopping, ModelCheckpoint",
        {"EarlyStopping": callbacks.EarlyStopping, "ModelCheckpoint": callbacks.ModelCheckpoint},
    ),
    ("from tinydeep.keras.utils import plot_model", {}),
    ("from tinydeep.keras.losses import mean_squared_error", {}),
    ("from tinydeep.keras.activations import relu", {}),
]


@pytest.mark.parametrize("statement, expected", FORMS, ids=[form[0] for form in FORMS])
def test_each_import_form_binds_tinydeeps_objects(statement, expected):
    namespace: dict = {}
    exec(statement, namespace)  # noqa: S102 (the statements above, nothing else)
    for name, value in expected.items():
        assert namespace[name] is value, name


def test_tf_keras_attribute_paths_reach_the_same_objects():
    tf = importlib.import_module("tinydeep")
    assert tf.keras.layers.BatchNormalization is layers.BatchNormalization
    assert tf.keras.Model is tinydeep.Model and tf.keras.models.Sequential is tinydeep.Sequential
    assert tf.keras.optimizers.schedules.CosineDecay is tinydeep.optim.CosineDecay
    assert tf.keras.Input is Input and tf.keras.layers.InputLayer is not None


def test_keras_argument_names_keep_working():
    tinydeep.manual_seed(0)
    conv = tinydeep.keras.layers.Conv2D(filters=4, kernel_size=(3, 3), activation="relu")
    dense = tinydeep.keras.layers.Dense(units=2, activation="relu")
    y = dense(conv(np.ones((1, 5, 5, 2), np.float32)))
    assert y.shape == (1, 3, 3, 2) and y.numpy().min() >= 0  # relu applied
    sgd = tinydeep.keras.optimizers.SGD(learning_rate=0.05)
    assert sgd.defaults["lr"] == 0.05


def test_to_categorical_and_set_random_seed():
    from tinydeep.keras.utils import set_random_seed, to_categorical

    np.testing.assert_array_equal(to_categorical([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="num_classes is 2"):
        to_categorical([2], 2)
    set_random_seed(3)
    a = tinydeep.keras.layers.Dense(2)(np.ones((1, 2), np.float32)).numpy()
    set_random_seed(3)
    b = tinydeep.keras.layers.Dense(2)(np.ones((1, 2), np.float32)).numpy()
    np.testing.assert_array_equal(a, b)
