"""The training loop behind `model.compile`, `fit`, `evaluate` and `predict`.

One training step, which is all `fit` repeats (read `train_step`):

    outputs = model(x, training=True)            forward, recording the graph
    loss = sum_i weight_i * loss_i(outputs_i, y_i)
    optimizer.zero_grad(); loss.backward()       gradients into every parameter's .grad
    (TerminateOnNaN: a non-finite loss or gradient rejects the step here, before any change)
    optimizer.step()                             the update, in place

A step is all or nothing (tinydeep/rollback.py, the mechanism that also makes a failed layer
call change nothing): if anything before the update raises (the forward pass, the loss, the
backward pass), or the guard rejects the step, the moving statistics it moved are put back
and the gradients dropped. Running out of memory
(MemoryError on the host; CuPy's OutOfMemoryError on the GPU, which is a MemoryError too) is
raised as OutOfMemoryError, which names the step, the batch size and the device, once the
failed batch's memory is released (`naming_out_of_memory`): the model can go on with a
smaller batch.

Written out by hand, that is the explicit loop to learn from:

    for x, y in batches:
        optimizer.zero_grad()
        loss = tinydeep.losses.cross_entropy(model(x, training=True), y)
        loss.backward()
        optimizer.step()

Read in this order: Compiled (what compile() keeps), fit, train_step, evaluate, predict;
OutOfMemoryError with naming_out_of_memory, then the batching helpers, are at the end. Left
out: distributed training, mixed precision, gradient accumulation over several batches.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from tinydeep import backend, losses, metrics, optim, rollback
from tinydeep.callbacks import Callback, History, NonFiniteError, TerminateOnNaN
from tinydeep.random import generator
from tinydeep.tensor import Tensor, no_grad

OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "adagrad": optim.AdaGrad, "ftrl": optim.FTRL}
METRICS: dict[str, Callable] = {
    "accuracy": metrics.accuracy,
    "acc": metrics.accuracy,
    "precision": metrics.precision,
    "recall": metrics.recall,
    "f1": metrics.f1,
    "auc": metrics.roc_auc,
    "rmse": metrics.rmse,
    "mae": metrics.mae,
}


@dataclass
class Compiled:
    """What compile() chose: optimizers, one loss and weight per output, metric names."""

    optimizers: list
    losses: list[Callable]
    loss_weights: list[float] | None
    metrics: list[str]

    @classmethod
    def create(cls, model, optimizer, loss, metric_names, loss_weights) -> Compiled:
        if loss is None:
            raise ValueError(f"compile: {model.name!r} needs a loss, e.g. loss='mse'")
        optimizers = list(optimizer) if isinstance(optimizer, (list, tuple)) else [optimizer]
        for i, opt in enumerate(optimizers):
            if isinstance(opt, str):
                if opt.lower() not in OPTIMIZERS:
                    raise ValueError(
                        f"compile: optimizer must be an Optimizer or one of "
                        f"{sorted(OPTIMIZERS)}, got {opt!r}"
                    )
                optimizers[i] = OPTIMIZERS[opt.lower()]()
        loss_list = list(loss) if isinstance(loss, (list, tuple)) else [loss]
        names = list(metric_names or [])
        for name in names:
            if name not in METRICS:
                raise ValueError(f"compile: metrics must be among {sorted(METRICS)}, got {name!r}")
        weights = None if loss_weights is None else [float(w) for w in loss_weights]
        return cls(optimizers, [losses.get(fn) for fn in loss_list], weights, names)

    def bind(self, model) -> None:
        """Give an optimizer made without parameters (Keras style) the model's parameters."""
        unbound = [opt for opt in self.optimizers if not opt.param_groups]
        if len(unbound) > 1 or (unbound and len(self.optimizers) > 1):
            raise ValueError(
                "compile: with several optimizers, create each one with its own "
                "parameters, e.g. AdaGrad(model.wide.parameters())"
            )
        for opt in unbound:
            opt.bind(model.parameters())

    def zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad()

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()


