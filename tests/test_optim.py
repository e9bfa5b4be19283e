"""tinydeep/optim.py and tinydeep/schedules.py: update rules, sparse rows, state, schedules.

In order: each optimizer against steps worked out by hand from its equations; against
torch.optim for 20 steps (skipped without torch); FTRL against a per-coordinate loop of
McMahan et al.'s Algorithm 1; row-sparse gradients against their dense equivalents; in-place
updates; the constructors' keywords; Keras-style binding; two optimizers in one step;
state_dict round trips through JSON and npz; learning-rate schedules; clip_grad_norm; every
error (a gradient of another dtype or shape than its parameter changes nothing, on the
reference path and with the CPU kernels on); the GPU path.
"""

from __future__ import annotations

import inspect
import io
import json
import math

import numpy as np
import pytest
from devices import TORCH_SKIP_REASON, needs_gpu
from kernel_settings import PATHS

from tinydeep import optim
from tinydeep.optim import FTRL, SGD, AdaGrad, Adam, AdamW, clip_grad_norm
from tinydeep.schedules import CosineDecay, LinearWarmup, StepDecay
from tinydeep.sparse import RowSparseGrad
from tinydeep.tensor import Tensor


def param(values, dtype=np.float64) -> Tensor:
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


def steps(optimizer, p: Tensor, grads) -> list[np.ndarray]:
    """p's values after each of the steps with the given gradients."""
    seen = []
    for g in grads:
        p.grad = np.array(g, dtype=p.dtype)
        optimizer.step()
        seen.append(p.data.copy())
    return seen


# ---- hand-computed steps ------------------------------------------------------------------


def test_sgd_plain_momentum_nesterov_and_weight_decay_by_hand():
    g = [0.5, 1.0]  # the same gradient each step, from p = [1, -2], lr = 0.1
    plain = steps(SGD([p := param([1.0, -2.0])], lr=0.1), p, [g, g])
    np.testing.assert_allclose(plain, [[0.95, -2.1], [0.9, -2.2]])

    # buf = g, then 0.9 * buf + g: [0.5, 1], [0.95, 1.9], [1.355, 2.71]; p -= 0.1 * buf
    heavy = steps(SGD([p := param([1.0, -2.0])], lr=0.1, momentum=0.9), p, [g, g, g])
    np.testing.assert_allclose(heavy, [[0.95, -2.1], [0.855, -2.29], [0.7195, -2.561]])

    # nesterov: p -= 0.1 * (g + 0.9 * buf): 0.1 * [0.95, 1.9], then 0.1 * [1.355, 2.71]
    ahead = steps(SGD([p := param([1.0, -2.0])], lr=0.1, momentum=0.9, nesterov=True), p, [g, g])
    np.testing.assert_allclose(ahead, [[0.905, -2.19], [0.7695, -2.461]])

    # weight decay 0.1: g + 0.1 * p = [0.6, 0.8], then [0.594, 0.792]
    decayed = steps(SGD([p := param([1.0, -2.0])], lr=0.1, weight_decay=0.1), p, [g, g])
    np.testing.assert_allclose(decayed, [[0.94, -2.08], [0.8806, -2.1592]])

    # dampening 0.5: buf = g on the first step (PyTorch's rule), then 0.9 * buf + 0.5 * g:
    # [0.5, 1], [0.7, 1.4], [0.88, 1.76]; p -= 0.1 * buf
    damped = SGD([p := param([1.0, -2.0])], lr=0.1, momentum=0.9, dampening=0.5)
    np.testing.assert_allclose(
        steps(damped, p, [g, g, g]), [[0.95, -2.1], [0.88, -2.24], [0.792, -2.416]]
    )


def test_adagrad_by_hand():
    g = [3.0, 4.0]  # sum = 9k, 16k after k steps: each step is 0.1 * g / sqrt(sum)
    # so step k moves both coordinates by 0.1 * 3 / sqrt(9k) = 0.1 * 4 / sqrt(16k) = 0.1 / sqrt(k)
    seen = steps(AdaGrad([p := param([1.0, 2.0])], lr=0.1), p, [g, g, g])
    moved = np.cumsum([0.1, 0.1 / math.sqrt(2), 0.1 / math.sqrt(3)])[:, None]
    np.testing.assert_allclose(seen, np.array([[1.0, 2.0]]) - moved, rtol=1e-9)

    # lr_decay 0.5: clr = 0.1, 0.1 / 1.5; the accumulator starts at 1
    seen = steps(
        AdaGrad([p := param([1.0])], lr=0.1, lr_decay=0.5, initial_accumulator_value=1.0),
        p,
        [[3.0], [3.0]],
    )
    first = 1.0 - 0.1 * 3 / math.sqrt(10)
    np.testing.assert_allclose(seen, [[first], [first - 0.1 / 1.5 * 3 / math.sqrt(19)]], rtol=1e-9)


