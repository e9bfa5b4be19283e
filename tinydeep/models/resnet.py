"""The CIFAR ResNets of He et al. (2016), "Deep Residual Learning for Image Recognition", §4.2,
and the plain networks of the same depth that the paper compares them with.

Depth 6n + 2: a 3x3 convolution stem, three stages of n blocks at 16, 32 and 64 filters (the
first block of stages 2 and 3 halves the image with stride 2), global average pooling, and a
Dense head. Each block is two 3x3 convolutions:

    x -> Conv2D -> BatchNorm -> ReLU -> Conv2D -> BatchNorm -> (+ shortcut(x)) -> ReLU

With residual=False the shortcut is left out: the plain network. Where a block changes the
shape, the shortcut is either "zero_pad" (the paper's option A for CIFAR: subsample by 2 and
pad the new channels with zeros, no parameters) or "projection" (option B: a strided 1x1
convolution and batch norm). ResNet-20 has 0.27M parameters with zero-padding shortcuts.

Shapes: x (N, H, W, C) NHWC -> logits (N, num_classes).
Read IdentityBlock (the seed's block, same shape in and out), then ResidualBlock, then ResNet.
"""

from __future__ import annotations

from tinydeep.layers import (
    Activation,
    Add,
    BatchNormalization,
    Conv2D,
    Dense,
    GlobalAveragePooling2D,
    Layer,
    Model,
    ReLU,
)
from tinydeep.tensor import Tensor

SHORTCUTS = ("zero_pad", "projection")


def conv3x3(filters: int, strides: int = 1) -> Conv2D:
    """The paper's convolution: 3x3, "same" padding, He initialization, no bias (the batch
    norm after it has one)."""
    return Conv2D(
        filters, 3, strides=strides, padding="same", use_bias=False, kernel_initializer="he_normal"
    )


class IdentityBlock(Model):
    """The seed's identity block: conv, batch norm, ReLU, conv, batch norm, add the input,
    ReLU. Input and output have the same shape (filters channels)."""

    def __init__(self, filters: int, kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = Conv2D(filters, kernel_size, padding="same", kernel_initializer="he_normal")
        self.bn1 = BatchNormalization()
        self.conv2 = Conv2D(filters, kernel_size, padding="same", kernel_initializer="he_normal")
        self.bn2 = BatchNormalization()
        self.act = Activation("relu")
        self.add = Add()

    def call(self, x: Tensor) -> Tensor:
        y = self.act(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.act(self.add([y, x]))


class ZeroPadShortcut(Layer):
    """Option A: x[:, ::s, ::s, :] with (filters - C) zero channels added, half before and
    half after. No parameters."""

    def __init__(self, filters: int, strides: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides

    def call(self, x: Tensor) -> Tensor:
        s = self.strides
        x = x[:, ::s, ::s, :]  # (N, H/s, W/s, C)
        extra = self.filters - x.shape[-1]
        return x.pad(((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))


class ResidualBlock(Model):
    """Two 3x3 conv/batch-norm pairs with a shortcut (or none: residual=False), as above."""

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        residual: bool = True,
        shortcut: str = "zero_pad",
        bn_momentum: float = 0.9,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if shortcut not in SHORTCUTS:
            raise ValueError(
                f"ResidualBlock: shortcut must be one of {SHORTCUTS}, got {shortcut!r}"
            )
        self.filters, self.strides, self.residual, self.kind = filters, strides, residual, shortcut
        self.bn_momentum = bn_momentum
        self.conv1, self.bn1 = conv3x3(filters, strides), BatchNormalization(bn_momentum)
        self.conv2, self.bn2 = conv3x3(filters), BatchNormalization(bn_momentum)
        self.relu = ReLU()
        self.shortcut = None  # built once the input's channels are known

    def build(self, input_shape) -> None:
        if not self.residual or (self.strides == 1 and input_shape[-1] == self.filters):
            return  # plain network, or the identity shortcut
        if self.kind == "zero_pad":
            self.shortcut = ZeroPadShortcut(self.filters, self.strides)
        else:
            self.shortcut = [
                Conv2D(
                    self.filters,
                    1,
                    strides=self.strides,
                    use_bias=False,
                    kernel_initializer="he_normal",
                ),
                BatchNormalization(self.bn_momentum),
            ]

    def call(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.residual:
            if isinstance(self.shortcut, list):
                conv, bn = self.shortcut
                x = bn(conv(x))
            elif self.shortcut is not None:
                x = self.shortcut(x)
            y = y + x
        return self.relu(y)


class ResNet(Model):
    """ResNet(depth, residual=True, num_classes=10, width=16, shortcut="zero_pad",
    bn_momentum=0.9).

    depth: 6n + 2 (20, 32, 44, 56, 110, ...; 8 is the smallest). width: the filters of the
    first stage (16 in the paper); stages 2 and 3 have 2x and 4x as many. bn_momentum: every
    BatchNormalization's `momentum`: 0.9, PyTorch's default, rather than the layer's Keras default of 0.99, whose moving statistics lag
    behind weights that move fast at learning rate 0.1 (inference accuracy then trails
    training accuracy by tens of points for the first epochs).
    """

    def __init__(
        self,
        depth: int = 20,
        residual: bool = True,
        num_classes: int = 10,
        width: int = 16,
        shortcut: str = "zero_pad",
        bn_momentum: float = 0.9,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f"ResNet: depth must be 6n + 2 with n >= 1 (8, 20, 32, 44, 56, "
                f"110, ...), got {depth!r}"
            )
        if shortcut not in SHORTCUTS:
            raise ValueError(f"ResNet: shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        n = (depth - 2) // 6
        self.depth, self.residual = depth, residual
        self.stem = conv3x3(width)
        self.stem_bn = BatchNormalization(bn_momentum)
        self.stem_relu = ReLU()
        self.blocks = [
            ResidualBlock(
                width * 2**stage,
                strides=2 if stage and i == 0 else 1,
                residual=residual,
                shortcut=shortcut,
                bn_momentum=bn_momentum,
            )
            for stage in range(3)
            for i in range(n)
        ]
        self.pool = GlobalAveragePooling2D()
        self.head = Dense(num_classes, kernel_initializer="he_normal")

    def call(self, x: Tensor) -> Tensor:
        x = self.stem_relu(self.stem_bn(self.stem(x)))  # (N, H, W, width)
        for block in self.blocks:
            x = block(x)  # (N, H/4, W/4, 4 * width) after the last stage
        return self.head(self.pool(x))  # (N, num_classes): logits