def fit(
    model,
    x,
    y,
    epochs: int = 1,
    batch_size: int = 32,
    validation_data=None,
    validation_split: float = 0.0,
    shuffle: bool = True,
    augment: Callable | None = None,
    callbacks: list[Callback] | None = None,
    verbose: int | str = "auto",
    initial_epoch: int = 0,
) -> History:
    """Train `model` (compiled) on arrays x, y for `epochs`; returns the History.

    x, y: arrays, or lists/tuples of arrays for several inputs/outputs, with one length N.
    validation_data: (x_val, y_val), evaluated after each epoch ("val_loss", "val_<metric>").
    validation_split: or the last fraction of x, y held out for that (before any shuffling).
    shuffle: a new order every epoch, drawn from tinydeep's generator (manual_seed).
    augment: a function applied to each training batch of x (NumPy, before it goes to the
        device), e.g. tinydeep.data.random_crop_flip; not applied to validation data.
    callbacks: run in order after History; TerminateOnNaN is added unless one is given.
    verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch; both 1 and 2 end
        each epoch with its line ("epoch 3/10  loss 0.4210  accuracy 0.8512  41.2s"), on
        stdout. "auto" (Keras's default): 1 in a terminal or a notebook, 2 when stdout is
        piped or redirected, so that a log gets one line per epoch and no bar.
    """
    compiled = _require_compiled(model, "fit")
    verbose = _verbosity(verbose)
    xs, ys, n = _inputs(model, x, y, "fit")
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
    if validation_split and validation_data is None:
        held = int(n * validation_split)
        validation_data = ([a[n - held :] for a in xs], [a[n - held :] for a in ys])
        xs, ys, n = [a[: n - held] for a in xs], [a[: n - held] for a in ys], n - held
    if batch_size < 1 or epochs < 0:
        raise ValueError(
            f"fit: batch_size must be >= 1 and epochs >= 0, got {batch_size} and {epochs}"
        )
    history = History()
    guard = next((c for c in callbacks or [] if isinstance(c, TerminateOnNaN)), TerminateOnNaN())
    callbacks = [history, *(callbacks or [])]
    for callback in callbacks:
        callback.set_model(model)
    model.stop_training = False

    if not model.built:  # build on one batch, so the optimizers can see the parameters
        with no_grad():
            model(_batch(xs, np.arange(min(n, batch_size)), model.device), training=False)
    compiled.bind(model)
    for callback in callbacks:
        callback.on_train_begin()
    step = 0
    for epoch in range(initial_epoch, epochs):
        for callback in callbacks:
            callback.on_epoch_begin(epoch)
        started = time.perf_counter()
        order = generator().permutation(n) if shuffle else np.arange(n)
        bar = tqdm(
            total=n,
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="ex",
            leave=False,
            file=sys.stdout,  # where the epoch lines go, in order with them (tqdm's is stderr)
            disable=verbose != 1,
        )
        loss_sum, outputs_seen, targets_seen = 0.0, [], []
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            with naming_out_of_memory("fit", f"step {step}", len(index), model.device, UNCHANGED):
                xb, yb = _batch(xs, index, model.device, augment), [a[index] for a in ys]
            loss, outputs, problem = train_step(model, compiled, xb, yb, step, guard)
            if problem is not None:
                history.stop_reason = problem
                model.stop_training = True
                bar.close()
                if guard.raise_error:
                    raise NonFiniteError(f"fit: {problem}")
                print(f"fit: stopped at {problem}")
                break
            loss_sum += loss * len(index)
            outputs_seen.append(outputs)
            targets_seen.append(yb)
            bar.update(len(index))
            bar.set_postfix(loss=f"{loss_sum / (start + len(index)):.4f}", refresh=False)
            for callback in callbacks:
                callback.on_batch_end(step, {"loss": loss})
            step += 1
            if model.stop_training:
                break
        bar.close()
        if history.stop_reason is not None:
            break
        seen = sum(len(t[0]) for t in targets_seen)
        logs = {"loss": loss_sum / max(seen, 1)}
        logs.update(_metric_logs(compiled, outputs_seen, targets_seen))
        if validation_data is not None:
            val = evaluate(model, *validation_data, batch_size=batch_size)
            logs.update({f"val_{key}": value for key, value in val.items()})
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
        if verbose:
            shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items())
            print(f"epoch {epoch + 1}/{epochs}  {shown}  {time.perf_counter() - started:.1f}s")
        if model.stop_training:
            break
    for callback in callbacks:
        callback.on_train_end()
    return history


def train_step(model, compiled: Compiled, xb, yb: list, step: int, guard: TerminateOnNaN):
    """One update. Returns (loss, outputs as NumPy arrays, None), or (nan, None, message)
    when the guard rejects the step, in which case nothing was changed.

    The forward and backward pass are all or nothing: if they raise, running out of memory
    included, or the guard rejects the step, the moving statistics are put back and the
    gradients dropped; weights and optimizer state are untouched, since the update had not
    begun. Out of memory is raised as OutOfMemoryError, which says so.
    """
    where = ("fit", f"step {step}", len(yb[0]), model.device)
    with naming_out_of_memory(*where, UNDONE), rollback.all_or_nothing():
        rollback.on_failure(compiled.zero_grad)  # the step's gradients go with it
        outputs = model(xb, training=True)
        loss = total_loss(compiled, outputs, yb)
        compiled.zero_grad()
        loss.backward()
        value = loss.item()
        problem = guard.check_step(step, value, _named_grads(model))
        if problem is not None:
            rollback.undo()
            return float("nan"), None, problem
    # Out of memory here is rare (an update needs at most a parameter-sized temporary), but
    # it cannot be undone: the parameters updated before it stay updated.
    with naming_out_of_memory(*where, PARTLY, release=compiled.zero_grad):
        compiled.step()
    return value, _to_numpy(outputs), None


