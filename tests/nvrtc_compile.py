"""Compile CuPy kernels for a named GPU architecture on a machine with no GPU, the way CuPy
would compile them on that GPU: the machinery of tests/kernels/test_cuda_compile.py.

CuPy compiles a kernel when it is first launched, and two steps of that need a device: CuPy
asks the current device for its architecture, and hands the compiled cubin to the CUDA driver.
Everything else (generating the CUDA source of an ElementwiseKernel or ReductionKernel for
the launch's argument types, CuPy's compiler options and headers, NVRTC itself) runs on the
CPU. So this module calls CuPy's own source generators and CuPy's own compile function,
`cupy._core.core.compile_with_cache`, and replaces only the two device steps:

1. the architecture is passed in (`arch="90"`), and the one per-device lookup left on that
   path, `cupy.cuda.compiler._get_arch_for_options_for_nvrtc` (memoized per device, so it asks
   the driver which device is current), is replaced by the function it wraps;
2. `cupy.cuda.compiler.function.Module`, which loads the cubin into the driver, is replaced by
   a subclass whose `load` keeps the cubin (`Cubin` below).
CUPY_CACHE_IN_MEMORY=1 keeps CuPy's disk cache (~/.cupy/kernel_cache) out of it, so every
run compiles afresh and leaves nothing behind. NVRTC comes from the nvidia-cuda-nvrtc-cu12
wheel, the CUDA headers from nvidia-cuda-runtime-cu12; CuPy 14 finds both by itself
(through cuda-pathfinder).

What CuPy would launch depends, besides dtypes, on each argument's kind (array or scalar)
and, for arrays, on the dimensions left after CuPy merges contiguous axes, on whether they
are C-contiguous, and on whether offsets fit in 32 bits: a `Launch` states all of it.

CuPy internals relied on, all of cupy-cuda12x 14.2.0 (pinned by the [cuda-compile] extra in
pyproject.toml, so that moving to another CuPy is a deliberate change that this test checks):
- cupy/_core/_kernel.pyx: `_ArgInfo(kind, type, dtype, ndim, c_contiguous, index_32_bits)`
  and the argument kinds of `_ArgKind` in _kernel.pxd; `_get_elementwise_kernel_code`;
  `ElementwiseKernel.params`, `.kwargs` and `._decide_params_type`; `_decide_params_type`
  and `_TypeMap._pairs` (reductions);
- cupy/_core/_reduction.pyx: `_ReductionKernel_get_cached_function_code`, `_get_block_specs`,
  and `ReductionKernel._params` ending in `_in_ind, _out_ind, _block_stride`;
- cupy/_core/core.pyx: `compile_with_cache(source, options, arch=...)`, and under it
  cupy/cuda/compiler.py's module attribute `function` and `_get_arch_for_options_for_nvrtc`.
`tests/kernels/test_cuda_compile.py::test_arguments_are_declared_as_cupy_declares_them`
checks the first of these against the source CuPy generates.

Read `Layout` and `Launch`, then `elementwise_source` / `reduction_source`, then `compile`.
"""

from __future__ import annotations

import contextlib
import struct
import types
from collections.abc import Iterator
from dataclasses import dataclass, field

import cupy
import numpy as np
import pytest
from cupy._core import _carray, _kernel, _reduction, _scalar, core
from cupy.cuda import compiler, function

# The kinds of kernel argument, as numbered by `_ArgKind` in cupy/_core/_kernel.pxd.
ARRAY, INDEXER, SCALAR = 1, 2, 3


@dataclass(frozen=True)
class Layout:
    """How CuPy sees the arrays of one launch: the dimensions left after it merges the axes
    that are contiguous in every array, whether they are C-contiguous, and whether every
    offset fits in 32 bits. Each choice is a different instance of CuPy's CArray template."""

    name: str
    ndim: int
    contiguous: bool
    offsets_32bit: bool


