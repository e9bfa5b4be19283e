"""BatchNormalization: normalize each channel over the batch, then scale and shift.

Training: y = (x - mean_B) / sqrt(var_B + epsilon) * gamma + beta, with the mean and the
biased variance of this batch, per channel (the last axis); and, as in Keras, the moving
statistics follow the batch ones:
    moving = momentum * moving + (1 - momentum) * batch_statistic.
Inference (training=False): the same formula with moving_mean and moving_variance.

Shapes: x (N, C) or (N, H, W, C); gamma, beta, moving_mean, moving_variance (C,).
The fused training-mode forward and backward are in tinydeep/ops/normalization.py.
"""

from __future__ import annotations

from tinydeep import ops
from tinydeep.layers.layer import Layer
from tinydeep.ops.normalization import batch_moments
from tinydeep.tensor import Tensor


class BatchNormalization(Layer):
    """BatchNormalization(momentum=0.99, epsilon=1e-3, center=True, scale=True).
    Weights: `gamma`, `beta` (trainable), `moving_mean`, `moving_variance` (not trainable)."""

    def __init__(
        self,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        axis: int = -1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError(
                f"BatchNormalization: only axis=-1 (channels last) is supported, got axis={axis}"
            )
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1], got {momentum}")
        if not epsilon > 0:
            raise ValueError(f"BatchNormalization: epsilon must be positive, got {epsilon}")
        self.momentum = momentum
        self.epsilon = epsilon
        self.center = center
        self.scale = scale

    def build(self, input_shape) -> None:
        if not isinstance(input_shape, tuple) or len(input_shape) not in (2, 4):
            raise ValueError(
                f"BatchNormalization {self.name!r}: expected (N, C) or "
                f"(N, H, W, C) input, got input shape {input_shape}"
            )
        channels = (input_shape[-1],)
        self.gamma = self.add_weight("gamma", channels, "ones", trainable=self.scale)
        self.beta = self.add_weight("beta", channels, "zeros", trainable=self.center)
        self.moving_mean = self.add_weight("moving_mean", channels, "zeros", trainable=False)
        self.moving_variance = self.add_weight("moving_variance", channels, "ones", trainable=False)

    def call(self, x: Tensor, training: bool = False) -> Tensor:
        self.check_input(x, ndim=(2, 4), last=self.gamma.shape[0])
        if not training:
            inv_std = (self.moving_variance.data + self.epsilon) ** -0.5  # (C,), no gradient
            return (x - Tensor(self.moving_mean.data)) * (self.gamma * Tensor(inv_std)) + self.beta
        if x.size == x.shape[-1]:
            raise ValueError(
                f"BatchNormalization {self.name!r}: training needs more than one "
                f"value per channel to take batch statistics, got shape {x.shape}"
            )
        mean, var = batch_moments(x.data)  # (C,) each, biased variance
        y = ops.batch_norm(x, self.gamma, self.beta, mean=mean, var=var, epsilon=self.epsilon)
        # Update the moving statistics in place (the Tensors stay the same objects).
        m = self.momentum
        self.moving_mean.data[...] = m * self.moving_mean.data + (1 - m) * mean
        self.moving_variance.data[...] = m * self.moving_variance.data + (1 - m) * var
        return y


BatchNorm = BatchNormalization
