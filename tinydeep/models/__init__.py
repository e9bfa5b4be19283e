"""Models: `Model` and `Sequential` (defined in tinydeep/layers/model.py), and the reusable
architectures built from tinydeep layers: the CIFAR ResNets of He et al. (resnet.py) and
Google's Wide & Deep (wide_deep.py)."""

from tinydeep.layers.model import Model, Sequential
from tinydeep.models.resnet import IdentityBlock, ResidualBlock, ResNet
from tinydeep.models.wide_deep import SparseLinear, WideAndDeep

__all__ = [
    "IdentityBlock",
    "Model",
    "ResNet",
    "ResidualBlock",
    "Sequential",
    "SparseLinear",
    "WideAndDeep",
]
