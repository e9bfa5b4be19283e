"""DLPack: arrays pass between tinydeep and PyTorch, JAX, CuPy or NumPy without a copy.

DLPack is a small C struct that array libraries hand each other (in a PyCapsule): a data
pointer, the device, the dtype, the shape and the strides. The receiver wraps the same memory,
so a write through one side is seen by the other, on the CPU and on a GPU alike, and strided
views (a transpose) cross as views. The protocol has two methods on the producer:
`__dlpack_device__()` says where the memory is, `__dlpack__(...)` hands over the capsule.

Read in this order:
  out: Tensor.__dlpack__ and Tensor.__dlpack_device__ (tinydeep/tensor.py), which hand over
       the capsule of the tensor's array, so `torch.from_dlpack(t)` shares `t.data`;
  in:  from_dlpack (below), which asks the producer where its memory is and lets NumPy
       (CPU) or CuPy (CUDA) wrap it, then makes a Tensor of that array.

Only data crosses. Gradients are not shared: a tensor that requires a gradient exports its
data alone (its `.grad` and its graph stay behind), and what comes in is a leaf with
requires_grad=False whatever the producer had (PyTorch itself refuses to export a tensor that
requires a gradient: pass `x.detach()`). Left out: devices other than the CPU and CUDA GPUs
(ROCm, Metal, ...), and dtypes NumPy and CuPy lack (bfloat16), which are refused.

A caution: a view with negative strides (`x[::-1]`) crosses as it is, which NumPy and CuPy
take, but PyTorch 2.13's from_dlpack aborts the whole process on it (a C++ error, not an
exception): hand PyTorch a copy of such a tensor (`td.Tensor(x.data.copy())`).
"""

from __future__ import annotations

import numpy as np

from tinydeep import backend
from tinydeep.tensor import Tensor

# DLPack's device types (dlpack.h, DLDeviceType): tinydeep takes the first two.
CPU, CUDA = 1, 2
DEVICE_NAMES = {
    CPU: "CPU",
    CUDA: "CUDA",
    3: "CUDA host (pinned)",
    4: "OpenCL",
    7: "Vulkan",
    8: "Metal",
    9: "VPI",
    10: "ROCm",
    11: "ROCm host",
    12: "external",
    13: "CUDA managed",
    14: "oneAPI",
    15: "WebGPU",
    16: "Hexagon",
    17: "MAIA",
}


def from_dlpack(obj) -> Tensor:
    """A Tensor on the same memory as `obj`, any array with `__dlpack__` (a PyTorch, JAX, CuPy
    or NumPy array, or a tinydeep Tensor): a write through either is seen by the other.

    Same shape, dtype and strides (a transposed view stays a view); on the CPU (NumPy) or, for
    a CUDA array, on the GPU (CuPy). The result is a leaf that requires no gradient: gradients
    are not shared, only data (call `.requires_grad_()` to train it as a tinydeep parameter).
    """
    if not (hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__")):
        raise TypeError(
            f"from_dlpack: obj must have __dlpack__ and __dlpack_device__ (a PyTorch, JAX, "
            f"CuPy or NumPy array), got a {_kind(obj)}"
        )
    device_type, index = obj.__dlpack_device__()
    if device_type == CPU:
        xp = np
    elif device_type == CUDA:
        problem = backend.device_problem("cuda")
        if problem is not None:
            raise RuntimeError(f"from_dlpack: obj is on CUDA GPU {index}, but {problem}")
        xp = backend.cupy_module()
    else:
        name = DEVICE_NAMES.get(int(device_type), "unknown")
        raise ValueError(
            f"from_dlpack: obj is on DLPack device type {int(device_type)} ({name}), index "
            f"{index}; tinydeep takes arrays on the CPU (type {CPU}) or a CUDA GPU (type {CUDA})"
        )
    try:
        array = xp.from_dlpack(obj)
    except (BufferError, RuntimeError, TypeError, ValueError) as error:
        raise TypeError(
            f"from_dlpack: {xp.__name__} cannot wrap obj, a {_kind(obj)} of dtype "
            f"{getattr(obj, 'dtype', '?')} ({type(error).__name__}: {error})"
        ) from None
    return Tensor(array)


def _kind(obj) -> str:
    """The type of `obj` with its module ("torch.Tensor"): several libraries call theirs Tensor."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
