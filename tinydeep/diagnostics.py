"""Training diagnostics: gradient norms, update-to-weight ratios and activation statistics.

Read in this order:
  1. gradient_norms / layer_gradient_norms: the L2 norm of each trainable weight's `.grad`
     after a backward pass, by weight path ("blocks/3/conv1/kernel"), or per layer ("blocks/3/
     conv1", the root model being "").
     probe_gradient_norms: the same from one forward and backward pass on a batch you choose,
     leaving the model exactly as it was (to compare a network at initialization and later).
  2. snapshot / update_ratios: ||w_after - w_before|| / ||w_before|| per weight, around
     whatever changed the weights (usually one optimizer step). A healthy run sits near 1e-3.
  3. activation_stats: one forward pass with every layer's `call` wrapped, to record the mean,
     std and fraction of exact zeros ("dead" ReLU units) of each layer's output.
  4. GradientMonitor: the first two as a `fit` callback.

Norms are summed where the arrays live (NumPy or CuPy) in float64 and come back to the host
together, one transfer per call. Left out: histograms, per-unit statistics, TensorBoard.
"""

from __future__ import annotations

import functools
import math

from tinydeep import backend, losses
from tinydeep.backend import xp_of
from tinydeep.callbacks import Callback
from tinydeep.sparse import RowSparseGrad
from tinydeep.tensor import Tensor, no_grad


def _squared_sums(arrays: dict) -> dict[str, float]:
    """{name: sum(a**2)} in float64, brought to the host in one transfer."""
    if not arrays:
        return {}
    names = list(arrays)
    sums = [(a.astype("float64") ** 2).sum() for a in arrays.values()]
    on_host = backend.to_device(xp_of(sums[0]).stack(sums), "cpu")
    return {name: float(s) for name, s in zip(names, on_host)}


def _grad_values(grad):
    """The stored numbers of a gradient; a RowSparseGrad is coalesced first, since a row that
    appears twice adds up before it is squared."""
    return grad.coalesce().values if isinstance(grad, RowSparseGrad) else grad


def _squared_grad_norms(model) -> dict[str, float]:
    named = model.named_weights(trainable_only=True)
    grads = {k: _grad_values(w.grad) for k, w in named.items() if w.grad is not None}
    return _squared_sums(grads)


def gradient_norms(model) -> dict[str, float]:
    """||grad||_2 of every trainable weight that has a gradient, by weight path."""
    return {name: math.sqrt(s) for name, s in _squared_grad_norms(model).items()}


def layer_gradient_norms(model) -> dict[str, float]:
    """sqrt(sum of ||grad||^2 over a layer's own trainable weights), by layer path ("" is the
    root). Layers whose weights have no gradient are left out; a weight shared by two layers
    counts for the first one `named_weights` finds it under."""
    per_layer: dict[str, float] = {}
    for name, s in _squared_grad_norms(model).items():
        path = name.rpartition("/")[0]  # "blocks/3/conv1/kernel" -> "blocks/3/conv1"
        per_layer[path] = per_layer.get(path, 0.0) + s
    return {path: math.sqrt(s) for path, s in per_layer.items()}


def probe_gradient_norms(model, loss, x, y, training: bool = True) -> dict[str, float]:
    """layer_gradient_norms of `loss(model(x, training=training), y)` for one batch x, y.

    loss: a name from tinydeep.losses ("cross_entropy") or a function (outputs, y) -> scalar
    Tensor. The probe changes nothing: the weights' previous `.grad` and the moving
    statistics that a training-mode pass updates (BatchNormalization) are put back after it.
    """
    loss_fn = losses.get(loss)
    weights = list(model.named_weights(trainable_only=True).values())
    grads = [w.grad for w in weights]
    moving = [(w, w.data.copy()) for w in model.non_trainable_weights]
    try:
        for w in weights:
            w.grad = None
        outputs = model(backend.to_device(x, model.device), training=training)
        target = y if isinstance(y, Tensor) else backend.to_device(y, model.device)
        loss_fn(outputs, target).backward()
        return layer_gradient_norms(model)
    finally:
        for w, grad in zip(weights, grads):
            w.grad = grad
        for w, saved in moving:
            w.data[...] = saved


def snapshot(model) -> dict:
    """Copies of the trainable weights' arrays, by weight path, on the weights' device."""
    return {name: w.data.copy() for name, w in model.named_weights(trainable_only=True).items()}


def update_ratios(before: dict, model) -> dict[str, float]:
    """||w_now - w_before|| / ||w_before|| for every weight in `before` (from `snapshot`).

    A weight that was all zeros gives inf if it moved and 0.0 if it did not.
    """
    named = model.named_weights(trainable_only=True)
    names = [name for name in before if name in named]
    moved = _squared_sums({name: named[name].data - before[name] for name in names})
    sizes = _squared_sums({name: before[name] for name in names})
    ratios = {}
    for name in names:
        if sizes[name] > 0:
            ratios[name] = math.sqrt(moved[name] / sizes[name])
        else:
            ratios[name] = math.inf if moved[name] > 0 else 0.0
    return ratios


