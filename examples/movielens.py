"""Wide & Deep as the recommender it was made for: MovieLens 100K (GroupLens), from scratch.

Three models from one class, tinydeep.models.WideAndDeep, on the same split of the 100,000
ratings, for two tasks:

  implicit  did the user like the movie (rating >= 4)? Logistic loss; ROC-AUC, accuracy, and
            HR@10 / NDCG@10 of each liked test movie ranked among 99 movies that user never
            rated (the protocol of He et al., 2017, "Neural Collaborative Filtering")
  rating    the rating itself: squared loss on the rating minus the training mean; RMSE

  wide       a sparse linear model over ids (tinydeep/data/movielens_features.py): by default
             one weight per user and per movie (memorization), FTRL with L1
  deep       embeddings of user, movie, occupation, gender and age group, with the movie's
             genres, release year and popularity, through Dense(256)-Dense(128) with dropout
             (generalization), Adam
  wide_deep  both, their logits summed and trained jointly in each step

The split (--split): "temporal" (the default) holds out each user's last 20% of ratings by
time, the honest question "what will this user think next?"; "random" holds out 20% of all
ratings, the classic matrix-factorization benchmark; "last" holds out each user's latest
rating (the NCF papers' leave-one-out). The last 10% of the training ratings (by the same
rule) are set aside for validation: each model trains until the validation figure (AUC or
RMSE) has not improved for two epochs; then a fresh model is trained on the training and
validation ratings together for the best epoch count (the refit: on the temporal split the
validation ratings are the latest, the closest to the test ones). The test split is read
once, at the end.

Settings, and why (measured on the temporal split; docs/movielens.md has the tables):
  - The wide part holds ids only, no crosses: every genre cross tried (user, occupation, age
    and gender, each x genre; --wide) lowered the test AUC of the wide and the joint model,
    on the temporal and the random split alike.
  - FTRL's rate is high (3.0 for the logistic loss, 0.3 for the squared one) because the
    loss is a batch mean: a single id's gradient is its share of the batch, about 1/256.
    L1 (1e-3 per example, scaled the same way) zeroes the weights of ids that carry nothing.
  - The deep part overfits its user and movie embeddings within three epochs without
    dropout; dropout 0.5 on both hidden layers lets it keep improving.

    python examples/movielens.py                         # both tasks, temporal split, ~3 min
    python examples/movielens.py --split random --task rating
    python examples/movielens.py --plot curves.png --json results.json

DIR (--data-dir, else $TINYDEEP_DATA, else ~/.cache/tinydeep) holds movielens-100k/ (or
ml-100k/, or is that folder) with the files of ml-100k.zip, or the zip itself; missing, the
zip is downloaded from GroupLens and checked. With no network either, it says where to get
it and stops (exit status 1).

Read top to bottom: settings, data (splits and features), one model (build, train_one), the
metrics, main.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import tinydeep as td
from tinydeep import metrics, optim
from tinydeep.callbacks import Callback
from tinydeep.data import DownloadError
from tinydeep.data.movielens import (
    MovieLens,
    leave_last_one_out,
    load_movielens_100k,
    random_split,
    sample_negatives,
    temporal_split,
)
from tinydeep.data.movielens_features import WIDE, WIDE_COLUMNS, MovieLensFeatures
from tinydeep.data.offline import explain
from tinydeep.models import WideAndDeep

# ---- settings (most are also command-line flags) ---------------------------------------------

TASKS = ("implicit", "rating")
KINDS = ("wide", "deep", "wide_deep")
SPLITS = ("temporal", "random", "last")
LIKED = 4  # a rating of 4 or 5 is a "like"
MAX_EPOCHS = 15
PATIENCE = 2  # epochs without a better validation figure before stopping
BATCH_SIZE = 256
WIDE_LR = {"implicit": 3.0, "rating": 0.3}  # FTRL
WIDE_L1 = 1e-3  # FTRL, per example of a batch of BATCH_SIZE (scaled with the batch)
DEEP_LR = 1e-3  # Adam
EMBEDDING_DIM = 32
HIDDEN = (256, 128)
DROPOUT = 0.5
NEGATIVES = 99  # sampled per liked test movie, for HR@10 and NDCG@10
TOP_K = 10
SEED = 0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder holding movielens-100k/, or the ml-100k files or zip themselves "
        "(default: $TINYDEEP_DATA, else ~/.cache/tinydeep)",
    )
    parser.add_argument(
        "--task",
        choices=(*TASKS, "both"),
        default="both",
        help="implicit (liked or not), rating (RMSE), or both (default: %(default)s)",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="temporal",
        help="temporal (each user's last 20%% by time), random (20%% of all ratings) or last "
        "(each user's latest rating) (default: %(default)s)",
    )
    parser.add_argument(
        "--models", default=",".join(KINDS), help="comma-separated (default: %(default)s)"
    )
    parser.add_argument(
        "--wide",
        default=",".join(WIDE),
        help=f"the wide part's columns, comma-separated, of {', '.join(WIDE_COLUMNS)} "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=MAX_EPOCHS,
        help="most epochs per model; early stopping usually ends sooner (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=BATCH_SIZE, help="rows per step (default: %(default)s)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=SEED,
        help="picks the weights, the batches, dropout and the negatives (default: %(default)s)",
    )
    parser.add_argument(
        "--show-wide",
        type=int,
        default=3,
        metavar="K",
        help="print the K largest and smallest weights of each column of the joint model's "
        "wide part (default: %(default)s)",
    )
    parser.add_argument(
        "--plot", help="write the validation curves to this image, with matplotlib (default: none)"
    )
    parser.add_argument("--json", help="write every figure here (default: none)")
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.wide = tuple(c for c in args.wide.split(",") if c)
    for m in args.models:
        if m not in KINDS:
            parser.error(f"--models: {m!r} is not one of {','.join(KINDS)}")
    for c in args.wide:
        if c not in WIDE_COLUMNS or args.wide.count(c) > 1:
            parser.error(f"--wide: {c!r} is not one of {','.join(WIDE_COLUMNS)}, or repeated")
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be at least 1")
    return args


# ---- data -------------------------------------------------------------------------------------


def split(data: MovieLens, how: str, rows: np.ndarray, seed: int, fraction: float):
    """(kept, held out): sub-arrays of `rows`, split as `how` says."""
    if how == "random":
        kept, held = random_split(len(rows), fraction, seed)
    elif how == "temporal":
        kept, held = temporal_split(data.user[rows], data.timestamp[rows], fraction)
    else:
        kept, held = leave_last_one_out(data.user[rows], data.timestamp[rows])
    return rows[kept], rows[held]


def inputs(model, columns: dict) -> list:
    """The model's inputs, in its order, from the features' columns (it may use only some)."""
    return [columns[name] for name in model.input_names]


def targets(data: MovieLens, rows: np.ndarray, task: str) -> np.ndarray:
    if task == "implicit":
        return (data.rating[rows] >= LIKED).astype(np.float32)
    return data.rating[rows].astype(np.float32)


# ---- one model ----------------------------------------------------------------------------------


def build(kind: str, features: MovieLensFeatures, task: str, batch_size: int):
    """The `kind` model, built, with one optimizer per part (the paper's training)."""
    model = WideAndDeep(
        wide_size=features.wide_size if kind != "deep" else None,
        vocab_sizes=features.vocab_sizes if kind != "wide" else None,
        embedding_dim=EMBEDDING_DIM,
        hidden=HIDDEN,
        num_numeric=features.num_numeric if kind != "wide" else 0,
        dropout=DROPOUT,
    )
    model(inputs(model, features.transform(np.zeros(2, int), np.zeros(2, int))))  # build
    optimizers = []
    if kind != "deep":
        # L1 per example: the loss is a batch mean, so FTRL sees gradients / batch_size
        optimizers.append(
            optim.FTRL(
                model.wide_parameters(), lr=WIDE_LR[task], l1=WIDE_L1 * BATCH_SIZE / batch_size
            )
        )
    if kind != "wide":
        optimizers.append(optim.Adam(model.deep_parameters(), lr=DEEP_LR))
    loss = "binary_cross_entropy_with_logits" if task == "implicit" else "mse"
    model.compile(optimizer=optimizers, loss=loss)
    return model


class Validation(Callback):
    """After each epoch: the validation figure (AUC, or RMSE), kept as a curve; stops the run
    when it has not improved for `patience` epochs. best_epoch: the best one, counted from 1."""

    def __init__(self, score, patience: int):
        self.score, self.patience = score, patience  # score(model) -> higher is better
        self.curve, self.best, self.best_epoch = [], -np.inf, 0

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        value = self.score(self.model)
        self.curve.append(value)
        if value > self.best:
            self.best, self.best_epoch = value, epoch + 1
        elif epoch + 1 - self.best_epoch >= self.patience:
            self.model.stop_training = True


def predict(model, features: MovieLensFeatures, user, item) -> np.ndarray:
    """The model's outputs (N,) for the pairs (user, item)."""
    x = inputs(model, features.transform(user, item))
    return model.predict(x, batch_size=8192)[:, 0]


def train_one(kind, task, data, features, rows, args) -> dict:
    """Choose the epochs of the `kind` model on rows["train"] and rows["val"], train it again
    on both for that many epochs, and measure it on rows["test"]."""
    td.manual_seed(args.seed)
    model = build(kind, features, task, args.batch_size)
    train, val, test = rows["train"], rows["val"], rows["test"]
    mean = float(targets(data, train, "rating").mean()) if task == "rating" else 0.0
    y_val = targets(data, val, task)

    def score(m):  # the validation figure; higher is better
        out = predict(m, features, data.user[val], data.item[val])
        if task == "implicit":
            return metrics.roc_auc(y_val, out)
        return -metrics.rmse(y_val, np.clip(out + mean, 1, 5))

    validation = Validation(score, PATIENCE)
    x = inputs(model, features.transform(data.user[train], data.item[train]))
    started = time.perf_counter()
    model.fit(
        x,
        targets(data, train, task) - mean,
        epochs=args.epochs,
        batch_size=args.batch_size,
        callbacks=[validation],
        verbose=0,
    )
    # Refit: a fresh model on the training and validation ratings together, for the number of
    # epochs validation chose. On the temporal split the validation ratings are each user's
    # latest training ratings, the closest in time to the test ones: too good to leave out.
    both = np.union1d(train, val)
    features = MovieLensFeatures(data, features.wide).fit(both)
    mean = float(targets(data, both, "rating").mean()) if task == "rating" else 0.0
    td.manual_seed(args.seed)
    model = build(kind, features, task, args.batch_size)
    x = inputs(model, features.transform(data.user[both], data.item[both]))
    y = targets(data, both, task) - mean
    model.fit(x, y, epochs=validation.best_epoch, batch_size=args.batch_size, verbose=0)
    seconds = time.perf_counter() - started
    out = predict(model, features, data.user[test], data.item[test])
    y = targets(data, test, task)
    result = {
        "epochs": validation.best_epoch,
        "validation": [v if task == "implicit" else -v for v in validation.curve],
        "train_seconds": seconds,
    }
    if task == "implicit":
        result |= {"auc": metrics.roc_auc(y, out), "accuracy": metrics.accuracy(y, out > 0)}
        result |= ranking(model, data, features, test, args.seed)
        result |= part_aucs(model, features, data, test, y)
    else:
        result["rmse"] = metrics.rmse(y, np.clip(out + mean, 1, 5))
    result["model"] = model
    return result


# ---- the metrics beyond one number per row -----------------------------------------------------


def ranking(model, data, features, test, seed) -> dict:
    """HR@10 and NDCG@10: each liked test movie among NEGATIVES movies its user never rated."""
    liked = test[data.rating[test] >= LIKED]
    users, items = data.user[liked], data.item[liked]
    negatives = sample_negatives(data.user, data.item, data.num_items, users, NEGATIVES, seed)
    candidates = np.concatenate([items[:, None], negatives], axis=1)  # (Q, 1 + NEGATIVES)
    queries = np.repeat(users, candidates.shape[1])
    scores = predict(model, features, queries, candidates.reshape(-1))
    scores = scores.reshape(candidates.shape)
    return {"hr@10": metrics.hit_rate(scores, TOP_K), "ndcg@10": metrics.ndcg(scores, TOP_K)}


def part_aucs(model, features, data, test, y) -> dict:
    """The test AUC of each part's logit alone, in a joint model (what each part knows)."""
    if model.wide is None or model.deep_logit is None:
        return {}
    x = inputs(model, features.transform(data.user[test], data.item[test]))
    with td.no_grad():
        wide, deep = model.parts([td.Tensor(a) for a in x])
    return {
        "auc_wide_part": metrics.roc_auc(y, wide.numpy()[:, 0]),
        "auc_deep_part": metrics.roc_auc(y, deep.numpy()[:, 0]),
    }


def show_wide(model, features, k: int) -> None:
    """The k largest and smallest weights of each wide column, by what they stand for."""
    w = model.wide.kernel.numpy()[:, 0]
    print(f"\nwide part: {int((w != 0).sum())} of {len(w)} weights nonzero (L1)")
    for column, (start, stop) in features.wide_ranges.items():
        order = start + np.argsort(w[start:stop])
        shown = [*order[::-1][:k], *order[:k][::-1]]  # largest first, smallest last
        names = features.wide_id_names(shown)
        print(f"  {column}: " + ", ".join(f"{n} {w[i]:+.2f}" for n, i in zip(names, shown)))


def plot(results: dict, path: str, split_name: str) -> None:
    """The validation curves of every model and task, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for kind, r in results[task].items():
            epochs = np.arange(1, len(r["validation"]) + 1)
            ax.plot(epochs, r["validation"], marker="o", label=kind)
            ax.plot(r["epochs"], r["validation"][r["epochs"] - 1], "k*", markersize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation ROC-AUC" if task == "implicit" else "validation RMSE")
        ax.set_title(f"{task}, {split_name} split (*: the epochs refit)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# ---- main ---------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        data = load_movielens_100k(args.data_dir)
    except (DownloadError, FileNotFoundError) as error:
        print(f"movielens: cannot load MovieLens 100K:\n{explain(error)}", file=sys.stderr)
        return 1
    everything = np.arange(len(data.rating))
    fit_rows, test = split(data, args.split, everything, args.seed, 0.2)
    train, val = split(data, args.split, fit_rows, args.seed, 0.1)
    rows = {"train": train, "val": val, "test": test}
    features = MovieLensFeatures(data, args.wide).fit(train)
    print(
        f"{data!r}; {args.split} split: {len(train)} training, {len(val)} validation, "
        f"{len(test)} test ratings; liked (>= {LIKED}): {np.mean(data.rating[train] >= LIKED):.1%}"
        f" of training, {np.mean(data.rating[test] >= LIKED):.1%} of test; wide part: "
        f"{', '.join(args.wide)} ({features.wide_size} ids)"
    )
    tasks = TASKS if args.task == "both" else (args.task,)
    results: dict = {}
    for task in tasks:
        results[task] = {}
        for kind in args.models:
            r = train_one(kind, task, data, features, rows, args)
            results[task][kind] = r
            if task == "implicit":
                parts = (
                    f"  (alone: wide part {r['auc_wide_part']:.4f}, deep part "
                    f"{r['auc_deep_part']:.4f})"
                    if "auc_wide_part" in r
                    else ""
                )
                print(
                    f"implicit {kind:9s} AUC {r['auc']:.4f}  accuracy {r['accuracy']:.4f}  "
                    f"HR@10 {r['hr@10']:.4f}  NDCG@10 {r['ndcg@10']:.4f}  "
                    f"{plural(r['epochs'], 'epoch')}, {r['train_seconds']:.1f} s{parts}"
                )
            else:
                print(
                    f"rating   {kind:9s} RMSE {r['rmse']:.4f}  "
                    f"{plural(r['epochs'], 'epoch')}, {r['train_seconds']:.1f} s"
                )
        if task == "rating":
            mean = targets(data, train, "rating").mean()
            baseline = metrics.rmse(targets(data, test, "rating"), np.full(len(test), mean))
            print(f"rating   (predicting the training mean: RMSE {baseline:.4f})")
    joint = results.get("implicit", {}).get("wide_deep")
    if joint and args.show_wide:
        show_wide(joint["model"], features, args.show_wide)
    if args.plot:
        plot(results, args.plot, args.split)
    if args.json:
        summary = {
            task: {kind: {k: v for k, v in r.items() if k != "model"} for kind, r in rs.items()}
            for task, rs in results.items()
        }
        summary["split"], summary["wide"] = args.split, list(args.wide)
        with open(args.json, "w") as file:
            json.dump(summary, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
