"""keras.layers: tinydeep's layers (tinydeep/layers/), Input and InputLayer among them."""

from tinydeep import layers as _layers
from tinydeep.layers import *

__all__ = list(_layers.__all__)
