"""tinydeep/train.py: fit, evaluate, predict, the non-finite guard and running out of memory.

Read in this order: fit on real data and seeding; the non-finite guard (a NaN loss, then a
finite loss with a non-finite gradient, made by the Root layer below); running out of memory
(the RunsOutOfMemory layer below fails on purpose, in the forward or the backward pass);
early stopping, errors, several optimizers.
"""

from __future__ import annotations

import functools
import re
import sys
import weakref
from types import ModuleType

import numpy as np
import pytest

import tinydeep as td
from tinydeep import optim, train
from tinydeep.callbacks import Callback, EarlyStopping, NonFiniteError, TerminateOnNaN
from tinydeep.layers import BatchNormalization, Dense, Layer, Sequential
from tinydeep.tensor import Tensor, differentiable
from tinydeep.train import OutOfMemoryError


def snapshot(model, optimizers) -> dict[str, np.ndarray]:
    """Copies of every weight (moving statistics included) and every optimizer state array."""
    state = {name: w.numpy().copy() for name, w in model.named_weights().items()}
    for i, opt in enumerate(optimizers):
        for index, buffers in opt.state_dict()["state"].items():
            for key, value in buffers.items():
                state[f"optimizer {i}/{index}/{key}"] = np.array(value)
    return state


def assert_bitwise_equal(after: dict, before: dict) -> None:
    assert after.keys() == before.keys()
    for name, value in before.items():
        assert after[name].dtype == value.dtype, name
        assert after[name].tobytes() == value.tobytes(), f"{name} changed"


class SnapshotAt(Callback):
    """Takes a snapshot after the update of step `step`."""

    def __init__(self, step: int, optimizers: list):
        self.step, self.optimizers, self.state = step, optimizers, None

    def on_batch_end(self, step: int, logs=None) -> None:
        if step == self.step:
            self.state = snapshot(self.model, self.optimizers)


def california(data_root, rows: int = 2000):
    """The first rows of California housing: 8 standardized features, target in 100k USD."""
    table = np.loadtxt(
        data_root("california-housing") / "california_housing.csv",
        delimiter=",",
        skiprows=1,
        max_rows=rows,
        dtype=np.float32,
    )
    x, y = table[:, :8], table[:, 8]
    return (x - x.mean(0)) / x.std(0), y


def test_fit_lowers_the_loss_on_real_data(data_root):
    x, y = california(data_root)
    td.manual_seed(0)
    model = Sequential([Dense(32, activation="relu"), BatchNormalization(), Dense(1)])
    model.compile(optimizer=optim.Adam(lr=1e-2), loss="mse", metrics=["rmse", "mae"])
    history = model.fit(
        x[:1600], y[:1600], epochs=6, batch_size=64, validation_data=(x[1600:], y[1600:]), verbose=0
    )
    loss = history.history["loss"]
    assert loss[-1] < 0.3 * loss[0]
    assert set(history.history) == {"loss", "rmse", "mae", "val_loss", "val_rmse", "val_mae"}
    assert history.history["val_rmse"][-1] < 0.9  # a mean predictor scores ~1.1 here
    logs = model.evaluate(x[1600:], y[1600:], batch_size=100)
    assert logs["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    assert model.predict(x[:5]).shape == (5, 1)


def test_the_same_seed_gives_the_same_run():
    x = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32)
    y = x.sum(axis=1)

    def run():
        td.manual_seed(5)
        model = Sequential([Dense(8, activation="tanh"), Dense(1)])
        model.compile(optimizer=optim.SGD(lr=0.05, momentum=0.9), loss="mse")
        return model.fit(x, y, epochs=3, batch_size=16, verbose=0).history["loss"], model

    (first, a), (second, b) = run(), run()
    assert first == second
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa.data, wb.data)


EPOCH_LINE = re.compile(r"^epoch ([123])/3  loss \d+\.\d{4}  \d+\.\ds$")


def small_fit(**kwargs) -> None:
    """Three epochs of eight steps (64 rows, batches of 8) with fit's default verbose."""
    x = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32)
    td.manual_seed(0)
    model = Sequential([Dense(4, activation="tanh"), Dense(1)])
    model.compile(optimizer=optim.SGD(lr=0.05), loss="mse")
    model.fit(x, x.sum(axis=1), epochs=3, batch_size=8, **kwargs)


