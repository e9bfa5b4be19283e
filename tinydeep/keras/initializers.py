"""keras.initializers: tinydeep/initializers.py."""

from tinydeep.initializers import get, glorot_uniform, he_normal, ones, zeros

__all__ = ["get", "glorot_uniform", "he_normal", "ones", "zeros"]
