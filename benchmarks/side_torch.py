"""The torch side of benchmarks/resnet_wide_deep.py: what its torch children build and run.

Imported only in a child process that times PyTorch; tinydeep, its kernels and Numba are
blocked there. Each model is torch's twin of tinydeep's, built from the `spec` dict the parent
sends, and it starts from tinydeep's initial weights and batch, read from the .npz that the
workload's first tinydeep child wrote (benchmarks/side_tinydeep.py: save_start). Read in this
order: the ResNet (TorchBlock, TorchResNet, load_resnet_weights), Wide & Deep (TorchWideDeep,
load_wide_deep_weights), MovieLens (movielens_step: benchmarks/movielens_torch.py's twin of
examples/movielens.py's model), then `make_step`, the one function the child calls.

Engines: "torch" (NCHW, its default layout; Wide & Deep with dense Adam on its embeddings, the
same maths as tinydeep), "torch-cl" (channels_last memory format), "torch-sparse" (Wide & Deep
the idiomatic sparse way: nn.Embedding(sparse=True) + SparseAdam, which moves only the rows a
batch touches, so it is another optimizer after the first step).

Layouts: tinydeep's Conv2D kernel (KH, KW, C, F) is torch's Conv2d weight (F, C, KH, KW); a
Dense kernel (IN, UNITS) is a Linear weight (UNITS, IN); images NHWC become NCHW.
"""

from __future__ import annotations

import itertools
import json
import types
import warnings
from collections.abc import Callable

import movielens_torch  # torch and NumPy only at import: tinydeep stays out of this process
import numpy as np
import torch
from torch import nn
from torch.nn import functional

# torch's Adagrad on a sparse gradient warns, once, that it skips its invariant checks.
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

