"""The depth study: what depth does to a network, measured on real data, in one command.

Three experiments. Within each, every run sees the same data, optimizer, learning-rate
schedule and number of steps; only the network changes.

  1. "cnn", plain versus residual (He et al., 2016, section 4.2): tinydeep.models.ResNet at
     depths 6n + 2 (8, 20, 32 by default), with and without shortcut connections. The
     paper's finding to look for: the plain network's *training* error grows with depth
     (degradation, not overfitting), while the residual network's does not.
  2. "width", width versus depth at matched parameter counts: residual networks of every
     depth, each as wide as makes its parameter count match the reference depth's
     (ResNet-20 at width 16 by default). Is a deeper, narrower network better than a
     shallower, wider one with the same number of weights?
  3. "mlp", vanishing gradients: Dense stacks of 2 to 32 layers, sigmoid or ReLU, with or
     without BatchNormalization, each with its activation's usual initialization (Glorot
     for sigmoid, He for ReLU). The gradient norm of each layer at initialization shows the
     gradient shrinking on its way back through sigmoid layers.

For every run it records training and validation loss and accuracy, macro precision,
recall and one-versus-rest ROC-AUC on the validation images, the loss of every step, and the
gradient norm of every weighted layer (Conv2D, Dense) on one fixed batch at initialization
and after training (tinydeep.diagnostics.probe_gradient_norms).

    python examples/depth_study.py                   # Fashion-MNIST subset, ~11 min, 2 cores
    python examples/depth_study.py --folds 5         # 5-fold cross-validation, mean +- std
    python examples/depth_study.py --dataset cifar10 --depths 20 32 44 56 --train-size 0 \\
        --epochs 40 --device cuda                    # the paper's comparison, on a GPU

With neither the data on disk nor a network it says where to get the data and stops (exit
status 1): a study of generated stand-in images would measure nothing worth plotting.

Writes to --out-dir (default ./depth_study): runs.csv (one row per run), runs.json (every
record, curves included; --json PATH writes a copy), and the plots accuracy_vs_depth.png,
gradient_profiles.png, training_curves.png, width_vs_depth.png, mlp_vanishing.png. The plots
need matplotlib (pip install -e ".[study]").

Read top to bottom: settings, data and folds, models, one run, the experiments, outputs
(CSV, JSON, plots), main.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

import tinydeep as td
from tinydeep.backend import device_problem
from tinydeep.callbacks import Callback, LearningRateScheduler
from tinydeep.data import DownloadError, channel_stats, load_cifar10, load_fashion_mnist, normalize
from tinydeep.data.offline import explain
from tinydeep.diagnostics import probe_gradient_norms
from tinydeep.layers import Activation, BatchNormalization, Dense, Flatten, Sequential
from tinydeep.models import ResNet
from tinydeep.schedules import CosineDecay, LinearWarmup

# ---- settings (each one is also a command-line flag) -----------------------------------------

EXPERIMENTS = ("cnn", "width", "mlp")
DEPTHS = (8, 20, 32)  # ResNet depths, 6n + 2
WIDTH = 16  # the first stage's filters, as in the paper
TRAIN_SIZE = 3_000  # training images drawn from the training file (0: all)
VAL_SIZE = 1_000  # validation images, drawn from the rest of the training file
EPOCHS = 5
BATCH_SIZE = 64
LR = 0.05  # SGD with momentum 0.9, a linear warm-up, then a cosine decay to lr / 1000
WEIGHT_DECAY = 5e-4  # for the CNNs; the MLPs have none
BN_MOMENTUM = 0.9  # Keras's 0.99 lags the weights in runs this short
MLP_DEPTHS = (2, 4, 8, 16, 32)  # Dense layers, the output layer included
MLP_WIDTH = 64
NETWORK_FIELDS = ("model", "depth", "residual", "width", "activation", "batch_norm")
PROBE_SIZE = 256  # the fixed batch whose gradients are measured
CSV_FIELDS = (
    "experiment",
    "name",
    "model",
    "depth",
    "residual",
    "width",
    "activation",
    "batch_norm",
    "params",
    "fold",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "precision",
    "recall",
    "roc_auc",
    "seconds",
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset",
        choices=["fashion-mnist", "cifar10"],
        default="fashion-mnist",
        help="data set to study (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        help="folder holding fashion-mnist/ or cifar-10/, or the data set's files themselves "
        "(default: $TINYDEEP_DATA, else ~/.cache/tinydeep; downloaded when missing)",
    )
    parser.add_argument(
        "--experiments",
        nargs="+",
        choices=EXPERIMENTS,
        default=list(EXPERIMENTS),
        help="cnn: plain vs residual ResNets by depth; width: deeper vs wider at matched "
        "parameter counts; mlp: vanishing gradients in Dense stacks (default: %(default)s)",
    )
    parser.add_argument(
        "--depths",
        type=int,
        nargs="+",
        default=list(DEPTHS),
        help="ResNet depths, 6n + 2 (default: %(default)s)",
    )
    parser.add_argument(
        "--width", type=int, default=WIDTH, help="the first stage's filters (default: %(default)s)"
    )
    parser.add_argument(
        "--matched-depth",
        type=int,
        default=None,
        help="the width experiment matches the parameter count of this depth at --width "
        "(default: 20 if in --depths, else the middle depth)",
    )
    parser.add_argument(
        "--train-size",
        type=int,
        default=TRAIN_SIZE,
        help="training images, 0: all (default: %(default)s)",
    )
    parser.add_argument(
        "--val-size", type=int, default=VAL_SIZE, help="validation images (default: %(default)s)"
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=1,
        help="K > 1: K-fold cross-validation over the training images (--val-size is then "
        "unused) (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=int, default=EPOCHS, help="epochs per network (default: %(default)s)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=BATCH_SIZE, help="images per step (default: %(default)s)"
    )
    parser.add_argument(
        "--lr", type=float, default=LR, help="SGD's peak learning rate (default: %(default)s)"
    )
    parser.add_argument(
        "--mlp-depths",
        type=int,
        nargs="+",
        default=list(MLP_DEPTHS),
        help="Dense layers of each MLP, the output layer included (default: %(default)s)",
    )
    parser.add_argument(
        "--mlp-width",
        type=int,
        default=MLP_WIDTH,
        help="units per hidden Dense layer (default: %(default)s)",
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
        default=0,
        help="picks the images, folds and weights (default: %(default)s)",
    )
    parser.add_argument(
        "--out-dir",
        default="depth_study",
        help="folder for runs.csv, runs.json and plots (default: %(default)s)",
    )
    parser.add_argument("--json", help="also write the records here (default: none)")
    parser.add_argument(
        "--plots",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write PNG plots (default: yes)",
    )
    args = parser.parse_args(argv)
    if problem := device_problem(args.device):  # before any slow work: data, model
        parser.exit(2, f"{parser.prog}: error: {problem}\n")
    bad = [d for d in args.depths if d < 8 or (d - 2) % 6]
    if bad:
        parser.error(f"--depths must be 6n + 2 (8, 20, 32, 44, 56, ...), got {bad}")
    if args.matched_depth is None:
        args.matched_depth = 20 if 20 in args.depths else sorted(args.depths)[len(args.depths) // 2]
    if min(args.mlp_depths) < 1:
        parser.error(f"--mlp-depths must be >= 1, got {args.mlp_depths}")
    if args.folds < 1 or args.epochs < 1 or args.batch_size < 1:
        parser.error("--folds, --epochs and --batch-size must be >= 1")
    return args


# ---- data and folds --------------------------------------------------------------------------


def load_pool(args, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The images the study draws from: uint8 (N, H, W, C) and int64 labels (N,), a random
    subset of the training file of train_size + val_size images (train_size with folds)."""
    if args.dataset == "cifar10":
        x, y = load_cifar10(args.data_dir, "train")
    else:
        x, y = load_fashion_mnist(args.data_dir, "train")
        x = x[..., None]  # (N, 28, 28, 1)
    wanted = args.train_size + (args.val_size if args.folds == 1 else 0)
    if args.train_size <= 0 or wanted >= len(x):
        wanted = len(x)
    keep = rng.permutation(len(x))[:wanted]
    return x[keep], y[keep].astype(np.int64)


