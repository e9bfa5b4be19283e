"""Exact resume in a new process, determinism across processes, and running out of GPU memory.

Each run is a fresh Python process (tests/resume_worker.py: Conv2D, BatchNormalization,
Dropout, random_crop_flip, shuffling, SGD with momentum and Adam, LinearWarmup into
CosineDecay and StepDecay) with the thread counts fixed in its environment. The runs write
TrainingCheckpoint files, and those are compared bitwise: every weight (moving statistics
included), both optimizers' state arrays and hyper-parameters, both schedules' counts and
tinydeep's random-generator state.

  - 4 epochs straight == 2 epochs, then a new process resuming from the checkpoint for 2 more.
  - two processes with one seed and one thread count write the same bits; another seed does not.

Checkpoints are written at the end of an epoch, so a resume starts at an epoch boundary; a
resume from the middle of an epoch is not supported and not tested.

Read in this order: run/finish (one process), the `runs` fixture (all processes, started
together), the tests; the GPU out-of-memory test is last and skips without a GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from devices import needs_gpu

import tinydeep as td
from tinydeep import backend, optim
from tinydeep.checkpoint import read_archive
from tinydeep.layers import BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D, Sequential
from tinydeep.train import OutOfMemoryError

WORKER = Path(__file__).with_name("resume_worker.py")
THREADS = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "2"}


def run(out: Path, *args: str) -> subprocess.Popen:
    """Start the worker writing `out`, with the thread counts fixed and the tinydeep this
    test imported first on the path."""
    env = {**os.environ, **THREADS}
    package_root = str(Path(td.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    command = [sys.executable, str(WORKER), str(out), *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=300)
    if process.returncode != 0:
        raise AssertionError(f"{process.args} exited with {process.returncode}:\n{output.decode()}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The checkpoint each run wrote after its last epoch, by run name."""
    folder = tmp_path_factory.mktemp("resume")
    paths = {name: folder / f"{name}.npz" for name in ("straight", "again", "seed1", "half")}
    # 4 epochs of 3 steps; "half" stops after 2 epochs and is then resumed by "resumed"
    started = [
        run(paths["straight"], "--seed", "0", "--epochs", "4"),
        run(paths["again"], "--seed", "0", "--epochs", "4"),
        run(paths["seed1"], "--seed", "1", "--epochs", "4"),
        run(paths["half"], "--seed", "0", "--epochs", "2"),
    ]
    for process in started:
        finish(process)
    paths["resumed"] = folder / "resumed.npz"
    resume = ("--resume", str(paths["half"]), "--initial-epoch", "2")
    finish(run(paths["resumed"], "--seed", "7", "--epochs", "4", *resume))  # seed overwritten
    return paths


def differences(first: Path, second: Path) -> list[str]:
    """The names of the arrays and metadata entries whose bits differ between two files."""
    a, a_meta = read_archive(first)
    b, b_meta = read_archive(second)
    assert a.keys() == b.keys()
    names = [k for k in a if a[k].dtype != b[k].dtype or a[k].tobytes() != b[k].tobytes()]
    return names + [k for k in a_meta if a_meta[k] != b_meta.get(k)]


def test_a_run_resumed_in_a_new_process_is_bitwise_the_run_straight_through(runs):
    assert differences(runs["straight"], runs["resumed"]) == []
    arrays, meta = read_archive(runs["resumed"])
    assert meta["progress"] == {"epoch": 4}
    assert [s.get("steps_done") for s in meta["states"][2:]] == [12, 12]  # both schedules
    assert {"model/1/moving_mean", "state/0/state/0/momentum_buffer"} <= arrays.keys()
    assert {"state/1/state/0/exp_avg", "state/1/state/0/exp_avg_sq"} <= arrays.keys()
    # the halfway file differs from the end: the second half really trained
    assert "model/0/kernel" in differences(runs["half"], runs["resumed"])


def test_one_seed_and_thread_count_give_the_same_bits_in_two_processes(runs):
    assert differences(runs["straight"], runs["again"]) == []
    changed = differences(runs["straight"], runs["seed1"])
    assert {"model/0/kernel", "model/1/moving_mean", "random"} <= set(changed)


@needs_gpu
def test_running_out_of_gpu_memory_is_a_clear_error_and_the_model_stays_usable():
    cp = backend.require_cuda()
    pool = cp.get_default_memory_pool()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, 512)
    td.manual_seed(0)
    model = Sequential(
        [Conv2D(32, 3, padding="same"), BatchNormalization(), GlobalAveragePooling2D(), Dense(10)]
    )
    model(x[:2])
    model.to("cuda")
    optimizer = optim.SGD(lr=0.01, momentum=0.9)
    model.compile(optimizer=optimizer, loss="cross_entropy")
    model.fit(x[:64], y[:64], epochs=1, batch_size=16, verbose=0)  # state to protect
    before = {k: cp.asnumpy(w.data) for k, w in model.named_weights().items()}
    momentum = {k: cp.asnumpy(v["momentum_buffer"]) for k, v in optimizer.state.items()}
    # a batch of 512 needs 512 * 32 * 32 * 32 * 4 bytes = 64 MiB per activation; allow 24 MiB
    pool.free_all_blocks()
    pool.set_limit(size=pool.used_bytes() + 24 * 2**20)
    try:
        with pytest.raises(OutOfMemoryError) as caught:
            model.fit(x, y, epochs=1, batch_size=512, verbose=0)
        message = str(caught.value)
        assert message.startswith("fit: out of memory on cuda at step 0, a batch of 512 examples")
        assert "OutOfMemoryError" in message and "batch_size=256" in message
        for name, w in model.named_weights().items():  # moving statistics included
            assert cp.asnumpy(w.data).tobytes() == before[name].tobytes(), name
        for p, saved in momentum.items():
            assert cp.asnumpy(optimizer.state[p]["momentum_buffer"]).tobytes() == saved.tobytes()
        assert all(p.grad is None for p in model.parameters())
        del caught  # the error's traceback holds the failed batch
        history = model.fit(x[:64], y[:64], epochs=1, batch_size=16, verbose=0)  # same limit
        assert np.isfinite(history.history["loss"][0])
        assert np.isfinite(model.evaluate(x[:64], y[:64], batch_size=16)["loss"])
    finally:
        pool.set_limit(size=0)
