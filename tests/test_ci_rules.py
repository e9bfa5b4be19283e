"""tests/conftest.py's rule for CI: under TINYDEEP_NO_SKIPS=1 a skip is a failure, except the
CUDA tests' one reason; so a CI run without the data or without PyTorch cannot pass quietly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SAMPLE = """
import pytest
from devices import needs_gpu


def test_needs_a_missing_package():
    pytest.importorskip("no_such_package_for_tinydeep")


def test_needs_the_data(data_root):
    data_root("adult")


@needs_gpu
def test_needs_a_gpu():
    pass


def test_plain():
    pass
"""


def run_sample(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """pytest on SAMPLE beside a copy of the test suite's conftest.py and devices.py."""
    for name in ("conftest.py", "devices.py"):
        shutil.copy(TESTS / name, tmp_path / name)
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    environment = {k: v for k, v in os.environ.items() if k != "TINYDEEP_DATA"}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs", "test_sample.py"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_without_the_rule_missing_things_skip(tmp_path):
    result = run_sample(tmp_path, TINYDEEP_NO_SKIPS="0")
    assert result.returncode == 0, result.stdout
    skipped = 3 if "CUDA usable" not in result.stdout else 2
    assert f"1 passed, {skipped} skipped" in result.stdout


def test_under_the_rule_a_missing_package_or_data_set_fails(tmp_path):
    result = run_sample(tmp_path, TINYDEEP_NO_SKIPS="1", TINYDEEP_DATA=str(tmp_path / "none"))
    assert result.returncode == 1, result.stdout
    assert "FAILED test_sample.py::test_needs_a_missing_package" in result.stdout
    assert "FAILED test_sample.py::test_needs_the_data" in result.stdout
    assert "makes this skip a failure" in result.stdout
    if "tinydeep: CUDA usable" not in result.stdout:  # only the GPU test may skip
        assert "2 failed, 1 passed, 1 skipped" in result.stdout
        assert "needs a usable CUDA GPU" in result.stdout


def test_the_skips_are_summed_up_in_one_line_per_reason(tmp_path):
    result = run_sample(tmp_path, TINYDEEP_NO_SKIPS="0")
    summary = result.stdout[result.stdout.index("skipped, by reason") :].splitlines()[1:]
    assert "1 test: could not import 'no_such_package_for_tinydeep': " in "\n".join(summary)
    assert any(line.startswith("1 test: needs the real data set 'adult'") for line in summary)
    if "CUDA usable" not in result.stdout:
        assert "1 test: needs a usable CUDA GPU" in summary
