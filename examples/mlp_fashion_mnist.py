"""Train a two-layer MLP on Fashion-MNIST with nothing but the tinydeep Tensor engine.

The model is 784 -> 128 (ReLU) -> 10, trained by plain minibatch SGD on a subset of the
training set and evaluated on the full official test set (10,000 images). Every piece that a
framework would hide is written out here in a few lines: He initialization, the softmax
cross-entropy (log_softmax and integer-array indexing), backward(), and the update
`w -= lr * grad`. A Fashion-MNIST MLP reaches about 85% test accuracy.

Read top to bottom: settings, data, model, loss, evaluation, the training loop (main).
Left out on purpose: layers, optimizers (momentum, schedules) and a fit() loop, which tinydeep
builds on top of this engine. `--device cuda` puts the parameters and each batch on the GPU;
nothing else changes.

    python examples/mlp_fashion_mnist.py       # ~88% test accuracy; seconds on 2 CPU cores
    python examples/mlp_fashion_mnist.py --epochs 1 --train-size 2000 --data-dir DIR

The data is read from DIR/fashion-mnist/ or DIR itself (default: $TINYDEEP_DATA, else
~/.cache/tinydeep) and downloaded there when missing; with no network either, it says so and
trains on a stand-in data set generated here (Fashion-MNIST-shaped, ten learnable classes), so
the command always runs.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np

from tinydeep import Tensor, no_grad
from tinydeep.backend import device_problem, to_device, xp_of
from tinydeep.data import DownloadError, IdxError, load_fashion_mnist
from tinydeep.data.offline import STANDIN_SHAPES, standin_images, standin_notice

# ---- settings (each one is also a command-line flag) -----------------------------------------

TRAIN_SIZE = 60_000  # images drawn from the 60,000 of the training set (all of them)
EPOCHS = 10
BATCH_SIZE = 64
LR = 0.05  # SGD step size
HIDDEN = 128  # units in the hidden layer
SEED = 0  # picks the training subset, the initial weights and the batch order
DEVICE = "cpu"  # or "cuda" (needs CuPy and an NVIDIA GPU)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder holding fashion-mnist/, or its four .gz files themselves "
        "(default: $TINYDEEP_DATA, else ~/.cache/tinydeep)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=EPOCHS,
        help="passes over the training images (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=BATCH_SIZE, help="images per step (default: %(default)s)"
    )
    parser.add_argument("--lr", type=float, default=LR, help="SGD step size (default: %(default)s)")
    parser.add_argument(
        "--train-size",
        type=int,
        default=TRAIN_SIZE,
        help="training images to use, 1..60000 (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=SEED,
        help="picks the subset, the initial weights and the batch order (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default=DEVICE,
        help="where to train (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if problem := device_problem(args.device):  # before any slow work: data, model
        parser.exit(2, f"{parser.prog}: error: {problem}\n")
    if args.epochs < 1 or args.batch_size < 1 or not 1 <= args.train_size <= 60_000:
        parser.error("--epochs and --batch-size must be >= 1, --train-size in 1..60000")
    return args


# ---- data ------------------------------------------------------------------------------------


def load_data(data_dir: str | None, train_size: int, rng: np.random.Generator):
    """Train and test arrays: x float32 (N, 784), standardized; y int64 (N,) in 0..9; and the
    data set's name, "stand-in" when Fashion-MNIST is neither on disk nor downloadable."""
    try:
        train_images, train_labels = load_fashion_mnist(data_dir, "train")
        test_images, test_labels = load_fashion_mnist(data_dir, "test")
        name = "Fashion-MNIST"
    except DownloadError as error:  # offline: train on generated images of the same shape
        print(standin_notice("Fashion-MNIST", error), file=sys.stderr)
        shape = STANDIN_SHAPES["Fashion-MNIST"]
        (train_images, train_labels), (test_images, test_labels) = standin_images(rng, shape)
        name = "stand-in"
    available = len(train_images)
    subset = rng.permutation(len(train_images))[:train_size]  # a random subset, every class
    train_images, train_labels = train_images[subset], train_labels[subset]

    # Scale with the training subset's own statistics (never the test set's): inputs centred
    # near 0 with unit spread keep the first layer's pre-activations at the scale He assumed.
    x_train = train_images.reshape(len(train_images), 784).astype(np.float32) / 255
    x_test = test_images.reshape(len(test_images), 784).astype(np.float32) / 255
    mean, std = x_train.mean(), x_train.std()
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    train, test = (x_train, train_labels.astype(np.int64)), (x_test, test_labels.astype(np.int64))
    return train, test, f"{name}: {len(x_train)} training images (of {available})"


