"""ResNet-20 and Wide & Deep training steps beside PyTorch, conv GFLOP/s against the GEMM
ceiling, and the first step's time with an empty and a warm Numba cache: one run.

Four parts (--which), each with the engines taking turns in the same process:

  resnet      One training step of ResNet-20 (tinydeep/models/resnet.py: He et al.'s CIFAR
              net, zero-pad shortcuts, 269,722 parameters) on a fixed batch of 128 random
              32x32x3 images, SGD lr 0.01 momentum 0.9, cross-entropy. Engines: tinydeep with
              every op on its NumPy reference (`tinydeep.reference_only()`), tinydeep with
              its kernels (the default: tinydeep_kernels.cpu, as far as it exists), and an
              equivalent torch ResNet-20 in NCHW and in channels_last. torch gets Keras's
              batch-norm settings (momentum 0.01, eps 1e-3) and TensorFlow's "same" padding:
              at stride 2 the image is padded after only (bottom, right), so the strided
              convs follow nn.ZeroPad2d((0, 1, 0, 1)). Reported: ms per step, images/s, the
              ratio to torch (NCHW), and the peak memory of each engine alone: its own
              subprocess runs MEMORY_STEPS steps and reports its peak RSS (VmHWM: Linux
              keeps ru_maxrss across fork and exec, so a child would report this parent's
              peak; see peak_rss_mib). The tinydeep subprocesses cannot import torch (it is
              blocked), so their peak holds NumPy, tinydeep and Numba only; "before steps" is
              the peak after imports and model building, so "steps add" is what training
              itself took. Wide & Deep's table has the same columns.
  wide_deep   One step of Wide & Deep (Cheng et al. 2016) on batch 512: eight categorical
              columns (vocabularies of 10 to 50,000), each with its own Embedding(V, 8); four
              numeric columns; the deep part Dense(256, relu) -> Dense(128, relu) -> Dense(1)
              on the 68 concatenated values; the wide part a hashed linear model,
              `embedding_sum` over a (100,000, 1) table of the 8 hashed columns and 3 hashed
              crosses; logits added, binary cross-entropy on logits. AdaGrad on the wide
              table (FTRL has no torch counterpart to check against), Adam on the rest.
              torch runs it twice: with dense Adam on its embeddings (nn.Embedding, the same
              maths as tinydeep, whose Adam makes row-sparse gradients dense) and the
              idiomatic sparse way (nn.Embedding(sparse=True) + SparseAdam, which moves only
              the rows a batch touches: a different optimizer after the first step). Both
              use nn.EmbeddingBag(mode="sum", sparse=True) + Adagrad for the wide table.
  conv        Every distinct conv of ResNet-20 at batch 128: forward and backward of the
              array op behind tinydeep.ops.conv2d (`conv2d.forward`, `conv2d.backward`),
              kernels off and on, as GFLOP/s and as a fraction of NumPy's float32 GEMM rate on
              a large (4096, 1024) @ (1024, 1024) product. FLOPs: 2*N*OH*OW*KH*KW*C*F
              forward, twice that backward (dx and dw), once for the stem, whose dx is never
              needed. "its GEMM" is the rate of the forward's one matrix product alone, at its
              own (N*OH*OW, KH*KW*C) @ (KH*KW*C, F) shape: the ceiling of an im2col conv.
  first_step  A fresh `python` subprocess that imports tinydeep and tinydeep_kernels.cpu,
              builds ResNet-20 and takes two training steps, run twice with NUMBA_CACHE_DIR
              set to one new temporary folder: first empty, then warm. Timed from the
              child's first line (after the interpreter started, before `import numpy`)
              to the end of its first step (loss.item() returned); the parent's clock around
              the whole subprocess is shown too. Numba caches compiled kernels in __pycache__
              beside their sources unless NUMBA_CACHE_DIR is set; the part checks that the
              files land in the temporary folder and that none are written beside the sources.

Every timed comparison is checked first: two steps on each engine from tinydeep's initial
weights (copied into torch), and the run stops unless the losses agree with tinydeep's
reference to RTOL (the torch sparse engine: the first step only). A tinydeep kernels engine
that raises or disagrees is reported and left out of the timing, and the run goes on.

Timing follows benchmarks/train_step.py, whose helpers this imports: engines take turns in
each round; each turn first runs untimed steps for SETTLE_S seconds (the last engine's BLAS
and OpenMP threads keep spinning for a while), then times its steps; medians are reported.
Both engines use their default threads (printed).

Run it:  python benchmarks/resnet_wide_deep.py [--which {resnet,wide_deep,conv,first_step,all}]
                                               [--quick] [--json results.json]
         python benchmarks/resnet_wide_deep.py --device cuda   (a GPU, CuPy and CUDA torch)
(as a script: it imports from benchmarks/train_step.py and engine_overhead.py beside it)
With --device cuda, ResNet-20 runs at batch 512 and Wide & Deep as on the CPU, against torch
on the GPU; conv and first_step are CPU parts (NumPy's BLAS, Numba) and are skipped.

Left out: data loading (one batch is reused), accuracy, torch.compile and other fused paths,
thread counts other than the defaults, FTRL (no torch counterpart), skewed (Zipf) ids in
Wide & Deep (ids are uniform), and peak GPU memory.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import numpy as np
from train_step import (  # the benchmark beside this one, and the helpers it shares
    BN_EPSILON,
    BN_MOMENTUM,
    CLASSES,
    DTYPE,
    LR,
    MOMENTUM,
    NO_TORCH,
    SEED,
    SETTLE_S,
    Engine,
    blas_info,
    copy_weights,
    machine_info,
    pair_weights,
    timed_step,
)

import tinydeep
from tinydeep import backend, layers, losses, ops, optim
from tinydeep.models.resnet import ResNet

try:
    import torch
    from torch import nn
    from torch.nn import functional
except ImportError:  # tinydeep alone is still timed
    torch = nn = functional = None
# torch's Adagrad on a sparse gradient warns, once, that it skips its invariant checks.
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

# ---- settings --------------------------------------------------------------------------------

PARTS = ("resnet", "wide_deep", "conv", "first_step")
IMAGE = (32, 32, 3)  # H, W, C
RESNET_DEPTH = 20
RESNET_BATCH = {"cpu": 128, "cuda": 512}
RTOL = 1e-3  # losses of the checked steps, relative to tinydeep's reference
CHECK_STEPS = 2  # the second step's loss depends on the first update
# Rounds of turns, and timed steps in each turn: default, then --quick.
RESNET_ROUNDS, RESNET_STEPS_PER_TURN = (5, 2), (2, 1)
WIDE_DEEP_ROUNDS, WIDE_DEEP_STEPS_PER_TURN = (7, 3), (10, 5)
CONV_ROUNDS = (7, 2)
GEMM_SHAPE = (4096, 1024, 1024)  # (M, K, N): M x K @ K x N, float32; the GEMM ceiling
GEMM_REPEATS = (9, 3)
MEMORY_STEPS = 3  # steps each memory subprocess takes before reading its peak RSS
CHILD_TIMEOUT_S = 600

WD_BATCH = 512
WD_VOCABS = (10, 50, 200, 1_000, 5_000, 10_000, 20_000, 50_000)  # one per categorical column
WD_EMBED_DIM = 8
WD_NUMERIC = 4
WD_WIDE_ROWS = 100_000  # hashed feature space of the wide part
WD_CROSSES = ((0, 1), (1, 2), (2, 3))  # pairs of columns crossed in the wide part
WD_UNITS = (256, 128)
WD_LR_WIDE = 0.05  # AdaGrad
WD_LR_DEEP = 1e-3  # Adam

REFERENCE, KERNELS = "tinydeep reference", "tinydeep kernels"
TINYDEEP_ENGINES = (REFERENCE, KERNELS)


# ---- engines: train_step's Engine, with a context to run in ----------------------------------


@dataclass
class Contestant(Engine):
    """An Engine run inside `context()` (reference_only for tinydeep's reference).
    check_steps: how many of the checked steps must agree with the reference (torch's
    SparseAdam is another optimizer: only its first step, the forward from the same weights)."""

    context: Callable = contextlib.nullcontext
    check_steps: int = CHECK_STEPS
    model: object = None  # tinydeep's model, the source of torch's initial weights


class Optimizers:
    """Several optimizers, each over its own parameters, stepped as one."""

    def __init__(self, *optimizers) -> None:
        self.optimizers = optimizers

    def zero_grad(self) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad()

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()


def tinydeep_contestants(
    make: Callable[[], tuple], names: tuple[str, ...] = TINYDEEP_ENGINES
) -> list[Contestant]:
    """tinydeep's engines, each with a model of its own from `make()` -> (forward, loss,
    optimizer, x, y, model); every call of `make` starts from the same seed, so the models
    start equal."""
    engines = []
    for name in names:
        forward, loss, optimizer, x, y, model = make()
        context = backend.reference_only if name == REFERENCE else contextlib.nullcontext
        engines.append(
            Contestant(name, forward, loss, optimizer, x, y, context=context, model=model)
        )
    return engines


def torch_device(device: str):
    return torch.device("cuda" if device == "cuda" else "cpu")


# ---- part 1: ResNet-20 -----------------------------------------------------------------------


def resnet_batch(batch: int) -> tuple[np.ndarray, np.ndarray]:
    """x float32 (N, H, W, C) standard normal; y int64 labels (N,)."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((batch, *IMAGE)).astype(DTYPE)
    return x, rng.integers(0, CLASSES, batch).astype(np.int64)


