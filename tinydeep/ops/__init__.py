"""The differentiable ops: each file holds array-level `*_forward` / `*_backward` pairs and the
one line per op that turns a pair into a Tensor function.

Read `elementwise.py` first (the simplest pairs), then `reduce.py`, `softmax.py`, `matmul.py`,
`shape.py`, `index.py` and `convert.py`.
"""

from tinydeep.ops.conv import conv2d
from tinydeep.ops.convert import astype, to_device
from tinydeep.ops.elementwise import (
    absolute,
    add,
    clip,
    divide,
    exp,
    log,
    multiply,
    negative,
    power,
    power_scalar,
    relu,
    sigmoid,
    sqrt,
    subtract,
    tanh,
    where,
)
from tinydeep.ops.embedding import embedding, embedding_sum
from tinydeep.ops.index import getitem
from tinydeep.ops.matmul import matmul
from tinydeep.ops.normalization import batch_norm
from tinydeep.ops.pool import avg_pool2d, max_pool2d
from tinydeep.ops.reduce import max, mean, sum
from tinydeep.ops.shape import concatenate, pad, reshape, stack, transpose
from tinydeep.ops.softmax import log_softmax, softmax

__all__ = [
    "absolute",
    "add",
    "astype",
    "avg_pool2d",
    "batch_norm",
    "clip",
    "concatenate",
    "conv2d",
    "divide",
    "embedding",
    "embedding_sum",
    "exp",
    "getitem",
    "log",
    "log_softmax",
    "matmul",
    "max",
    "max_pool2d",
    "mean",
    "multiply",
    "negative",
    "pad",
    "power",
    "power_scalar",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "sqrt",
    "stack",
    "subtract",
    "sum",
    "tanh",
    "to_device",
    "transpose",
    "where",
]
