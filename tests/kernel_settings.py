"""Context managers that change a CPU kernel setting inside a test, and put it back after.

Plain context managers rather than pytest's monkeypatch, so that hypothesis tests can use them
around each drawn example (a function-scoped fixture would span all of them).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType


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
