"""What an optimizer holds between steps, and how it is checked, saved and restored.

tinydeep/optim.py has the update rules and the step; this is the bookkeeping around them,
the base class of its `Optimizer`. An optimizer holds:
  - param_groups: a list of dicts, each with its "params" (Tensors) and every
    hyper-parameter of the rule ("lr", "momentum", ...), as in PyTorch, so one optimizer can
    give parts of a model different rates;
  - state: per parameter, "step" (updates done) and the rule's arrays (momentum, moments).

Each optimizer class writes its constructor as one table, `hyper_parameters`, the keywords
in their positional order with their defaults (`SGD(params, lr=0.01, momentum=0.0, ...)`);
the one `__init__` here reads it, adds Keras's `learning_rate=` for `lr`, and checks every
value, so no optimizer repeats that plumbing. Python's signature of each class is made from
its table, so help() and editors show the real keywords.

Read in this order:
  1. OptimizerState            __init__ from the table; bind and the param groups; the
                               hyper-parameter checks; lr (and Keras's learning_rate),
                               which schedules set; the gradients checked before a step
                               changes anything; state_dict and load_state_dict
  2. as_number, pick_lr        one hyper-parameter checked; lr or learning_rate
  3. check_like_param          the array checks of every `*_update` function (one line each
                               per rule: check_sgd_update, ...), run before its kernel
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Iterable
from typing import ClassVar

import numpy as np

from tinydeep import backend
from tinydeep.backend import xp_of
from tinydeep.sparse import RowSparseGrad
from tinydeep.tensor import Tensor

Params = Iterable[Tensor] | Iterable[dict]


# --------------------------------------------------------------------------------------------
# 1. The base of every optimizer: its keywords, param groups, learning rate, state_dict


class OptimizerState:
    """The param groups and the per-parameter state of an optimizer, checked, and saved.

    params: an iterable of Tensors, or of dicts ("param groups", as in PyTorch), each with a
        "params" entry and any hyper-parameters that differ from the constructor's, e.g.
        `Adam([{"params": encoder}, {"params": head, "lr": 1e-2}], lr=1e-3)`. Or None, for
        the Keras style: `SGD(learning_rate=0.1)` now, `bind(params)` later (a model's compile
        does that).

    defaults: the constructor's hyper-parameters, checked: what a param group does not set.
    param_groups: list of dicts, every hyper-parameter of the group plus "params".
    state: per parameter (Tensors hash by identity), a dict with "step" (updates done) and the
        optimizer's arrays, made on the parameter's first update.
    """

    # A subclass's table: keyword -> default, in the constructor's positional order.
    hyper_parameters: ClassVar[dict] = {"lr": 0.01}
    # The numbers that must lie in [0, 1); every other number must be >= 0.
    fractions: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        """Give each optimizer class the signature its table makes, for help() and editors:
        `SGD(params=None, lr=0.01, momentum=0.0, ..., *, learning_rate=None)`."""
        super().__init_subclass__(**kwargs)
        arg = inspect.Parameter
        cls.__signature__ = inspect.Signature(
            [
                arg("params", arg.POSITIONAL_OR_KEYWORD, default=None),
                *(
                    arg(k, arg.POSITIONAL_OR_KEYWORD, default=v)
                    for k, v in cls.hyper_parameters.items()
                ),
                arg("learning_rate", arg.KEYWORD_ONLY, default=None),
            ]
        )

    def __init__(self, params: Params | None = None, *args, **kwargs):
        self.name = type(self).__name__
        try:  # as Python binds a call: too many arguments, an unknown keyword, one given twice
            given = inspect.signature(type(self)).bind(params, *args, **kwargs).arguments
        except TypeError as error:
            raise TypeError(f"{self.name}: {error}") from None
        given = {k: v for k, v in given.items() if k != "params"}
        default_lr = self.hyper_parameters["lr"]
        lr = pick_lr(self.name, given.pop("lr", None), given.pop("learning_rate", None), default_lr)
        self.defaults = self._checked({**self.hyper_parameters, **given, "lr": lr})
        self.param_groups: list[dict] = []
        self.state: dict[Tensor, dict] = {}
        if params is not None:
            self.bind(params)

    # ---- params and their groups -----------------------------------------------------------

    def bind(self, params: Params) -> OptimizerState:
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
                group["lr"] = pick_lr(self.name, given.get("lr"), group.pop("learning_rate"))
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

    def _params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    # ---- the hyper-parameters, checked -------------------------------------------------------

    def _checked(self, group: dict) -> dict:
        group = dict(group)
        self._check(group)
        if "initial_lr" in group:  # set by a schedule: the rate it scales
            group["initial_lr"] = as_number(self.name, "initial_lr", group["initial_lr"])
        return group

    def _check(self, group: dict, apart: tuple[str, ...] = ()) -> None:
        """Check the group's hyper-parameters, in place: every number of the table becomes a
        float >= 0 (in [0, 1) when named in `fractions`), every bool stays a bool. A subclass
        checks the rest (a pair, a rule between two settings) and the keys it sets `apart`."""
        for key, default in self.hyper_parameters.items():
            if key in apart:
                continue
            value = group[key]
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise TypeError(f"{self.name}: {key} must be True or False, got {value!r}")
            elif isinstance(default, numbers.Real):
                below = 1.0 if key in self.fractions else None
                group[key] = as_number(self.name, key, value, 0.0, below)

    # ---- the learning rate that schedules set ----------------------------------------------

    @property
    def lr(self) -> float:
        """The first group's learning rate (the constructor's, before bind)."""
        return (self.param_groups[0] if self.param_groups else self.defaults)["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        """Set the learning rate of every group (and of groups bound later)."""
        value = as_number(self.name, "lr", value)
        for group in [self.defaults, *self.param_groups]:
            group["lr"] = value

    learning_rate = lr  # the Keras name

    # ---- the gradients, before a step ------------------------------------------------------

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
        if not is_array(value):
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


def is_array(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not np.isscalar(value)


def _saved(value):
    """A state or hyper-parameter value as a plain one: NumPy copy, int, float, bool, list."""
    if is_array(value):
        return np.array(backend.to_device(value, "cpu"), copy=True)
    if isinstance(value, tuple):
        return list(value)
    return value


# --------------------------------------------------------------------------------------------
# 2. One hyper-parameter


def as_number(optimizer: str, key: str, value, low: float = 0.0, below: float | None = None):
    """`value` as a float, or a ValueError unless it is a finite number, low <= value (< below)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and low <= value and (below is None or value < below)
    if not ok:
        expected = f"a number >= {low:g}" if below is None else f"a number in [{low:g}, {below:g})"
        raise ValueError(f"{optimizer}: {key} must be {expected}, got {value!r}")
    return float(value)


def pick_lr(optimizer: str, lr, learning_rate, default: float | None = None):
    """`lr` or its Keras name `learning_rate`, whichever was given (an error if both differ)."""
    if lr is not None and learning_rate is not None and lr != learning_rate:
        raise ValueError(
            f"{optimizer}: got lr={lr!r} and learning_rate={learning_rate!r}; expected one "
            "of them (they are the same setting)"
        )
    return lr if lr is not None else learning_rate if learning_rate is not None else default


# --------------------------------------------------------------------------------------------
# 3. The arrays of an update function


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


def check_sgd_update(param, grad, buf, **hyper_parameters) -> None:
    check_like_param("sgd_update", param, grad=grad, buf=buf)


def check_adagrad_update(param, grad, sum_sq, **hyper_parameters) -> None:
    check_like_param("adagrad_update", param, grad=grad, sum_sq=sum_sq)


def check_adam_update(param, grad, exp_avg, exp_avg_sq, **hyper_parameters) -> None:
    check_like_param("adam_update", param, grad=grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)


def check_ftrl_update(param, grad, accum, linear, **hyper_parameters) -> None:
    check_like_param("ftrl_update", param, grad=grad, accum=accum, linear=linear)
