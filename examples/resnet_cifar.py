"""Train a CIFAR ResNet (He et al., 2016) on CIFAR-10 or Fashion-MNIST with tinydeep.

The model is tinydeep.models.ResNet: depth 6n + 2, three stages of residual blocks at 16, 32
and 64 filters, global average pooling, a Dense head (--plain drops the shortcuts, as the
paper's plain networks). Images are normalized per channel with the training set's
statistics and augmented as in the paper: pad 4, random crop, horizontal flip.

    python examples/resnet_cifar.py                        # CIFAR-10, a few minutes on 2 cores
    python examples/resnet_cifar.py --dataset fashion-mnist --depth 8 --epochs 1
    python examples/resnet_cifar.py --schedule paper --device cuda   # the paper's 64k steps

With no data on disk it downloads CIFAR-10 from the authors' page; with no network either, it
says so and trains on a stand-in data set generated here (CIFAR-shaped, ten learnable
classes; Fashion-MNIST-shaped with --dataset fashion-mnist), so the command always runs.
`--schedule quick` (the default) is SGD with momentum and a cosine decay over the run;
`--schedule paper` is He et al.'s: lr 0.1, momentum 0.9, weight decay 1e-4, batch 128,
lr / 10 at 32k and 48k iterations, stop at 64k.

Read top to bottom: settings, data, main (model, optimizer, fit).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

import tinydeep as td
from tinydeep.backend import device_problem
from tinydeep.callbacks import LearningRateScheduler, TrainingCheckpoint
from tinydeep.checkpoint import load_checkpoint
from tinydeep.data import (
    DownloadError,
    channel_stats,
    load_cifar10,
    load_fashion_mnist,
    normalize,
    random_crop_flip,
)
from tinydeep.data.offline import STANDIN_SHAPES, standin_images, standin_notice
from tinydeep.models import ResNet
from tinydeep.schedules import CosineDecay, LinearWarmup, StepDecay

# ---- settings (each one is also a command-line flag) -----------------------------------------

DATASET = "cifar10"
DEPTH = 20
EPOCHS = 3
TRAIN_SIZE = 5_000  # training images used by the quick default (the paper uses all 50,000)
TEST_SIZE = 2_000  # test images evaluated after each epoch and at the end
BATCH_SIZE = 128
LR = 0.1
SEED = 0
PAPER = {
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "batch_size": 128,
    "milestones": (32_000, 48_000),
    "steps": 64_000,
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset",
        choices=["cifar10", "fashion-mnist"],
        default=DATASET,
        help="data set to train on (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder holding cifar-10/ or fashion-mnist/, or the data set's files themselves "
        "(default: $TINYDEEP_DATA, else ~/.cache/tinydeep)",
    )
    parser.add_argument(
        "--depth",
        type=int,
        default=DEPTH,
        help="6n + 2: 8, 20, 32, 44, 56, 110 (default: %(default)s)",
    )
    parser.add_argument(
        "--plain", action="store_true", help="no shortcuts (a plain network; default: residual)"
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
    parser.add_argument(
        "--lr", type=float, default=LR, help="SGD's peak learning rate (default: %(default)s)"
    )
    parser.add_argument(
        "--train-size",
        type=int,
        default=TRAIN_SIZE,
        help="training images to use, 0: all (default: %(default)s)",
    )
    parser.add_argument(
        "--test-size",
        type=int,
        default=TEST_SIZE,
        help="test images to evaluate, 0: all (default: %(default)s)",
    )
    parser.add_argument(
        "--schedule",
        choices=["quick", "paper"],
        default="quick",
        help="quick: a cosine decay over --epochs; paper: He et al.'s 64k steps on all the data, "
        "which sets --epochs, --batch-size, --lr and the sizes (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="where to train (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=SEED,
        help="picks the subset, weights and batch order (default: %(default)s)",
    )
    parser.add_argument(
        "--checkpoint", help="save a training checkpoint here after each epoch (default: none)"
    )
    parser.add_argument(
        "--resume", help="continue from a checkpoint written by --checkpoint (default: none)"
    )
    parser.add_argument("--json", help="write the run's summary here (default: none)")
    args = parser.parse_args(argv)
    if problem := device_problem(args.device):  # before any slow work: data, model
        parser.exit(2, f"{parser.prog}: error: {problem}\n")
    if args.schedule == "paper":  # the paper's recipe, on all the data, for 64k iterations
        args.batch_size, args.lr, args.train_size, args.test_size = 128, PAPER["lr"], 0, 0
    return args


# ---- data ------------------------------------------------------------------------------------


def load(dataset: str, data_dir, rng: np.random.Generator):
    """(x_train, y_train), (x_test, y_test), name: uint8 NHWC images and int64 labels; a
    stand-in data set of the same shape when the data set is neither on disk nor downloadable."""
    try:
        if dataset == "cifar10":
            train, test = load_cifar10(data_dir, "train"), load_cifar10(data_dir, "test")
        else:
            train, test = (
                load_fashion_mnist(data_dir, "train"),
                load_fashion_mnist(data_dir, "test"),
            )
            train, test = [(x[..., None], y) for x, y in (train, test)]  # (N, 28, 28, 1)
        return train, test, dataset
    except (DownloadError, FileNotFoundError) as error:
        name = "CIFAR-10" if dataset == "cifar10" else "Fashion-MNIST"
        print(standin_notice(name, error), file=sys.stderr)
        return (*standin_images(rng, STANDIN_SHAPES[name]), "stand-in")


def subset(x, y, size: int, rng: np.random.Generator):
    if size <= 0 or size >= len(x):
        return x, y
    keep = rng.permutation(len(x))[:size]
    return x[keep], y[keep]


# ---- training --------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    td.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    try:
        (x_train, y_train), (x_test, y_test), name = load(args.dataset, args.data_dir, rng)
    except (DownloadError, FileNotFoundError, ValueError) as error:
        print(f"resnet_cifar: cannot load {args.dataset}:\n{error}", file=sys.stderr)
        return 1
    x_train, y_train = subset(x_train, y_train.astype(np.int64), args.train_size, rng)
    x_test, y_test = subset(x_test, y_test.astype(np.int64), args.test_size, rng)
    mean, std = channel_stats(x_train)  # the training images' statistics, never the test set's
    x_train, x_test = normalize(x_train, mean, std), normalize(x_test, mean, std)

    model = ResNet(args.depth, residual=not args.plain, num_classes=10)
    model(x_train[:2])  # build the weights on the CPU, so the optimizer can see them
    model.to(args.device)
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    if args.schedule == "paper":
        args.epochs = math.ceil(PAPER["steps"] / steps_per_epoch)
        optimizer = td.optim.SGD(
            model.parameters(),
            lr=args.lr,
            momentum=PAPER["momentum"],
            weight_decay=PAPER["weight_decay"],
        )
        schedule = StepDecay(optimizer, PAPER["milestones"], gamma=0.1)
    else:
        optimizer = td.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
        total = args.epochs * steps_per_epoch
        schedule = LinearWarmup(
            optimizer,
            min(100, total // 10 + 1),
            after=CosineDecay(optimizer, total, min_lr=1e-3 * args.lr),
        )
    model.compile(optimizer=optimizer, loss="cross_entropy", metrics=["accuracy"])
    callbacks = [LearningRateScheduler(schedule)]
    if args.checkpoint:
        callbacks.append(TrainingCheckpoint(args.checkpoint, [optimizer], [schedule]))
    initial_epoch = 0
    if args.resume:
        initial_epoch = load_checkpoint(args.resume, model, [optimizer], [schedule])["epoch"]
        print(f"resumed from {args.resume} after epoch {initial_epoch}")

    kind = "plain" if args.plain else "residual"
    print(
        f"{name}: {len(x_train)} training and {len(x_test)} test images; {kind} ResNet-"
        f"{args.depth} ({sum(p.size for p in model.parameters()):,} parameters) on "
        f"{args.device}; {args.epochs} epoch{'' if args.epochs == 1 else 's'} of "
        f"{steps_per_epoch} step{'' if steps_per_epoch == 1 else 's'}, batch "
        f"{args.batch_size}, {args.schedule} schedule"
    )
    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(x_test, y_test),
        augment=random_crop_flip,
        callbacks=callbacks,
        initial_epoch=initial_epoch,
        verbose="auto",  # a bar for each step in a terminal, one line per epoch in a log
    )
    train_seconds = time.perf_counter() - started
    test_accuracy = model.evaluate(x_test, y_test, batch_size=500)["accuracy"]
    epochs_run = len(history.epoch)
    speed = epochs_run * len(x_train) / train_seconds if train_seconds else 0.0
    print(
        f"done: test accuracy {test_accuracy:.4f} on {len(x_test)} {name} test images; "
        f"{train_seconds:.1f} s of training ({epochs_run} epoch{'' if epochs_run == 1 else 's'}), "
        f"{speed:.0f} images/s (evaluation included)"
    )
    if args.json:
        summary = {
            "dataset": name,
            "depth": args.depth,
            "residual": not args.plain,
            "epochs": initial_epoch + epochs_run,
            "test_accuracy": test_accuracy,
            "train_seconds": train_seconds,
            "images_per_second": speed,
            "device": args.device,
        }
        with open(args.json, "w") as file:
            json.dump(summary, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
