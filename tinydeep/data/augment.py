"""Image batches for training: per-channel normalization, and the augmentation of He et al.
(2016) for CIFAR: pad 4 pixels on each side, take a random 32x32 crop, flip horizontally
with probability 1/2.

The augmentation is one gather for the whole batch: each image's crop offsets and flip
become index arrays, so there is no Python loop over images. All randomness comes from the
generator passed in (tinydeep.random.generator() by default), so a seed fixes every crop.

Shapes: images (N, H, W, C) NHWC; mean and std (C,).
"""

from __future__ import annotations

import numpy as np

from tinydeep.random import generator


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and standard deviation of each channel over (N, H, W), in float64; compute
    them on the training images only."""
    flat = images.reshape(-1, images.shape[-1]).astype(np.float64)
    return flat.mean(axis=0), flat.std(axis=0)


def normalize(
    images: np.ndarray, mean: np.ndarray, std: np.ndarray, dtype=np.float32
) -> np.ndarray:
    """(images - mean) / std per channel, as `dtype` (uint8 pixels in, floats out)."""
    return ((images - mean) / std).astype(dtype)


def random_crop_flip(
    images: np.ndarray, pad: int = 4, flip: bool = True, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Each image padded with `pad` zeros on every side, cropped back to its size at a random
    offset, and mirrored left-right with probability 1/2 (when flip=True).

    images (N, H, W, C) -> (N, H, W, C), same dtype. Zero padding is applied after
    normalization in the paper's setting, so pass normalized images to pad with the mean.
    """
    rng = generator() if rng is None else rng
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    top = rng.integers(0, 2 * pad + 1, size=n)  # (N,) crop offsets in the padded image
    left = rng.integers(0, 2 * pad + 1, size=n)
    rows = top[:, None] + np.arange(h)  # (N, H)
    cols = np.arange(w)
    if flip:
        mirrored = rng.random(n) < 0.5
        cols = np.where(mirrored[:, None], cols[::-1], cols)  # (N, W)
    cols = left[:, None] + cols  # (N, W)
    batch = np.arange(n)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    augment: bool = False,
    rng: np.random.Generator | None = None,
):
    """Yield (x_batch, y_batch) over one epoch; shuffled and augmented (random_crop_flip)
    when asked. The last batch may be smaller."""
    rng = generator() if rng is None else rng
    order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
    for start in range(0, len(x), batch_size):
        index = order[start : start + batch_size]
        xb = x[index]
        yield (random_crop_flip(xb, rng=rng) if augment else xb), y[index]