def total_loss(compiled: Compiled, outputs, targets: list) -> Tensor:
    """sum_i weight_i * loss_i(output_i, target_i), the loss being reused for every output
    when compile() was given one."""
    outs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
    if len(targets) != len(outs):
        raise ValueError(f"the model has {len(outs)} outputs but {len(targets)} targets were given")
    fns = compiled.losses * len(outs) if len(compiled.losses) == 1 else compiled.losses
    weights = compiled.loss_weights or [1.0] * len(outs)
    if len(fns) != len(outs) or len(weights) != len(outs):
        raise ValueError(
            f"compile: {len(fns)} losses and {len(weights)} loss weights for a "
            f"model with {len(outs)} outputs"
        )
    total = None
    for fn, weight, out, target in zip(fns, weights, outs, targets):
        target = backend.to_device(_align(target, out), out.device)
        term = fn(out, target) * weight if weight != 1.0 else fn(out, target)
        total = term if total is None else total + term
    return total


def evaluate(model, x, y, batch_size: int = 32) -> dict[str, float]:
    """{"loss": ..., metric: ...} on x, y, with training=False and no graph."""
    compiled = _require_compiled(model, "evaluate")
    xs, ys, n = _inputs(model, x, y, "evaluate")
    loss_sum, outputs_seen, targets_seen = 0.0, [], []
    with no_grad():
        for start in range(0, n, batch_size):
            index = np.arange(start, min(start + batch_size, n))
            where = f"examples {start}-{index[-1]}"
            with naming_out_of_memory("evaluate", where, len(index), model.device):
                xb, yb = _batch(xs, index, model.device), [a[index] for a in ys]
                outputs = model(xb, training=False)
                loss_sum += total_loss(compiled, outputs, yb).item() * len(index)
                outputs_seen.append(_to_numpy(outputs))
            targets_seen.append(yb)
    logs = {"loss": loss_sum / max(n, 1)}
    logs.update(_metric_logs(compiled, outputs_seen, targets_seen))
    return logs


def predict(model, x, batch_size: int = 32):
    """The model's outputs on x as NumPy arrays (a tuple for several outputs)."""
    xs = _as_list(_by_input_name(model, x, "predict"))
    n = _common_length(xs, "predict", "x")
    chunks = []
    with no_grad():
        for start in range(0, n, batch_size):
            index = np.arange(start, min(start + batch_size, n))
            where = f"examples {start}-{index[-1]}"
            with naming_out_of_memory("predict", where, len(index), model.device):
                chunks.append(_to_numpy(model(_batch(xs, index, model.device), training=False)))
    if not chunks:
        raise ValueError("predict: x is empty")
    return (
        tuple(np.concatenate(parts) for parts in zip(*chunks))
        if len(chunks[0]) > 1
        else np.concatenate([c[0] for c in chunks])
    )


# ---- running out of memory ------------------------------------------------------------------


class OutOfMemoryError(MemoryError):
    """fit, evaluate or predict ran out of memory on the host or the GPU; the message names
    the step or batch, its size and the device, and says what state the model is in."""


UNDONE = (
    "The step was undone: weights, optimizer state and moving statistics are as they were "
    "before it, so the model can be used again. "
)
UNCHANGED = "It happened before the step began: nothing was changed. "
PARTLY = (
    "It happened inside the optimizer's update, so some parameters may already be updated: "
    "reload the last checkpoint to continue exactly. "
)


@contextmanager
def naming_out_of_memory(
    what: str, where: str, n: int, device: str, state: str = "", release: Callable | None = None
) -> Iterator[None]:
    """Turn a MemoryError inside into an OutOfMemoryError that names `what` ("fit"), `where`
    ("step 3"), the batch size `n`, the device and the model's `state` (UNDONE, ...), after
    releasing what the failed batch held.

    `release` runs first (fit drops the gradients). The arrays of the failed batch stay alive
    as long as the frames of the traceback hold them, so those frames' locals are cleared
    (the traceback itself, with its line numbers, is kept); on the GPU, the blocks CuPy's
    memory pool keeps cached are then given back.
    """
    try:
        yield
    except MemoryError as error:
        if release is not None:
            release()
        traceback.clear_frames(error.__traceback__)  # frames still running are skipped
        if device == "cuda":
            backend.cupy_module().get_default_memory_pool().free_all_blocks()
        raise OutOfMemoryError(
            f"{what}: out of memory on {device} at {where}, a batch of {n} examples "
            f"({type(error).__name__}: {error}). {state}Try a smaller batch_size, e.g. "
            f"{what}(..., batch_size={max(n // 2, 1)})."
        ) from error