def make_tinydeep_resnet(batch: int, device: str) -> Callable[[], tuple]:
    """A function that builds one tinydeep ResNet-20 engine (see tinydeep_contestants)."""
    x, y = resnet_batch(batch)

    def make() -> tuple:
        tinydeep.manual_seed(SEED)
        model = ResNet(depth=RESNET_DEPTH, num_classes=CLASSES)
        with tinydeep.no_grad():
            model(x[:2], training=False)  # builds the weights; the moving statistics stay
        model.to(device)

        def forward(batch: tinydeep.Tensor) -> tinydeep.Tensor:
            return model(batch, training=True)

        sgd = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        on_device = tinydeep.Tensor(backend.to_device(x, device))
        return forward, losses.cross_entropy, sgd, on_device, backend.to_device(y, device), model

    return make


if nn is not None:

    class TorchBlock(nn.Module):
        """ResidualBlock of tinydeep/models/resnet.py in torch (NCHW)."""

        def __init__(self, channels: int, filters: int, stride: int) -> None:
            super().__init__()
            bn = {"momentum": 1 - BN_MOMENTUM, "eps": BN_EPSILON}
            # TF's "same" at stride 2 on an even size: 0 before, 1 after (registered first:
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
        """tinydeep's ResNet(depth) in torch: stem, 3 stages of n blocks, pool, head."""

        def __init__(self, depth: int = RESNET_DEPTH, width: int = 16) -> None:
            super().__init__()
            n = (depth - 2) // 6
            self.stem = nn.Conv2d(IMAGE[2], width, 3, padding=1, bias=False)
            self.stem_bn = nn.BatchNorm2d(width, momentum=1 - BN_MOMENTUM, eps=BN_EPSILON)
            blocks, channels = [], width
            for stage in range(3):
                for i in range(n):
                    filters = width * 2**stage
                    blocks.append(TorchBlock(channels, filters, 2 if stage and i == 0 else 1))
                    channels = filters
            self.blocks = nn.Sequential(*blocks)
            self.head = nn.Linear(channels, CLASSES)

        def forward(self, x):
            x = functional.relu(self.stem_bn(self.stem(x)))
            return self.head(self.blocks(x).mean((2, 3)))


