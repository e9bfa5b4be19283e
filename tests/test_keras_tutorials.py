"""The Keras tutorial cells the course material teaches with, renamed only, build, train and
predict on tinydeep.

Each cell below is the tutorial's code as written, its import lines included, with one change:
`tensorflow` is `tinydeep` (the cells are code strings run with exec, so that what is tested is
the text a user pastes). The data the tutorials load with tensorflow_datasets or scikit-learn
comes from tinydeep's loaders instead, outside the cells. Checked: the functional Wide & Deep
model, and its subclassed twin given the same weights, agree to float32 rounding before and
after the same training; the wide & deep model learns California housing prices from two
columns; the residual-block classes train on Fashion-MNIST and predict probabilities.
"""

from __future__ import annotations

import numpy as np

import tinydeep as td
from tinydeep.data import load_california_housing, load_fashion_mnist

FUNCTIONAL_WIDE_AND_DEEP = """
import tinydeep as tf
from tinydeep.keras import Model
from tinydeep.keras.layers import concatenate
from tinydeep.keras.layers import Dense
from tinydeep.keras.layers import Input
from tinydeep.keras.utils import plot_model

# define inputs
input_a = Input(shape=[1], name="Wide_Input")
input_b = Input(shape=[1], name="Deep_Input")

# define deep path
hidden_1 = Dense(30, activation="relu")(input_b)
hidden_2 = Dense(30, activation="relu")(hidden_1)

# define merged path
concat = concatenate([input_a, hidden_2])
output = Dense(1, name="Output")(concat)

# define another output for the deep path
aux_output = Dense(1,name="aux_Output")(hidden_2)

# build the model
model = Model(inputs=[input_a, input_b], outputs=[output, aux_output])

# visualize the architecture
plot_model(model)
"""

SUBCLASSED_WIDE_AND_DEEP = """
import tinydeep as tf
from tinydeep.keras import Model
from tinydeep.keras.layers import Dense, concatenate

# inherit from the Model base class
class WideAndDeepModel(Model):
    def __init__(self, units=30, activation='relu', **kwargs):
        '''initializes the instance attributes'''
        super().__init__(**kwargs)
        self.hidden1 = Dense(units, activation=activation)
        self.hidden2 = Dense(units, activation=activation)
        self.main_output = Dense(1)
        self.aux_output = Dense(1)

    def call(self, inputs):
        '''defines the network architecture'''
        input_A, input_B = inputs
        hidden1 = self.hidden1(input_B)
        hidden2 = self.hidden2(hidden1)
        concat = concatenate([input_A, hidden2])
        main_output = self.main_output(concat)
        aux_output = self.aux_output(hidden2)

        return main_output, aux_output

# create an instance of the model
model = WideAndDeepModel()
"""

RESIDUAL_BLOCKS = """
import tinydeep as tf

class IdentityBlock(tf.keras.Model):
    def __init__(self, filters, kernel_size):
        super(IdentityBlock, self).__init__(name='')

        self.conv1 = tf.keras.layers.Conv2D(filters, kernel_size, padding='same')
        self.bn1 = tf.keras.layers.BatchNormalization()

        self.conv2 = tf.keras.layers.Conv2D(filters, kernel_size, padding='same')
        self.bn2 = tf.keras.layers.BatchNormalization()

        self.act = tf.keras.layers.Activation('relu')
        self.add = tf.keras.layers.Add()

    def call(self, input_tensor):
        x = self.conv1(input_tensor)
        x = self.bn1(x)
        x = self.act(x)

        x = self.conv2(x)
        x = self.bn2(x)

        x = self.add([x, input_tensor])
        x = self.act(x)
        return x

class ResNet(tf.keras.Model):
    def __init__(self, num_classes):
        super(ResNet, self).__init__()
        self.conv = tf.keras.layers.Conv2D(64, 7, padding='same')
        self.bn = tf.keras.layers.BatchNormalization()
        self.act = tf.keras.layers.Activation('relu')
        self.max_pool = tf.keras.layers.MaxPool2D((3, 3))

        # Use the Identity blocks that you just defined
        self.id1a = IdentityBlock(64, 3)
        self.id1b = IdentityBlock(64, 3)

        self.global_pool = tf.keras.layers.GlobalAveragePooling2D()
        self.classifier = tf.keras.layers.Dense(num_classes, activation='softmax')

    def call(self, inputs):
        x = self.conv(inputs)
        x = self.bn(x)
        x = self.act(x)
        x = self.max_pool(x)

        # insert the identity blocks in the middle of the network
        x = self.id1a(x)
        x = self.id1b(x)

        x = self.global_pool(x)
        return self.classifier(x)
"""

