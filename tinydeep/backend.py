"""Devices and kernels: the device of a tensor is the type of its array.

A NumPy array lives on the CPU, a CuPy array on an NVIDIA GPU. Everything above this file
writes its maths once against `xp`, the array module of its operands (`xp_of`), the way
Chainer does, so the same line runs on either device.

Read in this order:
  1. xp_of / device_of / check_same_device   which module and device an array belongs to
  2. device_problem / to_device               whether a device is usable here; moving arrays,
                                              and the error when CuPy is missing
  3. kernelized / reference_only              swapping a readable reference for a kernel,
                                              after the checks that hold for both; a kernel
                                              that declines its input hands it back
  4. keep_freed_memory                        why a training step needs no fresh memory pages

Kernels live in the top-level `kernels/` folder, installed as the package `tinydeep_kernels`
(`tinydeep_kernels.cpu` for Numba, `tinydeep_kernels.cuda` for CuPy). A kernel has the same name
and signature as the reference function it replaces, and returns `NotImplemented` for an input
it does not handle (a dtype, a layout), so that the reference runs. The environment variable
`TINYDEEP_KERNELS=0` or the context manager `reference_only()` forces the references everywhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib
import os
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType

import numpy as np

DEVICES = ("cpu", "cuda")

CUPY_INSTALL_HINT = (
    'install CuPy for your CUDA version, e.g. `pip install -e ".[cuda]"` (CUDA 12) or '
    '`pip install -e ".[cuda13]"` (CUDA 13) in your clone of tinydeep, on a machine with an '
    "NVIDIA GPU"
)


# --------------------------------------------------------------------------------------------
# 1. Array module and device of an array


def cupy_module() -> ModuleType | None:
    """The `cupy` module if it imports, else None (imported once, on first use)."""
    global _cupy
    if _cupy is _NOT_LOOKED_UP:
        try:
            import cupy
        except Exception:  # noqa: BLE001  ImportError, or CuPy failing to load CUDA libraries
            cupy = None
        _cupy = cupy
    return _cupy


_NOT_LOOKED_UP = object()
_cupy: ModuleType | None | object = _NOT_LOOKED_UP


def xp_of(array) -> ModuleType:
    """The array module (numpy or cupy) that `array` belongs to."""
    if isinstance(array, (np.ndarray, np.generic)):
        return np
    cp = cupy_module()
    if cp is not None and isinstance(array, cp.ndarray):
        return cp
    raise TypeError(f"expected a NumPy or CuPy array, got {type(array).__name__}")


def device_of(array) -> str:
    """ "cpu" for a NumPy array, "cuda" for a CuPy array."""
    return "cpu" if xp_of(array) is np else "cuda"


def check_same_device(op: str, arrays) -> None:
    """Raise ValueError naming each operand's device when `arrays` are not all on one device.

    tinydeep never copies between devices behind the user's back: mixing is an error.
    """
    first = type(arrays[0])
    if all(type(a) is first for a in arrays):  # the common case, without a module lookup
        return
    devices = [device_of(a) for a in arrays]
    if len(set(devices)) > 1:
        where = ", ".join(f"operand {i} on {d}" for i, d in enumerate(devices))
        raise ValueError(
            f"{op}: operands are on different devices ({where}); move them "
            "to one device with .to('cpu') or .to('cuda') first"
        )


# --------------------------------------------------------------------------------------------
# 2. Moving arrays between devices


def device_problem(device: str) -> str | None:
    """Why `device` cannot be used on this machine, in one line, or None when it can.

    "cpu" always can; "cuda" needs CuPy, a driver and a GPU. Ask before any slow work: the
    examples check `--device` this way before they load data (and exit with this line).
    """
    if check_device(device) == "cpu":
        return None
    cp = cupy_module()
    if cp is None:
        return f"device 'cuda' needs CuPy, which is not installed: {CUPY_INSTALL_HINT}"
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as error:  # noqa: BLE001  CuPy installed, but no driver or no GPU
        return (
            f"device 'cuda': CuPy is installed but no CUDA GPU is usable "
            f"({error}); {CUPY_INSTALL_HINT}"
        )
    if count == 0:
        return f"device 'cuda': CuPy found no CUDA GPU; {CUPY_INSTALL_HINT}"
    return None


def require_cuda() -> ModuleType:
    """The cupy module, or a RuntimeError that says what is missing and how to install it."""
    problem = device_problem("cuda")
    if problem is not None:
        raise RuntimeError(problem)
    return cupy_module()


def check_device(device: str) -> str:
    """Return `device` if it names a known device, else raise ValueError."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return device


def to_device(array, device: str):
    """`array` on `device`: the same object when it is already there, else a copy."""
    if device_of(array) == check_device(device):
        return array
    if device == "cuda":
        return require_cuda().asarray(array)
    return cupy_module().asnumpy(array)


# --------------------------------------------------------------------------------------------
# 3. Kernel dispatch

