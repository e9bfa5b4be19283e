"""tinydeep/dlpack.py and Tensor.__dlpack__: memory shared with PyTorch (and NumPy, CuPy)
without a copy, both ways, and the refusals.

Read in this order: out (torch.from_dlpack of a tinydeep Tensor), in (tinydeep.from_dlpack of
a torch tensor), transposed views both ways, gradients not shared, the errors, then the GPU.
Sharing is checked by writing through one side and reading the other: a copy would pass
every comparison of values, but not that.
"""

from __future__ import annotations

import numpy as np
import pytest
from devices import TORCH_SKIP_REASON, needs_gpu

import tinydeep as td
from tinydeep import backend

torch = pytest.importorskip("torch", reason=TORCH_SKIP_REASON)

DTYPES = ["float32", "float64", "int64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_from_dlpack_shares_a_tinydeep_tensor_s_memory(dtype):
    x = td.Tensor(np.arange(12).reshape(3, 4).astype(dtype))
    t = torch.from_dlpack(x)
    assert t.dtype == getattr(torch, dtype) and tuple(t.shape) == x.shape
    t[1, 2] = 100  # torch writes, tinydeep sees
    assert x.data[1, 2] == 100
    x.data[0, 0] = -7  # tinydeep writes, torch sees
    assert t[0, 0].item() == -7
    assert x.__dlpack_device__() == (1, 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tinydeep_from_dlpack_shares_a_torch_tensor_s_memory(dtype):
    t = torch.arange(12).reshape(3, 4).to(getattr(torch, dtype))
    x = td.from_dlpack(t)
    assert isinstance(x, td.Tensor) and x.dtype == np.dtype(dtype) and x.shape == (3, 4)
    assert x.device == "cpu" and not x.requires_grad and x.is_leaf
    x.data[1, 2] = 100
    assert t[1, 2].item() == 100
    t[0, 0] = -7
    assert x.data[0, 0] == -7


def test_a_transposed_view_crosses_as_a_view_both_ways():
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = torch.from_dlpack(td.Tensor(base.T))  # a (4, 3) view of base's memory
    assert tuple(out.shape) == (4, 3) and out.stride() == (1, 4)
    out[3, 0] = 55
    assert base[0, 3] == 55

    t = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    x = td.from_dlpack(t.T)
    assert x.shape == (4, 3) and x.data.strides == (8, 32)
    x.data[3, 0] = 55
    assert t[0, 3].item() == 55


def test_numpy_and_tinydeep_itself_go_through_the_same_protocol():
    a = np.zeros(3)
    x = td.from_dlpack(a)
    x.data[1] = 4
    assert a[1] == 4
    y = td.from_dlpack(x)  # a tinydeep Tensor is a producer too
    y.data[2] = 5
    assert a[2] == 5 and np.from_dlpack(y)[2] == 5


def test_gradients_are_not_shared_only_data():
    """A tensor that requires a gradient exports its data (PyTorch would refuse its own); the
    torch side gets no gradient, and what comes in requires none."""
    x = td.Tensor(np.ones(3, np.float32), requires_grad=True)
    t = torch.from_dlpack(x)
    (x * 3.0).sum().backward()
    assert not t.requires_grad and t.grad is None
    np.testing.assert_array_equal(x.grad, [3, 3, 3])
    t[0] = 2  # still the same memory after backward
    assert x.data[0] == 2
    assert not td.from_dlpack(torch.ones(2, requires_grad=True).detach()).requires_grad


class OnDevice:
    """An array-like that says it lives on DLPack device `device_type`."""

    def __init__(self, device_type: int):
        self.device_type = device_type

    def __dlpack_device__(self):
        return (self.device_type, 0)

    def __dlpack__(self, **kwargs):
        raise AssertionError("from_dlpack must refuse before asking for the capsule")


def test_what_cannot_come_in_is_refused_naming_from_dlpack_and_the_problem():
    with pytest.raises(
        TypeError, match="from_dlpack: obj must have __dlpack__.*got a builtins.list"
    ):
        td.from_dlpack([1.0, 2.0])
    with pytest.raises(ValueError, match=r"device type 8 \(Metal\), index 0; tinydeep takes"):
        td.from_dlpack(OnDevice(8))
    with pytest.raises(TypeError, match="numpy cannot wrap obj, a torch.Tensor of dtype torch.bf"):
        td.from_dlpack(torch.ones(2, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match="Can't export tensors that require gradient"):
        td.from_dlpack(torch.ones(2, requires_grad=True))


def test_a_cuda_array_without_a_usable_gpu_is_refused_naming_the_device(monkeypatch):
    problem = "device 'cuda' needs CuPy, which is not installed"
    monkeypatch.setattr(backend, "device_problem", lambda device: problem)  # as on a laptop
    with pytest.raises(RuntimeError, match=f"from_dlpack: obj is on CUDA GPU 0, but {problem}"):
        td.from_dlpack(OnDevice(2))


@needs_gpu
def test_on_the_gpu_memory_is_shared_with_cupy_and_torch():
    """CuPy always; PyTorch too when its build has CUDA (the [torch] extra is the CPU wheel)."""
    cp = backend.require_cuda()
    a = cp.arange(6, dtype=cp.float32).reshape(2, 3)
    x = td.from_dlpack(a.T)
    assert x.device == "cuda" and x.shape == (3, 2)
    x.data[2, 1] = 50
    assert float(a[1, 2]) == 50
    back = cp.from_dlpack(x)
    back[0, 0] = -1
    assert float(a[0, 0]) == -1 and x.__dlpack_device__()[0] == 2
    if torch.cuda.is_available():
        t = torch.arange(6, dtype=torch.float64, device="cuda").reshape(2, 3)
        y = td.from_dlpack(t)
        assert y.device == "cuda"
        y.data[1, 1] = 9
        assert t[1, 1].item() == 9
        out = torch.from_dlpack(y)
        assert out.is_cuda
        out[0, 2] = 8
        assert float(y.data[0, 2]) == 8
