"""Numba kernels for NumPy arrays, looked up by name by tinydeep/backend.py.

Every module in this folder lists its kernels in `__all__`; each name is the name of the
tinydeep reference function the kernel replaces (its file header says which), and is
gathered here, so `tinydeep_kernels.cpu.<name>` is the kernel (the contract every kernel
keeps: kernels/__init__.py). Conventions: @njit with cache=True and nogil=True, never
fastmath (results must match the reference); a small public wrapper declines what its loop
does not take (dtypes.py) and allocates, a private @njit loop computes. Work is split over
the cores by threads.py (one contiguous part per core, each on its own thread, BLAS
single-threaded inside), never by Numba's parallel=True, whose threads and OpenBLAS's spin
against each other on the same cores.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    _kernels = importlib.import_module(f"{__name__}.{_module.name}")
    for _name in _kernels.__all__:
        globals()[_name] = getattr(_kernels, _name)
