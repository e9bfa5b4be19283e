#!/usr/bin/env bash
# Verify tinydeep's CUDA path in one command (benchmarks/gpu_check.py says what it runs):
#   bash benchmarks/gpu_check.sh [--data DIR] [--out DIR]   # on a machine with an NVIDIA GPU
#   bash benchmarks/gpu_check.sh --device cpu --quick        # the same parts on the CPU (CI)
# Uses the python3 on PATH (or $PYTHON), which must already hold NumPy, Numba, pytest,
# hypothesis and, for the GPU, CuPy and PyTorch: nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