def test_verbose_auto_when_piped_prints_one_line_per_epoch_and_no_bar(capsys):
    small_fit()  # capsys's stdout is not a terminal, as when output goes to a pipe or a log
    out, err = capsys.readouterr()
    assert [EPOCH_LINE.match(line)[1] for line in out.splitlines()] == ["1", "2", "3"], out
    assert "\r" not in out and err == ""  # no bar on either stream


@pytest.mark.parametrize("watched", ["terminal", "notebook"])
def test_verbose_auto_where_someone_watches_draws_a_bar_each_step_on_stdout(
    capsys, monkeypatch, watched
):
    if watched == "terminal":
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    else:  # a Jupyter kernel: stdout is no terminal, but tqdm.auto draws there
        monkeypatch.setitem(sys.modules, "ipykernel", ModuleType("ipykernel"))
    monkeypatch.setattr(train, "tqdm", functools.partial(train.tqdm, mininterval=0))
    small_fit()
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.split("\n")
    assert len(lines) == 4 and lines[-1] == ""
    for epoch, line in enumerate(lines[:3], 1):
        *bar, last = line.split("\r")  # the bar redrawn after every step, then the epoch's line
        assert [f" {8 * step}/64 " in "".join(bar) for step in range(9)] == [True] * 9, bar
        assert EPOCH_LINE.match(last)[1] == str(epoch), repr(line)


def test_verbose_0_is_silent_2_prints_lines_in_a_terminal_and_others_are_rejected(
    capsys, monkeypatch
):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    small_fit(verbose=0)
    assert capsys.readouterr() == ("", "")
    small_fit(verbose=2)
    out = capsys.readouterr().out
    assert [EPOCH_LINE.match(line)[1] for line in out.splitlines()] == ["1", "2", "3"], out
    with pytest.raises(ValueError, match="verbose must be 0, 1, 2 or 'auto', got 'yes'"):
        small_fit(verbose="yes")


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # NaN inputs, on purpose
def test_a_non_finite_step_changes_nothing_and_names_the_step():
    td.manual_seed(0)
    model = Sequential([Dense(4), BatchNormalization(), Dense(1)])
    optimizer = optim.SGD(lr=0.1, momentum=0.9)
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(1).standard_normal((32, 3)).astype(np.float32)
    y = np.zeros(32, np.float32)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # momentum and moving statistics
    weights = {k: w.data.copy() for k, w in model.named_weights().items()}
    state = optimizer.state_dict()

    history = model.fit(np.full_like(x, np.nan), y, epochs=1, batch_size=8, verbose=0)
    assert history.stop_reason.startswith("step 0: the loss is nan")
    for name, w in model.named_weights().items():  # moving statistics included
        np.testing.assert_array_equal(w.data, weights[name], err_msg=name)
    after = optimizer.state_dict()
    for index, buffers in state["state"].items():
        for key, value in buffers.items():
            np.testing.assert_array_equal(after["state"][index][key], value)

    bad = x.copy()
    bad[9, 0] = np.inf  # in the second batch: the first step is applied, the second is not
    history = model.fit(bad, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert history.stop_reason.startswith("step 1: the loss is")
    with pytest.raises(NonFiniteError, match="step 0"):
        model.fit(
            np.full_like(x, np.nan),
            y,
            epochs=1,
            batch_size=8,
            verbose=0,
            callbacks=[TerminateOnNaN(raise_error=True)],
        )


class Root(Layer):
    """y = x * sqrt(scale * mask), one trainable `scale` per feature. The mask is all ones
    except at the call that `countdown` (calls from now) names, where it zeroes feature 0:
    the output and the loss stay finite (sqrt(0) = 0), and so does dx, but d/dscale[0] is
    mask[0] * dy / (2 * sqrt(0)) = 0 * inf = nan."""

    countdown: int | None = None

    def build(self, input_shape) -> None:
        self.scale = self.add_weight("scale", (input_shape[-1],), "ones")

    def call(self, x: Tensor) -> Tensor:
        mask = np.ones(self.scale.shape, self.scale.dtype)
        if self.countdown is not None:
            self.countdown -= 1
            if self.countdown == 0:
                mask[0] = 0.0
        return x * (self.scale * Tensor(mask)).sqrt()


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # sqrt'(0), on purpose
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_a_finite_loss_with_a_non_finite_gradient_is_stopped_naming_the_first_weight(capsys):
    td.manual_seed(0)
    first, second = Root(), Root()
    model = Sequential([Dense(4), BatchNormalization(), first, Dense(4), second, Dense(1)])
    optimizer = optim.SGD(lr=0.05, momentum=0.9)
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(1).standard_normal((32, 3)).astype(np.float32)
    y = x[:, 0].copy()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # momentum and moving statistics

    first.countdown = second.countdown = 2  # step 1 of the next fit: both scales get a nan
    after_step_0 = SnapshotAt(0, [optimizer])
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[after_step_0])
    message = "step 1: the gradient of 2/scale is not finite (the first such weight)"
    assert history.stop_reason.startswith(message)  # 2/scale, not 4/scale, nor the Dense ones
    assert f"fit: stopped at {message}" in capsys.readouterr().out
    assert_bitwise_equal(snapshot(model, [optimizer]), after_step_0.state)
    assert all(p.grad is None for p in model.parameters())

    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # the mask is ones again
    assert history.stop_reason is None and np.isfinite(history.history["loss"][0])


