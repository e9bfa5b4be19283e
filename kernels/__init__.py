"""tinydeep_kernels: hand-written kernels that replace tinydeep's readable reference ops.

This folder installs under the import name `tinydeep_kernels` (the bare name `kernels` belongs
to another package on the package index). It never imports tinydeep: arrays in, arrays out.

  cpu/   Numba kernels for NumPy arrays (@njit, cache=True, no fastmath)
  cuda/  CuPy kernels for CuPy arrays (ElementwiseKernel, RawModule with .cu sources)

A kernel has the same name and signature as the reference it replaces, and its file header
names that reference (e.g. "replaces tinydeep/ops/conv.py:conv2d_forward"). tinydeep finds it
by name for the array's device (tinydeep/backend.py: kernelized).
"""
