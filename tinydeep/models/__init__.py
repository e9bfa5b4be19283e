"""Models: `Model` and `Sequential` (defined in tinydeep/layers/model.py), and the reusable
architectures built from tinydeep layers: the CIFAR ResNets of He et al. (resnet.py)."""

from tinydeep.layers.model import Model, Sequential
from tinydeep.models.resnet import IdentityBlock, ResidualBlock, ResNet

__all__ = ["IdentityBlock", "Model", "ResNet", "ResidualBlock", "Sequential"]
