"""The source material's Keras classes run on tinydeep with only their imports changed.

The three classes below are written as in the Keras tutorials they come from (subclassed
Model and Layer, `super().__init__(name='')`, call without a training argument, functional
`keras.layers.concatenate`); only the import lines differ.
"""

from __future__ import annotations

import numpy as np

import tinydeep as tf  # was: import tensorflow as tf
from tinydeep import keras  # was: from tensorflow import keras
from tinydeep.layers import Dense, Layer  # was: from tensorflow.keras.layers import ...


class WideAndDeepModel(keras.models.Model):
    def __init__(self, units=30, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.hidden1 = keras.layers.Dense(units, activation=activation)
        self.hidden2 = keras.layers.Dense(units, activation=activation)
        self.main_output = keras.layers.Dense(1)
        self.aux_output = keras.layers.Dense(1)

    def call(self, inputs):
        input_A, input_B = inputs
        hidden1 = self.hidden1(input_B)
        hidden2 = self.hidden2(hidden1)
        concat = keras.layers.concatenate([input_A, hidden2])
        main_output = self.main_output(concat)
        aux_output = self.aux_output(hidden2)
        return main_output, aux_output


class IdentityBlock(tf.keras.Model):
    def __init__(self, filters, kernel_size):
        super().__init__(name="")

        self.conv1 = tf.keras.layers.Conv2D(filters, kernel_size, padding="same")
        self.bn1 = tf.keras.layers.BatchNormalization()

        self.conv2 = tf.keras.layers.Conv2D(filters, kernel_size, padding="same")
        self.bn2 = tf.keras.layers.BatchNormalization()

        self.act = tf.keras.layers.Activation("relu")
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
        super().__init__()
        self.conv = tf.keras.layers.Conv2D(8, 7, padding="same")
        self.bn = tf.keras.layers.BatchNormalization()
        self.act = tf.keras.layers.Activation("relu")
        self.max_pool = tf.keras.layers.MaxPool2D((3, 3))
        self.id1a = IdentityBlock(8, 3)
        self.id1b = IdentityBlock(8, 3)
        self.global_pool = tf.keras.layers.GlobalAveragePooling2D()
        self.classifier = tf.keras.layers.Dense(num_classes, activation="softmax")

    def call(self, inputs):
        x = self.conv(inputs)
        x = self.bn(x)
        x = self.act(x)
        x = self.max_pool(x)
        x = self.id1a(x)
        x = self.id1b(x)
        x = self.global_pool(x)
        return self.classifier(x)


class CNNResidual(Layer):
    def __init__(self, layers, filters, **kwargs):
        super().__init__(**kwargs)
        self.hidden = [
            tf.keras.layers.Conv2D(filters, (3, 3), activation="relu", padding="same")
            for _ in range(layers)
        ]

    def call(self, inputs):
        x = inputs
        for layer in self.hidden:
            x = layer(x)
        return inputs + x


class DNNResidual(Layer):
    def __init__(self, layers, neurons, **kwargs):
        super().__init__(**kwargs)
        self.hidden = [Dense(neurons, activation="relu") for _ in range(layers)]

    def call(self, inputs):
        x = inputs
        for layer in self.hidden:
            x = layer(x)
        return inputs + x


class MyResidual(tf.keras.Model):
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


def test_wide_and_deep_model_trains_with_two_inputs_and_two_weighted_outputs():
    tf.manual_seed(0)
    rng = np.random.default_rng(0)
    x_a, x_b = rng.standard_normal((256, 5)), rng.standard_normal((256, 6))
    y = (x_a[:, 0] + np.sin(x_b[:, 1])).astype(np.float32)
    model = WideAndDeepModel(30, activation="relu")
    model.compile(
        loss="mse", loss_weights=[0.9, 0.1], optimizer=keras.optimizers.SGD(learning_rate=1e-2)
    )
    history = model.fit(
        (x_a.astype(np.float32), x_b.astype(np.float32)), (y, y), epochs=5, batch_size=32, verbose=0
    )
    losses = history.history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    y_pred_main, y_pred_aux = model.predict(
        (x_a[:3].astype(np.float32), x_b[:3].astype(np.float32))
    )
    assert y_pred_main.shape == (3, 1) and y_pred_aux.shape == (3, 1)


def test_resnet_of_identity_blocks_trains_on_images():
    tf.manual_seed(0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 12, 12, 3)).astype(np.float32)
    y = (x[:, :, :, 0].mean(axis=(1, 2)) > 0).astype(np.int64)
    model = ResNet(2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert set(history.history) == {"loss", "accuracy"}
    assert len(model.id1a.parameters()) == 8  # conv1, bn1, conv2, bn2: kernel/bias, gamma/beta


def test_cnn_and_dnn_residual_blocks_run():
    tf.manual_seed(0)
    model = MyResidual()
    y = model(np.ones((2, 4, 4, 3), np.float32))
    assert y.shape == (2, 4, 4, 1)
    assert len(model.parameters()) == 2 + 4 + 4 + 2
