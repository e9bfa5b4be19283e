"""kernels/cpu/threads.py, and the kernels that split their work over it: the same results on
one thread as on several.

Batch norm's and ReLU's parts are whole blocks of rows, so their results are the same bits
for any number of parts. The convolutions' dw is a sum of the parts' shares, so there it is
the same bits run after run for a given number of parts, and within float rounding across
numbers of parts (tests/kernels/test_cpu_conv.py and test_cpu_winograd.py check those
against the references).
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
import tinydeep_kernels.cpu.conv as conv_kernels
from hypothesis import given
from hypothesis import strategies as st
from kernel_settings import cores, setting
from threadpoolctl import threadpool_info
from tinydeep_kernels.cpu import elementwise, normalization, threads

from tinydeep.ops import conv


@given(n=st.integers(0, 1000), parts=st.integers(1, 8))
def test_split_covers_the_range_in_order_with_sizes_one_apart(n, parts):
    ranges = threads.split(n, parts)
    assert len(ranges) == parts and ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_run_parts_runs_the_parts_at_once_and_returns_them_in_order():
    together = threading.Barrier(4, timeout=10)  # broken unless all four parts run at once
    callers = {}

    def part(t):
        callers[t] = threading.get_ident()
        together.wait()
        return t * t

    assert threads.run_parts(part, 4) == [0, 1, 4, 9]
    assert callers[0] == threading.get_ident()  # part 0 on the calling thread
    assert len(set(callers.values())) == 4


def test_run_parts_raises_a_parts_error_after_every_part_has_ended():
    ended = []

    def part(t):
        if t == 1:
            raise ValueError("part 1 failed")
        ended.append(t)

    with pytest.raises(ValueError, match="part 1 failed"):
        threads.run_parts(part, 3)
    assert sorted(ended) == [0, 2]


def test_single_threaded_blas_puts_the_thread_count_back():
    before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    with threads.single_threaded_blas():
        inside = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        assert inside and all(n == 1 for n in inside)
    after = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert after == before


def test_cores_follows_tinydeep_threads():
    with cores(3):
        assert threads.cores() == 3
    with cores(1):
        assert threads.parts_for(10**9) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_and_relu_give_the_same_bits_on_any_number_of_parts(dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((7, 9, 11, 5)) + 3).astype(dtype)  # 693 rows: 3 blocks, a part
    dy = rng.standard_normal(x.shape).astype(dtype)
    gamma, beta = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)

    def run():
        mean, var = normalization.batch_moments(x)
        inv_std = 1 / np.sqrt(var + 1e-3)
        y, x_hat = normalization.batch_norm_normalize(x, gamma, beta, mean, inv_std)
        grads = normalization.batch_norm_backward(dy, (x_hat, gamma, inv_std))
        z, _ = elementwise.relu_forward(y)
        (dz,) = elementwise.relu_backward(dy, z)
        return [mean, var, y, x_hat, *grads, z, dz]

    with cores(1):
        one = run()
    for parts in (2, 3):
        with cores(parts), setting(threads, "MIN_PART", 1):  # parts even for small arrays
            assert threads.parts_for(x.size) == parts
            for a, b in zip(one, run()):
                np.testing.assert_array_equal(a, b)


def test_conv2d_kernels_give_the_same_bits_every_run_on_several_parts():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 6, 6, 8), dtype=np.float32)
    w = rng.standard_normal((3, 3, 8, 4), dtype=np.float32)
    window = conv.window_geometry("conv2d", x.shape, (3, 3), 2, "same")
    dy = rng.standard_normal((7, 3, 3, 4), dtype=np.float32)
    with cores(3), setting(conv_kernels, "CHUNK_BYTES", 1):
        first = conv_kernels.conv2d_backward(dy, (x, w, window))
        for _ in range(3):
            again = conv_kernels.conv2d_backward(dy, (x, w, window))
            assert all(np.array_equal(a, b) for a, b in zip(first, again))
