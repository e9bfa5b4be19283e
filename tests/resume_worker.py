"""One training run in its own process, for tests/test_resume.py (not a test file itself).

    python tests/resume_worker.py OUT --seed S --epochs E [--initial-epoch K --resume CKPT]

trains a small CNN with everything that draws random numbers or keeps state across steps:
Conv2D, BatchNormalization (moving statistics), Dropout (masks), random_crop_flip (crops and
flips), the per-epoch shuffle, SGD with momentum over the convolution and Adam over the
head (two optimizers: two kinds of state), LinearWarmup into CosineDecay on the SGD rate and
StepDecay on the Adam rate, advanced per batch by LearningRateScheduler. TrainingCheckpoint
writes OUT after every epoch: the weights (moving statistics included), both optimizers'
state, both schedules' counts and tinydeep's random-generator state. The test compares those
files bitwise between runs, so a run resumed from CKPT with --initial-epoch K must write
exactly what a run straight through writes.

The data come from a fixed NumPy generator, independent of --seed; --seed seeds tinydeep
(initialization, dropout, shuffle, augmentation). The thread counts are the caller's: it sets
OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and NUMBA_NUM_THREADS in the environment.
"""

from __future__ import annotations

import argparse

import numpy as np

import tinydeep as td
from tinydeep import optim
from tinydeep.callbacks import LearningRateScheduler, TrainingCheckpoint
from tinydeep.checkpoint import load_checkpoint
from tinydeep.data import random_crop_flip
from tinydeep.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    GlobalAveragePooling2D,
    ReLU,
    Sequential,
)

EXAMPLES, SIZE, CLASSES, BATCH = 48, 8, 3, 16  # 3 steps per epoch, NHWC images 8x8x2
EPOCHS_PLANNED = 4  # the cosine's length is fixed by the plan, whatever --epochs stops at


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2024)
    x = rng.standard_normal((EXAMPLES, SIZE, SIZE, 2)).astype(np.float32)  # (N, H, W, C)
    y = rng.integers(0, CLASSES, EXAMPLES)
    return x, y


def build(seed: int, x: np.ndarray):
    """The model, its two optimizers, and the two schedules, seeded with `seed`."""
    td.manual_seed(seed)
    conv, bn = Conv2D(6, 3, padding="same"), BatchNormalization(momentum=0.9)
    head = Dense(CLASSES)
    model = Sequential([conv, bn, ReLU(), Dropout(0.3), GlobalAveragePooling2D(), head])
    model(x[:2])  # build, so the optimizers can see the weights
    body = [*conv.parameters(), *bn.parameters()]
    sgd = optim.SGD(body, lr=0.1, momentum=0.9, weight_decay=1e-4)
    adam = optim.Adam(head.parameters(), lr=0.01)
    steps = EPOCHS_PLANNED * -(-EXAMPLES // BATCH)
    warm = optim.LinearWarmup(sgd, 2, after=optim.CosineDecay(sgd, steps - 2, min_lr=1e-3))
    step_decay = optim.StepDecay(adam, milestones=[4, 8], gamma=0.5)
    model.compile(optimizer=[sgd, adam], loss="cross_entropy")
    return model, [sgd, adam], [warm, step_decay]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the TrainingCheckpoint file written after each epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=EPOCHS_PLANNED)
    parser.add_argument("--initial-epoch", type=int, default=0)
    parser.add_argument("--resume", help="a checkpoint to continue from")
    args = parser.parse_args(argv)

    x, y = data()
    model, optimizers, schedules = build(args.seed, x)
    if args.resume:
        progress = load_checkpoint(args.resume, model, optimizers, schedules)
        if progress["epoch"] != args.initial_epoch:
            raise SystemExit(
                f"{args.resume} is at epoch {progress['epoch']}, not {args.initial_epoch}"
            )
    callbacks = [LearningRateScheduler(s) for s in schedules]
    callbacks.append(TrainingCheckpoint(args.out, optimizers, schedules))
    model.fit(
        x,
        y,
        epochs=args.epochs,
        batch_size=BATCH,
        augment=lambda images: random_crop_flip(images, pad=2),
        callbacks=callbacks,
        verbose=0,
        initial_epoch=args.initial_epoch,
    )


if __name__ == "__main__":
    main()
