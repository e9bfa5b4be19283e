"""The tinydeep side of benchmarks/resnet_wide_deep.py: what its tinydeep children build and run.

Imported only in a child process that times tinydeep; torch is blocked there. Everything is
built from the `spec` dict the parent sends (sizes, seeds, learning rates), so this file holds
no settings of its own. Read in this order:

  make_step      one workload's model, optimizers and fixed batch -> the step to time; the first
                 child of a workload also saves its initial weights and batch to a .npz, from
                 which the torch children start (benchmarks/side_torch.py)
  movielens_step examples/movielens.py's model on real MovieLens training batches: the same
                 step, and the first child saves the batches and the example's settings too
  conv_table     ResNet-20's conv shapes: forward and backward of tinydeep.ops.conv2d's array
                 functions, and NumPy's float32 GEMM rate, the ceiling of an im2col conv
  first_step     a fresh process's first training step, with Numba's account of its cache
  engine_info    versions, threads and the kernels that ran, for the report

Shapes: x (N, H, W, C) NHWC float32 and y (N,) int64 class labels for the ResNets; Wide &
Deep's inputs [cats (N, 8) int64, numeric (N, 4) float32, wide_ids (N, 11) int64] and labels
(N, 1) float32; MovieLens's as examples/movielens.py makes them. Whether the kernels run is set
by TINYDEEP_KERNELS in the child's environment.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import numpy as np

import tinydeep
from tinydeep import backend, layers, losses, ops, optim
from tinydeep.models.resnet import ResNet

# ---- the fixed batches -----------------------------------------------------------------------


def resnet_batch(spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """x float32 (N, H, W, C) standard normal; y int64 labels (N,)."""
    rng = np.random.default_rng(spec["seed"])
    x = rng.standard_normal((spec["batch"], *spec["image"])).astype(np.float32)
    return x, rng.integers(0, spec["classes"], spec["batch"]).astype(np.int64)


def wide_deep_batch(spec: dict) -> tuple[list[np.ndarray], np.ndarray]:
    """[cats, numeric, wide_ids] and labels. The wide ids hash (column, value) and the crossed
    pairs of columns into `wide_rows` buckets."""
    rng = np.random.default_rng(spec["seed"])
    n, vocabs, rows = spec["batch"], spec["vocabs"], spec["wide_rows"]
    cats = np.stack([rng.integers(0, v, n) for v in vocabs], axis=1)
    numeric = rng.standard_normal((n, spec["numeric"])).astype(np.float32)

    def hashed(values: np.ndarray, salt: int) -> np.ndarray:  # Knuth's multiplicative hash
        return (values * 2_654_435_761 + salt * 40_503) % rows

    columns = [hashed(cats[:, j], j) for j in range(len(vocabs))]
    for i, (a, b) in enumerate(spec["crosses"]):
        columns.append(hashed(cats[:, a] * vocabs[b] + cats[:, b], len(vocabs) + i))
    labels = rng.integers(0, 2, (n, 1)).astype(np.float32)
    return [cats, numeric, np.stack(columns, axis=1)], labels


# ---- the models ------------------------------------------------------------------------------


def resnet(spec: dict, x: np.ndarray) -> ResNet:
    """tinydeep.models.ResNet(depth), built (weights made) on two images of x."""
    tinydeep.manual_seed(spec["seed"])
    model = ResNet(spec["depth"], num_classes=spec["classes"], bn_momentum=spec["bn_momentum"])
    with tinydeep.no_grad():
        model(x[:2], training=False)  # builds the weights; the moving statistics stay as made
    # torch's twin is given this epsilon; ResNet takes none, so its layers' default must match.
    norms = [layer for _, layer, _ in model.walk() if isinstance(layer, layers.BatchNormalization)]
    if {layer.epsilon for layer in norms} != {spec["bn_epsilon"]}:
        raise RuntimeError(f"ResNet's batch-norm epsilon is not {spec['bn_epsilon']}")
    return model


class WideDeep(tinydeep.Model):
    """Wide & Deep (Cheng et al. 2016). inputs: [cats (N, 8), numeric (N, 4), wide_ids (N, 11)]
    -> logits (N, 1): one Embedding per categorical column, concatenated with the numeric
    columns into Dense layers (the deep part), plus a hashed linear model (the wide part)."""

    def __init__(self, spec: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.wide_rows = spec["wide_rows"]
        self.embeddings = [layers.Embedding(v, spec["embed_dim"]) for v in spec["vocabs"]]
        units = spec["units"]
        self.deep = [layers.Dense(u, activation="relu") for u in units] + [layers.Dense(1)]

    def build(self, input_shape) -> None:
        self.wide = self.add_weight("wide", (self.wide_rows, 1), "zeros")  # the paper's start

    def call(self, inputs: list[tinydeep.Tensor]) -> tinydeep.Tensor:
        cats, numeric, wide_ids = inputs
        columns = [embed(cats[:, j]) for j, embed in enumerate(self.embeddings)]  # (N, 8) each
        y = ops.concatenate([*columns, numeric], axis=1)  # (N, 68)
        for dense in self.deep:
            y = dense(y)  # (N, 1) after the last
        return y + ops.embedding_sum(self.wide, wide_ids)


def wide_deep(spec: dict, inputs: list[np.ndarray]) -> WideDeep:
    """WideDeep, built on two rows of the inputs."""
    tinydeep.manual_seed(spec["seed"])
    model = WideDeep(spec)
    with tinydeep.no_grad():
        model([a[:2] for a in inputs], training=False)
    return model


def optimizers(model: tinydeep.Model, spec: dict) -> list:
    """ResNet: SGD with momentum. Wide & Deep: AdaGrad on the wide table (FTRL has no torch
    counterpart to check against), Adam on the rest."""
    if spec["model"] == "resnet":
        return [optim.SGD(model.parameters(), lr=spec["lr"], momentum=spec["momentum"])]
    deep = [p for p in model.parameters() if p is not model.wide]
    return [optim.AdaGrad([model.wide], lr=spec["lr_wide"]), optim.Adam(deep, lr=spec["lr_deep"])]


def save_start(
    path: str, model: tinydeep.Model, inputs: list[np.ndarray], labels, meta: dict | None = None
) -> None:
    """The initial weights, by their checkpoint paths in the model's order ("weights/..."), the
    batch ("inputs/0", ..., "labels") and `meta` as a JSON string ("meta"), as a .npz for the
    torch children."""
    arrays = {f"weights/{name}": np.asarray(w.data) for name, w in model.named_weights().items()}
    arrays |= {f"inputs/{i}": a for i, a in enumerate(inputs)}
    if meta is not None:
        arrays["meta"] = np.array(json.dumps(meta))  # a str array: no pickle needed to read it
    np.savez(path, **arrays, labels=labels)


# ---- the step --------------------------------------------------------------------------------


def make_step(engine: str, spec: dict) -> Callable[[], float]:
    """The spec's model, optimizers and fixed batch on spec["device"] -> a function that takes
    one step (training, or inference with training=False in no_grad) and returns its loss."""
    if backend.kernels_enabled() != (engine == "tinydeep"):
        raise RuntimeError(f"{engine}: TINYDEEP_KERNELS does not match the engine")
    device = spec["device"]
    if device == "cuda":
        backend.require_cuda()
    if spec["model"] == "movielens":
        return movielens_step(spec)
    if spec["model"] == "resnet":
        x, labels = resnet_batch(spec)
        inputs, model, loss = [x], resnet(spec, x), losses.cross_entropy
    else:
        inputs, labels = wide_deep_batch(spec)
        model, loss = wide_deep(spec, inputs), losses.binary_cross_entropy_with_logits
    if spec["save"]:
        save_start(spec["weights"], model, inputs, labels)

    model.to(device)
    tensors = [tinydeep.Tensor(backend.to_device(a, device)) for a in inputs]
    x = tensors[0] if spec["model"] == "resnet" else tensors
    y = backend.to_device(labels, device)
    if not spec["training"]:
        return inference_step(model, x, y)
    return training_step(model, x, y, loss, optimizers(model, spec))


def training_step(model, x, y, loss_fn: Callable, steppers: list) -> Callable[[], float]:
    """The explicit step of tinydeep/train.py; loss.item() waits for a GPU to finish."""

    def step() -> float:
        for optimizer in steppers:
            optimizer.zero_grad()
        loss = loss_fn(model(x, training=True), y)
        loss.backward()
        for optimizer in steppers:
            optimizer.step()
        return loss.item()

    return step


def inference_step(model, x, y) -> Callable[[], float]:
    """The model on x with training=False and no graph; the loss is only for the check."""

    def step() -> float:
        with tinydeep.no_grad():
            return losses.cross_entropy(model(x, training=False), y).item()

    return step


# ---- MovieLens: examples/movielens.py's model on its real batches ------------------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "movielens.py"


def movielens_step(spec: dict) -> Callable[[], float]:
    """examples/movielens.py's spec["kind"] model for spec["task"], built by its `build` (its
    optimizers: FTRL on the wide part, Adam on the deep), on one shuffled epoch of the training
    rows of its split, cut into batches of spec["batch"] taken in turn, a step each.

    The first spec["plain_steps"] steps run without dropout (training=False: the graph and the
    updates are the same), so that the losses the parent compares across engines do not depend
    on each engine's random masks. The first child saves the start for torch's: the weights,
    every batch in order, and as "meta" the example's settings (its upper-case constants), the
    part sizes and the input names."""
    spec_ = importlib.util.spec_from_file_location("movielens_example", EXAMPLE)
    ex = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(ex)
    data = ex.load_movielens_100k(None)  # from TINYDEEP_DATA, as the example
    seed, task = spec["seed"], spec["task"]
    fit_rows, _ = ex.split(data, spec["split"], np.arange(len(data.rating)), seed, 0.2)
    train, _ = ex.split(data, spec["split"], fit_rows, seed, 0.1)
    features = ex.MovieLensFeatures(data).fit(train)
    tinydeep.manual_seed(seed)
    model = ex.build(spec["kind"], features, task, spec["batch"])
    rows = np.random.default_rng(seed).permutation(train)  # one epoch's order
    inputs = ex.inputs(model, features.transform(data.user[rows], data.item[rows]))
    labels = ex.targets(data, rows, task)[:, None]  # (N, 1)
    if task == "rating":  # the example trains on the rating minus the training mean
        labels = labels - float(ex.targets(data, train, "rating").mean())
    if spec["save"]:
        meta = {
            "settings": {k: v for k, v in vars(ex).items() if k.isupper()},
            "sizes": {
                "wide_size": features.wide_size,
                "vocab_sizes": features.vocab_sizes,
                "num_numeric": features.num_numeric,
            },
            "input_names": model.input_names,
        }
        save_start(spec["weights"], model, inputs, labels, meta)

    loss = model.compiled.losses[0]  # the function compile() chose, by the example's name
    steppers, batch, count = model.compiled.optimizers, spec["batch"], itertools.count()
    batches = len(rows) // batch

    def step() -> float:
        k = next(count)
        at = slice((k % batches) * batch, (k % batches + 1) * batch)
        x = [tinydeep.Tensor(a[at]) for a in inputs]
        for optimizer in steppers:
            optimizer.zero_grad()
        value = loss(model(x, training=k >= spec["plain_steps"]), labels[at])
        value.backward()
        for optimizer in steppers:
            optimizer.step()
        return value.item()

    return step


# ---- convolutions against the GEMM ceiling ---------------------------------------------------


@dataclass
class ConvShape:
    """One conv of a CIFAR ResNet: x (N, H, W, C) -> F filters 3x3, "same", `stride`."""

    x_shape: tuple[int, int, int, int]
    filters: int
    stride: int
    count: int  # how many convs of the network have this shape
    needs_dx: bool = True  # the stem's input needs no gradient

    @property
    def label(self) -> str:
        _, h, w, c = self.x_shape
        return f"{h}x{w}x{c} -> {self.filters}, s{self.stride}"

    def output_hw(self) -> tuple[int, int]:
        """(OH, OW): "same" padding keeps ceil(H / stride)."""
        _, h, w, _ = self.x_shape
        return -(-h // self.stride), -(-w // self.stride)

    def gemm_shape(self) -> tuple[int, int, int]:
        """(M, K, N) of the forward's one matrix product: (N*OH*OW, 9*C) @ (9*C, F)."""
        oh, ow = self.output_hw()
        return self.x_shape[0] * oh * ow, 9 * self.x_shape[3], self.filters

    def forward_flops(self) -> int:
        m, k, n = self.gemm_shape()
        return 2 * m * k * n

    def backward_flops(self) -> int:
        """dw, and dx unless not needed: each as many as the forward."""
        return self.forward_flops() * (2 if self.needs_dx else 1)


