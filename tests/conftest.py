"""Shared test settings: hypothesis profiles, the real-data fixture, and CI's rule on skips.

Hypothesis runs 100 examples per property, freshly drawn on every run (the "default"
profile), so that local runs keep exploring; "ci" (HYPOTHESIS_PROFILE=ci, set by .ci/run)
runs 100 examples derandomized, the same ones on every run, so that CI's verdict on a commit
does not depend on the draw (a case a random run finds goes in as an @example); "dev" runs 20
for quick local loops, and "ci-quick" 20 derandomized, for the tests that run the kernel tests
again in a subprocess. Deadlines are off: a gradient check's run time depends on the drawn
shape, not on a regression.

Tests that need the real data sets read them from the folder in the environment variable
TINYDEEP_DATA (.ci/run points it at ../shared/data) and skip, naming the missing folder,
when it is absent; the PyTorch cross-checks skip without PyTorch (`pip install -e ".[torch]"`),
and the NVRTC compile of the CUDA kernels without its extra (`pip install -e ".[cuda-compile]"`).

In CI (TINYDEEP_NO_SKIPS=1, set by .ci/run) a skip is a failure: a test that cannot run
there is a guarantee nobody is checking. The one exception is the CUDA tests on a machine
with no GPU, which skip with the single reason `devices.GPU_SKIP_REASON`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from devices import GPU_SKIP_REASON, gpu_missing_reason
from hypothesis import HealthCheck, settings

QUIET = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("default", max_examples=100, **QUIET)
settings.register_profile("ci", max_examples=100, derandomize=True, **QUIET)
settings.register_profile("dev", max_examples=20, **QUIET)
settings.register_profile("ci-quick", max_examples=20, derandomize=True, **QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

NO_SKIPS = os.environ.get("TINYDEEP_NO_SKIPS") == "1"


@pytest.fixture
def data_root():
    """A function: data_root("fashion-mnist") is that folder under TINYDEEP_DATA, or a skip."""

    def folder(name: str) -> Path:
        root = os.environ.get("TINYDEEP_DATA")
        if not root:
            pytest.skip(
                f"needs the real data set '{name}': set TINYDEEP_DATA to a folder "
                f"holding {name}/ (CI uses ../shared/data)"
            )
        path = Path(root) / name
        if not path.is_dir():
            pytest.skip(f"needs the real data set folder {path}, which is absent")
        return path

    return folder


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "cuda: needs a CUDA GPU (set on every @needs_gpu test)")


def pytest_collection_modifyitems(config, items) -> None:
    """Mark every test that skips without a GPU `cuda`, so `pytest -m cuda` selects the CUDA
    tests (benchmarks/gpu_check.py runs them so)."""
    for item in items:
        if any(m.kwargs.get("reason") == GPU_SKIP_REASON for m in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.cuda)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under TINYDEEP_NO_SKIPS=1 a skip other than the CUDA one is reported as a failure."""
    outcome = yield
    report = outcome.get_result()
    if not (NO_SKIPS and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if reason.removeprefix("Skipped: ") != GPU_SKIP_REASON:
        report.outcome = "failed"
        report.longrepr = f"TINYDEEP_NO_SKIPS=1 (CI) makes this skip a failure: {reason}"


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: no error without it
def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (pyproject's addopts): one worker per core, at most 8 (each holds NumPy,
    Numba's kernels and perhaps PyTorch; more would buy little)."""
    return max(1, min(os.cpu_count() or 1, 8))


def pytest_terminal_summary(terminalreporter) -> None:
    """The skips in one line per reason, with how many tests each skipped, instead of pytest's
    line per test location (the CUDA tests alone would be dozens of lines that bury the
    result). pyproject's `-rfE` leaves failures and errors in pytest's own summary."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons:
        return
    terminalreporter.section("skipped, by reason", sep="-")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        tests = "test" if count == 1 else "tests"
        terminalreporter.write_line(f"{count} {tests}: {reason}")


def pytest_report_header(config) -> list[str]:
    """What this run can check: the GPU, PyTorch and the data, one line."""
    try:
        import torch  # noqa: F401  only to say whether the cross-checks can run

        torch_line = "PyTorch installed"
    except ImportError:
        torch_line = 'no PyTorch (the cross-checks skip; pip install -e ".[torch]")'
    gpu = gpu_missing_reason()
    data = os.environ.get("TINYDEEP_DATA") or "unset (the real-data tests skip)"
    return [
        f"tinydeep: CUDA {'usable' if gpu is None else 'tests skip: ' + gpu}",
        f"tinydeep: {torch_line}; TINYDEEP_DATA {data}; skips fail: {NO_SKIPS}",
    ]
