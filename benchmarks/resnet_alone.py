"""ResNet-20 training steps of tinydeep alone: kernels against the NumPy references, in one
process with nothing else loaded (no PyTorch), with the page faults each step takes.

resnet_wide_deep.py times tinydeep beside PyTorch in one process, which is the fair race but
not the whole story: this script shows what a user's own training process sees.

    python benchmarks/resnet_alone.py [--rounds 3] [--steps 3]

Each round runs the kernels, then the references (`tinydeep.reference_only()`), each on its
own model from the same seed: two untimed steps, then `--steps` timed ones. Batch 128,
32x32x3, float32, SGD with momentum 0.9, cross-entropy. Left out: PyTorch (see
resnet_wide_deep.py), the GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import resource
import statistics
import time

import numpy as np

import tinydeep as td
from tinydeep import backend
from tinydeep.models import ResNet

BATCH, DEPTH, SEED = 128, 20, 0


def make():
    """A ResNet-20 and its optimizer, from the same seed every time."""
    td.manual_seed(SEED)
    model = ResNet(DEPTH)
    model(np.zeros((2, 32, 32, 3), np.float32))
    return model, td.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((BATCH, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, BATCH)
    engines = {
        "kernels": (make(), contextlib.nullcontext),
        "reference": (make(), backend.reference_only),
    }
    seconds = {name: [] for name in engines}
    faults = {name: [] for name in engines}

    def step(model, optimizer) -> None:
        optimizer.zero_grad()
        loss = td.losses.cross_entropy(model(x, training=True), y)
        loss.backward()
        optimizer.step()
        loss.item()

    for _ in range(args.rounds):
        for name, ((model, optimizer), context) in engines.items():
            with context():
                for _ in range(2):  # untimed: caches, allocator and BLAS threads settle
                    step(model, optimizer)
                gc.collect()
                for _ in range(args.steps):
                    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                    start = time.perf_counter()
                    step(model, optimizer)
                    seconds[name].append(time.perf_counter() - start)
                    faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(
        f"ResNet-{DEPTH}, batch {BATCH}, float32, tinydeep alone in its process "
        f"(median of {args.rounds} x {args.steps} steps)"
    )
    print(f"{'path':12s} {'ms/step':>9s} {'images/s':>9s} {'page faults/step':>17s}")
    for name in engines:
        ms = 1000 * statistics.median(seconds[name])
        print(
            f"{name:12s} {ms:9.1f} {1000 * BATCH / ms:9.0f} {statistics.median(faults[name]):17.0f}"
        )
    ratio = statistics.median(seconds["reference"]) / statistics.median(seconds["kernels"])
    print(f"kernels / reference speed: {ratio:.2f}x")


if __name__ == "__main__":
    main()