@dataclass(frozen=True)
class Launch:
    """One launch of an ElementwiseKernel or ReductionKernel: the dtype of each type
    placeholder (`{"T": "float32"}`), the inputs passed as Python numbers rather than
    arrays, the ndim of each raw array (1 when not given), and the layout."""

    types: dict[str, str]
    layout: Layout
    scalars: frozenset[str] = frozenset()
    raw_ndim: dict[str, int] = field(default_factory=dict)


def placeholders(kernel) -> set[str]:
    """The type placeholders (T, ...) in a kernel's parameter list."""
    params = kernel.in_params + kernel.out_params
    return {p.ctype for p in params if p.dtype is None}


def _dtype(param, launch: Launch) -> np.dtype:
    """The dtype of one parameter: its own (`int64 rows`), else its placeholder's."""
    return np.dtype(param.dtype if param.dtype is not None else launch.types[param.ctype])


def _array(dtype, ndim: int, layout: Layout) -> _kernel._ArgInfo:
    return _kernel._ArgInfo(
        ARRAY, cupy.ndarray, np.dtype(dtype), ndim, layout.contiguous, layout.offsets_32bit
    )


def _scalar_argument(dtype) -> _kernel._ArgInfo:
    return _kernel._ArgInfo(SCALAR, _scalar.CScalar, np.dtype(dtype), 0, True, True)


def _indexer(ndim: int, layout: Layout) -> _kernel._ArgInfo:
    return _kernel._ArgInfo(INDEXER, _carray.Indexer, None, ndim, True, layout.offsets_32bit)


def _argument(param, dtype, ndim: int, launch: Launch) -> _kernel._ArgInfo:
    """What CuPy records of the argument passed for `param` (_ArgInfo.from_arg)."""
    if param.name in launch.scalars:
        return _scalar_argument(dtype)
    if param.raw:  # a raw array keeps its own shape: CuPy merges only the others' axes
        return _array(dtype, launch.raw_ndim.get(param.name, 1), launch.layout)
    return _array(dtype, ndim, launch.layout)


def elementwise_source(kernel: cupy.ElementwiseKernel, launch: Launch) -> str:
    """The CUDA source CuPy generates for this launch of `kernel`
    (ElementwiseKernel.__call__ and _get_elementwise_kernel in cupy/_core/_kernel.pyx)."""
    # A scalar's dtype is its placeholder's, as resolved from the arrays (None until then).
    in_types = tuple(
        None if p.name in launch.scalars else _dtype(p, launch) for p in kernel.in_params
    )
    out_types = tuple(_dtype(p, launch) for p in kernel.out_params)
    in_types, out_types, type_map = kernel._decide_params_type(in_types, out_types)
    params = kernel.in_params + kernel.out_params
    ndim = launch.layout.ndim
    arguments = [
        _argument(p, t, ndim, launch) for p, t in zip(params, in_types + out_types, strict=True)
    ]
    arguments.append(_indexer(ndim, launch.layout))  # the last parameter, `CIndexer _ind`
    return _kernel._get_elementwise_kernel_code(
        tuple(arguments),
        type_map,
        kernel.params,
        kernel.operation,
        kernel.name,
        kernel.preamble,
        **kernel.kwargs,
    )