# ---- model -----------------------------------------------------------------------------------


def init_params(rng: np.random.Generator, device: str, sizes=(784, HIDDEN, 10)) -> list[Tensor]:
    """[w1 (784, H), b1 (H,), w2 (H, 10), b2 (10,)], float32, on `device`.

    He initialization: weights ~ N(0, 2 / fan_in), so that a ReLU layer passes on activations
    of about the same scale as it receives; biases start at 0.
    """
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        w = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        params += [
            Tensor(to_device(w.astype(np.float32), device), requires_grad=True),
            Tensor(to_device(np.zeros(fan_out, np.float32), device), requires_grad=True),
        ]
    return params


def forward(params: list[Tensor], x: Tensor) -> Tensor:
    """Logits (B, 10) for a batch x (B, 784)."""
    w1, b1, w2, b2 = params
    h = (x @ w1 + b1).relu()  # (B, H)
    return h @ w2 + b2  # (B, 10)


# ---- loss and evaluation ---------------------------------------------------------------------


def cross_entropy(logits: Tensor, y) -> Tensor:
    """Mean of -log softmax(logits)[i, y_i] over the batch; logits (B, 10), y int (B,),
    both on one device."""
    log_probs = logits.log_softmax(axis=-1)  # stable: no exp() of a large logit
    # Integer-array indexing picks one entry per row: log_probs[i, y[i]] for each i.
    return -log_probs[xp_of(y).arange(len(y)), y].mean()


def accuracy(params: list[Tensor], x: np.ndarray, y: np.ndarray, batch: int = 2500) -> float:
    """Fraction of x (N, 784) classified as y (N,); no graph is recorded."""
    correct = 0
    device = params[0].device
    with no_grad():
        for start in range(0, len(x), batch):
            logits = forward(params, Tensor(to_device(x[start : start + batch], device)))
            correct += int((logits.numpy().argmax(axis=1) == y[start : start + batch]).sum())
    return correct / len(x)


# ---- training ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    try:
        (x_train, y_train), (x_test, y_test), header = load_data(
            args.data_dir, args.train_size, rng
        )
    except (OSError, IdxError) as error:  # a damaged file, or one that cannot be read
        print(f"mlp_fashion_mnist: cannot load Fashion-MNIST.\n{error}", file=sys.stderr)
        return 1
    n = len(x_train)
    print(
        f"{header}, {len(x_test)} test images; "
        f"MLP 784-{HIDDEN}-10, SGD lr {args.lr}, batch {args.batch_size}, on {args.device}"
    )

    params = init_params(rng, args.device)
    train_seconds = 0.0
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        order = rng.permutation(n)  # a new batch order every epoch
        loss_sum, correct = 0.0, 0
        for start in range(0, n, args.batch_size):
            batch = order[start : start + args.batch_size]
            x = Tensor(to_device(x_train[batch], args.device))
            logits = forward(params, x)
            loss = cross_entropy(logits, to_device(y_train[batch], args.device))
            loss.backward()  # fills p.grad for every parameter
            for p in params:  # SGD: a small step against the gradient, then forget it
                p.data -= args.lr * p.grad
                p.grad = None
            # Keras-style running numbers: measured on each batch before its update.
            loss_sum += loss.item() * len(batch)
            correct += int((logits.numpy().argmax(axis=1) == y_train[batch]).sum())
        train_seconds += time.perf_counter() - t0
        test_acc = accuracy(params, x_test, y_test)
        print(
            f"epoch {epoch}/{args.epochs}  loss {loss_sum / n:.4f}  "
            f"train acc {correct / n:.2%}  test acc {test_acc:.2%}  "
            f"{time.perf_counter() - t0:.1f}s"
        )

    total = time.perf_counter() - started
    speed = args.epochs * n / train_seconds if train_seconds else 0.0
    print(
        f"done: test accuracy {test_acc:.2%} after {args.epochs} "
        f"epoch{'' if args.epochs == 1 else 's'} on {n} images, "
        f"{total:.1f}s in all, training at {speed:.0f} images/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
