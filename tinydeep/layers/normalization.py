"""BatchNormalization: normalize each channel over the batch, then scale and shift.

Training: y = (x - mean_B) / sqrt(var_B + epsilon) * gamma + beta, with the mean and the
biased variance of this batch, per channel (the last axis); and, as in Keras, the moving
statistics follow the batch ones:
    moving = momentum * moving + (1 - momentum) * batch_statistic.
Inference (training=False): the same formula with moving_mean and moving_variance.

Batches that cannot be trained on. As in PyTorch, one value per channel (N*H*W == 1) is a
ValueError and an empty batch gives an empty output, both changing nothing. A batch whose
mean or variance is not finite (NaN or Inf in x, or values whose square overflows) gives the
formula's output, NaN included, but leaves the moving statistics unchanged (PyTorch and
Keras fold the NaN in, and every later inference is NaN). It is not an error, so that fit's
non-finite loss guard (tinydeep.callbacks.TerminateOnNaN) stops the step and names it. The
moving statistics are written with `update_state`, so a model call or training step that
fails after this layer ran puts them back too (tinydeep/rollback.py).

Dtypes. The weights take the dtype of the first input (tinydeep/layers/layer.py). A later
input of another floating dtype promotes as NumPy promotes it, as through Dense and Conv2D:
float64 data through float32 weights gives a float64 output, and the moving statistics stay
float32 (ops.batch_norm promotes its operands before any kernel runs). An input that is not
floating is a TypeError naming the layer.

Shapes: x (N, C) or (N, H, W, C); gamma, beta, moving_mean, moving_variance (C,).
The training-mode op, which takes the batch moments and returns them with y, and its fused
backward are in tinydeep/ops/normalization.py.
"""

from __future__ import annotations

from tinydeep import ops
from tinydeep.backend import xp_of
from tinydeep.layers.layer import Layer
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
        if not training:  # the moving statistics are not trainable: no gradient reaches them
            inv_std = (self.moving_variance + self.epsilon) ** -0.5  # (C,)
            return (x - self.moving_mean) * (self.gamma * inv_std) + self.beta
        if x.size == 0:  # no values, no statistics: an empty output, nothing updated
            return x * self.gamma + self.beta
        if x.size == x.shape[-1]:
            raise ValueError(
                f"{self.where()}: training needs more than one "
                f"value per channel to take batch statistics, got shape {x.shape}"
            )
        y, mean, var = ops.batch_norm(x, self.gamma, self.beta, epsilon=self.epsilon)
        # Fold the batch into the moving statistics unless a mean or variance is not finite;
        # chosen on the device (no wait for the host), all channels or none.
        xp = xp_of(mean)
        finite = xp.isfinite(mean).all() & xp.isfinite(var).all()
        m = self.momentum
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, var)):
            self.update_state(
                moving, xp.where(finite, m * moving.data + (1 - m) * batch, moving.data)
            )
        return y


BatchNorm = BatchNormalization
