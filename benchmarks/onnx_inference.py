"""Inference speed of an exported model: onnxruntime on the ONNX file against tinydeep's predict.

What it measures: ResNet-20 (tinydeep.models.ResNet, zero-pad shortcuts, random weights from
a fixed seed) on one batch of --batch (default 128) random 32x32x3 float32 images, CIFAR's
shape. tinydeep runs `model.predict(x, batch_size=BATCH)` (training=False, no_grad, its
kernels on); onnxruntime runs `session.run` on the file `tinydeep.onnx.export` wrote, with the
CPUExecutionProvider and its default settings (all graph optimizations, a thread per core).
Both use every core. Reported: milliseconds per batch (the median over every timed run of
every round, and the range of the rounds' medians), images per second, onnxruntime's speed
against tinydeep's, the file's size, and the largest difference between the two outputs.

A process per engine, as in benchmarks/resnet_wide_deep.py: in one process onnxruntime's
threads spin against Numba's and BLAS's on the same cores. A first child exports the model and
saves the batch and tinydeep's output (.npz, no pickle) in a temporary folder; then in each of
--rounds rounds each engine runs one child, in turn (the first engine alternating from round
to round), which takes WARMUP untimed runs, times --runs, and prints its times as one JSON
line. The onnxruntime child imports onnxruntime and NumPy only.

    python benchmarks/onnx_inference.py [--batch 128] [--rounds 3] [--runs 10]

Left out: the GPU (onnxruntime's CUDA provider is another package), other models, and
thread counts other than the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from time import perf_counter

SEED, DEPTH, WARMUP = 0, 20, 3
SCRIPT = Path(__file__).resolve()


def export_child(folder: Path, batch: int) -> dict:
    """Build ResNet-20, export it from two images, and save the batch and tinydeep's output."""
    import numpy as np

    import tinydeep
    from tinydeep.models import ResNet

    tinydeep.manual_seed(SEED)
    model = ResNet(DEPTH)
    x = np.random.default_rng(SEED).normal(size=(batch, 32, 32, 3)).astype(np.float32)
    model(x[:2])  # build
    model.save_weights(folder / "weights.npz")
    tinydeep.onnx.export(model, x[:2], folder / "resnet20.onnx")
    np.savez(folder / "batch.npz", x=x, y=model.predict(x, batch_size=batch))
    return {"file_bytes": (folder / "resnet20.onnx").stat().st_size}


def time_child(engine: str, folder: Path, runs: int) -> dict:
    """Time `runs` batches with one engine (after WARMUP untimed ones); its output too."""
    import numpy as np

    with np.load(folder / "batch.npz", allow_pickle=False) as saved:
        x = saved["x"]
    if engine == "tinydeep":
        from tinydeep.models import ResNet

        model = ResNet(DEPTH)
        model(x[:2])
        model.load_weights(folder / "weights.npz")

        def infer():
            return model.predict(x, batch_size=len(x))

    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(
            str(folder / "resnet20.onnx"), providers=["CPUExecutionProvider"]
        )

        def infer():
            return session.run(None, {"input_0": x})[0]

    for _ in range(WARMUP):
        y = infer()
    times = []
    for _ in range(runs):
        start = perf_counter()
        infer()
        times.append(perf_counter() - start)
    blocked = {"onnxruntime": "tinydeep", "tinydeep": "onnxruntime"}[engine]
    assert blocked not in sys.modules, f"the {engine} child imported {blocked}"
    np.save(folder / f"out_{engine}.npy", y)
    return {"times": times}


def child(kind: str, folder: Path, args) -> dict:
    command = [sys.executable, str(SCRIPT), "--child", kind, "--folder", str(folder)]
    command += ["--batch", str(args.batch), "--runs", str(args.runs)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        sys.exit(f"the {kind} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else the machine type."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(
            line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")
        )
    except (OSError, StopIteration):
        return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10, help="timed batches per child")
    parser.add_argument("--child", choices=["export", "tinydeep", "onnxruntime"])
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.child:
        result = (
            export_child(args.folder, args.batch)
            if args.child == "export"
            else time_child(args.child, args.folder, args.runs)
        )
        print(json.dumps(result))
        return

    import numpy as np  # the parent runs no engine

    engines = ["tinydeep", "onnxruntime"]
    with tempfile.TemporaryDirectory(prefix="tinydeep-onnx-bench-") as scratch:
        folder = Path(scratch)
        size = child("export", folder, args)["file_bytes"]
        times = {engine: [] for engine in engines}
        medians = {engine: [] for engine in engines}
        for round_ in range(args.rounds):
            for engine in engines[round_ % 2 :] + engines[: round_ % 2]:
                runs = child(engine, folder, args)["times"]
                times[engine] += runs
                medians[engine].append(statistics.median(runs))
        with np.load(folder / "batch.npz", allow_pickle=False) as saved:
            expected = saved["y"]
        got = np.load(folder / "out_onnxruntime.npy", allow_pickle=False)
        difference = float(np.abs(got - expected).max())

    print(f"ResNet-{DEPTH}, batch {args.batch} of 32x32x3 float32, {os.cpu_count()} cores")
    print(f"machine: {cpu_name()}, {platform.platform()}")
    print(f"ONNX file: {size:,} bytes; max |onnxruntime - predict| = {difference:.3g}")
    ms = {engine: 1000 * statistics.median(times[engine]) for engine in engines}
    for engine in engines:
        low, high = (1000 * min(medians[engine]), 1000 * max(medians[engine]))
        rate = args.batch / ms[engine] * 1000
        print(
            f"{engine:12} {ms[engine]:8.1f} ms/batch (rounds {low:.1f}-{high:.1f})  {rate:8.0f} img/s"
        )
    print(f"onnxruntime is {ms['tinydeep'] / ms['onnxruntime']:.2f}x tinydeep's speed")


if __name__ == "__main__":
    main()
