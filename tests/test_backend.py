"""tinydeep/backend.py: array modules, devices, and kernel dispatch by name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import tinydeep_kernels.cpu

from tinydeep import backend


def test_xp_of_and_device_of_read_the_array_type():
    assert backend.xp_of(np.ones(2)) is np and backend.device_of(np.ones(2)) == "cpu"
    with pytest.raises(TypeError, match="expected a NumPy or CuPy array, got list"):
        backend.xp_of([1.0])


def fake_cupy(device_count):
    """A stand-in for the cupy module whose getDeviceCount returns `device_count`, or raises
    it when it is an exception (CuPy installed on a machine with no driver or no GPU)."""

    def get_device_count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    runtime = SimpleNamespace(getDeviceCount=get_device_count)
    return SimpleNamespace(cuda=SimpleNamespace(runtime=runtime))


@pytest.mark.parametrize(
    ("cupy", "expected"),
    [
        (None, r"^device 'cuda' needs CuPy, which is not installed: .*pip install"),
        (
            fake_cupy(RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")),
            r"^device 'cuda': CuPy is installed but no CUDA GPU is usable \(cudaErrorNoDevice",
        ),
        (fake_cupy(0), r"^device 'cuda': CuPy found no CUDA GPU; .*pip install"),
    ],
    ids=["no CuPy", "no driver", "no GPU"],
)
def test_device_problem_says_in_one_line_why_cuda_is_unusable(monkeypatch, cupy, expected):
    monkeypatch.setattr(backend, "_cupy", cupy)  # None: as if `import cupy` had failed
    problem = backend.device_problem("cuda")
    assert re.search(expected, problem) and "\n" not in problem
    with pytest.raises(RuntimeError) as raised:  # the error to_device raises says the same
        backend.require_cuda()
    assert str(raised.value) == problem
    assert backend.device_problem("cpu") is None


def test_device_problem_is_none_for_a_usable_gpu_and_rejects_unknown_devices(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", fake_cupy(1))
    assert backend.device_problem("cuda") is None
    with pytest.raises(ValueError, match="device must be one of"):
        backend.device_problem("tpu")


@backend.kernelized
def double(x):
    """Reference: 2 * x."""
    return 2 * x


@pytest.fixture
def fake_kernel(monkeypatch):
    """A kernel named `double` in tinydeep_kernels.cpu that marks its result."""
    monkeypatch.setattr(tinydeep_kernels.cpu, "double", lambda x: x * 2 + 1000, raising=False)
    monkeypatch.setattr(backend, "_kernel_cache", {})
    monkeypatch.setattr(backend, "_kernels_on", True)


def test_a_kernel_of_the_same_name_replaces_the_reference(fake_kernel):
    assert double(np.array([1.0]))[0] == 1002.0


def test_reference_only_forces_the_reference_and_restores_the_switch(fake_kernel):
    with backend.reference_only():
        assert double(np.array([1.0]))[0] == 2.0
        assert not backend.kernels_enabled()
    assert backend.kernels_enabled()
    assert double.reference(np.array([1.0]))[0] == 2.0


@backend.kernelized
def quadruple(x):
    """Reference: double(double(x)), a reference that calls another kernelized function."""
    return double(double(x))


def test_a_reference_runs_no_kernel_inside_it(fake_kernel):
    """What kernel tests compare against: conv2d_gemm's reference calls im2col, and must not
    reach im2col's kernel (the audit's col2im bug hid behind exactly that)."""
    assert quadruple(np.array([1.0]))[0] == 1002 * 2 + 1000  # kernels on: both doubles marked
    assert quadruple.reference(np.array([1.0]))[0] == 4.0
    assert backend.kernels_enabled()  # and the switch is back on afterwards


def check_positive(x):
    if (x <= 0).any():
        raise ValueError("halve: x must be positive")


@backend.kernelized(check=check_positive)
def halve(x):
    """Reference: x / 2, for positive x (checked before dispatch)."""
    return x / 2


def test_a_check_runs_before_the_kernel_and_before_the_reference(monkeypatch, fake_kernel):
    called = []
    monkeypatch.setattr(tinydeep_kernels.cpu, "halve", lambda x: called.append(x), raising=False)
    assert halve(np.array([4.0])) is None and len(called) == 1  # the kernel ran
    for run in (halve, halve.reference):
        with pytest.raises(ValueError, match="halve: x must be positive"):
            run(np.array([-1.0]))
    with backend.reference_only(), pytest.raises(ValueError, match="halve: x must be positive"):
        halve(np.array([-1.0]))
    assert len(called) == 1  # the kernel never saw the bad input
    assert halve.reference(np.array([4.0]))[0] == 2.0


@backend.kernelized(check=lambda x: checked.append(x))
def octuple(x):
    """Reference: double(quadruple(x)), kernelized calls inside, and a check that counts."""
    return double(quadruple(x))


checked = []


def test_a_kernel_that_declines_hands_the_call_to_the_reference_alone(monkeypatch, fake_kernel):
    """A kernel returns NotImplemented for arguments it does not handle (here: integers). The
    dispatcher then runs the reference alone, as `.reference` does (no kernel inside it
    either), after the check, which runs once; the call is not counted as a kernel run."""

    def kernel(x):
        return NotImplemented if x.dtype.kind == "i" else x * 8 + 1000

    monkeypatch.setattr(tinydeep_kernels.cpu, "octuple", kernel, raising=False)
    monkeypatch.setattr(backend, "_kernels_run", set())
    checked.clear()
    got = octuple(np.array([1]))
    assert got[0] == 8 and got.dtype.kind == "i"  # not NotImplemented, not a fake double's mark
    assert len(checked) == 1
    assert backend.kernels_run() == [] and backend.kernels_enabled()
    assert octuple(np.array([1.0]))[0] == 1008.0  # floats: the kernel takes them
    assert backend.kernels_run() == ["cpu:octuple"]
    assert double(np.array([1]))[0] == 1002  # the other kernels are on again after a decline
    assert backend.kernels_run() == ["cpu:double", "cpu:octuple"]


def test_without_a_kernel_the_reference_runs(monkeypatch):
    monkeypatch.setattr(backend, "_kernel_cache", {})
    assert not hasattr(tinydeep_kernels.cpu, "double")
    assert double(np.array([1.0]))[0] == 2.0


def test_the_environment_variable_turns_kernels_off():
    env = dict(os.environ, TINYDEEP_KERNELS="0")
    code = "from tinydeep import backend; print(backend.kernels_enabled())"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_freed_memory_is_kept_for_reuse_on_glibc():
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert backend.keep_freed_memory()