# tinydeep's weight names -> torch's, and tinydeep's kernel axes in torch's order.
TORCH_NAMES = {
    "kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
TO_TORCH_AXES = {2: (1, 0), 4: (3, 2, 0, 1)}  # Dense (IN, UNITS); Conv2D (KH, KW, C, F)


def load_start(path: str) -> tuple[dict[str, np.ndarray], list[np.ndarray], np.ndarray]:
    """tinydeep's initial weights by name (in its model's order), the inputs and the labels."""
    with np.load(path, allow_pickle=False) as f:
        weights = {k.removeprefix("weights/"): f[k] for k in f.files if k.startswith("weights/")}
        inputs = [f[k] for k in f.files if k.startswith("inputs/")]
        return weights, inputs, f["labels"]


def copy_into(target: torch.Tensor, array: np.ndarray, name: str) -> None:
    """Overwrite a torch weight (or running statistic) with tinydeep's array, shapes checked."""
    if array.shape != tuple(target.shape):
        raise RuntimeError(f"{name} {array.shape} does not fit torch's {tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(torch.from_numpy(np.ascontiguousarray(array)))


# ---- ResNet ----------------------------------------------------------------------------------


class TorchBlock(nn.Module):
    """ResidualBlock of tinydeep/models/resnet.py in torch (NCHW), zero-pad shortcut."""

    def __init__(self, channels: int, filters: int, stride: int, bn: dict) -> None:
        super().__init__()
        # TF's "same" at stride 2 on an even size pads 0 before and 1 after (registered first:
        # no weights, so the weight order stays conv1, bn1, conv2, bn2 as in tinydeep).
        self.pad = nn.ZeroPad2d((0, 1, 0, 1)) if stride == 2 else nn.Identity()
        self.conv1 = nn.Conv2d(
            channels, filters, 3, stride, padding=0 if stride == 2 else 1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(filters, **bn)
        self.conv2 = nn.Conv2d(filters, filters, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(filters, **bn)
        self.stride, self.extra = stride, filters - channels

    def forward(self, x):
        y = functional.relu(self.bn1(self.conv1(self.pad(x))))
        y = self.bn2(self.conv2(y))
        if self.stride != 1 or self.extra:  # option A: subsample, zero channels around
            x = x[:, :, :: self.stride, :: self.stride]
            x = functional.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return functional.relu(y + x)


class TorchResNet(nn.Module):
    """tinydeep's ResNet(depth) in torch: stem, 3 stages of n blocks, pool, head. Batch norm
    with tinydeep's settings: its momentum m is torch's 1 - m."""

    def __init__(self, spec: dict, width: int = 16) -> None:
        super().__init__()
        n = (spec["depth"] - 2) // 6
        bn = {"momentum": 1 - spec["bn_momentum"], "eps": spec["bn_epsilon"]}
        self.stem = nn.Conv2d(spec["image"][2], width, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(width, **bn)
        blocks, channels = [], width
        for stage in range(3):
            for i in range(n):
                filters = width * 2**stage
                blocks.append(TorchBlock(channels, filters, 2 if stage and i == 0 else 1, bn))
                channels = filters
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, spec["classes"])

    def forward(self, x):
        x = functional.relu(self.stem_bn(self.stem(x)))
        return self.head(self.blocks(x).mean((2, 3)))


def load_resnet_weights(module: TorchResNet, weights: dict[str, np.ndarray]) -> None:
    """Pair tinydeep's layers with weights with torch's Conv2d, BatchNorm2d and Linear, in
    order, and copy each weight by name, kernels transposed to torch's layout."""
    by_layer: dict[str, dict[str, np.ndarray]] = {}
    for path, array in weights.items():
        layer, name = path.rsplit("/", 1)
        by_layer.setdefault(layer, {})[name] = array
    theirs = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]
    if len(theirs) != len(by_layer):
        raise RuntimeError(f"tinydeep has {len(by_layer)} layers with weights, torch {len(theirs)}")
    for (layer, named), m in zip(by_layer.items(), theirs):
        for name, array in named.items():
            if name == "kernel":
                array = array.transpose(TO_TORCH_AXES[array.ndim])
            copy_into(getattr(m, TORCH_NAMES[name]), array, f"{layer}/{name}")


# ---- Wide & Deep -----------------------------------------------------------------------------


class TorchWideDeep(nn.Module):
    """tinydeep's Wide & Deep in torch; `sparse` makes the deep embeddings' gradients sparse.
    The wide part is nn.EmbeddingBag(mode="sum", sparse=True), stepped by Adagrad."""

    def __init__(self, spec: dict, sparse: bool) -> None:
        super().__init__()
        dim = spec["embed_dim"]
        self.embeddings = nn.ModuleList(nn.Embedding(v, dim, sparse=sparse) for v in spec["vocabs"])
        self.wide = nn.EmbeddingBag(spec["wide_rows"], 1, mode="sum", sparse=True)
        sizes = (len(spec["vocabs"]) * dim + spec["numeric"], *spec["units"])
        deep = []
        for n_in, n_out in itertools.pairwise(sizes):
            deep += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.deep = nn.Sequential(*deep, nn.Linear(sizes[-1], 1))

    def forward(self, inputs):
        cats, numeric, wide_ids = inputs
        columns = [embed(cats[:, j]) for j, embed in enumerate(self.embeddings)]
        return self.deep(torch.cat([*columns, numeric], 1)) + self.wide(wide_ids)


def load_wide_deep_weights(module: TorchWideDeep, weights: dict[str, np.ndarray]) -> None:
    """Copy every weight by tinydeep's name (Dense kernels (IN, OUT) transposed)."""
    targets = {"wide": module.wide.weight}
    for j, embedding in enumerate(module.embeddings):
        targets[f"embeddings/{j}/embeddings"] = embedding.weight
    linears = [m for m in module.deep if isinstance(m, nn.Linear)]
    for i, linear in enumerate(linears):
        targets[f"deep/{i}/kernel"], targets[f"deep/{i}/bias"] = linear.weight, linear.bias
    if set(targets) != set(weights):
        raise RuntimeError(f"weights {sorted(weights)} do not match torch's {sorted(targets)}")
    for name, array in weights.items():
        copy_into(targets[name], array.T if name.endswith("kernel") else array, name)


def wide_deep_optimizers(module: TorchWideDeep, spec: dict, sparse: bool) -> list:
    """Adagrad on the wide table; Adam on the rest, or SparseAdam on the embeddings."""
    embeddings, deep = list(module.embeddings.parameters()), list(module.deep.parameters())
    wide = torch.optim.Adagrad(module.wide.parameters(), lr=spec["lr_wide"])
    if sparse:
        return [
            wide,
            torch.optim.SparseAdam(embeddings, lr=spec["lr_deep"]),
            torch.optim.Adam(deep, lr=spec["lr_deep"]),
        ]
    return [wide, torch.optim.Adam(embeddings + deep, lr=spec["lr_deep"])]


# ---- MovieLens --------------------------------------------------------------------------------


def movielens_step(spec: dict) -> Callable[[], float]:
    """benchmarks/movielens_torch.py's spec["kind"] model and optimizers (FTRL, Adam), built
    with the example's settings that tinydeep's first child saved ("meta"), from its weights,
    on its batches in the same order; the first spec["plain_steps"] steps in eval() (no
    dropout), as tinydeep's (benchmarks/side_tinydeep.py: movielens_step)."""
    weights, inputs, labels = load_start(spec["weights"])
    with np.load(spec["weights"], allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
    settings = types.SimpleNamespace(**meta["settings"])
    model, steppers = movielens_torch.build(
        spec["kind"], spec["task"], meta["sizes"], settings, spec["batch"]
    )
    if model.input_names != meta["input_names"]:
        raise RuntimeError(
            f"input order {model.input_names} is not tinydeep's {meta['input_names']}"
        )
    movielens_torch.load_tinydeep_weights(model, weights)
    x, y = [torch.from_numpy(a) for a in inputs], torch.from_numpy(labels)
    loss_fn = movielens_torch.loss_function(spec["task"])
    batch, count = spec["batch"], itertools.count()
    batches = len(y) // batch

    def step() -> float:
        k = next(count)
        at = slice((k % batches) * batch, (k % batches + 1) * batch)
        model.train(k >= spec["plain_steps"])
        batch_x = {name: a[at] for name, a in zip(model.input_names, x)}
        return movielens_torch.train_step(model, steppers, loss_fn, batch_x, y[at]).item()

    return step


# ---- the step --------------------------------------------------------------------------------


def make_step(engine: str, spec: dict) -> Callable[[], float]:
    """torch's twin of the spec's model, from tinydeep's start, on spec["device"] -> a function
    that takes one step (training, or inference in eval() under no_grad) and returns its loss."""
    if spec["device"] == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("torch sees no CUDA GPU")
    device = torch.device(spec["device"])
    if spec["model"] == "movielens":
        return movielens_step(spec)  # on the CPU
    weights, inputs, labels = load_start(spec["weights"])
    y = torch.from_numpy(labels).to(device)

    if spec["model"] == "resnet":
        layout = torch.channels_last if engine == "torch-cl" else torch.contiguous_format
        module = TorchResNet(spec)
        load_resnet_weights(module, weights)
        module = module.to(device, memory_format=layout)
        x = torch.from_numpy(inputs[0]).permute(0, 3, 1, 2).to(device)  # NHWC -> NCHW
        x = x.contiguous(memory_format=layout)
        if not spec["training"]:
            return inference_step(module.eval(), x, y)
        sgd = torch.optim.SGD(module.parameters(), lr=spec["lr"], momentum=spec["momentum"])
        return training_step(module.train(), x, y, functional.cross_entropy, [sgd])

    sparse = engine == "torch-sparse"
    module = TorchWideDeep(spec, sparse)
    load_wide_deep_weights(module, weights)
    module = module.to(device).train()
    x = [torch.from_numpy(a).to(device) for a in inputs]
    steppers = wide_deep_optimizers(module, spec, sparse)
    return training_step(module, x, y, functional.binary_cross_entropy_with_logits, steppers)


def training_step(module, x, y, loss_fn: Callable, steppers: list) -> Callable[[], float]:
    """The same step as tinydeep's; loss.item() waits for a GPU to finish."""

    def step() -> float:
        for optimizer in steppers:
            optimizer.zero_grad()
        loss = loss_fn(module(x), y)
        loss.backward()
        for optimizer in steppers:
            optimizer.step()
        return loss.item()

    return step


def inference_step(module, x, y) -> Callable[[], float]:
    """The module in eval() on x, without a graph; the loss is only for the check."""

    def step() -> float:
        with torch.no_grad():
            return functional.cross_entropy(module(x), y).item()

    return step


def engine_info() -> dict:
    """Versions and torch's own thread pools."""
    return {
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
    }
