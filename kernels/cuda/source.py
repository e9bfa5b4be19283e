"""Shared plumbing of the RawModule kernels: loading a .cu file of this folder, picking a
template instance by dtype, launching one thread per element. No kernels of its own.

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


@functools.cache
def module(filename: str, kernels: tuple[str, ...]) -> cupy.RawModule:
    """The RawModule of `filename` (a .cu beside this file) with every template kernel in
    `kernels` instantiated for every type of C_TYPES. Compiled on the first get_function."""
    code = (Path(__file__).parent / filename).read_text()
    names = [f"{kernel}<{c_type}>" for kernel in kernels for c_type in C_TYPES.values()]
    return cupy.RawModule(code=code, options=("-std=c++14",), name_expressions=names)


def c_type(op: str, dtype) -> str:
    """The C type that instantiates op's kernel for `dtype`, or a TypeError naming the op."""
    dtype = np.dtype(dtype)
    if dtype not in C_TYPES:
        supported = ", ".join(str(d) for d in C_TYPES)
        raise TypeError(
            f"{op} (CUDA kernel): dtype {dtype} is not supported, expected one of {supported}; "
            "TINYDEEP_KERNELS=0 runs the CuPy reference instead"
        )
    return C_TYPES[dtype]


def launch(kernel: cupy.RawKernel, size: int, args: tuple) -> None:
    """Run `kernel` on `size` threads (one per output element), in blocks of BLOCK."""
    if size > 0:
        kernel(((size + BLOCK - 1) // BLOCK,), (BLOCK,), args)
