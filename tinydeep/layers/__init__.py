"""Keras-style layers. Read `layer.py` first (the life cycle: settings, build, call), then
`dense.py`, `conv2d.py`, `normalization.py`; `model.py` has Model and Sequential.

Every layer here runs the same code on the CPU and the GPU; the maths is in tinydeep/ops/.
"""

from tinydeep.layers.activation import Activation, ReLU
from tinydeep.layers.conv2d import Conv2D
from tinydeep.layers.dense import Dense
from tinydeep.layers.dropout import Dropout
from tinydeep.layers.embedding import Embedding
from tinydeep.layers.functional import Input, InputLayer
from tinydeep.layers.lambda_layer import Lambda
from tinydeep.layers.layer import Layer
from tinydeep.layers.merge import Add, Concatenate, add, concatenate
from tinydeep.layers.model import Model, Sequential
from tinydeep.layers.normalization import BatchNorm, BatchNormalization
from tinydeep.layers.pooling import (
    AveragePooling2D,
    AvgPool2D,
    GlobalAveragePooling2D,
    MaxPool2D,
    MaxPooling2D,
)
from tinydeep.layers.reshaping import Flatten

__all__ = [
    "Activation",
    "Add",
    "AveragePooling2D",
    "AvgPool2D",
    "BatchNorm",
    "BatchNormalization",
    "Concatenate",
    "Conv2D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GlobalAveragePooling2D",
    "Input",
    "InputLayer",
    "Lambda",
    "Layer",
    "MaxPool2D",
    "MaxPooling2D",
    "Model",
    "ReLU",
    "Sequential",
    "add",
    "concatenate",
]
