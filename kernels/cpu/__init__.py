"""Numba kernels for NumPy arrays, looked up by name by tinydeep/backend.py.

Each name exported here replaces the tinydeep reference function of the same name when
kernels are enabled. None is defined yet: the ops run their NumPy references.
"""