def test_adam_and_adamw_by_hand():
    # step 1: m = 0.1 g, v = 0.001 g^2, so m / (1 - 0.9) = g and sqrt(v / (1 - 0.999)) = |g|
    # step 2 (g = [-0.5, 2]): m = [-0.005, 0.11], v = [0.00049975, 0.004999]
    seen = steps(Adam([p := param([1.0, -2.0])], lr=0.1), p, [[0.5, -1.0], [-0.5, 2.0]])
    first = [1 - 0.1 * 0.5 / (0.5 + 1e-8), -2 + 0.1 * 1 / (1 + 1e-8)]
    second = [
        first[0] - 0.1 / 0.19 * -0.005 / (math.sqrt(0.00049975 / 0.001999) + 1e-8),
        first[1] - 0.1 / 0.19 * 0.11 / (math.sqrt(0.004999 / 0.001999) + 1e-8),
    ]
    np.testing.assert_allclose(seen, [first, second], rtol=1e-9)

    # Adam's weight decay is in the gradient: g = 0.5 + 0.5 * 1 = 1, a step of ~lr
    seen = steps(Adam([p := param([1.0])], lr=0.1, weight_decay=0.5), p, [[0.5]])
    np.testing.assert_allclose(seen, [[1 - 0.1 * 1 / (1 + 1e-8)]], rtol=1e-9)
    # AdamW's shrinks the weight first: 1 * (1 - 0.1 * 0.5), then the step on g = 0.5
    seen = steps(AdamW([p := param([1.0])], lr=0.1, weight_decay=0.5), p, [[0.5]])
    np.testing.assert_allclose(seen, [[0.95 - 0.1 * 0.5 / (0.5 + 1e-8)]], rtol=1e-9)


def test_ftrl_by_hand():
    # lr 1, n starts at 0.1, l1 = 0.5; g = [1, 0.2] each step.
    # step 1: z = g = [1, 0.2], n = [1.1, 0.14]; |z1| <= l1 so w1 = 0 exactly,
    #         w0 = -(1 - 0.5) / sqrt(1.1)
    # step 2: z0 = 2 - (sqrt(2.1) - sqrt(1.1)) * w0; z1 = 0.4 (w1 = 0), still within l1
    # step 3: z1 = 0.6 > l1, so w1 = -(0.6 - 0.5) / sqrt(0.22)
    opt = FTRL([p := param([0.0, 0.0])], lr=1.0, l1=0.5, initial_accumulator_value=0.1)
    seen = steps(opt, p, [[1.0, 0.2]] * 3)
    w0 = -0.5 / math.sqrt(1.1)
    z0 = 2 - (math.sqrt(2.1) - math.sqrt(1.1)) * w0
    np.testing.assert_allclose(seen[0], [w0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(seen[1], [-(z0 - 0.5) / math.sqrt(2.1), 0.0], rtol=1e-12)
    assert seen[0][1] == 0.0 and seen[1][1] == 0.0  # exact zeros, not small numbers
    np.testing.assert_allclose(seen[2][1], -0.1 / math.sqrt(0.22), rtol=1e-12)

    # beta and l2: n = 4, z = 2, w = -z / ((beta + sqrt(n)) / lr + 2 * l2) = -2 / 6.5
    opt = FTRL([p := param([0.0])], lr=0.5, l2=0.25, beta=1.0, initial_accumulator_value=0.0)
    np.testing.assert_allclose(steps(opt, p, [[2.0]]), [[-2 / 6.5]], rtol=1e-12)


# ---- against PyTorch --------------------------------------------------------------------------

TORCH_CASES = {
    "sgd": (lambda p: SGD(p, lr=0.1), lambda t, p: t.optim.SGD(p, lr=0.1)),
    "sgd-momentum": (
        lambda p: SGD(p, lr=0.05, momentum=0.9),
        lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9),
    ),
    "sgd-nesterov": (
        lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True),
        lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    ),
    "sgd-weight-decay": (
        lambda p: SGD(p, lr=0.05, momentum=0.8, dampening=0.1, weight_decay=0.01),
        lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.1, weight_decay=0.01),
    ),
    "adagrad": (
        lambda p: AdaGrad(
            p, lr=0.1, initial_accumulator_value=0.1, lr_decay=0.01, weight_decay=1e-3
        ),
        lambda t, p: t.optim.Adagrad(
            p, lr=0.1, initial_accumulator_value=0.1, lr_decay=0.01, weight_decay=1e-3
        ),
    ),
    "adam": (lambda p: Adam(p, lr=0.01), lambda t, p: t.optim.Adam(p, lr=0.01)),
    "adam-weight-decay": (
        lambda p: Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        lambda t, p: t.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    ),
    "adamw": (
        lambda p: AdamW(p, lr=0.01, weight_decay=0.1),
        lambda t, p: t.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    ),
}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_matches_torch_step_for_step(case):
    torch = pytest.importorskip("torch", reason=TORCH_SKIP_REASON)
    make_ours, make_torch = TORCH_CASES[case]
    rng = np.random.default_rng(0)
    starts = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    grads = [rng.standard_normal((20, *s.shape)) for s in starts]
    ours = [param(s) for s in starts]
    theirs = [torch.tensor(s, requires_grad=True) for s in starts]
    # two groups, the second with half the learning rate, to exercise per-group settings
    ours_opt = make_ours([{"params": [ours[0]]}, {"params": [ours[1]]}])
    torch_opt = make_torch(torch, [{"params": [theirs[0]]}, {"params": [theirs[1]]}])
    for opt in (ours_opt, torch_opt):
        opt.param_groups[1]["lr"] /= 2
    for step in range(20):
        for p, t, g in zip(ours, theirs, grads):
            p.grad, t.grad = g[step].copy(), torch.tensor(g[step])
        ours_opt.step()
        torch_opt.step()
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-12, atol=1e-14)