def test_a_non_finite_gradient_names_the_first_weight():
    guard = TerminateOnNaN()
    grads = {"0/kernel": np.ones(2), "1/kernel": np.array([1.0, np.inf]), "2/bias": None}
    assert "1/kernel" in guard.check_step(4, 0.5, grads)
    assert guard.check_step(4, 0.5, {"0/kernel": np.ones(2)}) is None


def _fails_in_backward_forward(x, fail: bool):
    return x.copy(), fail


def _fails_in_backward_backward(dy, fail: bool):
    """dx = dy, or the MemoryError a failed allocation raises."""
    if fail:
        raise MemoryError("Unable to allocate 64.0 MiB (on purpose, in the backward pass)")
    return (dy,)


fails_in_backward = differentiable(
    _fails_in_backward_forward, _fails_in_backward_backward, "fails_in_backward"
)


class RunsOutOfMemory(Layer):
    """The identity, except that the call `countdown` names (calls from now) raises the
    MemoryError of a failed allocation, in the forward pass or (recorded then, raised during
    backward) in the backward pass."""

    countdown: int | None = None

    def __init__(self, where: str):
        super().__init__()
        self.where = where

    def call(self, x: Tensor) -> Tensor:
        fail = False
        if self.countdown is not None:
            self.countdown -= 1
            fail = self.countdown == 0
        if fail and self.where == "forward":
            raise MemoryError("Unable to allocate 64.0 MiB (on purpose, in the forward pass)")
        y = fails_in_backward(x, fail=fail)
        self.last_output = weakref.ref(y.data)  # to see whether the graph's arrays are freed
        return y


@pytest.mark.parametrize("where", ["forward", "backward"])
def test_running_out_of_memory_undoes_the_step_and_names_it(where):
    td.manual_seed(0)
    hog = RunsOutOfMemory(where)
    # after BatchNormalization (its statistics have moved when the hog fails) and before a
    # Dense layer (whose gradients exist when the backward pass fails)
    model = Sequential([Dense(8), BatchNormalization(), hog, Dense(1)])
    optimizer = optim.SGD(lr=0.05, momentum=0.9)
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(1).standard_normal((32, 3)).astype(np.float32)
    y = x[:, 0].copy()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # momentum and moving statistics

    hog.countdown = 2  # step 1 of the next fit
    after_step_0 = SnapshotAt(0, [optimizer])
    with pytest.raises(OutOfMemoryError) as caught:
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[after_step_0])
    message = str(caught.value)
    assert message.startswith("fit: out of memory on cpu at step 1, a batch of 8 examples")
    assert f"in the {where} pass" in message and "The step was undone" in message
    assert message.endswith("Try a smaller batch_size, e.g. fit(..., batch_size=4).")
    assert isinstance(caught.value, MemoryError)  # except MemoryError still catches it
    assert_bitwise_equal(snapshot(model, [optimizer]), after_step_0.state)
    assert all(p.grad is None for p in model.parameters())
    # the failed step's graph is freed although the error (and its traceback) is still held
    assert hog.last_output() is None

    before = snapshot(model, [optimizer])
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)  # usable: a smaller batch
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(model.layers[0].kernel.numpy(), before["0/kernel"])


