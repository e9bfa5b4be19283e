"""The CUDA path: the same ops on CuPy arrays. Skipped, with the reason, without a usable GPU."""

from __future__ import annotations

import numpy as np
import pytest
from devices import needs_gpu

import tinydeep as td
from tinydeep import backend
from tinydeep.layers import Dense, ReLU, Sequential

pytestmark = needs_gpu


def test_to_cuda_moves_the_data_and_gradients_come_back_to_the_cpu():
    x = td.Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    g = x.to("cuda")
    assert g.device == "cuda" and type(g.data).__module__.startswith("cupy")
    (g * g).sum().backward()
    assert x.grad.__class__ is np.ndarray
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])


def test_ops_run_on_the_gpu_and_match_the_cpu():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))

    def model(x, w):
        return ((x @ w).tanh() * 2).log_softmax().max(axis=1).sum()

    cpu = [td.Tensor(a, requires_grad=True), td.Tensor(b, requires_grad=True)]
    gpu = [td.Tensor(backend.to_device(t.data, "cuda"), requires_grad=True) for t in cpu]
    model(*cpu).backward()
    model(*gpu).backward()
    for c, g in zip(cpu, gpu):
        assert g.grad.__class__.__module__.startswith("cupy")
        np.testing.assert_allclose(backend.to_device(g.grad, "cpu"), c.grad, rtol=1e-12)


def test_gradcheck_runs_on_the_gpu():
    cp = backend.require_cuda()
    x = cp.asarray(np.random.default_rng(1).standard_normal((2, 3)))
    assert td.gradcheck(lambda t: (t.sigmoid() * t)[:, [0, 0, 2]].sum(axis=0), x)


def test_mixing_devices_is_an_error_naming_both():
    with pytest.raises(ValueError, match="operand 0 on cpu, operand 1 on cuda"):
        td.Tensor([1.0]) + td.Tensor([1.0]).to("cuda")


def test_a_model_moved_before_it_is_built_builds_on_its_device():
    """to("cuda") on an unbuilt model chooses the device: the first call builds the weights
    there, and a NumPy input is then a device-mixing error, not a silent CPU model."""
    cp = backend.require_cuda()
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    model = Sequential([Dense(2), ReLU(), Dense(1)]).to("cuda")
    model(cp.asarray(x))
    assert model.device == "cuda"
    assert all(isinstance(w.data, cp.ndarray) for w in model.weights)
    with pytest.raises(ValueError, match="on cpu"):
        model(x)
