"""Both cores busy: a batch split into one part per core, each run by its own thread.

Not a kernel (no reference replaced): the helper the conv and batch-norm kernels share.

Why threads, and why not Numba's or OpenBLAS's own. A convolution is copies (im2col, col2im:
Numba loops) between matrix products (NumPy's BLAS). Left to themselves, the copies run on one
core while the other waits, and each GEMM splits itself over both cores, then its threads spin
for a while in case another GEMM follows; Numba's parallel loops have their own threads, which
spin against OpenBLAS's on the same two cores. Here instead the batch is cut into one
contiguous part per core, and each part runs its own copies and its own single-threaded GEMMs
from start to end on one thread: no core waits for the other between steps, and no pool
spins. It works because both halves release the GIL: the Numba loops are compiled with
`nogil=True`, and NumPy drops the GIL around a BLAS call.

The parts are contiguous and fixed (part t is always the same images), and anything summed
across parts (a weight gradient) is added in part order, so results do not depend on which
thread finishes first: every run gives the same bits.

  cores()                  the cores this process may run on
  single_threaded_blas()   OpenBLAS on one thread inside the block (threadpoolctl)
  blas_for(parts)          single_threaded_blas() when the batch is shared, else nothing
  split(n, parts)          n items as `parts` contiguous (start, stop) ranges
  run_parts(fn, parts)     [fn(0), ..., fn(parts - 1)], one per thread, in that order
  parts_for(size)          how many parts an elementwise pass of `size` values is worth
  run_ranges(fn, n, parts) fn(start, stop) for each part of range(n), at once
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import ThreadpoolController

__all__: list[str] = []  # kernels are looked up by name: this module has none


def cores() -> int:
    """The CPU cores this process may use (its affinity mask, not the machine's count).
    `TINYDEEP_THREADS` overrides it (1: every kernel runs serially on the calling thread)."""
    setting = os.environ.get("TINYDEEP_THREADS")
    if setting:
        return max(1, int(setting))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# Values below which one more part costs more than it saves: waking a thread and waiting for it
# take about 20-50 us, a pass over 2**16 float32 values about as long.
MIN_PART = 1 << 16


def parts_for(size: int) -> int:
    """Parts for a pass over `size` values: one per core, fewer for small arrays."""
    return max(1, min(cores(), size // MIN_PART))


_pool: ThreadPoolExecutor | None = None
_blas = None  # threadpoolctl's controllers of the BLAS libraries NumPy loaded, found once


def run_parts(fn: Callable[[int], object], parts: int) -> list:
    """[fn(0), ..., fn(parts - 1)]: part 0 on the calling thread, the others on the pool's
    threads, all at once. An exception in any part is raised here, after all have ended."""
    global _pool
    if parts == 1:
        return [fn(0)]
    if _pool is None or _pool._max_workers < parts - 1:
        _pool = ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="tinydeep")
    futures = [_pool.submit(fn, t) for t in range(1, parts)]
    results = [None] * parts
    first_error = None
    try:
        results[0] = fn(0)
    except BaseException as error:  # noqa: BLE001  wait for the other parts before raising
        first_error = error
    for t, future in enumerate(futures, start=1):
        try:
            results[t] = future.result()
        except BaseException as error:  # noqa: BLE001
            first_error = first_error or error
    if first_error is not None:
        raise first_error
    return results


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Inside this block NumPy's BLAS runs each call on the calling thread alone (each part
    already has its core); the previous thread count comes back after."""
    global _blas
    if _blas is None:
        _blas = ThreadpoolController().select(user_api="blas").lib_controllers
    previous = [lib.num_threads for lib in _blas]
    for lib in _blas:
        lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(_blas, previous):
            lib.set_num_threads(n)


def blas_for(parts: int):
    """BLAS on one thread per part when `parts` threads share the work, else left as it is."""
    return single_threaded_blas() if parts > 1 else contextlib.nullcontext()


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """n items as `parts` contiguous ranges (start, stop) whose sizes differ by at most one."""
    return [(n * t // parts, n * (t + 1) // parts) for t in range(parts)]


def run_ranges(fn: Callable[[int, int], object], n: int, parts: int) -> list:
    """[fn(start, stop) for each of split(n, parts)], each part on its own thread."""
    ranges = split(n, parts)
    return run_parts(lambda t: fn(*ranges[t]), parts)