KERNEL_PACKAGES = {"cpu": "tinydeep_kernels.cpu", "cuda": "tinydeep_kernels.cuda"}
_kernels_on = os.environ.get("TINYDEEP_KERNELS", "1") != "0"
_kernel_cache: dict[tuple[str, str], Callable | None] = {}  # every kernel looked up, or None
_kernels_run: set[tuple[str, str]] = set()  # (device, name) of each kernel that returned a result


def kernels_enabled() -> bool:
    """True unless TINYDEEP_KERNELS=0 or a `reference_only()` block is active."""
    return _kernels_on


def kernels_run() -> list[str]:
    """The kernels that have computed a result in this process, as sorted "device:name"
    strings (what a benchmark reports as dispatched): a kernel that was found but declined
    every call it got is not among them, unlike in _kernel_cache, the lookups."""
    return sorted(f"{device}:{name}" for device, name in _kernels_run)


@contextlib.contextmanager
def reference_only() -> Iterator[None]:
    """Inside this block every op runs its readable NumPy/CuPy reference, no kernel."""
    global _kernels_on
    previous, _kernels_on = _kernels_on, False
    try:
        yield
    finally:
        _kernels_on = previous


def find_kernel(name: str, device: str) -> Callable | None:
    """The kernel called `name` for `device`, or None when there is none (looked up once)."""
    key = (device, name)
    if key not in _kernel_cache:
        try:
            package = importlib.import_module(KERNEL_PACKAGES[device])
        except ImportError as error:
            warnings.warn(
                f"kernels for {device} are unavailable ({error}); "
                "using the reference implementations",
                RuntimeWarning,
                stacklevel=2,
            )
            package = None
        _kernel_cache[key] = getattr(package, name, None)
    return _kernel_cache[key]


def kernelized(reference: Callable | None = None, *, check: Callable | None = None) -> Callable:
    """Decorate a reference array function so that a kernel of the same name replaces it.

    The device is read off the first positional argument, which must be an array. When kernels
    are enabled and `tinydeep_kernels.<device>` defines a function of the same name, that
    function is called with the same arguments; otherwise the reference runs.
    `dispatch.reference` runs the reference alone, with no kernel anywhere inside it.

    A kernel that does not handle its arguments (a dtype it is not compiled for, a layout it
    cannot read) declines: it returns `NotImplemented` before it changes anything, and the
    reference runs alone instead, as `dispatch.reference` (the result is the reference's,
    bit for bit, and no kernel ran for the call). So a kernel file holds only the fast path,
    never a copy of its reference's maths for the inputs it leaves out.

    `@kernelized(check=check_args)`: check_args(*args, **kwargs) runs first, before the kernel
    or the reference, and raises when the arguments do not fit. It holds the argument checks
    of a function that a kernel replaces whole (col2im, a backward), so they are written once,
    beside the reference, and every device gets them: a Numba or CUDA kernel reads its arrays
    by the shapes it is told, with no bounds checks of its own.
    """
    if reference is None:  # @kernelized(check=...): the decorator, with its check
        return functools.partial(kernelized, check=check)

    @functools.wraps(reference)
    def dispatch(*args, **kwargs):
        if check is not None:
            check(*args, **kwargs)
        if _kernels_on:
            device = device_of(args[0])
            kernel = find_kernel(reference.__name__, device)
            if kernel is not None:
                result = kernel(*args, **kwargs)
                if result is not NotImplemented:
                    _kernels_run.add((device, reference.__name__))
                    return result
                return alone(*args, **kwargs)  # the kernel declined these arguments
        return reference(*args, **kwargs)

    def alone(*args, **kwargs):
        # The reference with every kernel off inside it too, for a declined call and for
        # tests: a reference that calls another kernelized function (conv2d_gemm calls
        # im2col) must not run that one's kernel, or a kernel test would compare the kernel
        # with itself.
        with reference_only():
            return reference(*args, **kwargs)

    def run_reference(*args, **kwargs):
        if check is not None:
            check(*args, **kwargs)
        return alone(*args, **kwargs)

    dispatch.reference = functools.wraps(reference)(run_reference)  # what tests compare against
    return dispatch


# --------------------------------------------------------------------------------------------
# 4. Host memory reuse

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 1 << 30) -> bool:
    """Ask glibc's malloc to reuse freed memory instead of returning it to the system.

    By default glibc gives each large array (over ~128 KiB, rising as it sees frees) its own
    fresh mapping and unmaps it when freed; every new activation of a training step then
    starts as untouched pages, and the kernel faults each 4 KiB page in. A ResNet-20 step
    (batch 128) measured about 54,000 such page faults, some 210 MB of fresh pages per step;
    with arrays below 32 MiB served from the heap and freed heap memory kept (up to 1 GiB),
    it measured none, at the same peak memory. Called once when tinydeep is imported, unless
    the environment variable TINYDEEP_MALLOPT=0; it does nothing where malloc is not glibc's.
    Returns True when both settings were accepted.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, trim_threshold)
        )
    except (OSError, AttributeError):  # not Linux with glibc
        return False


if os.environ.get("TINYDEEP_MALLOPT", "1") != "0":
    keep_freed_memory()
