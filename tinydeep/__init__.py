"""tinydeep: a from-scratch deep-learning engine on NumPy, read to learn how it works.

Start with `tinydeep/tensor.py` (the Tensor and the engine), then `tinydeep/ops/`, then
`tinydeep/gradcheck.py`, then `tinydeep/layers/`. The README has the whole reading order.
"""

from tinydeep import (
    activations,
    backend,
    callbacks,
    checkpoint,
    diagnostics,
    initializers,
    keras,
    layers,
    losses,
    metrics,
    models,
    onnx,
    ops,
    optim,
    train,
)
from tinydeep.backend import reference_only
from tinydeep.dlpack import from_dlpack
from tinydeep.gradcheck import GradcheckError, gradcheck
from tinydeep.layers.functional import Input
from tinydeep.layers.model import Model, Sequential
from tinydeep.ops import log_softmax, softmax, where
from tinydeep.ops.shape import concatenate, stack
from tinydeep.plot import draw_graph
from tinydeep.random import manual_seed
from tinydeep.tensor import Tensor, is_grad_enabled, no_grad
from tinydeep.train import OutOfMemoryError

__version__ = "0.1.0"

__all__ = [
    "GradcheckError",
    "Input",
    "Model",
    "OutOfMemoryError",
    "Sequential",
    "Tensor",
    "activations",
    "backend",
    "callbacks",
    "checkpoint",
    "concatenate",
    "diagnostics",
    "draw_graph",
    "from_dlpack",
    "gradcheck",
    "initializers",
    "is_grad_enabled",
    "keras",
    "layers",
    "log_softmax",
    "losses",
    "manual_seed",
    "metrics",
    "models",
    "no_grad",
    "onnx",
    "ops",
    "optim",
    "reference_only",
    "softmax",
    "stack",
    "train",
    "where",
]
