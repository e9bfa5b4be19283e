"""The Numba kernels with bounds checking on: every CPU kernel test passes, and an index out
of range raises IndexError instead of reading or writing memory it does not own.

Numba compiles without bounds checks by default (as C does). NUMBA_BOUNDSCHECK=1 turns them
on for every jitted function, but only in a process that reads it at import, and a kernel
cached without checks would be reused; so both tests run in a fresh Python process with a
fresh, empty NUMBA_CACHE_DIR. The kernel tests run 20 examples per property (the "dev"
profile, or "ci-quick", the same 20 every time, under CI's "ci") to keep the recompilation and
the run to about half a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

KERNEL_TESTS = Path(__file__).resolve().parent
ROOT = KERNEL_TESTS.parents[1]


def checked_env(cache_dir: Path) -> dict[str, str]:
    return dict(
        os.environ,
        NUMBA_BOUNDSCHECK="1",
        NUMBA_CACHE_DIR=str(cache_dir),
        # 20 examples per property; derandomized in CI, as the run this one is part of
        HYPOTHESIS_PROFILE="ci-quick" if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else "dev",
    )


def test_an_out_of_range_index_raises_with_bounds_checking_on(tmp_path):
    """The embedding gather loop, called directly (past the Python wrapper that checks ids),
    with an id beyond the table: IndexError, not a silent out-of-bounds read."""
    code = (
        "import numba, numpy as np\n"
        "from tinydeep_kernels.cpu.embedding import _gather_loop\n"
        "assert numba.config.BOUNDSCHECK\n"
        "table, out = np.zeros((3, 2)), np.zeros((1, 2))\n"
        "try:\n"
        "    _gather_loop(table, np.array([7]), out)\n"
        "except IndexError as error:\n"
        "    print('IndexError:', error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=checked_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("IndexError: index is out of bounds"), result.stdout


def test_every_cpu_kernel_test_passes_with_bounds_checking_on(tmp_path):
    tests = sorted(str(p) for p in KERNEL_TESTS.glob("test_cpu_*.py"))
    assert len(tests) >= 6  # conv, pool, normalization, elementwise, embedding, optim
    result = subprocess.run(
        # one process (-n 0): this test's own run is already one of the suite's workers
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *tests],
        cwd=ROOT,
        env=checked_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
