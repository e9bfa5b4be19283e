"""Which devices this machine can test: `needs_gpu` skips a test when no CUDA GPU is usable
(no CuPy, no driver, or no device), with one short reason; the details are in pytest's header."""

from __future__ import annotations

import pytest

from tinydeep import backend


def gpu_missing_reason() -> str | None:
    """Why the CUDA tests cannot run here (one line), or None when they can."""
    return backend.device_problem("cuda")


# The one reason every CUDA test skips with (pytest's header line says why in detail); CI's
# rule that a skip is a failure (tests/conftest.py) lets this one through.
GPU_SKIP_REASON = "needs a usable CUDA GPU"

needs_gpu = pytest.mark.skipif(gpu_missing_reason() is not None, reason=GPU_SKIP_REASON)

# The reason the PyTorch cross-checks skip with, when PyTorch is not installed.
TORCH_SKIP_REASON = 'needs PyTorch for the cross-check with it: pip install -e ".[torch]"'