def make_resnet_engines(device: str, names: tuple[str, ...] | None = None) -> list[Contestant]:
    """tinydeep reference and kernels, torch NCHW and channels_last (those in `names`; all
    by default), all from the same initial weights."""
    batch = RESNET_BATCH[device]
    make = make_tinydeep_resnet(batch, device)
    ours = tinydeep_contestants(make)  # the reference's model is the source of the weights
    model = ours[0].model
    engines = [k for k in ours if names is None or k.name in names]
    if torch is None:
        return engines
    if device != "cpu":  # torch copies from NumPy arrays: a CPU twin of the same weights
        model = make_tinydeep_resnet(batch, "cpu")()[-1]
    x, y = resnet_batch(batch)
    nchw = torch.from_numpy(x).permute(0, 3, 1, 2).to(torch_device(device))
    for name, memory_format in (
        ("torch", torch.contiguous_format),
        ("torch channels_last", torch.channels_last),
    ):
        if names is not None and name not in names:
            continue
        module = TorchResNet()
        copy_weights(pair_weights(model, list(module.modules())))
        module = module.to(torch_device(device), memory_format=memory_format).train()
        engines.append(
            Contestant(
                name,
                module,
                nn.functional.cross_entropy,
                torch.optim.SGD(module.parameters(), lr=LR, momentum=MOMENTUM),
                nchw.contiguous(memory_format=memory_format),
                torch.from_numpy(y).to(torch_device(device)),
            )
        )
    return engines


# ---- part 2: Wide & Deep ---------------------------------------------------------------------


def wide_deep_batch() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """cats int64 (N, 8), numeric float32 (N, 4), wide_ids int64 (N, 11) in [0, V), labels
    float32 (N, 1). The wide ids hash (column, value) and the crossed pairs."""
    rng = np.random.default_rng(SEED)
    cats = np.stack([rng.integers(0, v, WD_BATCH) for v in WD_VOCABS], axis=1)
    numeric = rng.standard_normal((WD_BATCH, WD_NUMERIC)).astype(DTYPE)

    def hashed(values: np.ndarray, salt: int) -> np.ndarray:  # Knuth's multiplicative hash
        return (values * 2_654_435_761 + salt * 40_503) % WD_WIDE_ROWS

    columns = [hashed(cats[:, j], j) for j in range(len(WD_VOCABS))]
    for i, (a, b) in enumerate(WD_CROSSES):
        pair = cats[:, a] * WD_VOCABS[b] + cats[:, b]
        columns.append(hashed(pair, len(WD_VOCABS) + i))
    labels = rng.integers(0, 2, (WD_BATCH, 1)).astype(DTYPE)
    return cats, numeric, np.stack(columns, axis=1), labels


class TinydeepWideDeep(tinydeep.Model):
    """Wide & Deep in tinydeep. inputs: [cats (N, 8), numeric (N, 4), wide_ids (N, 11)]
    -> logits (N, 1)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embeddings = [layers.Embedding(v, WD_EMBED_DIM) for v in WD_VOCABS]
        self.deep = [layers.Dense(u, activation="relu") for u in WD_UNITS] + [layers.Dense(1)]

    def build(self, input_shape) -> None:
        self.wide = self.add_weight("wide", (WD_WIDE_ROWS, 1), "zeros")  # the paper's start

    def call(self, inputs: list[tinydeep.Tensor]) -> tinydeep.Tensor:
        cats, numeric, wide_ids = inputs
        columns = [embed(cats[:, j]) for j, embed in enumerate(self.embeddings)]  # (N, 8) each
        y = ops.concatenate([*columns, numeric], axis=1)  # (N, 68)
        for dense in self.deep:
            y = dense(y)  # (N, 1) after the last
        return y + ops.embedding_sum(self.wide, wide_ids)


def make_tinydeep_wide_deep(device: str) -> Callable[[], tuple]:
    """A function that builds one tinydeep Wide & Deep engine (see tinydeep_contestants)."""
    batch = wide_deep_batch()
    arrays = [backend.to_device(a, device) for a in batch]
    inputs, labels = [tinydeep.Tensor(a) for a in arrays[:3]], arrays[3]

    def make() -> tuple:
        tinydeep.manual_seed(SEED)
        model = TinydeepWideDeep()
        with tinydeep.no_grad():
            model([a[:2] for a in batch[:3]], training=False)  # builds the weights
        model.to(device)
        deep = [p for p in model.parameters() if p is not model.wide]
        optimizer = Optimizers(
            optim.AdaGrad([model.wide], lr=WD_LR_WIDE), optim.Adam(deep, lr=WD_LR_DEEP)
        )

        def forward(inputs: list[tinydeep.Tensor]) -> tinydeep.Tensor:
            return model(inputs, training=True)

        bce = losses.binary_cross_entropy_with_logits
        return forward, bce, optimizer, inputs, labels, model

    return make


if nn is not None:

    class TorchWideDeep(nn.Module):
        """The same model in torch; `sparse` makes the deep embeddings' gradients sparse."""

        def __init__(self, sparse: bool) -> None:
            super().__init__()
            self.embeddings = nn.ModuleList(
                nn.Embedding(v, WD_EMBED_DIM, sparse=sparse) for v in WD_VOCABS
            )
            self.wide = nn.EmbeddingBag(WD_WIDE_ROWS, 1, mode="sum", sparse=True)
            sizes = (len(WD_VOCABS) * WD_EMBED_DIM + WD_NUMERIC, *WD_UNITS)
            deep = []
            for n_in, n_out in itertools.pairwise(sizes):
                deep += [nn.Linear(n_in, n_out), nn.ReLU()]
            self.deep = nn.Sequential(*deep, nn.Linear(sizes[-1], 1))

        def forward(self, inputs):
            cats, numeric, wide_ids = inputs
            columns = [embed(cats[:, j]) for j, embed in enumerate(self.embeddings)]
            return self.deep(torch.cat([*columns, numeric], 1)) + self.wide(wide_ids)

        def copy_from(self, model: TinydeepWideDeep) -> None:
            """Overwrite every weight with tinydeep's (Dense kernels (IN, OUT) transposed)."""
            linears = [m for m in self.deep if isinstance(m, nn.Linear)]
            pairs = [(self.wide.weight, model.wide.data)]
            pairs += [
                (e.weight, m.embeddings.data) for e, m in zip(self.embeddings, model.embeddings)
            ]
            for linear, dense in zip(linears, model.deep):
                pairs += [(linear.weight, dense.kernel.data.T), (linear.bias, dense.bias.data)]
            with torch.no_grad():
                for theirs, ours in pairs:
                    theirs.copy_(
                        torch.from_numpy(np.ascontiguousarray(backend.to_device(ours, "cpu")))
                    )


