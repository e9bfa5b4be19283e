"""Keras's names for tinydeep's parts, so Keras code runs with only its imports changed.

    from tensorflow import keras        ->  from tinydeep import keras
    import tensorflow as tf             ->  import tinydeep as tf   (then tf.keras.layers...)
    from tensorflow.keras.layers import Dense, Conv2D, ...
                                        ->  from tinydeep.layers import Dense, Conv2D, ...

Nothing is defined here: each name points at the tinydeep module or class of the same job.
"""

from tinydeep import activations, callbacks, initializers, layers, losses, metrics, models, optim
from tinydeep.layers.model import Model, Sequential

optimizers = optim

__all__ = [
    "Model",
    "Sequential",
    "activations",
    "callbacks",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
]
