"""Which devices this machine can test: `needs_gpu` skips a test, with the reason, when no
CUDA GPU is usable (no CuPy, no driver, or no device)."""

from __future__ import annotations

import pytest

from tinydeep import backend


def gpu_missing_reason() -> str | None:
    """Why the CUDA tests cannot run here, or None when they can."""
    try:
        backend.require_cuda()
    except RuntimeError as error:
        return str(error)
    return None


needs_gpu = pytest.mark.skipif(
    gpu_missing_reason() is not None, reason=f"no usable CUDA GPU: {gpu_missing_reason()}"
)
