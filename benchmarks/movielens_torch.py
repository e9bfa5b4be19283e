"""MovieLens Wide & Deep in PyTorch: the twin of examples/movielens.py, to hold tinydeep's
figures against.

The same three models (wide, deep, wide_deep), the same two tasks (implicit, rating) and the
same protocol as examples/movielens.py, with only the model, its optimizers and the training
loop written in PyTorch. Everything else is tinydeep's, reached through the example, which
this script loads from its path (`example()`):

  - the settings: the example's constants (rates, L1, sizes, dropout, patience, epochs,
    negatives), so a change there changes both;
  - the data: tinydeep's MovieLens loader, the example's `split` (the same test and validation
    rows), MovieLensFeatures (the same inputs) and `targets`;
  - the choice of epochs: the example's own `Validation` callback, called after each epoch as
    tinydeep's fit calls it (stop after PATIENCE epochs without a better validation figure),
    then the example's refit: a fresh model trained on the training and validation ratings
    together (features and mean fitted on both) for the best epoch count;
  - the figures: the example's `predict` and `ranking` (the same 99 sampled negatives per
    liked test movie), and tinydeep.metrics on NumPy arrays.
The torch model offers the few members of a tinydeep Model those functions use
(`input_names`, `predict`, `stop_training`), so they run here unchanged.

The torch side, matching tinydeep's (tinydeep/models/wide_deep.py, tinydeep/layers/):
  wide       nn.EmbeddingBag(wide_size, 1, mode="sum") over the K ids, plus a bias; both start
             at zero (as FTRL's weights do)
  deep       an nn.Embedding(V, EMBEDDING_DIM) per column, uniform on [-0.05, 0.05] (Keras's
             and tinydeep's Embedding default), concatenated with the numeric columns, then
             Linear ReLU Dropout per hidden layer and Linear(1), without a bias when the wide
             part holds it; Linear weights Glorot (Xavier) uniform, biases zero (tinydeep's
             Dense)
  FTRL       FTRL-Proximal as a torch.optim.Optimizer (PyTorch has none), with the equations
             of tinydeep/optim.py's ftrl_update, on the wide part; torch's Adam, whose
             defaults are tinydeep's (betas 0.9, 0.999, eps 1e-8), on the deep part
What differs is the random numbers: initial weights, the order of the batches and the
dropout masks come from torch's generator, not tinydeep's, so the two engines agree to within
the spread between seeds, not digit for digit.

    python benchmarks/movielens_torch.py                     # both tasks, temporal split
    python benchmarks/movielens_torch.py --split random --task rating --seed 1 --json r.json

Read in this order: FTRL, WideAndDeep, build (one model and its optimizers), train_step and
fit, then the protocol (example, train_one, part_aucs, main). The first three need only torch and NumPy:
benchmarks/resnet_wide_deep.py's torch child imports them in a process where tinydeep must
not be loaded (importing tinydeep changes malloc's settings, and with them torch's speed), so
the example, and tinydeep with it, is loaded when main runs, not at import.

Left out: the example's --show-wide and --plot, sparse gradients (the wide table has 2,625
rows: a dense step costs nothing, and FTRL leaves the rows a batch did not touch as they are),
and torch.compile.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "movielens.py"

# ---- FTRL-Proximal ------------------------------------------------------------------------------


class FTRL(torch.optim.Optimizer):
    """FTRL(params, lr, l1=0, l2=0, lr_power=-0.5, initial_accumulator_value=0.1, beta=0):
    FTRL-Proximal (McMahan et al. 2013), tinydeep.optim.FTRL's update step for step (its
    defaults too). Per coordinate, with n the accumulator, z the linear term, q = -lr_power:

        n_new = n + g^2
        z    += g - (n_new^q - n^q) / lr * w
        n     = n_new
        w     = (clip(z, -l1, l1) - z) / (n^q / lr + beta / lr + 2 * l2)

    so w = 0 exactly when |z| <= l1. A dense gradient is fine: where g = 0, n and z stay as
    they are and w is recomputed from them, which gives back the weight it already holds (a
    weight that starts at 0 with z = 0 stays 0), so rows no batch touched do not move.
    """

    def __init__(
        self,
        params,
        lr: float,
        l1: float = 0.0,
        l2: float = 0.0,
        lr_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        beta: float = 0.0,
    ):
        checks = (  # (name, value, whether it is allowed, what is)
            ("lr", lr, lr > 0, "> 0"),  # it divides
            ("l1", l1, l1 >= 0, ">= 0"),
            ("l2", l2, l2 >= 0, ">= 0"),
            ("lr_power", lr_power, lr_power <= 0, "<= 0"),
            (
                "initial_accumulator_value",
                initial_accumulator_value,
                initial_accumulator_value >= 0,
                ">= 0",
            ),
            ("beta", beta, beta >= 0, ">= 0"),
        )
        for name, value, allowed, bound in checks:
            if not allowed:
                raise ValueError(f"FTRL: {name} must be {bound}, got {value!r}")
        defaults = {"lr": lr, "l1": l1, "l2": l2, "lr_power": lr_power, "beta": beta}
        super().__init__(params, defaults | {"initial": initial_accumulator_value})

    @torch.no_grad()
    def step(self, closure=None) -> None:
        """One update of every parameter that has a gradient, in place."""
        if closure is not None:
            raise ValueError("FTRL: step() takes no closure")
        for group in self.param_groups:
            lr, l1, l2, power = group["lr"], group["l1"], group["l2"], -group["lr_power"]
            for w in group["params"]:
                if w.grad is None:
                    continue
                g, state = w.grad, self.state[w]
                if not state:  # n from initial_accumulator_value, z from 0
                    state["n"] = torch.full_like(w, group["initial"])
                    state["z"] = torch.zeros_like(w)
                n, z = state["n"], state["z"]
                n_new = n + g * g
                if power == 0.5:  # the paper's rate, as tinydeep: sqrt is exact
                    root_new, root = n_new.sqrt(), n.sqrt()
                else:
                    root_new, root = n_new.pow(power), n.pow(power)
                z += g - (root_new - root) / lr * w
                n.copy_(n_new)
                quadratic = root_new / lr + (group["beta"] / lr + 2 * l2)
                w.copy_((z.clamp(-l1, l1) - z) / quadratic)


# ---- the model ----------------------------------------------------------------------------------


class WideAndDeep(nn.Module):
    """tinydeep.models.WideAndDeep in torch: one logit (N, 1) summed from a wide part and a
    deep part, either of which may be off (wide_size None, or no columns and no numeric).

    Inputs, by name (`input_names`, tinydeep's order): "wide" (N, K) int64 ids in
    [0, wide_size); one (N,) int64 column per vocab_sizes key; "numeric" (N, F) float32.
    """

    def __init__(
        self,
        wide_size: int | None,
        vocab_sizes: dict[str, int] | None,
        embedding_dim: int,
        hidden: tuple[int, ...],
        num_numeric: int,
        dropout: float,
    ):
        super().__init__()
        vocab_sizes = dict(vocab_sizes or {})
        has_deep = bool(vocab_sizes) or num_numeric > 0
        if wide_size is None and not has_deep:
            raise ValueError("WideAndDeep: both parts are off; give wide_size, or vocab_sizes")
        self.input_names = (
            (["wide"] if wide_size is not None else [])
            + list(vocab_sizes)
            + (["numeric"] if num_numeric else [])
        )
        self.stop_training = False  # what the example's Validation callback sets
        # ---- wide: the sum of the K ids' weights, and the one bias of the model
        self.wide = self.bias = None
        if wide_size is not None:
            self.wide = nn.EmbeddingBag(wide_size, 1, mode="sum")
            self.bias = nn.Parameter(torch.zeros(1))
            nn.init.zeros_(self.wide.weight)
        # ---- deep: embeddings and numeric columns, Linear ReLU Dropout, one logit
        self.embeddings = nn.ModuleDict(
            {column: nn.Embedding(size, embedding_dim) for column, size in vocab_sizes.items()}
        )
        for embedding in self.embeddings.values():
            nn.init.uniform_(embedding.weight, -0.05, 0.05)
        self.deep = self.deep_logit = None
        if has_deep:
            width, layers = len(vocab_sizes) * embedding_dim + num_numeric, []
            for units in hidden:
                layers += [nn.Linear(width, units), nn.ReLU()]
                layers += [nn.Dropout(dropout)] if dropout else []
                width = units
            self.deep = nn.Sequential(*layers)
            self.deep_logit = nn.Linear(width, 1, bias=wide_size is None)
            for linear in [*layers, self.deep_logit]:
                if isinstance(linear, nn.Linear):
                    nn.init.xavier_uniform_(linear.weight)  # torch's default is He-like
                    if linear.bias is not None:
                        nn.init.zeros_(linear.bias)

    def wide_parameters(self) -> list[nn.Parameter]:
        """The wide table (wide_size, 1) and the bias: FTRL's."""
        return [] if self.wide is None else [self.wide.weight, self.bias]

    def deep_parameters(self) -> list[nn.Parameter]:
        """The embeddings and the Linear layers: Adam's."""
        if self.deep is None:
            return []
        return [
            *self.embeddings.parameters(),
            *self.deep.parameters(),
            *self.deep_logit.parameters(),
        ]

    def parts(self, x: dict[str, torch.Tensor]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(wide logit, deep logit), each (N, 1) or None for a part that is off."""
        wide = deep = None
        if self.wide is not None:
            wide = self.wide(x["wide"]) + self.bias  # (N, K) ids -> (N, 1)
        if self.deep is not None:
            columns = [embed(x[c]) for c, embed in self.embeddings.items()]  # C of (N, E)
            if "numeric" in x:
                columns.append(x["numeric"])
            deep = self.deep_logit(self.deep(torch.cat(columns, dim=1)))  # (N, C*E + F) -> (N, 1)
        return wide, deep

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        wide, deep = self.parts(x)
        return deep if wide is None else wide if deep is None else wide + deep

    # ---- the methods of a tinydeep Model that the example's functions call -------------------

    def predict(self, inputs: list[np.ndarray], batch_size: int = 8192) -> np.ndarray:
        """The outputs (N, 1) as NumPy, in eval mode (no dropout) and without a graph; inputs
        in the order of input_names."""
        was_training = self.training
        self.eval()
        n, outputs = len(inputs[0]), []
        with torch.no_grad():
            for start in range(0, n, batch_size):
                chunk = [torch.from_numpy(a[start : start + batch_size]) for a in inputs]
                outputs.append(self(dict(zip(self.input_names, chunk))).numpy())
        self.train(was_training)
        return np.concatenate(outputs)


def build(kind: str, task: str, sizes: dict, settings, batch_size: int):
    """The `kind` model ("wide", "deep" or "wide_deep") and its optimizers, [FTRL] and/or
    [Adam], made as examples/movielens.py's `build` makes tinydeep's.

    sizes: {"wide_size", "vocab_sizes", "num_numeric"} (MovieLensFeatures' figures).
    settings: anything with the example's constants as attributes (EMBEDDING_DIM, HIDDEN,
        DROPOUT, WIDE_LR, WIDE_L1, BATCH_SIZE, DEEP_LR): the example module itself.
    """
    model = WideAndDeep(
        wide_size=sizes["wide_size"] if kind != "deep" else None,
        vocab_sizes=sizes["vocab_sizes"] if kind != "wide" else None,
        embedding_dim=settings.EMBEDDING_DIM,
        hidden=tuple(settings.HIDDEN),
        num_numeric=sizes["num_numeric"] if kind != "wide" else 0,
        dropout=settings.DROPOUT,
    )
    optimizers = []
    if kind != "deep":  # L1 per example: the loss is a batch mean
        l1 = settings.WIDE_L1 * settings.BATCH_SIZE / batch_size
        optimizers.append(FTRL(model.wide_parameters(), lr=settings.WIDE_LR[task], l1=l1))
    if kind != "wide":
        optimizers.append(torch.optim.Adam(model.deep_parameters(), lr=settings.DEEP_LR))
    return model, optimizers


def load_tinydeep_weights(model: WideAndDeep, weights: dict[str, np.ndarray]) -> None:
    """Overwrite the model's weights with a tinydeep WideAndDeep's, by its names
    (model.named_weights(): "wide/kernel", "embeddings/user/embeddings", "hidden/0/kernel",
    ...); Dense kernels (IN, UNITS) become Linear weights (UNITS, IN). Every name must match."""
    linears = [m for m in model.deep or [] if isinstance(m, nn.Linear)]
    targets = {"wide/kernel": model.wide and model.wide.weight, "wide/bias": model.bias}
    targets |= {f"embeddings/{c}/embeddings": e.weight for c, e in model.embeddings.items()}
    for i, linear in enumerate(linears):
        targets |= {f"hidden/{i}/kernel": linear.weight, f"hidden/{i}/bias": linear.bias}
    if model.deep_logit is not None:
        targets |= {"deep_logit/kernel": model.deep_logit.weight}
        targets |= {"deep_logit/bias": model.deep_logit.bias}
    targets = {name: t for name, t in targets.items() if t is not None}
    if set(targets) != set(weights):
        raise ValueError(
            f"load_tinydeep_weights: tinydeep's weights {sorted(weights)} do not match the "
            f"torch model's {sorted(targets)}"
        )
    with torch.no_grad():
        for name, array in weights.items():
            array = array.T if name.endswith("kernel") and not name.startswith("wide") else array
            if array.shape != tuple(targets[name].shape):
                raise ValueError(
                    f"load_tinydeep_weights: {name} has shape {array.shape}, the torch model's "
                    f"{tuple(targets[name].shape)}"
                )
            targets[name].copy_(torch.from_numpy(np.ascontiguousarray(array)))


def loss_function(task: str):
    """The example's losses: the logistic loss on logits, or the squared error; batch means."""
    if task == "implicit":
        return functional.binary_cross_entropy_with_logits
    return functional.mse_loss


def train_step(model, optimizers: list, loss_fn, x: dict, y: torch.Tensor) -> torch.Tensor:
    """One step on the batch x, y (N, 1): forward, backward, every optimizer; the loss."""
    loss = loss_fn(model(x), y)
    for optimizer in optimizers:
        optimizer.zero_grad()
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()
    return loss


def fit(
    model, optimizers: list, loss_fn, x: dict, y, epochs: int, batch_size: int, validation=None
):
    """tinydeep's fit in torch: each epoch a new order (torch's generator), a step per batch,
    then the callback `validation` (the example's Validation), which may stop the run."""
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y))
        for start in range(0, len(y), batch_size):
            index = order[start : start + batch_size]
            batch = {name: column[index] for name, column in x.items()}
            train_step(model, optimizers, loss_fn, batch, y[index])
        if validation is not None:
            validation.on_epoch_end(epoch)
            if model.stop_training:
                break