# ---- helpers --------------------------------------------------------------------------------


def _verbosity(verbose: int | str) -> int:
    """fit's verbose as 0, 1 or 2: "auto" is a progress bar (1) where someone watches stdout
    (a terminal; a Jupyter kernel, where tqdm.auto draws a widget), else a line per epoch."""
    if verbose == "auto":
        watched = "ipykernel" in sys.modules or sys.stdout.isatty()
        return 1 if watched else 2
    if verbose not in (0, 1, 2):
        raise ValueError(f"fit: verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return verbose


def _require_compiled(model, what: str) -> Compiled:
    if model.compiled is None:
        raise ValueError(f"{what}: call {model.name}.compile(optimizer=..., loss=...) first")
    return model.compiled


def _as_list(arrays) -> list:
    """One array, or a list/tuple of them, as a list of arrays."""
    if isinstance(arrays, (list, tuple)):
        return [a.numpy() if isinstance(a, Tensor) else np.asarray(a) for a in arrays]
    return [arrays.numpy() if isinstance(arrays, Tensor) else np.asarray(arrays)]


def _by_input_name(model, x, what: str):
    """A dict of inputs keyed by the model's `input_names` (Keras's way for a functional
    model, `fit({"wide_input": a, "deep_input": b}, y)`) as a list in that order."""
    if not isinstance(x, dict):
        return x
    names = getattr(model, "input_names", None)
    if names is None:
        raise TypeError(f"{what}: x is a dict, but {model.where()} has no input_names to order it")
    missing = [name for name in names if name not in x]
    if missing or len(x) != len(names):
        raise ValueError(f"{what}: x must have the keys {list(names)}, got {sorted(x)}")
    return [x[name] for name in names]


def _common_length(arrays: list, what: str, argument: str) -> int:
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) > 1:
        raise ValueError(f"{what}: the arrays of {argument} must have one length, got {lengths}")
    return lengths[0]


def _inputs(model, x, y, what: str):
    xs, ys = _as_list(_by_input_name(model, x, what)), _as_list(y)
    n = _common_length(xs, what, "x")
    if _common_length(ys, what, "y") != n:
        raise ValueError(f"{what}: x has {n} examples but y has {len(ys[0])}")
    return xs, ys, n


def _batch(xs: list, index: np.ndarray, device: str, augment: Callable | None = None):
    """The rows `index` of each input, augmented if asked, as Tensors on `device` (one, or a
    list for several inputs)."""
    arrays = [a[index] for a in xs]
    if augment is not None:
        arrays = [augment(arrays[0])] if len(arrays) == 1 else list(augment(arrays))
    tensors = [Tensor(backend.to_device(a, device)) for a in arrays]
    return tensors[0] if len(tensors) == 1 else tensors


def _align(target: np.ndarray, output: Tensor) -> np.ndarray:
    """Targets of shape (N,) for outputs of shape (N, 1) are reshaped to match, as Keras does
    for regression; class-index targets (N,) for logits (N, K) are left as they are."""
    if target.shape != output.shape and target.size == output.size and target.dtype.kind == "f":
        return target.reshape(output.shape)
    return target


def _to_numpy(outputs) -> tuple:
    outs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    return tuple(o.numpy() for o in outs)


def _named_grads(model) -> dict:
    return {name: w.grad for name, w in model.named_weights(trainable_only=True).items()}


def _metric_logs(compiled: Compiled, outputs_seen: list, targets_seen: list) -> dict:
    """Each metric over the whole epoch, per output ("accuracy", or "output_1_accuracy")."""
    logs = {}
    if not compiled.metrics or not outputs_seen:
        return logs
    n_out = len(outputs_seen[0])
    for i in range(n_out):
        predicted = np.concatenate([o[i] for o in outputs_seen])
        true = np.concatenate([t[i] for t in targets_seen])
        prefix = "" if n_out == 1 else f"output_{i + 1}_"
        for name in compiled.metrics:
            logs[f"{prefix}{name}"] = float(METRICS[name](true, predicted))
    return logs
