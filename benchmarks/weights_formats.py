"""ResNet-20's weights in tinydeep's two formats: file size, and the median time of 20 saves
and 20 loads of each (one process, this machine).

    python benchmarks/weights_formats.py

.npz is tinydeep's own (a zip of .npy arrays and a JSON document with a SHA-256 per tensor,
checked on load); .safetensors is the format PyTorch and Hugging Face share (a JSON header and
the raw bytes; no checksums).
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time

import numpy as np

from tinydeep.models import ResNet


def main() -> None:
    model = ResNet(depth=20)
    model(np.zeros((2, 32, 32, 3), np.float32))
    numbers = sum(w.size for w in model.weights)
    print(f"ResNet-20: {len(model.weights)} weights, {numbers:,} float32 numbers")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder:
        for suffix in (".npz", ".safetensors"):
            path = os.path.join(folder, "weights" + suffix)
            saves, loads = [], []
            for _ in range(20):
                start = time.perf_counter()
                model.save_weights(path)
                saves.append(time.perf_counter() - start)
                start = time.perf_counter()
                model.load_weights(path)
                loads.append(time.perf_counter() - start)
            print(
                f"{suffix:13} {os.path.getsize(path):>10,} bytes   save "
                f"{statistics.median(saves) * 1e3:6.2f} ms   load "
                f"{statistics.median(loads) * 1e3:6.2f} ms   (medians of 20)"
            )


if __name__ == "__main__":
    main()