def splits(n: int, args, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train indices, validation indices) per fold: with one fold, the last val_size images
    of the pool are held out; with K folds, each K-th of a shuffled order is held out once."""
    if args.folds == 1:
        held = min(args.val_size, n // 2)
        return [(np.arange(n - held), np.arange(n - held, n))]
    parts = np.array_split(rng.permutation(n), args.folds)
    return [(np.concatenate(parts[:k] + parts[k + 1 :]), parts[k]) for k in range(args.folds)]


def fold_data(x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray) -> dict:
    """The fold's images normalized with its training images' channel statistics."""
    mean, std = channel_stats(x[train])
    return {
        "x_train": normalize(x[train], mean, std),  # (N, H, W, C) float32
        "y_train": y[train],
        "x_val": normalize(x[val], mean, std),
        "y_val": y[val],
    }


# ---- models ----------------------------------------------------------------------------------


def resnet(spec: dict, classes: int) -> ResNet:
    return ResNet(
        spec["depth"],
        residual=spec["residual"],
        num_classes=classes,
        width=spec["width"],
        bn_momentum=BN_MOMENTUM,
    )


def mlp(spec: dict, classes: int) -> Sequential:
    """depth - 1 hidden Dense layers of `width` units and a Dense output; with batch_norm,
    Dense (no bias) -> BatchNormalization -> activation, as Ioffe and Szegedy (2015)."""
    init = "he_normal" if spec["activation"] == "relu" else "glorot_uniform"
    layers = [Flatten()]
    for _ in range(spec["depth"] - 1):
        layers.append(
            Dense(spec["width"], use_bias=not spec["batch_norm"], kernel_initializer=init)
        )
        if spec["batch_norm"]:
            layers.append(BatchNormalization(BN_MOMENTUM))
        layers.append(Activation(spec["activation"]))
    layers.append(Dense(classes, kernel_initializer=init))
    return Sequential(layers)


def build(spec: dict, classes: int, sample: np.ndarray, device: str):
    """The spec's network on `device`, built on `sample` (one or two images)."""
    make = mlp if spec["model"] == "mlp" else resnet
    model = make(spec, classes)
    model(sample)  # built on the CPU (NumPy), then moved
    return model.to(device)