def make_wide_deep_engines(device: str, names: tuple[str, ...] | None = None) -> list[Contestant]:
    """tinydeep reference and kernels, torch with dense Adam and with SparseAdam (those in
    `names`; all by default), all from the same initial weights."""
    ours = tinydeep_contestants(make_tinydeep_wide_deep(device))
    model = ours[0].model
    engines = [k for k in ours if names is None or k.name in names]
    if torch is None:
        return engines
    *inputs, labels = [torch.from_numpy(a).to(torch_device(device)) for a in wide_deep_batch()]
    for name, sparse in (("torch (dense Adam)", False), ("torch (SparseAdam)", True)):
        if names is not None and name not in names:
            continue
        module = TorchWideDeep(sparse)
        module.copy_from(model)
        module = module.to(torch_device(device)).train()
        embeddings = list(module.embeddings.parameters())
        deep = embeddings + list(module.deep.parameters())
        adam = [torch.optim.Adam(deep, lr=WD_LR_DEEP)]
        if sparse:
            adam = [
                torch.optim.SparseAdam(embeddings, lr=WD_LR_DEEP),
                torch.optim.Adam(module.deep.parameters(), lr=WD_LR_DEEP),
            ]
        optimizer = Optimizers(torch.optim.Adagrad(module.wide.parameters(), lr=WD_LR_WIDE), *adam)
        engines.append(
            Contestant(
                name,
                module,
                functional.binary_cross_entropy_with_logits,
                optimizer,
                inputs,
                labels,
                check_steps=1 if sparse else CHECK_STEPS,
            )
        )
    return engines


# ---- checking and timing steps ---------------------------------------------------------------


def check_losses(engines: list[Contestant]) -> tuple[list[Contestant], dict[str, str]]:
    """CHECK_STEPS steps on every engine (also their warm-up: Numba compiles here). Raises
    RuntimeError when a torch engine's losses differ from tinydeep's reference by more than
    RTOL; a tinydeep kernels engine that raises or differs is dropped and reported instead.
    Returns the engines that passed and a line per engine for the report."""
    reference = engines[0]
    with reference.context():
        expected = [timed_step(reference)[0] for _ in range(CHECK_STEPS)]
    if not all(math.isfinite(v) for v in expected):
        raise RuntimeError(f"check: tinydeep reference's losses are {expected}")
    passed, notes = (
        [reference],
        {reference.name: f"losses {', '.join(f'{v:.6f}' for v in expected)}"},
    )
    for k in engines[1:]:
        try:
            with k.context():
                got = [timed_step(k)[0] for _ in range(CHECK_STEPS)]
        except Exception as error:  # a kernel being written may raise anything
            if k.name not in TINYDEEP_ENGINES:
                raise
            notes[k.name] = f"FAILED, left out: {type(error).__name__}: {error}"
            continue
        compared = range(k.check_steps)
        worst = max(abs(got[i] / expected[i] - 1) for i in compared)
        if worst <= RTOL:
            passed.append(k)
            steps = "both steps" if k.check_steps == CHECK_STEPS else "step 1 (SparseAdam)"
            notes[k.name] = f"{steps} agree, largest relative difference {worst:.1e}"
            continue
        message = f"losses {got[: k.check_steps]} differ from the reference's {expected}"
        if k.name not in TINYDEEP_ENGINES:
            raise RuntimeError(f"check: {k.name}: {message}")
        notes[k.name] = f"DISAGREES, left out: {message}"
    return passed, notes


def step_seconds(k: Contestant) -> float:
    """Wall time of one step, loss.item() included (on a GPU it waits for the step)."""
    start = perf_counter()
    timed_step(k)
    return perf_counter() - start


def measure(engines: list[Contestant], rounds: int, steps_per_turn: int) -> dict[str, list[float]]:
    """Seconds of every timed step per engine, the engines taking turns in each round; each
    turn runs untimed steps for SETTLE_S first."""
    samples: dict[str, list[float]] = {k.name: [] for k in engines}
    gc.freeze()  # objects alive now (mostly torch's) are not scanned by every collection
    for _ in range(rounds):
        for k in engines:
            with k.context():
                start = perf_counter()
                while perf_counter() - start < SETTLE_S:
                    timed_step(k)
                for _ in range(steps_per_turn):
                    gc.collect()  # the last step's garbage is collected off the clock
                    samples[k.name].append(step_seconds(k))
    gc.unfreeze()
    return samples


def step_rows(
    samples: dict[str, list[float]], batch: int, memory: dict[str, dict] | None
) -> list[dict]:
    """One row per engine: ms per step, items per second, the ratio to the first torch
    engine's items per second, and the peak memory of its subprocess."""
    seconds = {name: statistics.median(s) for name, s in samples.items()}
    baseline = next((n for n in seconds if n.startswith("torch")), None)
    rows = []
    for name, s in seconds.items():
        mem = (memory or {}).get(name, {})
        rows.append(
            {
                "engine": name,
                "ms_per_step": s * 1e3,
                "items_per_s": batch / s,
                "ratio_to_torch": seconds[baseline] / s if baseline else None,
                "steps_timed": len(samples[name]),
                "peak_rss_mib": mem.get("peak_rss_mib"),
                "rss_before_steps_mib": mem.get("rss_before_steps_mib"),
                "memory_error": mem.get("error"),
            }
        )
    return rows


