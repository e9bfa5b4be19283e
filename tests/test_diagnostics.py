"""tinydeep/diagnostics.py: norms against NumPy by hand, the update ratio of one SGD step,
activation statistics against a direct NumPy pass, and GradientMonitor inside fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinydeep as td
from tinydeep import optim
from tinydeep.callbacks import Callback
from tinydeep.diagnostics import (
    GradientMonitor,
    activation_stats,
    gradient_norms,
    layer_gradient_norms,
    probe_gradient_norms,
    snapshot,
    update_ratios,
)
from tinydeep.layers import BatchNormalization, Dense, Embedding, ReLU, Sequential

X = np.array([[1.0, -2.0, 0.5], [0.0, 1.0, 3.0]])  # (N=2, 3), float64
T = np.array([[1.0, 0.0], [-1.0, 2.0]])
W = np.array([[0.5, -1.0], [2.0, 0.25], [-0.5, 1.5]])
B = np.array([0.1, -0.2])


def dense_model() -> Sequential:
    """Sequential([Dense(2)]) on X with kernel W and bias B, a backward pass of the mean
    squared error already done."""
    model = Sequential([Dense(2)])
    model(X)
    model.named_weights()["0/kernel"].data[...] = W
    model.named_weights()["0/bias"].data[...] = B
    loss = ((model(X) - td.Tensor(T)) ** 2).mean()
    loss.backward()
    return model


def hand_grads() -> tuple[np.ndarray, np.ndarray]:
    dy = 2 * (X @ W + B - T) / T.size  # d mean((y - t)^2) / dy
    return X.T @ dy, dy.sum(axis=0)  # dw, db


def test_gradient_norms_match_the_hand_computed_gradient():
    model = dense_model()
    dw, db = hand_grads()
    norms = gradient_norms(model)
    assert set(norms) == {"0/kernel", "0/bias"}
    assert norms["0/kernel"] == pytest.approx(np.linalg.norm(dw), rel=1e-12)
    assert norms["0/bias"] == pytest.approx(np.linalg.norm(db), rel=1e-12)
    layers = layer_gradient_norms(model)
    assert set(layers) == {"0"}
    assert layers["0"] == pytest.approx(math.sqrt((dw**2).sum() + (db**2).sum()), rel=1e-12)


def test_weights_without_a_gradient_are_left_out():
    model = Sequential([Dense(2)])
    model(X)
    assert gradient_norms(model) == {} and layer_gradient_norms(model) == {}


def test_a_row_sparse_gradient_counts_repeated_rows_once_summed():
    model = Sequential([Embedding(5, 2)])
    model(np.array([[1, 1, 3]])).sum().backward()
    # Dense gradient: row 1 is (2, 2), row 3 is (1, 1); the norm is sqrt(10), not sqrt(6).
    assert gradient_norms(model)["0/embeddings"] == pytest.approx(math.sqrt(10))


def test_update_ratio_of_one_sgd_step_is_lr_grad_over_weight():
    model = dense_model()
    before = snapshot(model)
    lr = 0.1
    optim.SGD(model.parameters(), lr=lr).step()
    dw, db = hand_grads()
    ratios = update_ratios(before, model)
    assert ratios["0/kernel"] == pytest.approx(lr * np.linalg.norm(dw) / np.linalg.norm(W))
    assert ratios["0/bias"] == pytest.approx(lr * np.linalg.norm(db) / np.linalg.norm(B))
    np.testing.assert_array_equal(before["0/kernel"], W)  # a copy, not a view


def relu_model() -> tuple[Sequential, np.ndarray]:
    td.manual_seed(0)
    model = Sequential([Sequential([Dense(6), ReLU()]), Dense(3, activation="relu")])
    x = np.random.default_rng(0).standard_normal((16, 4))
    return model, x


def test_activation_stats_match_numpy_including_nested_layers_and_dead_units():
    model, x = relu_model()
    stats = activation_stats(model, x)
    w = model.named_weights()
    pre = x @ w["0/0/kernel"].data + w["0/0/bias"].data
    hidden = np.maximum(pre, 0)
    out = np.maximum(hidden @ w["1/kernel"].data + w["1/bias"].data, 0)
    expected = {"0/0": pre, "0/1": hidden, "0": hidden, "1": out, "": out}
    assert set(stats) == set(expected)
    for path, y in expected.items():
        assert stats[path]["mean"] == pytest.approx(y.mean()), path
        assert stats[path]["std"] == pytest.approx(y.std()), path
        assert stats[path]["dead_fraction"] == np.mean(y == 0), path
        assert stats[path]["size"] == y.size
    assert 0 < stats["0/1"]["dead_fraction"] < 1  # some units are off, as the test wants


def test_a_shared_layer_is_summarized_over_all_its_calls():
    relu = ReLU()
    model = Sequential([relu, Dense(3), relu])
    x = np.random.default_rng(1).standard_normal((8, 3))
    stats = activation_stats(model, x)
    first = np.maximum(x, 0)
    second = np.maximum(first @ model._stack[1].kernel.data + model._stack[1].bias.data, 0)
    both = np.concatenate([first.ravel(), second.ravel()])
    assert stats["0"]["mean"] == pytest.approx(both.mean())
    assert stats["0"]["std"] == pytest.approx(both.std())
    assert stats["0"]["dead_fraction"] == np.mean(both == 0)


def test_activation_stats_leave_the_model_as_it_was_even_after_an_error():
    model, x = relu_model()
    expected = model(x).numpy()
    activation_stats(model, x)
    with pytest.raises(ValueError):
        activation_stats(model, x[:, :3])  # the wrong number of features
    for path, layer, _ in model.walk():
        assert "call" not in vars(layer), path
        assert layer.call.__func__ is type(layer).call, path
    np.testing.assert_array_equal(model(x).numpy(), expected)
    assert activation_stats(model, x)["1"]["size"] == 16 * 3  # a second call still works


def test_probe_gradient_norms_match_the_hand_computed_gradient_and_change_nothing():
    model = dense_model()  # its weights already hold the gradients of one backward pass
    dw, db = hand_grads()
    held = {name: w.grad.copy() for name, w in model.named_weights().items()}
    probe = probe_gradient_norms(model, "mse", X, T)
    assert set(probe) == {"0"}
    assert probe["0"] == pytest.approx(math.sqrt((dw**2).sum() + (db**2).sum()), rel=1e-12)
    for name, w in model.named_weights().items():
        np.testing.assert_array_equal(w.grad, held[name])  # the earlier .grad put back


def test_probe_gradient_norms_leave_batch_norm_statistics_and_empty_grads_as_they_were():
    model = Sequential([Dense(4), BatchNormalization(momentum=0.5), Dense(2)])
    model(X)
    moving = [w.data.copy() for w in model.non_trainable_weights]
    norms = probe_gradient_norms(model, "mse", X, T)
    assert list(norms) == ["0", "1", "2"]  # forward order, BatchNorm's gamma/beta included
    assert all(v > 0 for v in norms.values())
    assert len(moving) == 2  # moving mean and variance
    for w, saved in zip(model.non_trainable_weights, moving):
        np.testing.assert_array_equal(w.data, saved)
    assert all(w.grad is None for w in model.parameters())


class WeightRecorder(Callback):
    """The kernel after each step: after[s] is w_{s+1}."""

    def __init__(self):
        self.after = []

    def on_batch_end(self, step: int, logs=None) -> None:
        self.after.append(self.model.named_weights()["0/kernel"].data.copy())


def test_gradient_monitor_in_fit_records_each_step_s_grads_and_update():
    td.manual_seed(0)
    x = np.random.default_rng(2).standard_normal((40, 3))
    y = x.sum(axis=1)
    model = Sequential([Dense(1, use_bias=False)])
    model(x[:1])
    lr = 0.05
    model.compile(optimizer=optim.SGD(lr=lr), loss="mse")
    start = model.named_weights()["0/kernel"].data.copy()
    recorder, monitor = WeightRecorder(), GradientMonitor(every=3)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[recorder, monitor])

    assert [entry["step"] for entry in monitor.history] == [0, 3, 6, 9]  # 10 steps in all
    for entry in monitor.history:
        s = entry["step"]
        w_before, w_after = (start if s == 0 else recorder.after[s - 1]), recorder.after[s]
        grad_norm = entry["grad_norm"]["0"]  # the gradient that the update of step s used
        assert np.linalg.norm(w_after - w_before) == pytest.approx(lr * grad_norm)
        expected = np.linalg.norm(w_after - w_before) / np.linalg.norm(w_before)
        assert entry["update_ratio"]["0/kernel"] == pytest.approx(expected)


def test_gradient_monitor_checks_every():
    with pytest.raises(ValueError, match="every"):
        GradientMonitor(every=0)
