"""Context managers that change a CPU kernel setting inside a test, and put it back after.

Plain context managers rather than pytest's monkeypatch, so that hypothesis tests can use them
around each drawn example (a function-scoped fixture would span all of them).

PATHS names the two ways an op runs on the CPU, for tests that check both: the NumPy
reference (backend.reference_only()) and the Numba kernels (kernels_on()); cpu_kernel puts a
stand-in kernel in place, to see what the dispatcher hands a kernel; declined runs a function
whose CPU kernel declines its arguments.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType

import tinydeep_kernels.cpu

from tinydeep import backend


@contextlib.contextmanager
def setting(module: ModuleType, name: str, value) -> Iterator[None]:
    """module.name = value inside the block (e.g. a kernel module's CHUNK_BYTES)."""
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


@contextlib.contextmanager
def cores(n: int) -> Iterator[None]:
    """The CPU kernels split their work over n parts (TINYDEEP_THREADS) inside the block."""
    old = os.environ.get("TINYDEEP_THREADS")
    os.environ["TINYDEEP_THREADS"] = str(n)
    try:
        yield
    finally:
        if old is None:
            del os.environ["TINYDEEP_THREADS"]
        else:
            os.environ["TINYDEEP_THREADS"] = old


@contextlib.contextmanager
def kernels_on() -> Iterator[None]:
    """Every op runs its CPU kernel, where one exists, inside the block, even under
    TINYDEEP_KERNELS=0: the other side of backend.reference_only()."""
    previous = backend._kernels_on
    backend._kernels_on = True
    try:
        yield
    finally:
        backend._kernels_on = previous


PATHS = {"reference": backend.reference_only, "kernels": kernels_on}


@contextlib.contextmanager
def cpu_kernel(name: str, kernel) -> Iterator[None]:
    """Inside the block, with kernels on, `kernel` is the CPU kernel called `name` (a stand-in
    that records or checks its arguments); the real one (or none) is back after it."""
    missing = object()
    old = getattr(tinydeep_kernels.cpu, name, missing)
    setattr(tinydeep_kernels.cpu, name, kernel)
    backend._kernel_cache.pop(("cpu", name), None)
    try:
        with kernels_on():
            yield
    finally:
        if old is missing:
            delattr(tinydeep_kernels.cpu, name)
        else:
            setattr(tinydeep_kernels.cpu, name, old)
        backend._kernel_cache.pop(("cpu", name), None)


def declined(function, *args, **kwargs):
    """What the kernelized `function` returns with kernels on, once its CPU kernel is seen to
    decline these arguments (return NotImplemented, before changing anything): the result
    the dispatcher got from the reference instead."""
    kernel = getattr(tinydeep_kernels.cpu, function.__name__)
    assert kernel(*args, **kwargs) is NotImplemented, f"the {function.__name__} kernel took them"
    with kernels_on():
        return function(*args, **kwargs)
