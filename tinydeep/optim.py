"""Optimizers: how the gradients that backward() leaves in `.grad` change the parameters.

One training step is `loss.backward()`, then `optimizer.step()`, which updates each
parameter's array in place (layers keep holding the same Tensor objects), then
`optimizer.zero_grad()`. Each optimizer is two pieces:
  - a plain array function, `*_update(param, grad, state arrays..., hyper-parameters)`, that
    holds the update equations and changes its arrays in place. It is the readable reference,
    written once against `xp` (NumPy or CuPy); a kernel of the same name in
    `tinydeep_kernels` replaces it when one exists (tinydeep/backend.py: kernelized).
  - a small class that keeps the hyper-parameters and the per-parameter state, and calls it.

Read in this order:
  1. Optimizer                 param groups, step() for every optimizer, state_dict, bind
  2. sgd_update, SGD           the update rules, each with its equations in the docstring,
  3. adagrad_update, AdaGrad   each matching PyTorch's (torch.optim) step for step
  4. adam_update, Adam, AdamW
  5. ftrl_update, FTRL         FTRL-Proximal, TensorFlow's / Keras's `Ftrl`
  6. clip_grad_norm            rescaling all gradients to a maximum global L2 norm
Learning-rate schedules (StepDecay, CosineDecay, LinearWarmup) are in tinydeep/schedules.py,
and importable from here too (`optim.StepDecay`, or Keras's `optimizers.schedules.StepDecay`).

Row-sparse gradients. An embedding table's gradient is a `RowSparseGrad` (tinydeep/sparse.py).
Where an update rule leaves a row with a zero gradient unchanged (SGD without momentum or
weight decay, AdaGrad without weight decay, FTRL), only the named rows are read and written:
the rows are coalesced (a repeated row's gradients add up), gathered, updated by the same
`*_update` function and scattered back, so the result is exactly the dense update (for
FTRL, on every row a dense step would not reset: see its docstring). Elsewhere
(momentum, weight decay, Adam) a zero gradient still moves the row, so the gradient is made
dense first and the semantics stay PyTorch's dense ones.

Dtypes. A gradient must have its parameter's dtype and shape, as in PyTorch; backward()
casts every gradient so, and a gradient set by hand that differs is an error at step(),
raised before any parameter or state changes (a float64 gradient on a float32 parameter would
be rounded in silently by NumPy and refused by the CUDA kernels, so neither decides).
Each `*_update` function checks its arrays the same way before its reference or kernel runs.

Left out on purpose: AMSGrad, `maximize`, closures re-evaluating the loss, add_param_group,
FTRL's l2_shrinkage, and mixed-precision master weights.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import numpy as np

from tinydeep import backend, schedules
from tinydeep.backend import kernelized, xp_of
from tinydeep.schedules import CosineDecay, LinearWarmup, Schedule, StepDecay
from tinydeep.sparse import RowSparseGrad
from tinydeep.tensor import Tensor

__all__ = [
    "FTRL",
    "SGD",
    "AdaGrad",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineDecay",
    "Ftrl",
    "LinearWarmup",
    "Optimizer",
    "Schedule",
    "StepDecay",
    "clip_grad_norm",
    "schedules",
]

Params = Iterable[Tensor] | Iterable[dict]


# --------------------------------------------------------------------------------------------
# 1. The base class: param groups, the step loop, state_dict


class Optimizer:
    """Updates a list of trainable Tensors from their gradients; subclasses give the rule.

    params: an iterable of Tensors, or of dicts ("param groups", as in PyTorch), each with a
        "params" entry and any hyper-parameters that differ from the constructor's, e.g.
        `Adam([{"params": encoder}, {"params": head, "lr": 1e-2}], lr=1e-3)`. Or None, for
        the Keras style: `SGD(learning_rate=0.1)` now, `bind(params)` later (a model's compile
        does that).

    param_groups: list of dicts, every hyper-parameter of the group plus "params".
    state: per parameter (Tensors hash by identity), a dict with "step" (updates done) and the
        optimizer's arrays, made on the parameter's first update.
    """

    def __init__(self, params: Params | None, defaults: dict):
        self.name = type(self).__name__
        self.defaults = self._checked(defaults)
        self.param_groups: list[dict] = []
        self.state: dict[Tensor, dict] = {}
        if params is not None:
            self.bind(params)

    # ---- what subclasses define ------------------------------------------------------------

    def _check(self, group: dict) -> None:
        """Validate the group's hyper-parameters, converting them to plain floats in place."""
        group["lr"] = _number(self.name, "lr", group["lr"])

    def _init_state(self, data, group: dict) -> dict:
        """The state arrays of a parameter with array `data`, before its first update."""
        return {}

    def _update(self, data, grad, state: dict, group: dict) -> None:
        """Update the array `data` in place from its dense gradient `grad`."""
        raise NotImplementedError

    def _updates_rows(self, group: dict) -> bool:
        """True when a zero gradient leaves a row unchanged, so a RowSparseGrad can update
        only its rows; False makes step() hand `_update` the dense gradient."""
        return False

    # ---- params and their groups -----------------------------------------------------------

    def bind(self, params: Params) -> Optimizer:
        """Give the optimizer its parameters (Keras style, after `SGD(learning_rate=...)`).

        Binding again to the same parameters does nothing (a model compiled twice); binding
        an optimizer that holds other parameters is an error: make a new optimizer.
        """
        groups = self._groups_of(params)
        if self.param_groups:
            held = [p for g in self.param_groups for p in g["params"]]
            given = [p for g in groups for p in g["params"]]
            if len(held) == len(given) and all(a is b for a, b in zip(held, given)):
                return self
            raise ValueError(
                f"{self.name}: already holds {len(held)} parameters, got {len(given)} others "
                "to bind; make a new optimizer for another model"
            )
        self.param_groups = groups
        return self

    def _groups_of(self, params: Params) -> list[dict]:
        """Checked param groups: each hyper-parameter filled in, each parameter trainable."""
        if isinstance(params, (Tensor, dict)) or not isinstance(params, Iterable):
            kind = type(params).__name__
            raise TypeError(
                f"{self.name}: params must be an iterable of Tensors or of param-group dicts, "
                f"got a {kind}" + ("; pass [tensor]" if isinstance(params, Tensor) else "")
            )
        items = list(params)
        if not items:
            raise ValueError(f"{self.name}: params is empty; expected at least one Tensor")
        if not all(isinstance(item, dict) for item in items):
            items = [{"params": items}]
        allowed = set(self.defaults) | {"params", "initial_lr", "learning_rate"}
        groups, seen = [], set()
        for i, given in enumerate(items):
            if not isinstance(given, dict) or "params" not in given:
                raise TypeError(
                    f"{self.name}: param group {i} must be a dict with a 'params' entry, got "
                    f"{type(given).__name__} (params are all Tensors or all dicts)"
                )
            unknown = sorted(set(given) - allowed)
            if unknown:
                raise ValueError(
                    f"{self.name}: param group {i} has unknown option(s) {unknown}; "
                    f"expected some of {sorted(allowed - {'learning_rate'})}"
                )
            group = {**self.defaults, **given}
            if "learning_rate" in group:
                group["lr"] = _pick_lr(self.name, given.get("lr"), group.pop("learning_rate"))
            tensors = group["params"]
            tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
            if not tensors:
                raise ValueError(f"{self.name}: param group {i} has no params; expected Tensors")
            for j, p in enumerate(tensors):
                where = f"params[{j}]" if len(items) == 1 else f"param group {i}, params[{j}]"
                self._check_param(p, where)
                if id(p) in seen:
                    raise ValueError(
                        f"{self.name}: a parameter (shape {p.shape}) appears twice; each "
                        "must appear once, or it would be updated twice per step"
                    )
                seen.add(id(p))
            group["params"] = tensors
            groups.append(self._checked(group))
        return groups

    def _check_param(self, p, where: str) -> None:
        if not isinstance(p, Tensor):
            raise TypeError(f"{self.name}: {where} must be a Tensor, got {type(p).__name__}")
        if not p.requires_grad:
            raise ValueError(
                f"{self.name}: {where} (shape {p.shape}) does not require a gradient; "
                "expected trainable Tensors (requires_grad=True)"
            )

    def _checked(self, group: dict) -> dict:
        group = dict(group)
        self._check(group)
        if "initial_lr" in group:  # set by a schedule: the rate it scales
            group["initial_lr"] = _number(self.name, "initial_lr", group["initial_lr"])
        return group

    def _params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    # ---- the learning rate that schedules set ----------------------------------------------

    @property
    def lr(self) -> float:
        """The first group's learning rate (the constructor's, before bind)."""
        return (self.param_groups[0] if self.param_groups else self.defaults)["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        """Set the learning rate of every group (and of groups bound later)."""
        value = _number(self.name, "lr", value)
        for group in [self.defaults, *self.param_groups]:
            group["lr"] = value

    learning_rate = lr  # the Keras name

    # ---- one step ----------------------------------------------------------------------------

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (set `.grad` to None) before the next backward."""
        for p in self._params():
            p.grad = None

    def step(self) -> None:
        """Update, in place, every parameter that has a gradient; skip those whose grad is
        None (no path from the loss reached them)."""
        if not self.param_groups:
            raise RuntimeError(
                f"{self.name}: has no parameters; pass them to the constructor or call "
                "bind(params) first"
            )
        self._check_gradients()
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {"step": 0, **self._init_state(p.data, group)}
                state["step"] += 1
                if isinstance(grad, RowSparseGrad):
                    if self._updates_rows(group):
                        self._update_rows(p.data, grad.coalesce(), state, group)
                        continue
                    grad = grad.to_dense()  # the rule moves zero-gradient rows too
                self._update(p.data, grad, state, group)

    def _check_gradients(self) -> None:
        """Every gradient against its parameter, before any parameter or state changes, so a
        step that raises changes nothing. A gradient must have its parameter's shape and
        dtype, as in PyTorch (backward() casts every gradient so): the CUDA kernels take one
        dtype for all their arrays, and NumPy would round a float64 gradient into a float32
        parameter silently, so a gradient of another dtype is an error on every device."""
        several = len(self.param_groups) > 1
        for i, group in enumerate(self.param_groups):
            for j, p in enumerate(group["params"]):
                grad = p.grad
                if grad is None:
                    continue
                where = f"param group {i}, params[{j}]" if several else f"params[{j}]"
                if tuple(grad.shape) != p.data.shape:
                    raise ValueError(
                        f"{self.name}: a parameter of shape {p.data.shape} has a gradient "
                        f"of shape {tuple(grad.shape)}; expected the same shape ({where})"
                    )
                if grad.dtype != p.data.dtype:
                    raise TypeError(
                        f"{self.name}: a parameter of dtype {p.data.dtype} has a gradient of "
                        f"dtype {grad.dtype} ({where}, shape {p.data.shape}); expected the "
                        f"parameter's dtype: cast the gradient to {p.data.dtype}"
                    )
                if isinstance(grad, RowSparseGrad) and grad.indices.dtype.kind not in "iu":
                    raise TypeError(
                        f"{self.name}: the row-sparse gradient of {where} has indices of "
                        f"dtype {grad.indices.dtype}; expected integers"
                    )

    def _update_rows(self, data, grad: RowSparseGrad, state: dict, group: dict) -> None:
        """The dense rule on the gathered rows of `data` and of each state array, written
        back; `grad` is coalesced, so each row is read and written once."""
        rows = grad.indices
        row_data = data[rows]  # (K, *R) copies: fancy indexing gathers
        row_state = {k: v[rows] if _is_array(v) else v for k, v in state.items()}
        self._update(row_data, grad.values, row_state, group)
        data[rows] = row_data
        for k, v in row_state.items():
            if _is_array(v):
                state[k][rows] = v
            else:
                state[k] = v

    # ---- saving and restoring ----------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything needed to resume, in plain values:

        {"optimizer": "Adam",
         "state": {param_index: {"step": int, name: numpy array, ...}},
         "param_groups": [{hyper-parameter: number/bool/list, ..., "params": [param_index]}]}

        param_index counts the parameters across the groups, in order. The arrays are NumPy
        copies (from the GPU too), for an npz file; everything else is JSON-safe (the JSON
        round trip turns the int keys into strings and tuples into lists, which
        load_state_dict accepts).
        """
        index = {id(p): i for i, p in enumerate(self._params())}
        state = {index[id(p)]: {k: _saved(v) for k, v in s.items()} for p, s in self.state.items()}
        groups = []
        for group in self.param_groups:
            saved = {k: _saved(v) for k, v in group.items() if k != "params"}
            saved["params"] = [index[id(p)] for p in group["params"]]
            groups.append(saved)
        return {"optimizer": self.name, "state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyper-parameters and state saved by `state_dict()`, for the same parameters
        in the same groups. Arrays go to each parameter's device and dtype, as copies."""
        saved_name = state_dict.get("optimizer", self.name)
        if saved_name != self.name:
            raise ValueError(f"{self.name}: cannot load the state of a {saved_name} optimizer")
        saved_groups = state_dict["param_groups"]
        shape = [len(g["params"]) for g in self.param_groups]
        saved_shape = [len(g["params"]) for g in saved_groups]
        if shape != saved_shape:
            raise ValueError(
                f"{self.name}: the saved state has groups of {saved_shape} parameters; "
                f"expected this optimizer's {shape}"
            )
        allowed = set(self.defaults) | {"initial_lr"}
        groups = []
        for own, saved in zip(self.param_groups, saved_groups):
            options = {k: v for k, v in saved.items() if k != "params"}
            unknown = sorted(set(options) - allowed)
            if unknown:
                raise ValueError(
                    f"{self.name}: the saved param groups have unknown option(s) {unknown}; "
                    f"expected some of {sorted(allowed)}"
                )
            groups.append(self._checked({**own, **options}))
        params = self._params()
        state = {}
        for key, saved in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(params):
                raise ValueError(
                    f"{self.name}: the saved state names parameter {i}; expected an index "
                    f"below {len(params)}"
                )
            p = params[i]
            state[p] = {k: self._restored(p, k, v) for k, v in saved.items()}
        self.param_groups, self.state = groups, state

    def _restored(self, p: Tensor, name: str, value):
        if not _is_array(value):
            return int(value) if name == "step" else value
        if tuple(value.shape) != p.shape:
            raise ValueError(
                f"{self.name}: saved state '{name}' has shape {tuple(value.shape)}; expected "
                f"the parameter's shape {p.shape}"
            )
        value = backend.to_device(value, p.device)
        return xp_of(p.data).array(value, dtype=p.dtype, copy=True)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.defaults.items())
        n = len(self._params())
        return f"{self.name}({options}; {n} params in {len(self.param_groups)} group(s))"


