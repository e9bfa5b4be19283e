"""Models: `Model` and `Sequential` (defined in tinydeep/layers/model.py), and the reusable
architectures built from tinydeep layers."""

from tinydeep.layers.model import Model, Sequential

__all__ = ["Model", "Sequential"]
