"""Wide & Deep (Cheng et al., 2016) on the UCI Census Income (Adult) data, from scratch.

Three models from one class, tinydeep.models.WideAndDeep, each trained on the official
training split (32,561 people) and evaluated on the official test split (16,281):

  wide       a sparse linear model over one-hot and crossed ids (memorization), FTRL
  deep       embeddings of the eight categorical columns plus the standardized numeric ones,
             through Dense/ReLU layers (generalization), Adam
  wide_deep  both, their logits summed under one logistic loss and trained jointly: FTRL on
             the wide part and Adam on the deep part, in the same step

The features follow TensorFlow's census tutorial (tinydeep/data/features.py): vocabularies and
standardization fitted on the training split only, age buckets, and the crossed columns
education x occupation, age buckets x education x occupation and native country x occupation
hashed into 1,000 buckets each.

    python examples/wide_and_deep.py [--data-dir DIR] [--epochs 8] [--json results.json]

DIR holds adult/ or is the folder with adult.data and adult.test; missing files are downloaded
from UCI. With no network either, it says where to get them and stops (exit status 1).

Read top to bottom: settings, data, one model's training (train_one), main.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import tinydeep as td
from tinydeep import metrics, optim
from tinydeep.data import DownloadError, WideDeepFeatures, load_adult
from tinydeep.data.offline import explain
from tinydeep.models import WideAndDeep

# ---- settings (each one is also a command-line flag) -----------------------------------------

EPOCHS = 8
BATCH_SIZE = 256
WIDE_LR = 0.05  # FTRL on the wide part (its per-coordinate rates shrink as 1/sqrt(sum g^2))
DEEP_LR = 1e-3  # Adam on the deep part
EMBEDDING_DIM = 8
HIDDEN = (100, 50)  # the tutorial's deep part
SEED = 0
KINDS = ("wide", "deep", "wide_deep")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder holding adult/, or adult.data and adult.test themselves "
        "(default: $TINYDEEP_DATA, else ~/.cache/tinydeep)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=EPOCHS,
        help="passes over the training rows, per model (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=BATCH_SIZE, help="rows per step (default: %(default)s)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=SEED,
        help="picks the initial weights and the batch order (default: %(default)s)",
    )
    parser.add_argument("--json", help="write the three models' figures here (default: none)")
    return parser.parse_args(argv)


# ---- one model -------------------------------------------------------------------------------


def train_one(
    kind: str,
    features: WideDeepFeatures,
    train: dict,
    y_train: np.ndarray,
    test: dict,
    y_test: np.ndarray,
    args,
) -> dict:
    """Train the `kind` model; its test accuracy, precision, recall, ROC-AUC and seconds."""
    td.manual_seed(args.seed)
    model = WideAndDeep(
        wide_size=features.wide_size if kind != "deep" else None,
        vocab_sizes=features.vocab_sizes if kind != "wide" else None,
        embedding_dim=EMBEDDING_DIM,
        hidden=HIDDEN,
        num_numeric=train["numeric"].shape[1] if kind != "wide" else 0,
    )
    x_train = model.input_list({name: train[name] for name in model.input_names})
    x_test = model.input_list({name: test[name] for name in model.input_names})
    model([x[:2] for x in x_train])  # build the weights, so the optimizers can see them
    optimizers = []
    if kind != "deep":
        optimizers.append(optim.FTRL(model.wide_parameters(), lr=WIDE_LR))
    if kind != "wide":
        optimizers.append(optim.Adam(model.deep_parameters(), lr=DEEP_LR))
    model.compile(optimizer=optimizers, loss="binary_cross_entropy_with_logits")

    started = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    seconds = time.perf_counter() - started
    logits = model.predict(x_test, batch_size=4096)[:, 0]
    probabilities = 1 / (1 + np.exp(-logits))
    return {
        "accuracy": metrics.accuracy(y_test, probabilities),
        "precision": metrics.precision(y_test, probabilities),
        "recall": metrics.recall(y_test, probabilities),
        "auc": metrics.roc_auc(y_test, logits),
        "train_seconds": seconds,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        train_columns, y_train = load_adult(args.data_dir, "train")
        test_columns, y_test = load_adult(args.data_dir, "test")
    except (DownloadError, FileNotFoundError) as error:
        print(f"wide_and_deep: cannot load the Adult data:\n{explain(error)}", file=sys.stderr)
        return 1
    features = WideDeepFeatures().fit(train_columns)  # fitted on the training split only
    train, test = features.transform(train_columns), features.transform(test_columns)
    print(
        f"Adult: {len(y_train)} training and {len(y_test)} test rows, "
        f"{y_train.mean():.1%} / {y_test.mean():.1%} earning >50K; wide part: "
        f"{features.wide_size} ids, {train['wide'].shape[1]} per row; deep part: "
        f"{len(features.vocab_sizes)} embedded columns + {train['numeric'].shape[1]} numeric"
    )

    results = {}
    for kind in KINDS:
        results[kind] = train_one(
            kind, features, train, y_train.astype(np.float32), test, y_test, args
        )
    print(
        f"\n{'model':10s} {'accuracy':>9s} {'precision':>10s} {'recall':>8s} {'ROC-AUC':>8s} "
        f"{'train s':>8s}"
    )
    for kind, r in results.items():
        print(
            f"{kind:10s} {r['accuracy']:9.4f} {r['precision']:10.4f} {r['recall']:8.4f} "
            f"{r['auc']:8.4f} {r['train_seconds']:8.1f}"
        )
    total = sum(r["train_seconds"] for r in results.values())
    print(
        f"official test split; {args.epochs} epoch{'' if args.epochs == 1 else 's'} each, "
        f"batch {args.batch_size}; "
        f"{total:.1f} s of training in all"
    )
    if args.json:
        summary = {
            kind: {k: v for k, v in r.items() if k != "train_seconds"}
            for kind, r in results.items()
        }
        summary["train_seconds"] = {kind: r["train_seconds"] for kind, r in results.items()}
        with open(args.json, "w") as file:
            json.dump(summary, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
