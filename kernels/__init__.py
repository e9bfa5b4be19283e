"""tinydeep_kernels: hand-written kernels that replace tinydeep's readable reference ops.

This folder installs under the import name `tinydeep_kernels` (the bare name `kernels` belongs
to another package on the package index). It never imports tinydeep: arrays in, arrays out.

  cpu/   Numba kernels for NumPy arrays (@njit, cache=True, no fastmath)
  cuda/  CuPy kernels for CuPy arrays (ElementwiseKernel, RawModule with .cu sources)

A kernel has the same name and signature as the reference it replaces, and its file header
names that reference (e.g. "replaces tinydeep/ops/conv.py:conv2d_forward"). tinydeep finds it
by name for the array's device (tinydeep/backend.py: kernelized). The contract:

- The arguments were checked before the kernel is called (the reference's `check=`, or the
  op that calls it): a kernel does not check them again.
- A kernel that does not handle its input (a dtype it is not compiled for, a layout its loops
  cannot read) returns `NotImplemented` before it changes anything, and tinydeep runs the
  reference alone instead. No kernel holds a copy of its reference's maths for such inputs.
- Otherwise it returns what the reference returns, in the same dtypes and shapes, and
  matches it bit for bit or to float rounding (its tests say which).
"""
