"""The one random generator behind initialization, dropout and shuffling.

`manual_seed(n)` makes everything random in tinydeep reproducible: every initializer, every
dropout mask and every batch shuffle draws from `generator()`. Draws happen on the CPU (NumPy)
and are copied to the GPU when needed, so a seed gives the same numbers on either device.
`get_state()` / `set_state()` save and restore the generator (a JSON-safe dict), for
checkpoints that resume exactly.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed tinydeep's generator; returns it."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    """The generator every random draw in tinydeep uses."""
    return _generator


def get_state() -> dict:
    """The generator's state, as a dict of plain Python values."""
    return _generator.bit_generator.state


def set_state(state: dict) -> None:
    """Put the generator back in a state from `get_state()`."""
    _generator.bit_generator.state = state
