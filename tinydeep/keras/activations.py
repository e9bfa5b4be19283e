"""keras.activations: tinydeep/activations.py."""

from tinydeep.activations import get, linear, relu, sigmoid, softmax, tanh

__all__ = ["get", "linear", "relu", "sigmoid", "softmax", "tanh"]