# ---- FTRL against McMahan et al. 2013, Algorithm 1 ------------------------------------------


def mcmahan_ftrl(gradient, size, steps, alpha, beta, lambda1, lambda2, n0):
    """Algorithm 1 of "Ad Click Prediction: a View from the Trenches", one coordinate at a
    time, with the accumulator starting at n0 (the paper's is 0). gradient(t, w) -> g.
    Returns w after each step (the w the paper computes at the start of the next round)."""
    z, n = [0.0] * size, [n0] * size

    def weight(i):
        if abs(z[i]) <= lambda1:
            return 0.0
        return -(((beta + math.sqrt(n[i])) / alpha + lambda2) ** -1) * (
            z[i] - math.copysign(lambda1, z[i])
        )

    seen = []
    for t in range(steps):
        w = [weight(i) for i in range(size)]
        g = gradient(t, w)
        for i in range(size):
            sigma = (math.sqrt(n[i] + g[i] ** 2) - math.sqrt(n[i])) / alpha
            z[i] += g[i] - sigma * w[i]
            n[i] += g[i] ** 2
        seen.append([weight(i) for i in range(size)])
    return seen


@pytest.mark.parametrize(
    "lr, l1, l2, beta, n0",
    [(0.1, 0.0, 0.0, 0.0, 0.1), (0.5, 0.3, 0.1, 1.0, 0.0), (0.05, 1.0, 0.5, 0.2, 0.1)],
)
def test_ftrl_follows_mcmahans_algorithm_1(lr, l1, l2, beta, n0):
    rng = np.random.default_rng(1)
    targets = rng.standard_normal((15, 6)) * 2

    def gradient(t, w):  # of the loss 0.5 * ||w - target_t||^2: depends on where w is
        return [wi - ti for wi, ti in zip(w, targets[t])]

    # TensorFlow's l2 multiplies ||w||^2; the paper's lambda2 multiplies ||w||^2 / 2
    expected = mcmahan_ftrl(gradient, 6, 15, lr, beta, l1, 2 * l2, n0)
    p = param(np.zeros(6))
    opt = FTRL([p], lr=lr, l1=l1, l2=l2, beta=beta, initial_accumulator_value=n0)
    for t in range(15):
        p.grad = np.array(gradient(t, p.data.tolist()))
        opt.step()
        np.testing.assert_allclose(p.data, expected[t], rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(p.data == 0, np.array(expected[t]) == 0)
    if l1 >= 1.0:  # a strong L1 keeps some weights at exactly zero
        assert (p.data == 0).any() and not (p.data == 0).all()


def test_ftrl_keeps_float32_and_any_lr_power():
    p = param([0.0, 0.0], dtype=np.float32)
    steps(FTRL([p], lr=0.1, lr_power=-1.0), p, [[1.0, -2.0], [1.0, -2.0]])
    assert p.data.dtype == np.float32
    # lr_power = -1 makes the rate lr / n: after step k, n = 0.1 + k g^2 and w = -z / (n / lr);
    # sigma = (n_2 - n_1) / lr = g^2 / lr, so z = 2 g - g^2 / lr * w_1
    g = np.array([1.0, -2.0])
    w1 = -g / ((0.1 + g**2) / 0.1)
    z = 2 * g - g**2 / 0.1 * w1
    np.testing.assert_allclose(p.data, -z / ((0.1 + 2 * g**2) / 0.1), rtol=1e-6)


# ---- row-sparse gradients -----------------------------------------------------------------

SPARSE_RULES = {  # name: (make the optimizer, start the table at zero)
    "sgd": (lambda p: SGD(p, lr=0.1), False),
    "adagrad": (lambda p: AdaGrad(p, lr=0.1, lr_decay=0.1), False),
    "adagrad-init": (lambda p: AdaGrad(p, lr=0.1, initial_accumulator_value=0.1), False),
    "ftrl": (lambda p: FTRL(p, lr=0.1), True),
    "ftrl-l1-l2": (lambda p: FTRL(p, lr=0.1, l1=0.05, l2=0.1, beta=0.5), True),
    # these rules move rows without a gradient, so the gradient is made dense first
    "sgd-momentum": (lambda p: SGD(p, lr=0.1, momentum=0.9), False),
    "sgd-weight-decay": (lambda p: SGD(p, lr=0.1, weight_decay=0.1), False),
    "adagrad-weight-decay": (lambda p: AdaGrad(p, lr=0.1, weight_decay=0.1), False),
    "adam": (lambda p: Adam(p, lr=0.1), False),
}


@pytest.mark.parametrize("name", sorted(SPARSE_RULES))
def test_row_sparse_gradients_give_exactly_the_dense_update(name):
    make, zeros = SPARSE_RULES[name]
    rng = np.random.default_rng(2)
    start = np.zeros((6, 3)) if zeros else rng.standard_normal((6, 3))
    sparse_p, dense_p = param(start, np.float32), param(start, np.float32)
    sparse_opt, dense_opt = make([sparse_p]), make([dense_p])
    for rows in ([4, 1, 4, 0, 4], [2, 2], [5, 1, 5], [3]):  # repeated rows add up
        values = rng.standard_normal((len(rows), 3)).astype(np.float32)
        grad = RowSparseGrad(np.array(rows), values, (6, 3))
        sparse_p.grad, dense_p.grad = grad, grad.to_dense()
        sparse_opt.step()
        dense_opt.step()
        np.testing.assert_array_equal(sparse_p.data, dense_p.data)
    for key, value in dense_opt.state[dense_p].items():
        np.testing.assert_array_equal(sparse_opt.state[sparse_p][key], value)
    assert sparse_p.data.dtype == np.float32


def test_row_sparse_steps_touch_only_their_rows(monkeypatch):
    def no_dense(self):
        raise AssertionError("the gradient was made dense")

    monkeypatch.setattr(RowSparseGrad, "to_dense", no_dense)
    start = np.arange(12.0).reshape(4, 3)
    for opt_class in (SGD, AdaGrad, FTRL):
        p = param(start)
        opt = opt_class([p], lr=0.1)
        p.grad = RowSparseGrad(np.array([2, 2]), np.ones((2, 3)), (4, 3))
        opt.step()
        untouched = [0, 1, 3]  # FTRL keeps a nonzero start here; a dense step would reset it
        np.testing.assert_array_equal(p.data[untouched], start[untouched])
        assert not np.array_equal(p.data[2], start[2])


# ---- in place, skipped, not mutated -------------------------------------------------------

ALL = {
    "sgd": lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=0.1),
    "adagrad": lambda p: AdaGrad(p, lr=0.1),
    "adam": lambda p: Adam(p, lr=0.1),
    "adamw": lambda p: AdamW(p, lr=0.1),
    "ftrl": lambda p: FTRL(p, lr=0.1, l1=0.01),
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_updates_in_place_skip_missing_grads_and_leave_grads_alone(name):
    p, idle = param([1.0, -2.0, 3.0]), param([5.0])
    opt = ALL[name]([p, idle])
    array = p.data
    base = np.array([0.5, 0.25, -1.0, 9.0])
    p.grad = base[:3]  # a view into another array, as backward may hand out
    opt.step()
    assert p.data is array and not np.array_equal(array, [1.0, -2.0, 3.0])
    np.testing.assert_array_equal(base, [0.5, 0.25, -1.0, 9.0])
    np.testing.assert_array_equal(idle.data, [5.0])  # grad None: skipped, no state made
    assert idle not in opt.state and opt.state[p]["step"] == 1
    opt.zero_grad()
    assert p.grad is None and idle.grad is None


# ---- Keras-style construction, lr, several optimizers ------------------------------------


def test_keras_style_construction_and_bind():
    opt = SGD(learning_rate=0.1, momentum=0.9)
    assert opt.lr == opt.learning_rate == 0.1 and opt.param_groups == []
    with pytest.raises(RuntimeError, match="SGD: has no parameters; .* bind"):
        opt.step()
    p = param([1.0, -2.0])
    assert opt.bind([p]) is opt
    opt.bind([p])  # a model compiled twice: the same params, nothing changes
    steps(opt, p, [[0.5, 1.0]])
    np.testing.assert_allclose(p.data, [0.95, -2.1])
    with pytest.raises(ValueError, match="SGD: already holds 1 parameters, got 1 others"):
        opt.bind([param([0.0])])
    opt.learning_rate = 0.5
    assert opt.param_groups[0]["lr"] == opt.defaults["lr"] == 0.5
    assert SGD().lr == 0.01 and Adam().lr == 1e-3 and FTRL().lr == 0.05
    assert SGD([p], 0.3).lr == 0.3 and Adam(learning_rate=0.2).lr == 0.2
    assert optim.Adagrad is AdaGrad and optim.Ftrl is FTRL
    assert "SGD(lr=0.5" in repr(opt) and "1 params in 1 group(s)" in repr(opt)


CONSTRUCTORS = {  # each optimizer's keywords in positional order, with defaults (as before)
    SGD: "lr=0.01, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0",
    AdaGrad: "lr=0.01, initial_accumulator_value=0.0, eps=1e-10, weight_decay=0.0, lr_decay=0.0",
    Adam: "lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0",
    AdamW: "lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01",
    FTRL: "lr=0.05, lr_power=-0.5, l1=0.0, l2=0.0, initial_accumulator_value=0.1, beta=0.0",
}


@pytest.mark.parametrize("make", CONSTRUCTORS, ids=lambda c: c.__name__)
def test_constructors_take_their_keywords_in_order_with_their_defaults(make):
    signature = inspect.signature(make)
    assert str(signature) == f"(params=None, {CONSTRUCTORS[make]}, *, learning_rate=None)"
    expected = {k: v.default for k, v in signature.parameters.items()}
    del expected["params"], expected["learning_rate"]
    assert make().defaults == expected
    # values given by position land on the keywords in that order (0.5 fits every range)
    given = {"lr": 0.5, "betas": (0.5, 0.5), "nesterov": False, "lr_power": -1.0}
    values = [given.get(k, 0.5) for k in expected]
    opt = make([p := param([1.0])], *values)
    assert opt.defaults == dict(zip(expected, values))
    assert opt.param_groups == [{**opt.defaults, "params": [p]}]
    name = make.__name__
    with pytest.raises(TypeError, match=f"{name}: too many positional arguments"):
        make(None, *values, 0.5)
    with pytest.raises(TypeError, match=f"{name}: got an unexpected keyword argument 'lrr'"):
        make(lrr=0.1)
    with pytest.raises(TypeError, match=f"{name}: multiple values for argument 'lr'"):
        make(None, 0.1, lr=0.1)


def test_param_groups_take_their_own_settings():
    a, b = param([1.0]), param([1.0])
    opt = SGD([{"params": [a]}, {"params": b, "learning_rate": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5] and opt.lr == 0.1
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.5])


def test_two_optimizers_on_disjoint_params_in_one_step():
    x = Tensor(np.array([1.0, 2.0, 3.0]))
    wide, deep = param([0.1, 0.2, 0.3]), param([0.5, -0.5, 1.0])
    wide_opt, deep_opt = AdaGrad([wide], lr=0.1), Adam([deep], lr=0.01)
    # the same two updates, each by itself, with the gradients worked out by hand
    wide_alone, deep_alone = param(wide.data), param(deep.data)
    wide_ref, deep_ref = AdaGrad([wide_alone], lr=0.1), Adam([deep_alone], lr=0.01)
    for _ in range(3):
        loss = (wide * x).sum() + ((deep * x) ** 2).sum()
        wide_opt.zero_grad()
        deep_opt.zero_grad()
        loss.backward()
        wide_alone.grad = x.data.copy()  # d/dwide of sum(wide * x)
        deep_alone.grad = 2 * deep_alone.data * x.data**2  # d/ddeep of sum((deep * x)^2)
        wide_opt.step()
        deep_opt.step()
        wide_ref.step()
        deep_ref.step()
        np.testing.assert_allclose(wide.data, wide_alone.data, rtol=1e-12)
        np.testing.assert_allclose(deep.data, deep_alone.data, rtol=1e-12)
    assert [id(p) for p in wide_opt.state] == [id(wide)]  # each holds only its own
    assert [id(p) for p in deep_opt.state] == [id(deep)]


# ---- state_dict: through JSON and npz, then on identically ---------------------------------


def through_checkpoint(state: dict) -> dict:
    """`state` as a checkpoint stores it: arrays in an npz, the rest in JSON."""
    arrays = {}

    def split(value, path):
        if isinstance(value, dict):
            return {str(k): split(v, f"{path}/{k}") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [split(v, f"{path}/{i}") for i, v in enumerate(value)]
        if isinstance(value, np.ndarray):
            arrays[path] = value
            return {"__array__": path}
        return value

    text = json.dumps(split(state, "s"))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    loaded = np.load(buffer, allow_pickle=False)

    def join(value):
        if isinstance(value, dict):
            if set(value) == {"__array__"}:
                return loaded[value["__array__"]]
            return {k: join(v) for k, v in value.items()}
        if isinstance(value, list):
            return [join(v) for v in value]
        return value

    return join(json.loads(text))


@pytest.mark.parametrize("name", sorted(ALL))
def test_state_dict_round_trip_continues_identically(name):
    rng = np.random.default_rng(3)
    starts = [rng.standard_normal((2, 3)), rng.standard_normal(4)]
    grads = rng.standard_normal((6, 10))

    def run(opt, params, schedule, rows):
        for g in grads[rows]:
            params[0].grad, params[1].grad = g[:6].reshape(2, 3), g[6:]
            opt.step()
            schedule.step()

    first = [param(s) for s in starts]
    opt = ALL[name]([{"params": [first[0]]}, {"params": [first[1]], "lr": 0.05}])
    schedule = StepDecay(opt, milestones=[4], gamma=0.5)
    run(opt, first, schedule, slice(0, 3))
    saved = through_checkpoint(opt.state_dict())
    saved_schedule = json.loads(json.dumps(schedule.state_dict()))
    snapshot = opt.state_dict()

    second = [param(p.data.copy()) for p in first]
    opt2 = ALL[name]([{"params": [second[0]]}, {"params": [second[1]]}])
    schedule2 = StepDecay(opt2, milestones=[4], gamma=0.5)
    opt2.load_state_dict(saved)
    schedule2.load_state_dict(saved_schedule)
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    run(opt, first, schedule, slice(3, 6))
    run(opt2, second, schedule2, slice(3, 6))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.data, b.data)
    assert opt2.lr == opt.lr == 0.5 * ALL[name]([param([0.0])]).lr
    # the saved arrays were copies: stepping on did not change them
    state_arrays = [
        v for s in snapshot["state"].values() for v in s.values() if hasattr(v, "shape")
    ]
    assert all(isinstance(v, np.ndarray) for v in state_arrays)
    assert snapshot["state"][0]["step"] == 3


def test_load_state_dict_rejects_what_does_not_fit():
    p = param([1.0, 2.0])
    opt = Adam([p])
    steps(opt, p, [[1.0, 1.0]])
    state = opt.state_dict()
    with pytest.raises(ValueError, match="SGD: cannot load the state of a Adam optimizer"):
        SGD([param([0.0, 0.0])]).load_state_dict(state)
    with pytest.raises(ValueError, match=r"groups of \[1\] parameters; expected .* \[2\]"):
        Adam([param([0.0, 0.0]), param([0.0])]).load_state_dict(state)
    with pytest.raises(ValueError, match=r"'exp_avg' has shape \(2,\); expected .* \(3,\)"):
        Adam([param([0.0, 0.0, 0.0])]).load_state_dict(state)
    state["param_groups"][0]["momentum"] = 0.9
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['momentum'\]"):
        Adam([param([0.0, 0.0])]).load_state_dict(state)


# ---- learning-rate schedules ----------------------------------------------------------------


def lrs(schedule, n: int) -> list[float]:
    """The rate of each of the first n steps."""
    seen = []
    for _ in range(n):
        seen.append(schedule.optimizer.lr)
        schedule.step()
    return seen


def test_step_decay_divides_at_each_milestone():
    schedule = StepDecay(SGD([param([0.0])], lr=1.0), milestones=[3, 5], gamma=0.1)
    np.testing.assert_allclose(lrs(schedule, 7), [1, 1, 1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_decay_from_base_to_min_then_flat():
    schedule = CosineDecay(SGD([param([0.0])], lr=1.0), total_steps=4, min_lr=0.1)
    half = (1 + math.cos(math.pi / 4)) / 2  # 0.8535...
    expected = [1.0, 0.1 + 0.9 * half, 0.55, 0.1 + 0.9 * (1 - half), 0.1, 0.1]
    np.testing.assert_allclose(lrs(schedule, 6), expected)


def test_linear_warmup_alone_and_before_another_schedule():
    warmup = LinearWarmup(SGD([param([0.0])], lr=0.3), warmup_steps=3)
    np.testing.assert_allclose(lrs(warmup, 5), [0.1, 0.2, 0.3, 0.3, 0.3])

    opt = SGD([param([0.0])], lr=1.0)
    after = StepDecay(opt, milestones=[2])
    warmup = LinearWarmup(opt, warmup_steps=2, after=after)
    np.testing.assert_allclose(lrs(warmup, 6), [0.5, 1.0, 1.0, 1.0, 0.1, 0.1])
    assert after.steps_done == 4


def test_schedules_scale_every_group_and_work_before_bind():
    opt = SGD([{"params": [param([0.0])]}, {"params": [param([0.0])], "lr": 0.1}], lr=1.0)
    schedule = StepDecay(opt, milestones=[1], gamma=0.5)
    schedule.step()
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.05]

    unbound = SGD(learning_rate=0.2)
    warmup = LinearWarmup(unbound, warmup_steps=2)
    assert unbound.lr == 0.1
    p = param([0.0])
    unbound.bind([p])
    assert unbound.param_groups[0]["lr"] == 0.1
    warmup.step()
    assert unbound.lr == 0.2 and warmup.lr == 0.2
    assert optim.StepDecay is StepDecay and optim.schedules.CosineDecay is CosineDecay


def test_schedule_state_round_trip():
    opt = SGD([param([0.0])], lr=1.0)
    schedule = CosineDecay(opt, total_steps=10)
    lrs(schedule, 4)
    saved = json.loads(json.dumps(schedule.state_dict()))
    assert saved == {"schedule": "CosineDecay", "steps_done": 4}
    again = CosineDecay(SGD([param([0.0])], lr=1.0), total_steps=10)
    again.load_state_dict(saved)
    assert lrs(again, 3) == lrs(schedule, 3)
    with pytest.raises(ValueError, match="StepDecay: cannot load the state of a CosineDecay"):
        StepDecay(opt, milestones=[1]).load_state_dict(saved)


# ---- clip_grad_norm ---------------------------------------------------------------------------


def test_clip_grad_norm_scales_all_grads_by_their_global_norm():
    a, b, idle = param([0.0, 0.0]), param([0.0]), param([0.0])
    base = np.array([3.0, 4.0, 12.0])
    a.grad, b.grad = base[:2], base[2:]  # views, as backward may hand out
    assert clip_grad_norm([a, b, idle], max_norm=6.5) == pytest.approx(13.0)
    scale = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad, [3 * scale, 4 * scale])
    np.testing.assert_allclose(b.grad, [12 * scale])
    np.testing.assert_array_equal(base, [3.0, 4.0, 12.0])  # new arrays, the old untouched
    assert idle.grad is None

    grad = a.grad
    assert clip_grad_norm(a, max_norm=100.0) == pytest.approx(6.5 * 5 / 13, rel=1e-6)
    assert a.grad is grad  # under the limit: nothing replaced


def test_clip_grad_norm_counts_a_row_sparse_grad_after_adding_repeated_rows():
    table, dense = param(np.zeros((3, 1))), param([0.0])
    table.grad = RowSparseGrad(np.array([1, 1]), np.array([[3.0], [1.0]]), (3, 1))
    dense.grad = np.array([3.0])
    assert clip_grad_norm([table, dense], max_norm=1.0) == pytest.approx(5.0)  # 4 and 3
    assert isinstance(table.grad, RowSparseGrad)
    np.testing.assert_allclose(table.grad.to_dense(), [[0.0], [0.8], [0.0]], rtol=1e-6)
    np.testing.assert_allclose(dense.grad, [0.6], rtol=1e-6)


# ---- errors -----------------------------------------------------------------------------------


def _trainable():
    return [param([1.0, 2.0])]


ERRORS = [
    (lambda: SGD(_trainable(), lr=-0.1), r"SGD: lr must be a number >= 0, got -0\.1"),
    (lambda: SGD(_trainable(), lr=float("nan")), r"SGD: lr must be a number >= 0, got nan"),
    (lambda: SGD(_trainable(), lr=0.1, momentum=1.0), r"momentum must be .* \[0, 1\), got 1\.0"),
    (lambda: SGD(_trainable(), momentum=-0.5), r"SGD: momentum must be .*, got -0\.5"),
    (
        lambda: SGD(_trainable(), lr=0.1, nesterov=True),
        r"SGD: nesterov=True needs momentum > 0 and dampening = 0, got momentum=0\.0",
    ),
    (lambda: SGD(lr=0.1, learning_rate=0.2), r"SGD: got lr=0\.1 and learning_rate=0\.2"),
    (lambda: SGD([]), r"SGD: params is empty; expected at least one Tensor"),
    (
        lambda: Adam([Tensor(np.ones(2))]),
        r"Adam: params\[0\] \(shape \(2,\)\) does not require a gradient; expected trainable",
    ),
    (lambda: Adam(_trainable(), betas=(0.9, 1.0)), r"Adam: betas\[1\] must be .*, got 1\.0"),
    (lambda: Adam(_trainable(), betas=0.9), r"Adam: betas must be a pair .*, got 0\.9"),
    (lambda: AdamW(_trainable(), eps=-1e-8), r"AdamW: eps must be a number >= 0, got -1e-08"),
    (lambda: AdaGrad(_trainable(), lr_decay=-1), r"AdaGrad: lr_decay must be .* >= 0, got -1"),
    (lambda: FTRL(_trainable(), lr_power=0.5), r"FTRL: lr_power must be a number <= 0, got 0\.5"),
    (lambda: FTRL(_trainable(), l1=-0.1), r"FTRL: l1 must be a number >= 0, got -0\.1"),
    (lambda: FTRL(_trainable(), lr=0.0), r"FTRL: lr must be a number > 0, got 0\.0"),
    (lambda: SGD(_trainable() * 2), r"SGD: a parameter \(shape \(2,\)\) appears twice"),
    (
        lambda: SGD([{"params": _trainable(), "lrr": 0.1}]),
        r"SGD: param group 0 has unknown option\(s\) \['lrr'\]",
    ),
    (lambda: SGD([{"params": []}]), r"SGD: param group 0 has no params"),
    (lambda: setattr(SGD(), "lr", -1.0), r"SGD: lr must be a number >= 0, got -1\.0"),
    (lambda: clip_grad_norm(_trainable(), 0), r"clip_grad_norm: max_norm must be a number > 0"),
    (
        lambda: StepDecay(SGD(), milestones=[5, 3]),
        r"StepDecay: milestones must be increasing integers >= 1, got \[5, 3\]",
    ),
    (lambda: StepDecay(SGD(), [2], gamma=0), r"StepDecay: gamma must be a number in \(0, 1\]"),
    (lambda: CosineDecay(SGD(), 0), r"CosineDecay: total_steps must be an integer >= 1, got 0"),
    (lambda: CosineDecay(SGD(), 5, min_lr=-1), r"CosineDecay: min_lr must be a number >= 0"),
    (lambda: LinearWarmup(SGD(), 0), r"LinearWarmup: warmup_steps must be an integer >= 1"),
    (
        lambda: LinearWarmup(SGD(), 2, after=StepDecay(SGD(), [1])),
        r"LinearWarmup: after must be a schedule made on the same optimizer",
    ),
]


@pytest.mark.parametrize("make, message", ERRORS, ids=[m[:40] for _, m in ERRORS])
def test_errors_name_the_optimizer_argument_and_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_type_errors():
    with pytest.raises(TypeError, match=r"SGD: params must be an iterable .* got a Tensor; pass"):
        SGD(param([1.0]))
    with pytest.raises(TypeError, match=r"SGD: params\[0\] must be a Tensor, got float"):
        SGD([1.0])
    with pytest.raises(TypeError, match="SGD: nesterov must be True or False, got 1"):
        SGD(_trainable(), momentum=0.9, nesterov=1)


def test_a_gradient_of_the_wrong_shape_is_named_at_step():
    p = param([1.0, 2.0])
    opt = SGD([p])
    p.grad = np.ones(3)
    with pytest.raises(ValueError, match=r"SGD: a parameter of shape \(2,\) has a gradient of"):
        opt.step()


def snapshot(opt, params) -> tuple:
    """Every parameter's values and every state entry (arrays copied), to compare after."""
    state = {id(p): {k: np.copy(v) for k, v in opt.state.get(p, {}).items()} for p in params}
    return [p.data.copy() for p in params], state


def assert_unchanged(opt, params, before) -> None:
    values, state = before
    for p, old in zip(params, values):
        assert p.data.dtype == old.dtype and p.data.tobytes() == old.tobytes()
    for p in params:
        now = opt.state.get(p, {})
        assert now.keys() == state[id(p)].keys()
        for key, old in state[id(p)].items():
            np.testing.assert_array_equal(now[key], old, err_msg=key)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", sorted(ALL))
def test_a_gradient_of_another_dtype_is_an_error_that_changes_nothing(path, name):
    """PyTorch's rule: a gradient has its parameter's dtype. A float64 gradient on a float32
    parameter is refused at step(), before any parameter or state changes: the first
    parameter, whose gradient is fine, is not updated either, and no step is counted."""
    first, second = param([1.0, -2.0, 3.0], np.float32), param([[0.5, 0.25]], np.float32)
    opt = ALL[name]([first, second])
    with PATHS[path]():
        first.grad, second.grad = np.ones(3, np.float32), np.ones((1, 2), np.float32)
        opt.step()  # a good step first, so that there is state to keep
        before = snapshot(opt, [first, second])
        for grad in (
            np.ones((1, 2), np.float64),
            np.ones((1, 2), np.float16),
            RowSparseGrad(np.array([0]), np.ones((1, 2), np.float64), (1, 2)),
        ):
            second.grad = grad
            with pytest.raises(
                TypeError,
                match=rf"{opt.name}: a parameter of dtype float32 has a gradient of dtype "
                rf"{grad.dtype} \(params\[1\], shape \(1, 2\)\); expected the "
                r"parameter's dtype: cast the gradient to float32",
            ):
                opt.step()
            assert_unchanged(opt, [first, second], before)
        second.grad = np.ones((1, 3), np.float32)
        with pytest.raises(ValueError, match=r"a parameter of shape \(1, 2\) has a gradient of"):
            opt.step()
        assert_unchanged(opt, [first, second], before)
        second.grad = RowSparseGrad(np.array([0.0]), np.ones((1, 2), np.float32), (1, 2))
        with pytest.raises(TypeError, match=r"gradient of params\[1\] has indices of dtype float"):
            opt.step()
        assert_unchanged(opt, [first, second], before)


UPDATES = {
    "sgd_update": (optim.sgd_update, ["buf"], {"lr": 0.1, "momentum": 0.9, "dampening": 0.0,
                   "nesterov": False, "weight_decay": 0.0}),
    "adagrad_update": (optim.adagrad_update, ["sum_sq"], {"clr": 0.1, "eps": 1e-10,
                       "weight_decay": 0.0}),
    "adam_update": (optim.adam_update, ["exp_avg", "exp_avg_sq"], {"step": 1, "lr": 0.1,
                    "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0,
                    "decoupled": False}),
    "ftrl_update": (optim.ftrl_update, ["accum", "linear"], {"lr": 0.1, "lr_power": -0.5,
                    "l1": 0.0, "l2": 0.0, "beta": 0.0}),
}  # fmt: skip


WRONG = {  # what is wrong with an `*_update` call: the error, and its message after "op: "
    "float64-grad": (TypeError, "grad must have the dtype of param, float32, got float64"),
    "float64-state": (TypeError, "{state} must have the dtype of param, float32, got float64"),
    "short-grad": (ValueError, r"grad must have the shape of param, \(4,\), got \(3,\)"),
    "int-param": (TypeError, "param must be floating-point, got dtype int64"),
}


def update_arguments(state_names: list[str], wrong: str | None) -> tuple:
    """param, grad and the state arrays, all float32 of shape (4,) but the one `wrong` names."""
    p = np.linspace(-1.0, 1.0, 4).astype(np.int64 if wrong == "int-param" else np.float32)
    grad = {"float64-grad": np.ones(4), "short-grad": np.ones(3, np.float32)}.get(wrong)
    grad = np.ones(4, np.float32) if grad is None else grad
    state = [np.full(4, 0.1, np.float32) for _ in state_names]
    if wrong == "float64-state":
        state[0] = state[0].astype(np.float64)
    return p, grad, state


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("wrong", [*WRONG, None])
@pytest.mark.parametrize("name", sorted(UPDATES))
def test_the_update_functions_check_their_arrays_before_any_kernel(path, wrong, name):
    """Called directly, an `*_update` function refuses a gradient or a state array of another
    dtype or shape than the parameter, and an integer parameter, touching nothing: the same
    on every path (the CUDA kernels would refuse them with CuPy's own error, the NumPy
    references round them in). wrong=None is the control: the update runs."""
    update, state_names, settings = UPDATES[name]
    p, grad, state = update_arguments(state_names, wrong)
    kept = [a.copy() for a in (p, grad, *state)]
    with PATHS[path]():
        if wrong is None:
            update(p, grad, *state, **settings)
            assert not np.array_equal(p, kept[0])
            return
        error, message = WRONG[wrong]
        with pytest.raises(error, match=f"{name}: " + message.format(state=state_names[0])):
            update(p, grad, *state, **settings)
    for now, old in zip((p, grad, *state), kept):
        assert now.dtype == old.dtype and now.tobytes() == old.tobytes()


# ---- the GPU ----------------------------------------------------------------------------------


@needs_gpu
@pytest.mark.parametrize("name", sorted(ALL))
def test_the_same_steps_on_the_gpu(name):
    import cupy

    rng = np.random.default_rng(4)
    start, grads = rng.standard_normal((5, 2)), rng.standard_normal((3, 5, 2))
    cpu, gpu = param(start), Tensor(cupy.asarray(start), requires_grad=True)
    cpu_opt, gpu_opt = ALL[name]([cpu]), ALL[name]([gpu])
    rows = np.array([0, 3, 3])
    for g in grads:
        cpu.grad = RowSparseGrad(rows, g[:3], (5, 2))
        gpu.grad = RowSparseGrad(cupy.asarray(rows), cupy.asarray(g[:3]), (5, 2))
        cpu_opt.step()
        gpu_opt.step()
    assert isinstance(gpu.data, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(gpu.data), cpu.data, rtol=1e-12, atol=1e-14)
    saved = gpu_opt.state_dict()
    assert all(isinstance(v, np.ndarray) for v in saved["state"][0].values() if hasattr(v, "T"))
    clip_grad_norm([gpu], 0.01)
    assert isinstance(gpu.grad, RowSparseGrad) and isinstance(gpu.grad.values, cupy.ndarray)