# ---- the protocol: the example's data, settings, early stopping and metrics ---------------------


def example():
    """examples/movielens.py as a module (tinydeep comes in with it)."""
    spec = importlib.util.spec_from_file_location("movielens_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sizes_of(features) -> dict:
    return {
        "wide_size": features.wide_size,
        "vocab_sizes": features.vocab_sizes,
        "num_numeric": features.num_numeric,
    }


def as_tensors(columns: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in columns.items()}


def train_one(ex, kind, task, data, features, rows, args) -> dict:
    """Choose the epochs of the `kind` model on rows["train"] and rows["val"], train a fresh
    one on both for that many epochs, and measure it on rows["test"]: the example's
    train_one, with torch's model and loop."""
    torch.manual_seed(args.seed)
    model, optimizers = build(kind, task, sizes_of(features), ex, args.batch_size)
    train, val, test = rows["train"], rows["val"], rows["test"]
    mean = float(ex.targets(data, train, "rating").mean()) if task == "rating" else 0.0
    y_val = ex.targets(data, val, task)

    def score(m):  # the validation figure; higher is better (the example's)
        out = ex.predict(m, features, data.user[val], data.item[val])
        if task == "implicit":
            return ex.metrics.roc_auc(y_val, out)
        return -ex.metrics.rmse(y_val, np.clip(out + mean, 1, 5))

    validation = ex.Validation(score, ex.PATIENCE)
    validation.set_model(model)
    x = as_tensors(features.transform(data.user[train], data.item[train]))
    y = torch.from_numpy(ex.targets(data, train, task) - mean)[:, None]  # (N, 1)
    loss_fn = loss_function(task)
    started = time.perf_counter()
    fit(model, optimizers, loss_fn, x, y, args.epochs, args.batch_size, validation)
    # The example's refit: a fresh model on the training and validation ratings together, for
    # the epochs validation chose, with the features and the mean fitted on both.
    both = np.union1d(train, val)
    features = ex.MovieLensFeatures(data, features.wide).fit(both)
    mean = float(ex.targets(data, both, "rating").mean()) if task == "rating" else 0.0
    torch.manual_seed(args.seed)
    model, optimizers = build(kind, task, sizes_of(features), ex, args.batch_size)
    x = as_tensors(features.transform(data.user[both], data.item[both]))
    y = torch.from_numpy(ex.targets(data, both, task) - mean)[:, None]
    fit(model, optimizers, loss_fn, x, y, validation.best_epoch, args.batch_size)
    seconds = time.perf_counter() - started
    out = ex.predict(model, features, data.user[test], data.item[test])
    y_test = ex.targets(data, test, task)
    result = {
        "epochs": validation.best_epoch,
        "validation": [v if task == "implicit" else -v for v in validation.curve],
        "train_seconds": seconds,
    }
    if task == "implicit":
        result |= {
            "auc": ex.metrics.roc_auc(y_test, out),
            "accuracy": ex.metrics.accuracy(y_test, out > 0),
        }
        result |= ex.ranking(model, data, features, test, args.seed)
        result |= part_aucs(ex, model, features, data, test, y_test)
    else:
        result["rmse"] = ex.metrics.rmse(y_test, np.clip(out + mean, 1, 5))
    return result


def part_aucs(ex, model, features, data, test, y) -> dict:
    """The test AUC of each part's logit alone, in a joint model (the example's part_aucs)."""
    if model.wide is None or model.deep is None:
        return {}
    model.eval()
    with torch.no_grad():
        wide, deep = model.parts(as_tensors(features.transform(data.user[test], data.item[test])))
    return {
        "auc_wide_part": ex.metrics.roc_auc(y, wide.numpy()[:, 0]),
        "auc_deep_part": ex.metrics.roc_auc(y, deep.numpy()[:, 0]),
    }


def parse_args(ex, argv=None) -> argparse.Namespace:
    """The example's flags that concern the models and the data, with its defaults, and
    --threads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="as examples/movielens.py's")
    parser.add_argument("--task", choices=(*ex.TASKS, "both"), default="both")
    parser.add_argument("--split", choices=ex.SPLITS, default="temporal")
    parser.add_argument("--models", default=",".join(ex.KINDS), help="of %(default)s")
    parser.add_argument("--wide", default=",".join(ex.WIDE), help="the wide part's columns")
    parser.add_argument("--epochs", type=int, default=ex.MAX_EPOCHS)
    parser.add_argument("--batch-size", type=int, default=ex.BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=ex.SEED, help="weights, batches, negatives")
    parser.add_argument("--threads", type=int, help="torch's threads (default: torch's choice)")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.wide = tuple(c for c in args.wide.split(",") if c)
    for m in args.models:
        if m not in ex.KINDS:
            parser.error(f"--models: {m!r} is not one of {','.join(ex.KINDS)}")
    for flag in ("epochs", "batch_size", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    return args


def main(argv=None) -> int:
    ex = example()
    args = parse_args(ex, argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        data = ex.load_movielens_100k(args.data_dir)
    except (ex.DownloadError, FileNotFoundError) as error:
        print(f"movielens_torch: cannot load MovieLens 100K:\n{ex.explain(error)}", file=sys.stderr)
        return 1
    everything = np.arange(len(data.rating))  # the example's main, line for line
    fit_rows, test = ex.split(data, args.split, everything, args.seed, 0.2)
    train, val = ex.split(data, args.split, fit_rows, args.seed, 0.1)
    rows = {"train": train, "val": val, "test": test}
    features = ex.MovieLensFeatures(data, args.wide).fit(train)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"{data!r}; {args.split} split: {len(train)} training, {len(val)} validation, "
        f"{len(test)} test ratings; liked (>= {ex.LIKED}): "
        f"{np.mean(data.rating[train] >= ex.LIKED):.1%} of training, "
        f"{np.mean(data.rating[test] >= ex.LIKED):.1%} of test; wide part: "
        f"{', '.join(args.wide)} ({features.wide_size} ids)"
    )
    tasks = ex.TASKS if args.task == "both" else (args.task,)
    results: dict = {}
    for task in tasks:
        results[task] = {}
        for kind in args.models:
            r = train_one(ex, kind, task, data, features, rows, args)
            results[task][kind] = r
            print(result_line(task, kind, r))
        if task == "rating":
            mean = ex.targets(data, train, "rating").mean()
            y = ex.targets(data, test, "rating")
            baseline = ex.metrics.rmse(y, np.full(len(test), mean))
            print(f"rating   (predicting the training mean: RMSE {baseline:.4f})")
    if args.json:
        summary = {**results, "split": args.split, "wide": list(args.wide)}
        summary["engine"] = {"torch": torch.__version__, "threads": torch.get_num_threads()}
        with open(args.json, "w") as file:
            json.dump(summary, file, indent=2)
    return 0


def result_line(task: str, kind: str, r: dict) -> str:
    """One model's line, as examples/movielens.py prints it."""
    if task == "rating":
        return (
            f"rating   {kind:9s} RMSE {r['rmse']:.4f}  "
            f"{r['epochs']} epochs, {r['train_seconds']:.1f} s"
        )
    parts = (
        f"  (alone: wide part {r['auc_wide_part']:.4f}, deep part {r['auc_deep_part']:.4f})"
        if "auc_wide_part" in r
        else ""
    )
    return (
        f"implicit {kind:9s} AUC {r['auc']:.4f}  accuracy {r['accuracy']:.4f}  "
        f"HR@10 {r['hr@10']:.4f}  NDCG@10 {r['ndcg@10']:.4f}  "
        f"{r['epochs']} epochs, {r['train_seconds']:.1f} s{parts}"
    )


if __name__ == "__main__":
    sys.exit(main())