def test_running_out_of_memory_in_evaluate_and_predict_names_the_batch():
    td.manual_seed(0)
    hog = RunsOutOfMemory("forward")
    model = Sequential([Dense(4), hog, Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((20, 3), np.float32)
    model.predict(x[:1])  # build
    hog.countdown = 2
    with pytest.raises(OutOfMemoryError, match=r"^evaluate: out of memory on cpu at examples "):
        model.evaluate(x, x[:, 0], batch_size=8)
    hog.countdown = 3
    with pytest.raises(OutOfMemoryError) as caught:
        model.predict(x, batch_size=8)
    assert str(caught.value).startswith(
        "predict: out of memory on cpu at examples 16-19, a batch of 4 examples (MemoryError: "
    )
    assert str(caught.value).endswith("e.g. predict(..., batch_size=2).")
    assert model.predict(x, batch_size=8).shape == (20, 1)  # usable again


def test_early_stopping_restores_the_best_weights():
    td.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = x[:, 0] + 0.1 * rng.standard_normal(64).astype(np.float32)
    model = Sequential([Dense(1)])
    model.compile(optimizer=optim.SGD(lr=0.9), loss="mse")  # overshoots: val_loss rises
    stopper = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    history = model.fit(
        x, y, epochs=30, batch_size=8, validation_data=(x, y), callbacks=[stopper], verbose=0
    )
    assert stopper.stopped_epoch is not None and len(history.epoch) < 30
    best = min(history.history["val_loss"])
    assert history.history["val_loss"][-1] > best
    assert model.evaluate(x, y, batch_size=64)["loss"] == pytest.approx(best, rel=1e-6)


def test_fit_errors_are_clear():
    model = Sequential([Dense(1)])
    with pytest.raises(ValueError, match="fit: call .*compile"):
        model.fit(np.ones((4, 2)), np.ones(4))
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"fit: x has 4 examples but y has 3"):
        model.fit(np.ones((4, 2), np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="compile: optimizer must be"):
        model.compile(optimizer="rmsprop-ish", loss="mse")
    with pytest.raises(ValueError, match="compile: metrics must be among"):
        model.compile(optimizer="sgd", loss="mse", metrics=["bleu"])


def test_two_optimizers_each_over_its_own_part(tmp_path):
    td.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = Sequential([Dense(8, activation="relu"), Dense(2)])
    model(x[:1])
    first, second = model.layers
    wide = optim.AdaGrad(first.parameters(), lr=0.1)
    deep = optim.Adam(second.parameters(), lr=0.01)
    model.compile(optimizer=[wide, deep], loss="cross_entropy", metrics=["accuracy"])
    before = [w.data.copy() for w in model.weights]
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        verbose=0,
        callbacks=[td.callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.npz"))],
    )
    assert all(not np.array_equal(w.data, b) for w, b in zip(model.weights, before))
    assert wide.state_dict()["state"] and deep.state_dict()["state"]
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e1.npz", "e2.npz", "e3.npz"]
    restored = Sequential([Dense(8, activation="relu"), Dense(2)])
    restored(x[:1])
    restored.load_weights(tmp_path / "e3.npz")
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))


def test_a_step_that_fails_after_the_forward_pass_changes_nothing():
    """The whole step is all or nothing, not only the model call: a loss that raises after
    the forward pass moved BatchNorm's statistics leaves them as they were, with the weights
    and the optimizer state, and drops the gradients."""
    td.manual_seed(0)
    model = Sequential([Dense(4), BatchNormalization(), Dense(1)])
    optimizer = optim.SGD(lr=0.1, momentum=0.9)
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(1).standard_normal((32, 3)).astype(np.float32)
    y = x[:, 0].copy()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # momentum and moving statistics
    before = snapshot(model, [optimizer])

    def broken_loss(outputs, target):
        raise RuntimeError("a bug in the loss")

    model.compile(optimizer=optimizer, loss=broken_loss)
    with pytest.raises(RuntimeError, match="a bug in the loss"):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert_bitwise_equal(snapshot(model, [optimizer]), before)
    assert all(p.grad is None for p in model.parameters())
