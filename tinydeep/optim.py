"""Optimizers: how the gradients that backward() leaves in `.grad` change the parameters.

One training step is `loss.backward()`, then `optimizer.step()`, which updates each
parameter's array in place (layers keep holding the same Tensor objects), then
`optimizer.zero_grad()`. Each optimizer is two pieces:
  - a plain array function, `*_update(param, grad, state arrays..., hyper-parameters)`, that
    holds the update equations and changes its arrays in place. It is the readable reference,
    written once against `xp` (NumPy or CuPy); a kernel of the same name in
    `tinydeep_kernels` replaces it when one exists (tinydeep/backend.py: kernelized).
  - a small class right after it: its hyper-parameters as one table (the constructor's
    keywords and defaults), the state arrays it keeps per parameter, and the call.

Read in this order, the rules from the simplest up:
  1. Optimizer                 step(): per parameter, make its state, then apply the rule
  2. sgd_update, SGD           the update rules, each with its equations in the docstring,
  3. adagrad_update, AdaGrad   each matching PyTorch's (torch.optim) step for step
  4. adam_update, Adam, AdamW
  5. ftrl_update, FTRL         FTRL-Proximal, TensorFlow's / Keras's `Ftrl`
  6. clip_grad_norm            rescaling all gradients to a maximum global L2 norm
What an optimizer holds is in tinydeep/optim_state.py, the base of `Optimizer`: the one
constructor that reads each class's table (with Keras's `learning_rate=` for `lr`), param
groups (PyTorch's), the checks of hyper-parameters, gradients and arrays, and
state_dict / load_state_dict. Learning-rate schedules (StepDecay, CosineDecay, LinearWarmup)
are in tinydeep/schedules.py, and importable from here too (`optim.StepDecay`, or Keras's
`optimizers.schedules.StepDecay`).

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
from typing import ClassVar

import numpy as np

from tinydeep import schedules
from tinydeep.backend import kernelized, xp_of
from tinydeep.optim_state import (
    OptimizerState,
    Params,
    as_number,
    check_adagrad_update,
    check_adam_update,
    check_ftrl_update,
    check_sgd_update,
    is_array,
)
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
    "Params",
    "Schedule",
    "StepDecay",
    "clip_grad_norm",
    "schedules",
]


# --------------------------------------------------------------------------------------------
# 1. The step every optimizer takes


class Optimizer(OptimizerState):
    """Updates a list of trainable Tensors from their gradients; each subclass gives a rule.

    A subclass sets `hyper_parameters`, its constructor's keywords and defaults in order
    (tinydeep/optim_state.py turns the table into the constructor and checks each value: a
    number >= 0, or in [0, 1) when named in `fractions`), and defines, for one parameter's
    array `data` and its group's hyper-parameters `group`:
      _init_state(data, group)            its state arrays, before its first update
      _update(data, grad, state, group)   the update, in place, from a dense gradient
      _updates_rows(group)                whether a zero gradient leaves a row unchanged
    and `_check(group)` for any rule its table cannot say (SGD's nesterov, Adam's betas).
    """

    def _init_state(self, data, group: dict) -> dict:
        return {}

    def _update(self, data, grad, state: dict, group: dict) -> None:
        raise NotImplementedError

    def _updates_rows(self, group: dict) -> bool:
        """True lets a RowSparseGrad update only its rows; False makes step() hand `_update`
        the dense gradient."""
        return False

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

    def _update_rows(self, data, grad: RowSparseGrad, state: dict, group: dict) -> None:
        """The dense rule on the gathered rows of `data` and of each state array, written
        back; `grad` is coalesced, so each row is read and written once."""
        rows = grad.indices
        row_data = data[rows]  # (K, *R) copies: fancy indexing gathers
        row_state = {k: v[rows] if is_array(v) else v for k, v in state.items()}
        self._update(row_data, grad.values, row_state, group)
        data[rows] = row_data
        for k, v in row_state.items():
            if is_array(v):
                state[k][rows] = v
            else:
                state[k] = v


# --------------------------------------------------------------------------------------------
# 2. SGD


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

    # The constructor, SGD(params, lr, momentum, ...): each keyword in order, with its default.
    hyper_parameters: ClassVar[dict] = {
        "lr": 0.01,
        "momentum": 0.0,
        "dampening": 0.0,
        "nesterov": False,
        "weight_decay": 0.0,
    }
    fractions = ("momentum", "dampening")  # in [0, 1); the other numbers >= 0

    def _check(self, group: dict) -> None:
        super()._check(group)
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

    hyper_parameters: ClassVar[dict] = {
        "lr": 0.01,
        "initial_accumulator_value": 0.0,
        "eps": 1e-10,
        "weight_decay": 0.0,
        "lr_decay": 0.0,
    }

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

    hyper_parameters: ClassVar[dict] = {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
    }
    _decoupled = False

    def _check(self, group: dict) -> None:
        super()._check(group)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{self.name}: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(
            as_number(self.name, f"betas[{i}]", b, 0.0, 1.0) for i, b in enumerate(betas)
        )

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

    hyper_parameters: ClassVar[dict] = {**Adam.hyper_parameters, "weight_decay": 1e-2}
    _decoupled = True


# --------------------------------------------------------------------------------------------
# 5. FTRL-Proximal


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

    hyper_parameters: ClassVar[dict] = {
        "lr": 0.05,
        "lr_power": -0.5,
        "l1": 0.0,
        "l2": 0.0,
        "initial_accumulator_value": 0.1,
        "beta": 0.0,
    }

    def _check(self, group: dict) -> None:
        super()._check(group, apart=("lr_power",))
        if group["lr"] == 0:  # lr divides: the rate 1/lr of the proximal term
            raise ValueError(f"{self.name}: lr must be a number > 0, got {group['lr']!r}")
        power = group["lr_power"]
        if not isinstance(power, numbers.Real) or isinstance(power, bool) or not power <= 0:
            raise ValueError(f"{self.name}: lr_power must be a number <= 0, got {power!r}")
        group["lr_power"] = float(power)

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
    max_norm = as_number("clip_grad_norm", "max_norm", max_norm)
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