def resnet_convs(spec: dict) -> list[ConvShape]:
    """The distinct convs of ResNet(depth), with their counts (19 convs for depth 20)."""
    n, width = (spec["depth"] - 2) // 6, spec["width"]
    h, _, c = spec["image"]
    shapes = [ConvShape((spec["batch"], h, h, c), width, 1, 1, needs_dx=False)]
    channels = width
    for stage in range(3):
        filters = width * 2**stage
        if stage:  # the first block's conv1 halves the image
            shapes.append(ConvShape((spec["batch"], h, h, channels), filters, 2, 1))
            h //= 2
        count = 2 * n - (1 if stage else 0)
        shapes.append(ConvShape((spec["batch"], h, h, filters), filters, 1, count))
        channels = filters
    return shapes


def conv_arrays(s: ConvShape, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """x (N, H, W, C), kernel (3, 3, C, F) scaled by 1/sqrt(9*C), dy (N, OH, OW, F); float32."""
    c = s.x_shape[3]
    x = rng.standard_normal(s.x_shape, dtype=np.float32)
    kernel = rng.standard_normal((3, 3, c, s.filters), dtype=np.float32) / np.float32(3 * c**0.5)
    dy = rng.standard_normal((s.x_shape[0], *s.output_hw(), s.filters), dtype=np.float32)
    return x, kernel, dy


def conv_seconds(s: ConvShape, x, kernel, dy) -> tuple[float, float]:
    """Seconds of conv2d's forward, then of its backward (dx only where needed)."""
    start = perf_counter()
    _, cache = ops.conv2d.forward(x, kernel, strides=s.stride, padding="same")
    middle = perf_counter()
    ops.conv2d.backward(dy, cache, needs_grad=(s.needs_dx, True))
    return middle - start, perf_counter() - middle


def gemm_rate(m: int, k: int, n: int, repeats: int, seed: int) -> float:
    """Median GFLOP/s of a float32 (m, k) @ (k, n) NumPy matmul, after two warm-ups."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    seconds = []
    for i in range(repeats + 2):
        start = perf_counter()
        np.matmul(a, b, out=out)
        if i >= 2:
            seconds.append(perf_counter() - start)
    return 2 * m * k * n / statistics.median(seconds) / 1e9


def conv_table(engine: str, spec: dict) -> dict:
    """Per conv shape: the seconds of spec["steps"] forwards and backwards after a warm-up,
    and the rate of its own forward GEMM alone (the ceiling of an im2col conv); and the rate
    of the large GEMM, NumPy's float32 ceiling on this machine."""
    if backend.kernels_enabled() != (engine == "tinydeep"):
        raise RuntimeError(f"{engine}: TINYDEEP_KERNELS does not match the engine")
    shapes, rng = resnet_convs(spec), np.random.default_rng(spec["seed"])
    arrays = [conv_arrays(s, rng) for s in shapes]
    start, passes = perf_counter(), 0
    while passes < 2 or perf_counter() - start < spec["warmup_s"]:  # untimed: kernels load
        for s, a in zip(shapes, arrays):
            conv_seconds(s, *a)
        passes += 1

    rows, repeats = [], spec["gemm_repeats"]
    for s, a in zip(shapes, arrays):
        forward, backward = zip(*(conv_seconds(s, *a) for _ in range(spec["steps"])))
        rows.append(
            {
                "shape": s.label,
                "x_shape": list(s.x_shape),
                "filters": s.filters,
                "stride": s.stride,
                "count": s.count,
                "forward_flops": s.forward_flops(),
                "backward_flops": s.backward_flops(),
                "its_gemm_gflops": gemm_rate(*s.gemm_shape(), repeats, spec["seed"]),
                "forward_s": list(forward),
                "backward_s": list(backward),
            }
        )
    return {"gemm_gflops": gemm_rate(*spec["gemm_shape"], repeats, spec["seed"]), "shapes": rows}


# ---- the first step of a fresh process -------------------------------------------------------


def first_step(spec: dict, started: float) -> dict:
    """Build ResNet-20 and take two training steps; seconds since `started` (the child's
    clock at its start) for the imports, the build and each step, and Numba's account of the
    kernels that ran: their compiled versions loaded from its cache (hits) or compiled
    (misses), and where that cache lives."""
    try:  # the first op would import it; here, so that its import counts as import
        import tinydeep_kernels.cpu  # noqa: F401

        kernels = "imported"
    except Exception as error:  # noqa: BLE001  a kernel module being written may raise anything
        kernels = f"{type(error).__name__}: {error}"
    imported = perf_counter()
    step = make_step("tinydeep", {**spec, "save": False, "device": "cpu", "training": True})
    built = perf_counter()
    ends = []
    for _ in range(2):
        step()
        ends.append(perf_counter())
    return {
        "import_s": imported - started,
        "build_s": built - imported,
        "step1_s": ends[0] - built,
        "step2_s": ends[1] - ends[0],
        "start_to_first_step_end_s": ends[0] - started,
        "kernels": kernels,
        **numba_cache_stats(),
    }


def numba_cache_stats() -> dict:
    """For every Numba function of tinydeep_kernels that ran: cache hits, misses and dirs."""
    functions, hits, misses, dirs = 0, 0, 0, set()
    if "numba" in sys.modules:
        from numba.core.dispatcher import Dispatcher

        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("tinydeep_kernels."):
                for f in vars(module).values():
                    if isinstance(f, Dispatcher) and f.signatures:
                        functions += 1
                        hits += sum(f.stats.cache_hits.values())
                        misses += sum(f.stats.cache_misses.values())
                        dirs.add(f.stats.cache_path)
    return {
        "numba_functions": functions,
        "cache_hits": hits,
        "cache_misses": misses,
        "cache_dirs": sorted(dirs),
    }


# ---- for the report --------------------------------------------------------------------------


def engine_info() -> dict:
    """Versions, Numba's threads, and the kernels that computed a result (one that only
    declined its inputs, leaving them to the reference, is not counted)."""
    numba = sys.modules.get("numba")
    return {
        "numpy": np.__version__,
        "tinydeep": tinydeep.__version__,
        "numba": numba.__version__ if numba else None,
        "numba_threads": numba.get_num_threads() if numba else None,
        "kernels_enabled": backend.kernels_enabled(),
        "kernels_dispatched": backend.kernels_run(),
    }
