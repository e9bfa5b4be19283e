"""keras.models: Model (subclassed, or functional: Model(inputs=..., outputs=...)) and
Sequential."""

from tinydeep.layers.model import Model, Sequential

__all__ = ["Model", "Sequential"]
