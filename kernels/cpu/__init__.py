"""Numba kernels for NumPy arrays, looked up by name by tinydeep/backend.py.

Every module in this folder lists its kernels in `__all__`; each name is the name of the
tinydeep reference function the kernel replaces (its file header says which), and is
gathered here, so `tinydeep_kernels.cpu.<name>` is the kernel. Conventions: @njit with
cache=True, parallel=True only where it measured faster in a whole training step (none
does yet: Numba's threads and OpenBLAS's contend for the same cores), never fastmath (results must match the
reference); a small public wrapper checks and allocates, a private @njit loop computes.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    _kernels = importlib.import_module(f"{__name__}.{_module.name}")
    for _name in _kernels.__all__:
        globals()[_name] = getattr(_kernels, _name)
