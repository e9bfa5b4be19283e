"""tinydeep: a from-scratch deep-learning engine on NumPy, read to learn how it works.

Start with `tinydeep/tensor.py` (the Tensor and the engine), then `tinydeep/ops/`, then
`tinydeep/gradcheck.py`. The README has the whole reading order.
"""

from tinydeep import backend, ops
from tinydeep.backend import reference_only
from tinydeep.gradcheck import GradcheckError, gradcheck
from tinydeep.ops import log_softmax, softmax, where
from tinydeep.ops.shape import concatenate, stack
from tinydeep.tensor import Tensor, is_grad_enabled, no_grad

__version__ = "0.1.0"

__all__ = [
    "GradcheckError",
    "Tensor",
    "backend",
    "concatenate",
    "gradcheck",
    "is_grad_enabled",
    "log_softmax",
    "no_grad",
    "ops",
    "reference_only",
    "softmax",
    "stack",
    "where",
]
