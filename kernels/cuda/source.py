"""Shared plumbing of the RawModule kernels: loading a .cu file of this folder, picking a
template instance by dtype (None for a dtype it has none for: the kernel declines), launching
one thread per element. No kernels of its own.

A .cu source is compiled by NVRTC the first time one of its kernels is fetched (not at
import), once per device; CuPy caches the binary on disk (~/.cupy/kernel_cache), so later
runs skip the compile. Kernel arguments are passed as NumPy scalars of the exact C type the
kernel declares (np.int32 for `int`, np.int64 for `long long`): CuPy would pass a Python int
as a 64-bit integer whatever the kernel expects.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cupy
import numpy as np

__all__: list[str] = []  # helpers only; kernels/cuda/__init__.py gathers nothing from here

BLOCK = 256  # threads per block: a multiple of the warp size that suits every kernel here

# The C type of each dtype the arithmetic kernels are instantiated for (the <T> of the .cu).
C_TYPES = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.int32): "int",
    np.dtype(np.int64): "long long",
}
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))  # the floating ones


@functools.cache
def module(filename: str, kernels: tuple[str, ...]) -> cupy.RawModule:
    """The RawModule of `filename` (a .cu beside this file) with every template kernel in
    `kernels` instantiated for every type of C_TYPES. Compiled on the first get_function."""
    code = (Path(__file__).parent / filename).read_text()
    names = [f"{kernel}<{c_type}>" for kernel in kernels for c_type in C_TYPES.values()]
    return cupy.RawModule(code=code, options=("-std=c++14",), name_expressions=names)


def instance(module: cupy.RawModule, name: str, dtype) -> cupy.RawKernel | None:
    """The kernel `name` of `module` instantiated for `dtype` (`name<float>`, ...), or None for a
    dtype not in C_TYPES: the kernel that asked then declines (returns NotImplemented), and
    tinydeep runs the CuPy reference (tinydeep/backend.py, kernelized)."""
    c_type = C_TYPES.get(np.dtype(dtype))
    return None if c_type is None else module.get_function(f"{name}<{c_type}>")


def launch(kernel: cupy.RawKernel, size: int, args: tuple) -> None:
    """Run `kernel` on `size` threads (one per output element), in blocks of BLOCK."""
    if size > 0:
        kernel(((size + BLOCK - 1) // BLOCK,), (BLOCK,), args)
