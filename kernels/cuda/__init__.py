"""CuPy kernels for CuPy arrays, looked up by name by tinydeep/backend.py.

Every module in this folder lists its kernels in `__all__`; each name is the name of the
tinydeep reference function the kernel replaces (its file header says which), and is
gathered here, so `tinydeep_kernels.cuda.<name>` is the kernel (the contract every kernel
keeps: kernels/__init__.py). Elementwise work uses cupy.ElementwiseKernel /
ReductionKernel, indexed work RawModule with the .cu sources in this folder (a dtype they
have no instance for is declined: source.py), GEMMs cuBLAS through cupy.matmul.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    _kernels = importlib.import_module(f"{__name__}.{_module.name}")
    for _name in _kernels.__all__:
        globals()[_name] = getattr(_kernels, _name)
