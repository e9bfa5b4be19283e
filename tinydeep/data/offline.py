"""What an example script does when a data set is neither on disk nor downloadable.

Read in this order:
  1. explain          the loader's error in a command line's words (--data-dir, not data_dir=)
  2. standin_images   a generated stand-in data set of images: ten learnable classes
  3. standin_notice   the paragraph a script prints to stderr before it trains on the stand-in

The examples that train on images (resnet_cifar.py, mlp_fashion_mnist.py) fall back on the
stand-in, so that their commands always run; it teaches nothing about the real data set, and
the notice says so. The others print `explain`'s message and exit with status 1.

Left out: stand-ins for tabular data (Adult, California housing), whose columns a generated
set would only imitate badly.
"""

from __future__ import annotations

import numpy as np

from tinydeep.data.download import DownloadError

STANDIN_SHAPES = {"CIFAR-10": (32, 32, 3), "Fashion-MNIST": (28, 28, 1)}  # (H, W, C) per data set


def explain(error: Exception, setting: str = "--data-dir") -> str:
    """The message of a loader's error, naming `setting` where it names the Python argument
    data_dir= (a DownloadError); other errors (a damaged file) are worded as they are."""
    return error.explain(setting) if isinstance(error, DownloadError) else str(error)


def standin_images(
    rng: np.random.Generator,
    shape: tuple[int, int, int] = (32, 32, 3),
    n_train: int = 10_000,
    n_test: int = 2_000,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(x_train, y_train), (x_test, y_test): uint8 images of `shape` (H, W, C) and int64 labels
    in 0..9. Each class is a smooth random pattern (a sine wave per channel); each image is its
    class's pattern shifted by a few pixels, dimmed or brightened, plus noise."""
    height, width, channels = shape
    rows, columns = np.linspace(0, 2 * np.pi, height), np.linspace(0, 2 * np.pi, width)
    frequency = rng.uniform(0.5, 2.5, (10, channels, 2))
    phase = rng.uniform(0, 2 * np.pi, (10, channels))
    patterns = np.sin(
        frequency[..., 0, None, None] * rows[:, None]
        + frequency[..., 1, None, None] * columns[None, :]
        + phase[..., None, None]
    )
    patterns = patterns.transpose(0, 2, 3, 1)  # (10, H, W, C)

    def make(n):
        labels = rng.integers(0, 10, n)
        shifts = rng.integers(-3, 4, (n, 2))
        images = np.stack(
            [np.roll(patterns[c], tuple(s), axis=(0, 1)) for c, s in zip(labels, shifts)]
        )
        images = images * rng.uniform(0.6, 1.4, (n, 1, 1, 1)) + rng.normal(0, 0.5, images.shape)
        return np.clip(127.5 + 60 * images, 0, 255).astype(np.uint8), labels

    return make(n_train), make(n_test)


def standin_notice(name: str, error: Exception) -> str:
    """What a script prints to stderr before it trains on standin_images of STANDIN_SHAPES[name]
    instead of the data set `name` ("CIFAR-10", "Fashion-MNIST")."""
    shape = "x".join(map(str, STANDIN_SHAPES[name]))
    return (
        f"{name} is not on disk and could not be downloaded:\n{explain(error)}\n"
        f"Training on a stand-in data set generated here instead ({name}-shaped, {shape} "
        f"images, ten learnable classes); its accuracy says nothing about {name}.\n"
    )