def count_params(spec: dict, classes: int, sample: np.ndarray) -> int:
    return sum(p.size for p in build(spec, classes, sample, "cpu").parameters())


def matched_width(depth: int, target: int, classes: int, sample: np.ndarray) -> int:
    """The width whose ResNet of `depth` has the parameter count nearest `target` (the count
    grows with the width, so a bisection finds it)."""

    def params(width: int) -> int:
        spec = {"model": "resnet", "depth": depth, "residual": True, "width": width}
        return count_params(spec, classes, sample)

    low, high = 1, 2
    while params(high) < target:
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if params(middle) < target else (low, middle)
    return min((low, high), key=lambda w: abs(params(w) - target))


# ---- one run ---------------------------------------------------------------------------------


class StepLosses(Callback):
    """The training loss of every step (fit's History keeps one mean per epoch)."""

    def __init__(self):
        self.losses: list[float] = []

    def on_batch_end(self, step: int, logs=None) -> None:
        self.losses.append(float(logs["loss"]))


def weighted_layer_norms(model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Gradient norm of every layer with a kernel (Conv2D, Dense), in forward order, on the
    batch x, y in training mode (batch statistics, as during training)."""
    norms = probe_gradient_norms(model, "cross_entropy", x, y)
    kernels = {name.rpartition("/")[0] for name in model.named_weights() if name.endswith("kernel")}
    return {path: norm for path, norm in norms.items() if path in kernels}


def train_run(spec: dict, data: dict, args) -> dict:
    """Train the network `spec` describes on one fold and return its record."""
    classes = int(max(data["y_train"].max(), data["y_val"].max())) + 1
    td.manual_seed(args.seed + spec["fold"])  # the same initial draws and order for every net
    model = build(spec, classes, data["x_train"][:2], args.device)
    probe_x, probe_y = data["x_train"][:PROBE_SIZE], data["y_train"][:PROBE_SIZE]
    norms_at_init = weighted_layer_norms(model, probe_x, probe_y)

    decay = WEIGHT_DECAY if spec["model"] == "resnet" else 0.0
    optimizer = td.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=decay)
    total = args.epochs * math.ceil(len(data["x_train"]) / args.batch_size)
    schedule = LinearWarmup(
        optimizer, min(100, total // 10 + 1), after=CosineDecay(optimizer, total, 1e-3 * args.lr)
    )
    model.compile(optimizer=optimizer, loss="cross_entropy", metrics=["accuracy"])
    steps = StepLosses()
    started = time.perf_counter()
    history = model.fit(
        data["x_train"],
        data["y_train"],
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(data["x_val"], data["y_val"]),
        callbacks=[LearningRateScheduler(schedule), steps],
        verbose=0,
    )
    seconds = time.perf_counter() - started

    trained = model.evaluate(data["x_train"], data["y_train"], batch_size=500)
    logits = model.predict(data["x_val"], batch_size=500)  # (N_val, classes)
    probabilities = td.Tensor(logits.astype(np.float64)).softmax(axis=1).numpy()
    y_val = data["y_val"]
    norms_after = weighted_layer_norms(model, probe_x, probe_y)
    return {
        **spec,
        "params": sum(p.size for p in model.parameters()),
        "train_loss": trained["loss"],
        "train_accuracy": trained["accuracy"],
        "val_loss": history.history["val_loss"][-1],
        "val_accuracy": td.metrics.accuracy(y_val, probabilities),
        "precision": td.metrics.precision(y_val, probabilities, average="macro"),
        "recall": td.metrics.recall(y_val, probabilities, average="macro"),
        "roc_auc": td.metrics.roc_auc(y_val, probabilities, average="macro"),
        "seconds": seconds,
        "history": history.history,  # per epoch: loss, accuracy, val_loss, val_accuracy
        "step_losses": steps.losses,
        "layers": list(norms_at_init),
        "grad_norm_init": list(norms_at_init.values()),
        "grad_norm_final": [norms_after[path] for path in norms_at_init],
    }


# ---- the experiments -------------------------------------------------------------------------


def specs(args, classes: int, sample: np.ndarray) -> list[dict]:
    """Every network of the chosen experiments, as a dict of its settings."""
    base = {"model": "resnet", "activation": "relu", "batch_norm": True}
    out = []
    if "cnn" in args.experiments:
        for depth in args.depths:
            for residual in (False, True):
                name = f"{'residual' if residual else 'plain'}-{depth}"
                out.append(
                    {
                        **base,
                        "experiment": "cnn",
                        "name": name,
                        "depth": depth,
                        "residual": residual,
                        "width": args.width,
                    }
                )
    if "width" in args.experiments:
        reference = {
            **base,
            "experiment": "width",
            "depth": args.matched_depth,
            "residual": True,
            "width": args.width,
        }
        target = count_params(reference, classes, sample)
        for depth in sorted(set(args.depths) | {args.matched_depth}):
            width = matched_width(depth, target, classes, sample)
            out.append(
                {**reference, "name": f"residual-{depth}-w{width}", "depth": depth, "width": width}
            )
    if "mlp" in args.experiments:
        for activation in ("sigmoid", "relu"):
            for batch_norm in (False, True):
                for depth in args.mlp_depths:
                    name = f"mlp-{depth}-{activation}{'-bn' if batch_norm else ''}"
                    out.append(
                        {
                            "experiment": "mlp",
                            "model": "mlp",
                            "name": name,
                            "depth": depth,
                            "residual": False,
                            "width": args.mlp_width,
                            "activation": activation,
                            "batch_norm": batch_norm,
                        }
                    )
    return out


def config_key(record: dict) -> tuple:
    return tuple(record[k] for k in ("experiment", "name"))


def summarize(records: list[dict]) -> list[dict]:
    """Mean and standard deviation over folds of each network's scalar results."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault(config_key(record), []).append(record)
    out = []
    for runs in groups.values():
        row = {k: runs[0][k] for k in CSV_FIELDS[: CSV_FIELDS.index("fold")]}
        row["folds"] = len(runs)
        for field in CSV_FIELDS[CSV_FIELDS.index("fold") + 1 :]:
            values = np.array([r[field] for r in runs], dtype=np.float64)
            row[field] = float(values.mean())
            row[f"{field}_std"] = float(values.std(ddof=1)) if len(runs) > 1 else 0.0
        out.append(row)
    return out


# ---- outputs ---------------------------------------------------------------------------------


def write_csv(path: Path, records: list[dict]) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)


