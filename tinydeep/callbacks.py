"""Callbacks for `fit`: History, TerminateOnNaN (on by default), EarlyStopping,
ModelCheckpoint, TrainingCheckpoint and LearningRateScheduler, with Keras's names and hooks.

A callback is told about the run at fixed points: on_train_begin/end, on_epoch_begin/end
(with the epoch's logs: "loss", metrics, "val_loss", ...), on_batch_end (with the step's
logs). It can end training by setting `model.stop_training = True`.

TerminateOnNaN is the exception: it is asked before each update (`check_step`), so a step
whose loss or gradients are not finite is rejected before any parameter, optimizer state or
moving statistic changes.
"""

from __future__ import annotations

import math

import numpy as np

from tinydeep import backend, checkpoint
from tinydeep.backend import xp_of


class Callback:
    """Base class: every hook does nothing."""

    model = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs=None) -> None: ...

    def on_train_end(self, logs=None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs=None) -> None: ...

    def on_epoch_end(self, epoch: int, logs=None) -> None: ...

    def on_batch_end(self, step: int, logs=None) -> None: ...


class History(Callback):
    """Records each epoch's logs: history.history["loss"] is the list of epoch losses."""

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.stop_reason: str | None = None  # why training ended early, if it did

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class NonFiniteError(FloatingPointError):
    """A training step produced a non-finite loss or gradient."""


def first_non_finite(named_grads: dict) -> str | None:
    """The name of the first gradient holding a NaN or an infinity, or None.

    One flag per gradient is computed where the gradient lives, and the flags come back to
    the host together: on a GPU that is one wait per step, not one per weight.
    """
    names, flags = [], []
    for name, grad in named_grads.items():
        if grad is None:
            continue
        values = getattr(grad, "values", grad)  # a RowSparseGrad keeps its rows in .values
        names.append(name)
        flags.append(xp_of(values).isfinite(values).all())
    if not flags:
        return None
    finite = backend.to_device(xp_of(flags[0]).stack(flags), "cpu")
    bad = np.flatnonzero(~finite)
    return names[bad[0]] if len(bad) else None


class TerminateOnNaN(Callback):
    """Stop training at the first step whose loss or gradients are not finite, before that
    step changes anything. With raise_error=True, raise NonFiniteError instead of stopping."""

    def __init__(self, raise_error: bool = False):
        self.raise_error = raise_error

    def check_step(self, step: int, loss: float, named_grads: dict) -> str | None:
        """A message naming the step and the culprit, or None when the step is finite."""
        if not math.isfinite(loss):
            return f"step {step}: the loss is {loss}; no update was applied"
        culprit = first_non_finite(named_grads)
        if culprit is not None:
            return (
                f"step {step}: the gradient of {culprit} is not finite (the first such "
                "weight); no update was applied"
            )
        return None


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs;
    restore_best_weights puts back the weights of the best epoch."""

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = abs(min_delta)
        maximize = mode == "max" or (mode == "auto" and ("acc" in monitor or "auc" in monitor))
        self.sign = -1.0 if maximize else 1.0  # compare sign * value: smaller is better
        self.restore_best_weights = restore_best_weights
        self.stopped_epoch = None

    def on_train_begin(self, logs=None) -> None:
        self.best = math.inf
        self.wait = 0
        self.best_weights = None

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if logs is None or self.monitor not in logs:
            raise KeyError(
                f"EarlyStopping: monitor {self.monitor!r} is not among the logs "
                f"{sorted(logs or {})}"
            )
        value = self.sign * logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = {
                    k: w.data.copy() for k, w in self.model.named_weights().items()
                }
            return
        self.wait += 1
        if self.wait > self.patience:
            self.model.stop_training = True
            self.stopped_epoch = epoch
            if self.best_weights is not None:
                for name, weight in self.model.named_weights().items():
                    weight.data[...] = self.best_weights[name]


class ModelCheckpoint(Callback):
    """Save the weights after each epoch to `filepath` (which may hold "{epoch}" and log
    names, e.g. "ckpt-{epoch:02d}-{val_loss:.3f}.npz"); save_best_only keeps the best by
    `monitor`."""

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
    ):
        self.filepath = filepath
        self.monitor = monitor
        self.save_best_only = save_best_only
        maximize = mode == "max" or (mode == "auto" and ("acc" in monitor or "auc" in monitor))
        self.sign = -1.0 if maximize else 1.0
        self.best = math.inf

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        if self.save_best_only:
            if self.monitor not in logs:
                raise KeyError(
                    f"ModelCheckpoint: monitor {self.monitor!r} is not among the "
                    f"logs {sorted(logs)}"
                )
            value = self.sign * logs[self.monitor]
            if not value < self.best:
                return
            self.best = value
        self.model.save_weights(self.filepath.format(epoch=epoch + 1, **logs))


class TrainingCheckpoint(Callback):
    """After each epoch, save everything a resumed run needs (weights, optimizer and schedule
    state, the random generator, the epoch) with tinydeep.checkpoint.save_checkpoint; resume
    with load_checkpoint and fit(..., initial_epoch=progress["epoch"])."""

    def __init__(self, path, optimizers=(), schedules=()):
        self.path = path
        self.optimizers = list(optimizers)
        self.schedules = list(schedules)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        checkpoint.save_checkpoint(
            self.path, self.model, self.optimizers, self.schedules, epoch=epoch + 1
        )


class LearningRateScheduler(Callback):
    """Advance a schedule from tinydeep.optim once per optimizer step (per batch)."""

    def __init__(self, schedule):
        self.schedule = schedule

    def on_batch_end(self, step: int, logs=None) -> None:
        self.schedule.step()