RESIDUAL_LAYERS = """
from tinydeep.keras.layers import Layer, Conv2D, Dense
from tinydeep.keras import Model

class CNNResidual(Layer):
    def __init__(self, layers, filters, **kwargs):
        super().__init__(**kwargs)
        self.hidden = [Conv2D(filters, (3, 3), activation="relu", padding="same")
                       for _ in range(layers)]

    def call(self, inputs):
        x = inputs
        for layer in self.hidden:
            x = layer(x)
        return inputs + x

class DNNResidual(Layer):
    def __init__(self, layers, neurons, **kwargs):
        super().__init__(**kwargs)
        self.hidden = [Dense(neurons, activation="relu")
                       for _ in range(layers)]

    def call(self, inputs):
        x = inputs
        for layer in self.hidden:
            x = layer(x)
        return inputs + x

class MyResidual(Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden1 = Dense(30, activation="relu")
        self.block1 = CNNResidual(2, 30)
        self.block2 = DNNResidual(2, 30)
        self.out = Dense(1)

    def call(self, inputs):
        x = self.hidden1(inputs)
        x = self.block1(x)
        for _ in range(1, 4):
            x = self.block2(x)
        return self.out(x)
"""


def run_cell(code: str, folder, monkeypatch) -> dict:
    """Run a tutorial cell as a notebook would, in `folder` (plot_model writes model.png)."""
    monkeypatch.chdir(folder)
    namespace: dict = {}
    exec(compile(code, "<tutorial cell>", "exec"), namespace)  # noqa: S102 (our own cells)
    return namespace


def housing(data_root):
    """The two columns the tutorial's [1]-shaped inputs take: median income (wide) and the
    average number of rooms (deep), standardized; the price standardized too."""
    x, y = load_california_housing(data_root("california-housing"), download=False)
    x = x[:, [0, 2]]
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    y = ((y - y.mean()) / y.std()).astype(np.float32)
    return [x[:, :1], x[:, 1:]], y


def test_functional_wide_and_deep_cell_builds_draws_and_matches_its_subclassed_twin(
    tmp_path, monkeypatch, data_root
):
    td.manual_seed(0)
    functional = run_cell(FUNCTIONAL_WIDE_AND_DEEP, tmp_path, monkeypatch)["model"]
    assert (tmp_path / "model.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    subclassed = run_cell(SUBCLASSED_WIDE_AND_DEEP, tmp_path, monkeypatch)["model"]
    x, y = housing(data_root)
    subclassed.predict([a[:2] for a in x])  # build
    subclassed.set_weights(functional.get_weights())  # hidden1, hidden2, main, aux: one order
    for f, s in zip(functional.predict(x), subclassed.predict(x)):
        np.testing.assert_array_equal(f, s)  # the same ops on the same numbers

    histories = []
    for model in (functional, subclassed):
        td.manual_seed(1)  # the same shuffles
        model.compile(loss="mse", loss_weights=[0.9, 0.1], optimizer="sgd")
        histories.append(model.fit(x, (y, y), epochs=3, batch_size=64, verbose=0).history)
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-6)
    for f, s in zip(functional.predict(x), subclassed.predict(x)):
        np.testing.assert_allclose(f, s, rtol=1e-5, atol=1e-6)
    # It learned: median income alone explains about half the variance of the price.
    main, _ = functional.predict(x)
    assert np.mean((main[:, 0] - y) ** 2) < 0.6


def test_identity_block_resnet_cell_trains_on_images_and_predicts_probabilities(
    data_root, monkeypatch, tmp_path
):
    td.manual_seed(0)
    cell = run_cell(RESIDUAL_BLOCKS, tmp_path, monkeypatch)
    images, labels = load_fashion_mnist(data_root("fashion-mnist"), download=False)
    x = (images[:256, :, :, None] / 255.0).astype(np.float32)  # the tutorial's preprocess
    resnet = cell["ResNet"](10)
    resnet.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = resnet.fit(x, labels[:256], epochs=2, batch_size=32, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    probabilities = resnet.predict(x[:8])
    assert probabilities.shape == (8, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert resnet.id1a.name.startswith("identity_block")  # name='' takes Keras's default


def test_residual_layer_cell_builds_and_trains(tmp_path, monkeypatch):
    td.manual_seed(0)
    cell = run_cell(RESIDUAL_LAYERS, tmp_path, monkeypatch)
    model = cell["MyResidual"]()
    x = np.random.default_rng(0).standard_normal((8, 4, 4, 3)).astype(np.float32)
    y = x.mean(axis=3, keepdims=True)
    model.compile(loss="mse", optimizer="adam")
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(x).shape == (8, 4, 4, 1)