def reduction_source(kernel: cupy.ReductionKernel, launch: Launch) -> str:
    """The CUDA source CuPy generates for this launch of `kernel`, a reduction over the
    leading axes, the output 1-D and CuPy's own (contiguous) array
    (ReductionKernel.__call__ and _AbstractReductionKernel._call in cupy/_core/_reduction.pyx).
    """
    if kernel.nin == 1 and kernel.nout == 1:  # CuPy may then run it through CUB instead
        raise NotImplementedError(
            f"{kernel.name}: a one-in, one-out ReductionKernel may be compiled through CUB "
            "(cupy/_core/_cub_reduction.pyx), which this test does not reproduce"
        )
    in_types = tuple(
        None if p.name in launch.scalars else _dtype(p, launch).type for p in kernel.in_params
    )
    out_types = tuple(_dtype(p, launch).type for p in kernel.out_params)
    in_types, out_types, type_map = _kernel._decide_params_type(
        kernel.in_params, kernel.out_params, in_types, out_types
    )
    # The loop index type: int64 once a reduction spans more than 2**31 elements.
    index_type = np.int32 if launch.layout.offsets_32bit else np.int64
    type_map = _kernel._TypeMap(type_map._pairs + (("IndexT", index_type),))
    tail = tuple(p.name for p in kernel._params[kernel.nargs :])
    assert tail == ("_in_ind", "_out_ind", "_block_stride"), tail  # CuPy 14's layout
    output = Layout("output", 1, True, True)
    arguments = [
        _argument(p, t, launch.layout.ndim, launch) for p, t in zip(kernel.in_params, in_types)
    ]
    arguments += [_array(t, 1, output) for t in out_types]
    arguments += [
        _indexer(launch.layout.ndim, launch.layout),
        _indexer(1, output),
        _scalar_argument(np.int32),  # _block_stride
    ]
    block_size, _, _ = _reduction._get_block_specs(1, 1, 1, -1)  # CuPy's default, 512
    return _reduction._ReductionKernel_get_cached_function_code(
        kernel.nin,
        kernel.nout,
        kernel._params,
        tuple(arguments),
        type_map,
        kernel.name,
        block_size,
        kernel.reduce_type,
        kernel.identity,
        kernel.map_expr,
        kernel.reduce_expr,
        kernel.post_map_expr,
        kernel.preamble,
        kernel.options,
    )


class Cubin(function.Module):
    """What CuPy's compiler would load into the CUDA driver, kept here instead: `.cubin`,
    and `.mapping` (name expression -> lowered name) for a RawModule."""

    def load(self, cubin: bytes) -> None:
        self.cubin = cubin


@contextlib.contextmanager
def no_device() -> Iterator[None]:
    """Within this block CuPy compiles without asking for a device or loading the result."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compiler, "function", types.SimpleNamespace(Module=Cubin))
        lookup = compiler._get_arch_for_options_for_nvrtc
        patch.setattr(compiler, "_get_arch_for_options_for_nvrtc", lookup.__wrapped__)
        patch.setenv("CUPY_CACHE_IN_MEMORY", "1")
        yield


def compile_kernel(kernel, launch: Launch, arch: str) -> Cubin:
    """An ElementwiseKernel or ReductionKernel compiled for one launch, for sm_<arch>, as
    CuPy compiles it (_get_simple_elementwise_kernel_from_code,
    _create_reduction_function_from_code). Call within `no_device()`."""
    if isinstance(kernel, cupy.ReductionKernel):
        source, options = reduction_source(kernel, launch), kernel.options
    else:
        source, options = elementwise_source(kernel, launch), kernel.kwargs.get("options", ())
    return _checked(core.compile_with_cache(source, options, arch=arch), arch)


def compile_raw_module(module: cupy.RawModule, arch: str) -> Cubin:
    """A RawModule compiled for sm_<arch>, every name expression, as RawModule compiles it
    (_get_raw_module in cupy/_core/raw.pyx; translate_cucomplex and jitify left False, which
    CuPy does not let us read). Call within `no_device()`."""
    cubin = core.compile_with_cache(
        module.code,
        module.options,
        arch=arch,
        prepend_cupy_headers=False,
        backend=module.backend,
        enable_cooperative_groups=module.enable_cooperative_groups,
        name_expressions=module.name_expressions,
    )
    return _checked(cubin, arch)


def _checked(cubin: Cubin, arch: str) -> Cubin:
    """`cubin`, after checking that it is a CUDA ELF binary for sm_<arch>, not PTX."""
    binary = cubin.cubin
    assert binary[:4] == b"\x7fELF", f"expected a cubin for sm_{arch}, got {binary[:20]!r}"
    (flags,) = struct.unpack_from("<I", binary, 48)  # e_flags: its low byte is the SM
    assert flags & 0xFF == int(arch), f"cubin is for sm_{flags & 0xFF}, not sm_{arch}"
    return cubin