def write_json(path: Path, records: list[dict], summary: list[dict], settings: dict) -> None:
    with open(path, "w") as file:
        json.dump({"settings": settings, "runs": records, "summary": summary}, file, indent=1)


def pyplot():
    """matplotlib.pyplot with the file-only backend, or a clear exit when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit(
            'depth_study: the plots need matplotlib: pip install -e ".[study]" (or pass '
            "--no-plots for the CSV and JSON only)"
        )
    return plt


def depth_colors(plt, depths) -> dict[int, tuple]:
    cmap = plt.get_cmap("viridis")
    depths = sorted(set(depths))
    return {d: cmap(i / max(len(depths) - 1, 1) * 0.85) for i, d in enumerate(depths)}


def plot_accuracy_vs_depth(plt, summary: list[dict], path: Path) -> None:
    """Training and validation error against depth, plain dashed, residual solid."""
    rows = [r for r in summary if r["experiment"] == "cnn"]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, split in zip(axes, ("train", "val")):
        for residual, style in ((False, "--o"), (True, "-s")):
            line = sorted((r for r in rows if r["residual"] == residual), key=lambda r: r["depth"])
            if not line:
                continue
            axis.errorbar(
                [r["depth"] for r in line],
                [100 * (1 - r[f"{split}_accuracy"]) for r in line],
                yerr=[100 * r[f"{split}_accuracy_std"] for r in line],
                fmt=style,
                capsize=3,
                label="residual" if residual else "plain",
            )
        axis.set_xlabel("depth (weighted layers)")
        axis.set_ylabel(f"{'training' if split == 'train' else 'validation'} error (%)")
        axis.set_xticks(sorted({r["depth"] for r in rows}))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle("Plain versus residual networks: error after the same training")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_gradient_profiles(plt, records: list[dict], path: Path) -> None:
    """Per-layer gradient norms at initialization and after training (first fold)."""
    runs = [r for r in records if r["experiment"] == "cnn" and r["fold"] == 0]
    colors = depth_colors(plt, [r["depth"] for r in runs])
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for axis, when in zip(axes, ("init", "final")):
        for r in runs:
            norms = r[f"grad_norm_{when}"]
            axis.semilogy(
                range(1, len(norms) + 1),
                norms,
                "-" if r["residual"] else "--",
                color=colors[r["depth"]],
                label=r["name"],
            )
        axis.set_xlabel("weighted layer (1 = the first convolution)")
        axis.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        axis.set_title("at initialization" if when == "init" else "after training")
        axis.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("gradient norm of the layer's kernel")
    axes[1].legend(fontsize=8)
    figure.suptitle("Gradient norm per layer, one fixed batch (dashed: plain, solid: residual)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def smooth(values: list[float], window: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")


def plot_training_curves(plt, records: list[dict], path: Path) -> None:
    """Training loss per step (moving average) and validation accuracy per epoch."""
    runs = [r for r in records if r["experiment"] == "cnn" and r["fold"] == 0]
    colors = depth_colors(plt, [r["depth"] for r in runs])
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r in runs:
        style = {"color": colors[r["depth"]], "linestyle": "-" if r["residual"] else "--"}
        window = max(1, len(r["step_losses"]) // 20)
        losses = smooth(r["step_losses"], window)
        axes[0].plot(np.arange(len(losses)) + window, losses, label=r["name"], **style)
        accuracy = r["history"]["val_accuracy"]
        axes[1].plot(range(1, len(accuracy) + 1), accuracy, marker=".", label=r["name"], **style)
    axes[0].set(xlabel="step", ylabel="training loss (moving average)", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="validation accuracy")
    for axis in axes:
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    figure.suptitle("Training curves (dashed: plain, solid: residual)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_width_vs_depth(plt, summary: list[dict], path: Path) -> None:
    """Training and validation accuracy of residual networks with matched parameters."""
    rows = sorted((r for r in summary if r["experiment"] == "width"), key=lambda r: r["depth"])
    figure, axis = plt.subplots(figsize=(7, 4))
    x = np.arange(len(rows))
    for offset, split in ((-0.2, "train"), (0.2, "val")):
        axis.bar(
            x + offset,
            [100 * r[f"{split}_accuracy"] for r in rows],
            0.4,
            yerr=[100 * r[f"{split}_accuracy_std"] for r in rows],
            capsize=3,
            label="training" if split == "train" else "validation",
        )
    axis.set_xticks(
        x, [f"depth {r['depth']}\nwidth {r['width']}\n{r['params'] / 1e3:.0f}k" for r in rows]
    )
    low = min(min(r["train_accuracy"], r["val_accuracy"]) for r in rows)
    axis.set_ylim(max(0.0, 100 * low - 5), 100)
    axis.set_ylabel("accuracy (%)")
    axis.grid(alpha=0.3, axis="y")
    axis.legend()
    axis.set_title("Width versus depth at matched parameter counts (residual)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_mlp(plt, records: list[dict], summary: list[dict], path: Path) -> None:
    """Gradient norm per layer at initialization of the deepest MLPs, and accuracy by depth."""
    runs = [r for r in records if r["experiment"] == "mlp" and r["fold"] == 0]
    deepest = max(r["depth"] for r in runs)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r in (r for r in runs if r["depth"] == deepest):
        norms = r["grad_norm_init"]
        name = variant(r)
        axes[0].semilogy(
            range(1, len(norms) + 1), norms, marker=".", color=VARIANTS[name], label=name
        )
    axes[0].set(
        xlabel="Dense layer (1 = the first)",
        ylabel="gradient norm at initialization",
        title=f"{deepest}-layer MLPs",
    )
    rows = [r for r in summary if r["experiment"] == "mlp"]
    for name, color in VARIANTS.items():
        line = sorted((r for r in rows if variant(r) == name), key=lambda r: r["depth"])
        if not line:
            continue
        axes[1].errorbar(
            [r["depth"] for r in line],
            [r["val_accuracy"] for r in line],
            yerr=[r["val_accuracy_std"] for r in line],
            marker="o",
            capsize=3,
            color=color,
            label=name,
        )
    depths = sorted({r["depth"] for r in rows})
    axes[1].set(xlabel="Dense layers", ylabel="validation accuracy")
    axes[1].set_xscale("log", base=2)
    axes[1].minorticks_off()
    axes[1].set_xticks(depths, [str(d) for d in depths])
    for axis in axes:
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    figure.suptitle("Vanishing gradients: sigmoid versus ReLU, with and without BatchNorm")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


VARIANTS = {  # one colour per MLP variant, the same in both panels
    "sigmoid": "tab:blue",
    "sigmoid + BatchNorm": "tab:orange",
    "relu": "tab:green",
    "relu + BatchNorm": "tab:red",
}


def variant(record: dict) -> str:
    return record["activation"] + (" + BatchNorm" if record["batch_norm"] else "")


def write_plots(records: list[dict], summary: list[dict], out_dir: Path) -> list[Path]:
    plt = pyplot()
    written = []
    experiments = {r["experiment"] for r in records}
    if "cnn" in experiments:
        for name, plot in (
            ("accuracy_vs_depth.png", lambda p: plot_accuracy_vs_depth(plt, summary, p)),
            ("gradient_profiles.png", lambda p: plot_gradient_profiles(plt, records, p)),
            ("training_curves.png", lambda p: plot_training_curves(plt, records, p)),
        ):
            plot(out_dir / name)
            written.append(out_dir / name)
    if "width" in experiments:
        plot_width_vs_depth(plt, summary, out_dir / "width_vs_depth.png")
        written.append(out_dir / "width_vs_depth.png")
    if "mlp" in experiments:
        plot_mlp(plt, records, summary, out_dir / "mlp_vanishing.png")
        written.append(out_dir / "mlp_vanishing.png")
    return written


# ---- main ------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.plots:
        pyplot()  # fail before the training, not after it
    rng = np.random.default_rng(args.seed)
    try:
        x, y = load_pool(args, rng)
    except (DownloadError, FileNotFoundError, ValueError) as error:
        print(f"depth_study: cannot load {args.dataset}:\n{explain(error)}", file=sys.stderr)
        return 1
    folds = splits(len(x), args, rng)
    classes = int(y.max()) + 1
    sample = normalize(x[:2], *channel_stats(x[:2]))
    networks = specs(args, classes, sample)
    print(
        f"{args.dataset}: {len(folds[0][0])} training and {len(folds[0][1])} validation "
        f"images, {args.folds} fold{'' if args.folds == 1 else 's'}; {len(networks)} "
        f"network{'' if len(networks) == 1 else 's'}, {args.epochs} "
        f"epoch{'' if args.epochs == 1 else 's'} each, "
        f"batch {args.batch_size}, on {args.device}"
    )

    started = time.perf_counter()
    records = []
    for fold, (train, val) in enumerate(folds):
        data = fold_data(x, y, train, val)
        trained: dict[tuple, dict] = {}  # the same network in two experiments trains once
        for spec in networks:
            key = tuple(spec[k] for k in NETWORK_FIELDS)
            if key not in trained:
                trained[key] = train_run({**spec, "fold": fold}, data, args)
            record = {**trained[key], "experiment": spec["experiment"], "name": spec["name"]}
            records.append(record)
            print(
                f"{record['name']:>22} fold {fold}: {record['params']:>8,} params  train acc "
                f"{record['train_accuracy']:.4f}  val acc {record['val_accuracy']:.4f}  "
                f"AUC {record['roc_auc']:.4f}  grad norm layer 1 at init "
                f"{record['grad_norm_init'][0]:.2e}  {record['seconds']:.1f}s",
                flush=True,
            )
    summary = summarize(records)

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("json", "out_dir", "plots")}
    write_csv(out_dir / "runs.csv", records)
    for path in [out_dir / "runs.json", *([Path(args.json)] if args.json else [])]:
        write_json(path, records, summary, settings)
    plots = write_plots(records, summary, out_dir) if args.plots else []
    print(
        f"done: {len(records)} run{'' if len(records) == 1 else 's'} in "
        f"{time.perf_counter() - started:.0f}s; wrote "
        f"{', '.join(str(p) for p in [out_dir / 'runs.csv', out_dir / 'runs.json', *plots])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