def activation_stats(model, x, training: bool = False) -> dict[str, dict]:
    """Run `model(x, training=training)` once without a graph and return, for every layer of
    the tree whose output is one Tensor, {"mean", "std", "dead_fraction", "size"} of that
    output, by layer path ("" is the model itself). `dead_fraction` counts exact zeros: after
    a ReLU, the units that are off. A layer called several times (shared) is summarized over
    all its calls.

    Each layer's `call` is replaced by a recording wrapper for the pass only (an instance
    attribute, removed in a `finally`), so the model is left as it was. With training=True
    the moving statistics that the pass updates (BatchNormalization) are restored too.
    """
    recorded: dict[str, list[tuple[int, float, float, float]]] = {}
    layers = [(path, layer) for path, layer, _ in model.walk()]
    own_call = {id(layer): layer.__dict__["call"] for _, layer in layers if "call" in vars(layer)}
    moving = [(w, w.data.copy()) for w in model.non_trainable_weights] if training else []

    def recording(path, call):
        # functools.wraps keeps the signature visible to Layer._call_takes_training.
        @functools.wraps(call)
        def wrapper(*args, **kwargs):
            out = call(*args, **kwargs)
            if isinstance(out, Tensor):
                recorded.setdefault(path, []).append(_moments(out.data))
            return out

        return wrapper

    try:
        for path, layer in layers:
            layer.call = recording(path, layer.call)
        with no_grad():
            model(x, training=training)
    finally:
        for _, layer in layers:
            if id(layer) in own_call:
                layer.call = own_call[id(layer)]
            else:
                vars(layer).pop("call", None)  # the class's `call` shows through again
        for weight, saved in moving:
            weight.data[...] = saved
    return {path: _combine(parts) for path, parts in recorded.items()}


def _moments(a) -> tuple[int, float, float, float]:
    """(size, mean, sum of squared deviations, zeros) of one array, in float64."""
    xp = xp_of(a)
    a = a.astype("float64")
    mean = a.mean() if a.size else xp.asarray(0.0)
    values = xp.stack([mean, ((a - mean) ** 2).sum(), (a == 0).sum().astype("float64")])
    mean, m2, zeros = (float(v) for v in backend.to_device(values, "cpu"))
    return int(a.size), mean, m2, zeros


def _combine(parts: list[tuple[int, float, float, float]]) -> dict:
    """The statistics of several calls' outputs taken together (Chan et al.'s pairwise
    update of the mean and the sum of squared deviations)."""
    n, mean, m2, zeros = 0, 0.0, 0.0, 0.0
    for nb, mb, m2b, zb in parts:
        total = n + nb
        if total:
            delta = mb - mean
            mean += delta * nb / total
            m2 += m2b + delta * delta * n * nb / total
        n, zeros = total, zeros + zb
    return {
        "mean": mean,
        "std": math.sqrt(m2 / n) if n else 0.0,  # population std, as np.std
        "dead_fraction": zeros / n if n else 0.0,
        "size": n,
    }


class GradientMonitor(Callback):
    """Records per-layer gradient norms and per-weight update ratios every `every` steps.

    `fit` runs on_batch_end after the optimizers' step and before the next zero_grad, so at
    step s (counted over the whole run, from 0) an entry of `history` holds:
      "step": s,
      "grad_norm": layer_gradient_norms: the gradients computed at step s, i.e. those the
          update of step s just used (taken at the weights w_s before that update);
      "update_ratio": update_ratios: ||w_{s+1} - w_s|| / ||w_s|| per weight, the relative
          change made by the update of step s alone (the snapshot of w_s is taken at the end
          of step s - 1, or at train begin for step 0, only when step s will be recorded).
    A step rejected by the non-finite guard is not counted and records nothing.
    """

    def __init__(self, every: int = 10, ratios: bool = True):
        if every < 1:
            raise ValueError(f"GradientMonitor: every must be >= 1, got {every}")
        self.every = every
        self.ratios = ratios
        self.history: list[dict] = []
        self._before: dict | None = None

    def on_train_begin(self, logs=None) -> None:
        self._before = snapshot(self.model) if self.ratios else None  # fit counts from 0

    def on_batch_end(self, step: int, logs=None) -> None:
        if step % self.every == 0:
            entry = {"step": step, "grad_norm": layer_gradient_norms(self.model)}
            if self._before is not None:
                entry["update_ratio"] = update_ratios(self._before, self.model)
            self.history.append(entry)
        due = self.ratios and (step + 1) % self.every == 0
        self._before = snapshot(self.model) if due else None


__all__ = [
    "GradientMonitor",
    "activation_stats",
    "gradient_norms",
    "layer_gradient_norms",
    "probe_gradient_norms",
    "snapshot",
    "update_ratios",
]
