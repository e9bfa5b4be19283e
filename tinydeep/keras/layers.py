"""keras.layers: tinydeep's layers (tinydeep/layers/), with Input and InputLayer."""

from tinydeep.layers import *  # noqa: F403 (the same names, on purpose)
from tinydeep.layers import __all__ as _layers
from tinydeep.layers.functional import Input, InputLayer

__all__ = [*_layers, "Input", "InputLayer"]
