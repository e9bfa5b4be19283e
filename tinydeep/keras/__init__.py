"""Keras's names for tinydeep's parts, so Keras code runs with `tensorflow` renamed `tinydeep`.

    import tensorflow as tf                       ->  import tinydeep as tf
    from tensorflow import keras                  ->  from tinydeep import keras
    from tensorflow.keras import Model, layers    ->  from tinydeep.keras import Model, layers
    from tensorflow.keras.layers import Dense     ->  from tinydeep.keras.layers import Dense
    from tensorflow.keras.utils import plot_model ->  from tinydeep.keras.utils import plot_model

Every module here only points at the tinydeep module or class that does the job; nothing is
defined twice. The optimizers keep tinydeep's (PyTorch's) update rules and defaults under
Keras's names: see tinydeep/keras/optimizers.py.
"""

from tinydeep.keras import (
    activations,
    callbacks,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    utils,
)
from tinydeep.layers.functional import Input
from tinydeep.layers.model import Model, Sequential

__all__ = [
    "Input",
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
    "utils",
]