def _number(optimizer: str, key: str, value, low: float = 0.0, below: float | None = None):
    """`value` as a float, or a ValueError unless it is a finite number, low <= value (< below)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and low <= value and (below is None or value < below)
    if not ok:
        expected = f"a number >= {low:g}" if below is None else f"a number in [{low:g}, {below:g})"
        raise ValueError(f"{optimizer}: {key} must be {expected}, got {value!r}")
    return float(value)


def _pick_lr(optimizer: str, lr, learning_rate, default: float | None = None):
    """`lr` or its Keras name `learning_rate`, whichever was given (an error if both differ)."""
    if lr is not None and learning_rate is not None and lr != learning_rate:
        raise ValueError(
            f"{optimizer}: got lr={lr!r} and learning_rate={learning_rate!r}; expected one "
            "of them (they are the same setting)"
        )
    return lr if lr is not None else learning_rate if learning_rate is not None else default


def _is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not np.isscalar(value)


def _saved(value):
    """A state or hyper-parameter value as a plain one: NumPy copy, int, float, bool, list."""
    if _is_array(value):
        return np.array(backend.to_device(value, "cpu"), copy=True)
    if isinstance(value, tuple):
        return list(value)
    return value


def check_like_param(op: str, param, **arrays) -> None:
    """Before an `*_update` function's reference or kernel: param floating, and each of
    `arrays` (the gradient and the state; None for state not made yet) on param's device,
    of its shape and of its dtype. The kernels walk every array by param's size, and the
    CUDA ones take one dtype for all."""
    if param.dtype.kind != "f":
        raise TypeError(f"{op}: param must be floating-point, got dtype {param.dtype}")
    given = {name: a for name, a in arrays.items() if a is not None}
    backend.check_same_device(op, [param, *given.values()])
    for name, a in given.items():
        if a.shape != param.shape:
            raise ValueError(
                f"{op}: {name} must have the shape of param, {param.shape}, got {a.shape}"
            )
        if a.dtype != param.dtype:
            raise TypeError(
                f"{op}: {name} must have the dtype of param, {param.dtype}, got {a.dtype}"
            )


# --------------------------------------------------------------------------------------------
# 2. SGD


def check_sgd_update(param, grad, buf, **hyper_parameters) -> None:
    check_like_param("sgd_update", param, grad=grad, buf=buf)


@kernelized(check=check_sgd_update)
def sgd_update(param, grad, buf, *, lr, momentum, dampening, nesterov, weight_decay):
    """One SGD step on `param`, in place; returns the momentum buffer (None without momentum).

    g = grad + weight_decay * param
    buf = g                                        on the first step
    buf = momentum * buf + (1 - dampening) * g     after it
    d = g + momentum * buf   (nesterov)   or   buf   (momentum)   or   g   (neither)
    param -= lr * d
    """
    if weight_decay:
        grad = grad + weight_decay * param  # never in place: grad may be shared
    if momentum:
        if buf is None:
            buf = grad.copy()
        else:
            buf *= momentum
            buf += grad if dampening == 0 else (1 - dampening) * grad  # no temporary copy
        grad = grad + momentum * buf if nesterov else buf
    param -= lr * grad
    return buf


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight
    decay (added to the gradient), exactly as torch.optim.SGD (see `sgd_update`).

    lr (or learning_rate): 0.01 when omitted, Keras's default.
    Row-sparse gradients update only their rows without momentum and weight decay; with
    either, they are made dense (a zero gradient still moves a row).
    """

    def __init__(
        self,
        params: Params | None = None,
        lr: float | None = None,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        *,
        learning_rate: float | None = None,
    ):
        defaults = {
            "lr": _pick_lr("SGD", lr, learning_rate, 0.01),
            "momentum": momentum,
            "dampening": dampening,
            "nesterov": nesterov,
            "weight_decay": weight_decay,
        }
        super().__init__(params, defaults)

    def _check(self, group: dict) -> None:
        super()._check(group)
        group["momentum"] = _number(self.name, "momentum", group["momentum"], 0.0, 1.0)
        group["dampening"] = _number(self.name, "dampening", group["dampening"], 0.0, 1.0)
        group["weight_decay"] = _number(self.name, "weight_decay", group["weight_decay"])
        if not isinstance(group["nesterov"], bool):
            nesterov = group["nesterov"]
            raise TypeError(f"{self.name}: nesterov must be True or False, got {nesterov!r}")
        if group["nesterov"] and (group["momentum"] == 0 or group["dampening"] != 0):
            raise ValueError(
                f"{self.name}: nesterov=True needs momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def _update(self, data, grad, state: dict, group: dict) -> None:
        buf = sgd_update(
            data,
            grad,
            state.get("momentum_buffer"),
            lr=group["lr"],
            momentum=group["momentum"],
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            weight_decay=group["weight_decay"],
        )
        if buf is not None:
            state["momentum_buffer"] = buf

    def _updates_rows(self, group: dict) -> bool:
        return group["momentum"] == 0 and group["weight_decay"] == 0


# --------------------------------------------------------------------------------------------
# 3. AdaGrad


def check_adagrad_update(param, grad, sum_sq, **hyper_parameters) -> None:
    check_like_param("adagrad_update", param, grad=grad, sum_sq=sum_sq)


@kernelized(check=check_adagrad_update)
def adagrad_update(param, grad, sum_sq, *, clr, eps, weight_decay) -> None:
    """One AdaGrad step on `param` and its running sum of squared gradients, in place:

        g = grad + weight_decay * param
        sum_sq += g * g
        param -= clr * g / (sqrt(sum_sq) + eps)

    so each coordinate's step shrinks as its gradients add up (Duchi et al. 2011).
    """
    if weight_decay:
        grad = grad + weight_decay * param
    sum_sq += grad * grad
    param -= clr * grad / (xp_of(param).sqrt(sum_sq) + eps)


class AdaGrad(Optimizer):
    """AdaGrad, exactly as torch.optim.Adagrad (see `adagrad_update`), with the decayed rate

        clr = lr / (1 + (step - 1) * lr_decay)      step = 1, 2, ... for each parameter

    and the sum starting at initial_accumulator_value. Row-sparse gradients update only their
    rows, unless weight_decay is set (then they are made dense, as it moves every row).
    """

    def __init__(
        self,
        params: Params | None = None,
        lr: float | None = None,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        weight_decay: float = 0.0,
        lr_decay: float = 0.0,
        *,
        learning_rate: float | None = None,
    ):
        defaults = {
            "lr": _pick_lr("AdaGrad", lr, learning_rate, 0.01),
            "initial_accumulator_value": initial_accumulator_value,
            "eps": eps,
            "weight_decay": weight_decay,
            "lr_decay": lr_decay,
        }
        super().__init__(params, defaults)

    def _check(self, group: dict) -> None:
        super()._check(group)
        for key in ("initial_accumulator_value", "eps", "weight_decay", "lr_decay"):
            group[key] = _number(self.name, key, group[key])

    def _init_state(self, data, group: dict) -> dict:
        return {"sum": xp_of(data).full_like(data, group["initial_accumulator_value"])}

    def _update(self, data, grad, state: dict, group: dict) -> None:
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        adagrad_update(
            data, grad, state["sum"], clr=clr, eps=group["eps"], weight_decay=group["weight_decay"]
        )

    def _updates_rows(self, group: dict) -> bool:
        return group["weight_decay"] == 0


Adagrad = AdaGrad  # PyTorch's and Keras's spelling


# --------------------------------------------------------------------------------------------
# 4. Adam and AdamW


def check_adam_update(param, grad, exp_avg, exp_avg_sq, **hyper_parameters) -> None:
    check_like_param("adam_update", param, grad=grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)


@kernelized(check=check_adam_update)
def adam_update(
    param, grad, exp_avg, exp_avg_sq, *, step, lr, beta1, beta2, eps, weight_decay, decoupled
) -> None:
    """One Adam step (Kingma & Ba 2015) on `param` and its moment estimates, in place:

        param *= 1 - lr * weight_decay                 (AdamW: decoupled weight decay)
        g = grad + weight_decay * param                (Adam: L2 added to the gradient)
        exp_avg    = beta1 * exp_avg    + (1 - beta1) * g
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g * g
        param -= lr / (1 - beta1^step) * exp_avg / (sqrt(exp_avg_sq / (1 - beta2^step)) + eps)

    The two (1 - beta^step) factors undo the bias of moments that start at zero; the second is
    applied as sqrt(exp_avg_sq) / sqrt(1 - beta2^step), as PyTorch does.
    """
    if weight_decay and decoupled:
        param *= 1 - lr * weight_decay
    elif weight_decay:
        grad = grad + weight_decay * param
    exp_avg *= beta1
    exp_avg += (1 - beta1) * grad
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    step_size = lr / (1 - beta1**step)
    denom = xp_of(param).sqrt(exp_avg_sq) / math.sqrt(1 - beta2**step) + eps
    param -= step_size * exp_avg / denom


class Adam(Optimizer):
    """Adam, exactly as torch.optim.Adam (see `adam_update`): weight_decay is an L2 term
    added to the gradient. Row-sparse gradients are made dense (PyTorch's dense semantics:
    the moments of every row decay each step)."""

    _decoupled = False

    def __init__(
        self,
        params: Params | None = None,
        lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        learning_rate: float | None = None,
    ):
        defaults = {
            "lr": _pick_lr(type(self).__name__, lr, learning_rate, 1e-3),
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
        }
        super().__init__(params, defaults)

    def _check(self, group: dict) -> None:
        super()._check(group)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{self.name}: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(
            _number(self.name, f"betas[{i}]", b, 0.0, 1.0) for i, b in enumerate(betas)
        )
        group["eps"] = _number(self.name, "eps", group["eps"])
        group["weight_decay"] = _number(self.name, "weight_decay", group["weight_decay"])

    def _init_state(self, data, group: dict) -> dict:
        xp = xp_of(data)
        return {"exp_avg": xp.zeros_like(data), "exp_avg_sq": xp.zeros_like(data)}

    def _update(self, data, grad, state: dict, group: dict) -> None:
        beta1, beta2 = group["betas"]
        adam_update(
            data,
            grad,
            state["exp_avg"],
            state["exp_avg_sq"],
            step=state["step"],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled=self._decoupled,
        )


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), exactly as
    torch.optim.AdamW: each step first shrinks the parameter, param *= 1 - lr * weight_decay,
    then takes the Adam step on the plain gradient (see `adam_update`)."""

    _decoupled = True

    def __init__(
        self,
        params: Params | None = None,
        lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        *,
        learning_rate: float | None = None,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, learning_rate=learning_rate)


# --------------------------------------------------------------------------------------------
# 5. FTRL-Proximal


def check_ftrl_update(param, grad, accum, linear, **hyper_parameters) -> None:
    check_like_param("ftrl_update", param, grad=grad, accum=accum, linear=linear)


@kernelized(check=check_ftrl_update)
def ftrl_update(param, grad, accum, linear, *, lr, lr_power, l1, l2, beta) -> None:
    """One FTRL-Proximal step on `param`, its accumulator n and its linear term z, in place,
    per coordinate, with q = -lr_power (1/2 by default):

        n_new = n + g^2
        sigma = (n_new^q - n^q) / lr          (sqrt(n_new) - sqrt(n)) / alpha in the paper
        z    += g - sigma * param
        n     = n_new
        param = (clip(z, -l1, l1) - z) / (n^q / lr + beta / lr + 2 * l2)

    The last line is the closed-form minimizer: param = 0 exactly when |z| <= l1, else
    -(z - sign(z) * l1) / ((beta + sqrt(n)) / lr + 2 * l2).
    """
    xp = xp_of(param)
    accum_new = accum + grad * grad
    if lr_power == -0.5:  # the paper's 1/sqrt(n) rate: sqrt is exact and faster than pow
        root_new, root = xp.sqrt(accum_new), xp.sqrt(accum)
    else:
        root_new, root = xp.power(accum_new, -lr_power), xp.power(accum, -lr_power)
    linear += grad - (root_new - root) / lr * param
    accum[...] = accum_new
    quadratic = root_new / lr + (beta / lr + 2 * l2)
    param[...] = (xp.clip(linear, -l1, l1) - linear) / quadratic


class FTRL(Optimizer):
    """FTRL-Proximal ("Follow The Regularized Leader"; McMahan et al. 2013, "Ad Click
    Prediction: a View from the Trenches", Algorithm 1), the optimizer of the wide part in
    Wide & Deep (Cheng et al. 2016). The update is TensorFlow's / Keras's `Ftrl`
    (see `ftrl_update` for the equations).

    Per coordinate it keeps n (the sum of squared gradients, from initial_accumulator_value)
    and z (the gradients minus a correction that makes it follow the proximal solution), and
    sets the weight from them in closed form; with lr_power = -0.5 the learning rate of a
    coordinate is lr / (beta + sqrt(n)), the paper's. The paper's alpha, beta, lambda1 are lr,
    beta, l1; its lambda2 is 2 * l2 (TensorFlow's l2 multiplies ||w||^2, the paper's lambda2
    multiplies ||w||^2 / 2). L1 sets every weight with |z| <= l1 to exactly 0: a sparse model.

    The weight is a function of (z, n), so a parameter that does not start at zero is
    replaced by that function on its first update (the paper's weights start at zero, as
    Wide & Deep's linear part does). Row-sparse gradients update only their rows; a dense
    step recomputes every weight from its (z, n), which leaves rows already updated once
    unchanged, so the two agree exactly except on rows never updated that start nonzero
    (the sparse step leaves those as they are, like TensorFlow's sparse Ftrl).

    lr must stay above 0, since the update divides by it: end a CosineDecay at min_lr > 0.
    """

    def __init__(
        self,
        params: Params | None = None,
        lr: float | None = None,
        lr_power: float = -0.5,
        l1: float = 0.0,
        l2: float = 0.0,
        initial_accumulator_value: float = 0.1,
        beta: float = 0.0,
        *,
        learning_rate: float | None = None,
    ):
        defaults = {
            "lr": _pick_lr("FTRL", lr, learning_rate, 0.05),
            "lr_power": lr_power,
            "l1": l1,
            "l2": l2,
            "initial_accumulator_value": initial_accumulator_value,
            "beta": beta,
        }
        super().__init__(params, defaults)

    def _check(self, group: dict) -> None:
        super()._check(group)
        if group["lr"] == 0:  # lr divides: the rate 1/lr of the proximal term
            raise ValueError(f"{self.name}: lr must be a number > 0, got {group['lr']!r}")
        power = group["lr_power"]
        if not isinstance(power, numbers.Real) or isinstance(power, bool) or not power <= 0:
            raise ValueError(f"{self.name}: lr_power must be a number <= 0, got {power!r}")
        group["lr_power"] = float(power)
        for key in ("l1", "l2", "initial_accumulator_value", "beta"):
            group[key] = _number(self.name, key, group[key])

    def _init_state(self, data, group: dict) -> dict:
        xp = xp_of(data)
        return {
            "accumulator": xp.full_like(data, group["initial_accumulator_value"]),
            "linear": xp.zeros_like(data),
        }

    def _update(self, data, grad, state: dict, group: dict) -> None:
        ftrl_update(
            data,
            grad,
            state["accumulator"],
            state["linear"],
            lr=group["lr"],
            lr_power=group["lr_power"],
            l1=group["l1"],
            l2=group["l2"],
            beta=group["beta"],
        )

    def _updates_rows(self, group: dict) -> bool:
        return True


Ftrl = FTRL  # Keras's spelling


# --------------------------------------------------------------------------------------------
# 6. Gradient clipping


def clip_grad_norm(params: Tensor | Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients together so that their global L2 norm is at most `max_norm`.

        total_norm = sqrt(sum over params of sum(grad^2))
        grad *= max_norm / (total_norm + 1e-6)        only when that factor is below 1

    Returns total_norm, measured before clipping (nan or inf when a gradient is; then nothing
    is scaled). A RowSparseGrad counts through its coalesced rows (repeated rows add up
    first). The scaled gradients are new arrays put in `.grad`, never written into the old
    ones, which backward may share with other arrays.
    """
    max_norm = _number("clip_grad_norm", "max_norm", max_norm)
    if max_norm == 0:
        raise ValueError(f"clip_grad_norm: max_norm must be a number > 0, got {max_norm!r}")
    params = [params] if isinstance(params, Tensor) else list(params)
    grads = []  # (param, its gradient, coalesced when sparse)
    squares = 0.0
    for p in params:
        grad = p.grad
        if grad is None:
            continue
        if isinstance(grad, RowSparseGrad):
            grad = grad.coalesce()
        values = grad.values if isinstance(grad, RowSparseGrad) else grad
        squares += float((values.astype(np.float64) ** 2).sum())  # float64: no overflow
        grads.append((p, grad))
    total_norm = math.sqrt(squares)
    scale = max_norm / (total_norm + 1e-6)
    if scale < 1:
        for p, grad in grads:
            if isinstance(grad, RowSparseGrad):
                p.grad = RowSparseGrad(grad.indices, grad.values * scale, grad.shape)
            else:
                p.grad = grad * scale
    return total_norm