def format_step_rows(rows: list[dict], items: str) -> str:
    def cell(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    header = ("engine", "ms/step", f"{items}/s", "x torch", "peak RSS MiB", "before steps")
    lines = [f"{header[0]:<22}" + "".join(f"{h:>14}" for h in header[1:]) + f"{'steps add':>12}"]
    for r in rows:
        peak, before = r["peak_rss_mib"], r["rss_before_steps_mib"]
        cells = (
            f"{r['ms_per_step']:.1f}",
            f"{r['items_per_s']:,.0f}",
            cell(r["ratio_to_torch"], ".2f") + ("x" if r["ratio_to_torch"] else ""),
            cell(peak, ",.0f"),
            cell(before, ",.0f"),
        )
        added = cell(None if peak is None else peak - before, ",.0f")
        lines.append(f"{r['engine']:<22}" + "".join(f"{c:>14}" for c in cells) + f"{added:>12}")
    for r in rows:
        if r["memory_error"]:
            lines.append(f"  memory of {r['engine']}: {r['memory_error']}")
    return "\n".join(lines)


# ---- peak memory: each engine alone in a subprocess ------------------------------------------

# Runs this script in a child with `import torch` blocked (None in sys.modules makes the import
# fail), so a tinydeep engine's peak RSS does not hold torch's libraries.
NO_TORCH_LAUNCHER = (
    "import runpy, sys; sys.modules['torch'] = None; sys.argv = sys.argv[1:]; "
    "sys.path.insert(0, sys.argv[0].rpartition('/')[0]); "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)
MAKERS = {"resnet": make_resnet_engines, "wide_deep": make_wide_deep_engines}


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB: VmHWM from /proc/self/status on
    Linux. Not getrusage's ru_maxrss there: Linux keeps it across fork and exec, so a child of
    a large parent reports the parent's peak (measured here: every child showed the parent's
    489 MiB). Elsewhere ru_maxrss (KiB on Linux and BSD, bytes on macOS)."""
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    import resource  # Unix only

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def memory_child(part: str, name: str) -> None:
    """In the child: build `name`'s engine for `part`, take MEMORY_STEPS steps, print the
    peak RSS before and after the steps as one JSON line."""
    (engine,) = MAKERS[part]("cpu", (name,))
    before = peak_rss_mib()
    with engine.context():
        for _ in range(MEMORY_STEPS):
            timed_step(engine)
    print(json.dumps({"rss_before_steps_mib": before, "peak_rss_mib": peak_rss_mib()}))


def run_child(command: list[str], env: dict | None = None, cwd: str | None = None) -> dict:
    """Run a child that prints a JSON line last; its dict, or {"error": ...}."""
    done = subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=CHILD_TIMEOUT_S,
    )
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_memory(part: str, names: list[str]) -> dict[str, dict]:
    """Peak RSS per engine, each in its own subprocess (tinydeep's without torch)."""
    script = str(Path(__file__).resolve())
    memory = {}
    for name in names:
        command = [script, "--memory-child", part, name]
        if name in TINYDEEP_ENGINES:
            command = [sys.executable, "-c", NO_TORCH_LAUNCHER, *command]
        else:
            command = [sys.executable, *command]
        memory[name] = run_child(command)
    return memory


# ---- the two model parts ---------------------------------------------------------------------


def run_model_part(part: str, device: str, quick: bool) -> dict:
    """Check, time, and measure memory of one model part; prints its table."""
    engines = make_resnet_engines(device) if part == "resnet" else make_wide_deep_engines(device)
    engines, notes = check_losses(engines)
    if part == "resnet":
        rounds, per_turn = RESNET_ROUNDS[quick], RESNET_STEPS_PER_TURN[quick]
    else:
        rounds, per_turn = WIDE_DEEP_ROUNDS[quick], WIDE_DEEP_STEPS_PER_TURN[quick]
    samples = measure(engines, rounds, per_turn)
    del engines
    gc.collect()
    memory = peak_memory(part, list(samples)) if device == "cpu" else None
    batch = RESNET_BATCH[device] if part == "resnet" else WD_BATCH
    rows = step_rows(samples, batch, memory)

    if part == "resnet":
        print(
            f"\nresnet: ResNet-{RESNET_DEPTH} (zero-pad shortcuts), batch {batch} of "
            f"{'x'.join(map(str, IMAGE))} NHWC {np.dtype(DTYPE)}; SGD lr {LR} momentum "
            f"{MOMENTUM}, cross-entropy; median of {rounds} rounds x {per_turn} step(s)"
        )
    else:
        print(
            f"\nwide_deep: batch {batch}; {len(WD_VOCABS)} embeddings ({WD_VOCABS[0]:,} to "
            f"{WD_VOCABS[-1]:,} rows) x {WD_EMBED_DIM} + {WD_NUMERIC} numeric -> "
            f"Dense{WD_UNITS} -> 1; wide: embedding_sum over ({WD_WIDE_ROWS:,}, 1), "
            f"{len(WD_VOCABS)}+{len(WD_CROSSES)} ids per row; AdaGrad lr {WD_LR_WIDE} (wide) "
            f"+ Adam lr {WD_LR_DEEP}; median of {rounds} rounds x {per_turn} step(s)"
        )
    for name, note in notes.items():
        print(f"  checked, {name}: {note}")
    print()
    print(format_step_rows(rows, "images" if part == "resnet" else "rows"))
    return {"rows": rows, "check": notes, "samples_s": samples, "rounds": rounds}


# ---- part 3: convolutions against the GEMM ceiling -------------------------------------------


@dataclass
class ConvShape:
    """One conv of ResNet-20: x (N, H, W, C) -> F filters 3x3, "same", `stride`."""

    x_shape: tuple[int, int, int, int]
    filters: int
    stride: int
    count: int  # how many convs of the network have this shape
    needs_dx: bool = True  # the stem's input needs no gradient

    @property
    def label(self) -> str:
        _, h, w, c = self.x_shape
        return f"{h}x{w}x{c} -> {self.filters}, s{self.stride}"

    def forward_flops(self) -> int:
        n, h, w, c = self.x_shape
        oh, ow = -(-h // self.stride), -(-w // self.stride)
        return 2 * n * oh * ow * 3 * 3 * c * self.filters

    def flops(self) -> int:
        """Forward, plus dw and (unless not needed) dx, each as many as the forward."""
        return self.forward_flops() * (3 if self.needs_dx else 2)


def resnet_convs(batch: int, depth: int = RESNET_DEPTH, width: int = 16) -> list[ConvShape]:
    """The distinct convs of ResNet(depth), with their counts (19 convs for depth 20)."""
    n = (depth - 2) // 6
    h = IMAGE[0]
    shapes = [ConvShape((batch, h, h, IMAGE[2]), width, 1, 1, needs_dx=False)]
    channels = width
    for stage in range(3):
        filters = width * 2**stage
        if stage:  # the first block's conv1 halves the image
            shapes.append(ConvShape((batch, h, h, channels), filters, 2, 1))
            h //= 2
        shapes.append(ConvShape((batch, h, h, filters), filters, 1, 2 * n - (1 if stage else 0)))
        channels = filters
    return shapes


def gemm_rate(m: int, k: int, n: int, repeats: int) -> float:
    """Median GFLOP/s of a float32 (m, k) @ (k, n) NumPy matmul, after two warm-ups."""
    rng = np.random.default_rng(SEED)
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


def run_conv_part(quick: bool) -> dict:
    """Forward and backward of every ResNet-20 conv shape, kernels off and on, as GFLOP/s and
    as a fraction of the large GEMM's rate; prints the table."""
    conv2d = ops.conv2d  # .forward / .backward: the array functions (kernels dispatch inside)
    rounds = CONV_ROUNDS[quick]
    peak = gemm_rate(*GEMM_SHAPE, GEMM_REPEATS[quick])
    shapes = resnet_convs(RESNET_BATCH["cpu"])
    rng = np.random.default_rng(SEED)
    arrays = []
    for s in shapes:
        n, h, w, c = s.x_shape
        x = rng.standard_normal(s.x_shape, dtype=np.float32)
        weights = rng.standard_normal((3, 3, c, s.filters), dtype=np.float32) / math.sqrt(9 * c)
        dy = rng.standard_normal((n, -(-h // s.stride), -(-w // s.stride), s.filters), np.float32)
        arrays.append((x, weights, dy))

    def one(s: ConvShape, x, weights, dy) -> tuple[float, float]:
        start = perf_counter()
        _, cache = conv2d.forward(x, weights, strides=s.stride, padding="same")
        middle = perf_counter()
        conv2d.backward(dy, cache, needs_grad=(s.needs_dx, True))
        return middle - start, perf_counter() - middle

    modes = {"reference": backend.reference_only, "kernels": contextlib.nullcontext}
    times = {m: {s.label: ([], []) for s in shapes} for m in modes}
    errors: dict[str, str] = {}
    for _ in range(rounds):
        for mode, context in modes.items():
            if mode in errors:
                continue
            try:
                with context():
                    start = perf_counter()
                    while perf_counter() - start < SETTLE_S:  # untimed: threads settle
                        one(shapes[1], *arrays[1])
                    for s, a in zip(shapes, arrays):
                        forward, backward = one(s, *a)
                        times[mode][s.label][0].append(forward)
                        times[mode][s.label][1].append(backward)
            except Exception as error:  # a kernel being written may raise anything
                if mode == "reference":
                    raise
                errors[mode] = f"{type(error).__name__}: {error}"
                del times[mode]

    rows = []
    for s, (x, weights, _) in zip(shapes, arrays):
        kh, kw, c, f = weights.shape
        rows_in = s.forward_flops() // (2 * kh * kw * c * f)  # N*OH*OW
        row = {
            "shape": s.label,
            "x_shape": list(s.x_shape),
            "filters": s.filters,
            "stride": s.stride,
            "count": s.count,
            "needs_dx": s.needs_dx,
            "gflop_forward_backward": s.flops() / 1e9,
            "its_gemm_gflops": gemm_rate(rows_in, kh * kw * c, f, GEMM_REPEATS[quick]),
        }
        for mode in times:
            forward = statistics.median(times[mode][s.label][0])
            backward = statistics.median(times[mode][s.label][1])
            gflops = s.flops() / (forward + backward) / 1e9
            row[mode] = {
                "forward_ms": forward * 1e3,
                "backward_ms": backward * 1e3,
                "forward_gflops": s.forward_flops() / forward / 1e9,
                "gflops": gflops,
                "fraction_of_gemm": gflops / peak,
            }
        rows.append(row)

    print(
        f"\nconv: ResNet-{RESNET_DEPTH}'s conv shapes at batch {RESNET_BATCH['cpu']}, 3x3 "
        f'"same", float32; forward + backward of conv2d; median of {rounds} rounds'
    )
    m, k, n = GEMM_SHAPE
    print(f"NumPy float32 GEMM ({m}, {k}) @ ({k}, {n}): {peak:.1f} GFLOP/s (the ceiling below)")
    for mode, error in errors.items():
        print(f"  {mode}: FAILED, left out: {error}")
    print(format_conv_rows(rows, list(times)))
    return {"gemm_gflops": peak, "gemm_shape": list(GEMM_SHAPE), "rows": rows, "errors": errors}


def format_conv_rows(rows: list[dict], modes: list[str]) -> str:
    first = f"{'':<46}" + "".join(f" | {mode:<29}" for mode in modes)
    head = f"{'x (H x W x C) -> F, stride':<24}{'convs':>6}{'GFLOP':>7}{'its GEMM':>9}"
    head += f" | {'fwd ms':>6}{'bwd ms':>8}{'GFLOP/s':>8}{'of GEMM':>8}" * len(modes)
    lines = [first, head]
    totals = dict.fromkeys(modes, 0.0)
    for r in rows:
        line = (
            f"{r['shape']:<24}{r['count']:>6}{r['gflop_forward_backward']:>7.2f}"
            f"{r['its_gemm_gflops']:>9.1f}"
        )
        for mode in modes:
            t = r[mode]
            totals[mode] += r["count"] * (t["forward_ms"] + t["backward_ms"])
            line += (
                f" | {t['forward_ms']:>6.1f}{t['backward_ms']:>8.1f}{t['gflops']:>8.1f}"
                f"{t['fraction_of_gemm']:>8.0%}"
            )
        lines.append(line)
    flops = sum(r["count"] * r["gflop_forward_backward"] for r in rows)
    convs = sum(r["count"] for r in rows)
    lines.append(
        f"all {convs} convs of one step: {flops:.1f} GFLOP; "
        + ", ".join(f"{m} {ms:.0f} ms ({flops / ms * 1e3:.1f} GFLOP/s)" for m, ms in totals.items())
    )
    lines.append(
        "GFLOP: forward + backward (stem: no dx); its GEMM: GFLOP/s of the forward's matrix "
        "product alone at its own shape; of GEMM: GFLOP/s over the large GEMM's"
    )
    return "\n".join(lines)


# ---- part 4: the first step, with an empty and a warm Numba cache ----------------------------

# The child: a fresh interpreter, timed from its first line to the end of its first step.
FIRST_STEP_CHILD = """
import time
start = time.perf_counter()
import json, sys
import numpy as np
import tinydeep
from tinydeep import backend, losses, optim
from tinydeep.models.resnet import ResNet
try:  # the first op would import it; here, so that its import counts as import
    import tinydeep_kernels.cpu
    kernels = "imported"
except Exception as error:
    kernels = f"{type(error).__name__}: {error}"
imported = time.perf_counter()
batch, seed = int(sys.argv[1]), int(sys.argv[2])
lr, momentum = float(sys.argv[3]), float(sys.argv[4])
rng = np.random.default_rng(seed)
x = tinydeep.Tensor(rng.standard_normal((batch, 32, 32, 3)).astype(np.float32))
y = rng.integers(0, 10, batch)
tinydeep.manual_seed(seed)
model = ResNet(depth=20)
with tinydeep.no_grad():
    model(x.data[:2], training=False)  # builds the weights (ops run, kernels may compile)
sgd = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
built = time.perf_counter()
ends = []
for _ in range(2):
    sgd.zero_grad()
    loss = losses.cross_entropy(model(x, training=True), y)
    loss.backward()
    sgd.step()
    loss.item()
    ends.append(time.perf_counter())
found = sorted(name for (_, name), f in backend._kernel_cache.items() if f is not None)
# Numba's own account of each kernel function used: where its cache lives, and how many of
# its compiled versions were loaded from the cache (hits) or compiled (misses).
functions, hits, misses, cache_dirs = 0, 0, 0, set()
if "numba" in sys.modules:
    from numba.core.dispatcher import Dispatcher
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("tinydeep_kernels."):
            for f in vars(module).values():
                if isinstance(f, Dispatcher) and f.signatures:
                    functions += 1
                    hits += sum(f.stats.cache_hits.values())
                    misses += sum(f.stats.cache_misses.values())
                    cache_dirs.add(f.stats.cache_path)
print(json.dumps({
    "import_s": imported - start, "build_s": built - imported, "step1_s": ends[0] - built,
    "step2_s": ends[1] - ends[0], "start_to_first_step_end_s": ends[0] - start,
    "kernels": kernels, "kernels_dispatched": found, "numba_loaded": "numba" in sys.modules,
    "numba_functions": functions, "cache_hits": hits, "cache_misses": misses,
    "cache_dirs": sorted(cache_dirs),
}))
"""

# A one-function module for checking where Numba writes its cache when no kernel compiles.
NUMBA_PROBE = """import numba

@numba.njit(cache=True)
def plus_one(x):
    return x + 1

plus_one(1)
"""


def numba_cache_files(folder: Path) -> list[Path]:
    """Numba's cache files under `folder`: index (.nbi) and compiled data (.nbc)."""
    return [p for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc")]


def run_first_step_part() -> dict:
    """Two fresh children, empty then warm NUMBA_CACHE_DIR; then where the cache went."""
    result: dict = {"runs": {}}
    with tempfile.TemporaryDirectory(prefix="tinydeep-numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        args = [str(v) for v in (RESNET_BATCH["cpu"], SEED, LR, MOMENTUM)]
        for label in ("empty cache", "warm cache"):
            wall = perf_counter()
            run = run_child([sys.executable, "-c", FIRST_STEP_CHILD, *args], env=env)
            run["process_wall_s"] = perf_counter() - wall
            run["cache_files_after"] = len(numba_cache_files(Path(cache)))
            result["runs"][label] = run
        # Where each kernel function's cache lives, as Numba reports it in the child. (Not
        # the files beside the sources: other processes sharing the tree write those too.)
        dirs = {d for run in result["runs"].values() for d in run.get("cache_dirs", [])}
        elsewhere = sorted(d for d in dirs if not Path(d).is_relative_to(cache))
        result["cache_dirs_outside_numba_cache_dir"] = elsewhere

    if dirs:
        redirect = (
            f"every kernel's cache is under NUMBA_CACHE_DIR ({len(dirs)} folder(s))"
            if not elsewhere
            else f"NOT redirected: caches in {elsewhere}"
        )
    else:  # no kernel compiled: check the redirect on a probe function instead
        with tempfile.TemporaryDirectory() as probe, tempfile.TemporaryDirectory() as cache:
            Path(probe, "numba_cache_probe.py").write_text(NUMBA_PROBE)
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            command = [sys.executable, "-c", "import numba_cache_probe; print('{}')"]
            run = run_child(command, env=env, cwd=probe)
            there = len(numba_cache_files(Path(cache)))
            beside = len(numba_cache_files(Path(probe)))
            redirect = (
                f"no kernel compiled, so checked on a probe @njit(cache=True) function: "
                f"{there} files in NUMBA_CACHE_DIR, {beside} beside its source"
                + (f" ({run['error']})" if "error" in run else "")
            )
    result["redirect"] = redirect

    print(
        "\nfirst_step: a fresh `python -c` child imports tinydeep and tinydeep_kernels.cpu, "
        f"builds ResNet-{RESNET_DEPTH}, takes 2 steps (batch {RESNET_BATCH['cpu']}); timed from "
        "its first line to the end of step 1"
    )
    header = ("NUMBA_CACHE_DIR", "import s", "build s", "step 1 s", "to step 1 end", "step 2 s")
    print(
        f"{header[0]:<17}"
        + "".join(f"{h:>14}" for h in header[1:])
        + f"{'process s':>11}{'compiled':>10}{'from cache':>12}"
    )
    for label, run in result["runs"].items():
        if "error" in run:
            print(f"{label:<17}  FAILED: {run['error']}")
            continue
        keys = ("import_s", "build_s", "step1_s", "start_to_first_step_end_s", "step2_s")
        cells = "".join(f"{run[k]:>14.2f}" for k in keys)
        counts = f"{run['cache_misses']:>10}{run['cache_hits']:>12}"
        print(f"{label:<17}{cells}{run['process_wall_s']:>11.2f}{counts}")
    first = next(iter(result["runs"].values()))
    if "error" not in first:
        dispatched = ", ".join(first["kernels_dispatched"]) or "none"
        print(
            f"tinydeep_kernels.cpu: {first['kernels']}; dispatched: {dispatched}; "
            f"{first['numba_functions']} Numba functions ran; cache files after each run: "
            + ", ".join(str(r.get("cache_files_after")) for r in result["runs"].values())
        )
    print(f"cache redirect: {redirect}")
    print(
        "build: the first (inference) call, which makes the weights; process s: the parent's "
        "clock around the whole child,\ninterpreter start and exit included; compiled / from "
        "cache: the kernels' compiled versions, Numba's cache misses and hits"
    )
    return result


# ---- the report ------------------------------------------------------------------------------


def kernels_status() -> dict:
    """What tinydeep_kernels.cpu offers now: its kernel names, or why it does not import."""
    try:
        from tinydeep_kernels import cpu
    except Exception as error:  # noqa: BLE001  a kernel module being written may raise anything
        return {"error": f"{type(error).__name__}: {error}", "names": []}
    names = [n for n, v in vars(cpu).items() if callable(v) and not isinstance(v, type)]
    return {"error": None, "names": sorted(n for n in names if not n.startswith("_"))}


def dispatched_kernels() -> list[str]:
    """Kernels that the engine looked up and found during this run (backend's cache)."""
    return sorted(f"{device}:{name}" for (device, name), f in backend._kernel_cache.items() if f)


def require_gpu() -> None:
    """Exit with a message unless torch and tinydeep (CuPy) both see a CUDA GPU."""
    problems = []
    if torch is None or not torch.cuda.is_available():
        problems.append("torch sees no CUDA GPU" if torch else NO_TORCH)
    try:
        backend.require_cuda()
    except RuntimeError as error:
        problems.append(str(error))
    if problems:
        sys.exit("--device cuda needs a CUDA GPU, here: " + "; ".join(problems))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--which", choices=(*PARTS, "all"), default="all", help="part(s)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and repeats")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)  # PART ENGINE
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return

    parts = PARTS if args.which == "all" else (args.which,)
    if args.device == "cuda":
        require_gpu()
        if args.which in ("conv", "first_step"):
            parser.error(f"--which {args.which} is a CPU part; run it without --device cuda")
        parts = tuple(p for p in parts if p in MAKERS)

    info = machine_info()
    threads = {"numpy_blas": blas_info()}
    threads["torch"] = (
        f"{torch.get_num_threads()} intra-op threads (its default here)" if torch else NO_TORCH
    )
    kernels = kernels_status()
    print(
        f"{info['cpu']}, {info['cores']} cores | Python {info['python']} | NumPy "
        f"{info['numpy']} | torch {info['torch']} | tinydeep {info['tinydeep']} | "
        f"{info['date']}"
    )
    print(f"torch: {threads['torch']}; NumPy BLAS: {threads['numpy_blas']}")
    if torch is None:
        print(NO_TORCH + "; timing tinydeep only")
    if kernels["error"]:
        print(f"tinydeep_kernels.cpu does not import: {kernels['error']}")
    else:
        found = ", ".join(kernels["names"]) or "none yet (the kernels rows run the references)"
        print(f"tinydeep_kernels.cpu kernels: {found}")
    if not backend.kernels_enabled():
        print("TINYDEEP_KERNELS=0 is set: the kernels rows run the references too")
    print(f"device: {args.device}{' (quick)' if args.quick else ''}")

    results: dict = {}
    for part in parts:
        if part in MAKERS:
            results[part] = run_model_part(part, args.device, args.quick)
        elif part == "conv":
            results[part] = run_conv_part(args.quick)
        else:
            results[part] = run_first_step_part()
    dispatched = dispatched_kernels()
    print(f"\nkernels dispatched in this process: {', '.join(dispatched) or 'none'}")
    if any(part in MAKERS for part in parts):
        print(
            "x torch: the engine's images (rows) per second over torch's (NCHW; dense Adam for "
            "Wide & Deep).\npeak RSS: VmHWM of a subprocess running that engine alone "
            f"({MEMORY_STEPS} steps); before steps: after imports and model building; tinydeep's "
            "subprocesses do not import torch."
        )

    if args.json:
        settings = {
            "device": args.device,
            "quick": args.quick,
            "parts": list(parts),
            "resnet": {"depth": RESNET_DEPTH, "batch": RESNET_BATCH[args.device], "lr": LR},
            "wide_deep": {
                "batch": WD_BATCH,
                "vocabs": list(WD_VOCABS),
                "embed_dim": WD_EMBED_DIM,
                "wide_rows": WD_WIDE_ROWS,
                "crosses": [list(c) for c in WD_CROSSES],
                "lr_wide_adagrad": WD_LR_WIDE,
                "lr_deep_adam": WD_LR_DEEP,
            },
            "settle_s": SETTLE_S,
            "rtol": RTOL,
            "memory_steps": MEMORY_STEPS,
        }
        output = {
            "machine": info,
            "threads": threads,
            "kernels": {**kernels, "dispatched": dispatched},
            "settings": settings,
            "results": results,
        }
        with open(args.json, "w") as f:
            json.dump(output, f, indent=2)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
