"""One training step: tinydeep beside PyTorch (CPU), in images per second, in one run.

What it measures: the explicit step of tinydeep/train.py, written once in `timed_step` and run
on each engine's model, optimizer and batch:

    optimizer.zero_grad()
    logits = model(x, training=True)        (torch: the model is in train() mode)
    loss = cross_entropy(logits, y)         the mean over the batch, on logits
    loss.backward()
    optimizer.step()                        SGD, lr 0.01, momentum 0.9

on two float32 models, each with one fixed batch of random inputs and labels:

  mlp  Dense(512, relu) -> Dense(512, relu) -> Dense(10), on (256, 784): Fashion-MNIST-sized
  cnn  Conv2D(16, 3, same) -> BatchNormalization -> ReLU -> Conv2D(32, 3, strides 2, same)
       -> BatchNormalization -> ReLU -> GlobalAveragePooling2D -> Dense(10), on 128 NHWC
       images of 32x32x3: CIFAR-sized

PyTorch runs the equivalent nn.Sequential, in NCHW (its native layout) and, for the CNN, also
in channels_last memory format. Its BatchNorm2d gets Keras's settings (momentum 0.99 in Keras
is momentum 0.01 in torch; eps 1e-3). TensorFlow's "same" padding at stride 2 pads only after
(bottom and right) on even sizes, so torch's strided conv follows an nn.ZeroPad2d((0, 1, 0, 1))
and pads nothing itself: a symmetric padding=1 would compute a different function.

Both engines start from tinydeep's initial weights (copied into torch with the layouts
transposed: a Dense kernel (IN, UNITS) is a Linear weight (UNITS, IN), a Conv2D kernel
(KH, KW, C, F) a Conv2d weight (F, C, KH, KW)). Before timing, two steps run on every engine
and the run stops with an error unless the losses, the gradients and the updated weights and
moving statistics agree with tinydeep's; two steps, so the momentum buffer is used too.
(Gradients only to 5% of the largest in their layer: see GRAD_TOL.)

Reported per model: the median time of a whole step, as images per second and as
tinydeep's images per second over each engine's, then the median of each phase of the step,
so a reader sees where the time goes. The engines take turns in each of --repeats rounds, so
a change in machine load hits all alike; a turn runs untimed steps for SETTLE_S seconds, then
times STEPS_PER_TURN steps. The untimed part matters: the BLAS and OpenMP threads of the engine
that just ran keep spinning for a while and would be timed against the next one (see
SETTLE_S). Both engines use their default threads, torch its intra-op pool and NumPy its BLAS
(both printed), as each would in a script of its own.

Page faults. glibc's malloc gives large freed blocks back to the OS, so memory allocated
fresh every step (tinydeep's im2col copies and BatchNorm temporaries) is faulted back in every
step; the table counts those faults (the mean per step). With MALLOC_MMAP_THRESHOLD_=33554432
MALLOC_TRIM_THRESHOLD_=1073741824 in the environment freed blocks stay in the process and
there are none (measured here: tinydeep's CNN step 10 to 15% faster, torch's unchanged); the
default run leaves glibc as it is.

Run it:  python benchmarks/train_step.py [--which {mlp,cnn,all}] [--repeats 15]
                                         [--json results.json]
(as a script: it imports the machine header from benchmarks/engine_overhead.py beside it)

Left out: data loading and batch copies (one batch is reused), fit()'s own work (metrics,
callbacks, the progress bar), evaluation, memory use, torch.compile and other fused paths,
the GPU, and thread counts other than the defaults.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter

import numpy as np
from engine_overhead import NO_TORCH, machine_info  # the benchmark beside this one

import tinydeep
from tinydeep import layers, losses, optim

try:
    import resource  # page-fault counts; Unix only
except ImportError:
    resource = None
try:
    import torch
    from torch import nn
except ImportError:  # tinydeep alone is still timed
    torch = nn = None

# ---- settings --------------------------------------------------------------------------------

MLP_BATCH = 256
MLP_FEATURES = 784  # 28 x 28, flattened
MLP_UNITS = 512
CNN_BATCH = 128
CNN_IMAGE = (32, 32, 3)  # H, W, C
CLASSES = 10
DTYPE = np.float32
LR = 0.01
MOMENTUM = 0.9
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3  # Keras's defaults; torch's momentum is 1 - BN_MOMENTUM
REPEATS = 15  # rounds in which every engine takes one turn; the medians are reported
STEPS_PER_TURN = 3  # timed steps in each turn
# Each turn first runs untimed steps for this long. After a turn, the engine's idle BLAS and
# OpenMP threads spin for a while (OpenBLAS's for ~0.1 s) and take the 2 cores from the next
# engine: taking turns step by step measured both engines 1.5 to 2.5 times slower than alone
# (MLP 5.6 -> 12 ms each; torch's CNN 21 -> 47 ms). The first turn doubles as the warm-up.
SETTLE_S = 0.25
CHECK_STEPS = 2  # steps compared before timing: the second uses the momentum buffer
SEED = 0
# Losses, updated weights and moving statistics. (torch's running_var follows the unbiased
# batch variance, Keras's the biased one: M / (M - 1) apart, M = N*H*W >= 32,768 here.)
RTOL, ATOL = 1e-4, 1e-6
# Gradients, relative to the largest |gradient| in the layer. Loose, because a few ReLU inputs
# lie within float32 rounding of 0 and fall on different sides in the two engines, which moves
# the gradients of the layers below by up to ~1% (7e-3 seen on the CNN); a wrong layout or
# formula moves them by order 100%.
GRAD_TOL = 5e-2
PHASES = ("zero_grad", "forward", "loss", "backward", "step")
MODELS = ("mlp", "cnn")
DESCRIPTIONS = {
    "mlp": f"Dense({MLP_UNITS}, relu) -> Dense({MLP_UNITS}, relu) -> Dense({CLASSES}) "
    f"on ({MLP_BATCH}, {MLP_FEATURES})",
    "cnn": "Conv2D(16, 3, same) -> BN -> ReLU -> Conv2D(32, 3, s2, same) -> BN -> ReLU "
    f"-> GAP -> Dense({CLASSES}) on ({CNN_BATCH}, {', '.join(map(str, CNN_IMAGE))}) NHWC",
}


# ---- the models, once per engine -------------------------------------------------------------


def tinydeep_model(which: str) -> tinydeep.Sequential:
    """The tinydeep model, unbuilt (its weights are made on the first call)."""
    if which == "mlp":
        return tinydeep.Sequential(
            [
                layers.Dense(MLP_UNITS, activation="relu"),
                layers.Dense(MLP_UNITS, activation="relu"),
                layers.Dense(CLASSES),
            ]
        )
    bn = {"momentum": BN_MOMENTUM, "epsilon": BN_EPSILON}
    return tinydeep.Sequential(
        [
            layers.Conv2D(16, 3, padding="same"),
            layers.BatchNormalization(**bn),
            layers.ReLU(),
            layers.Conv2D(32, 3, strides=2, padding="same"),
            layers.BatchNormalization(**bn),
            layers.ReLU(),
            layers.GlobalAveragePooling2D(),
            layers.Dense(CLASSES),
        ]
    )


def torch_model(which: str) -> nn.Sequential:
    """The same model in torch (NCHW); its weights are overwritten with tinydeep's."""
    if which == "mlp":
        return nn.Sequential(
            nn.Linear(MLP_FEATURES, MLP_UNITS),
            nn.ReLU(),
            nn.Linear(MLP_UNITS, MLP_UNITS),
            nn.ReLU(),
            nn.Linear(MLP_UNITS, CLASSES),
        )
    bn = {"momentum": 1 - BN_MOMENTUM, "eps": BN_EPSILON}
    return nn.Sequential(
        nn.Conv2d(CNN_IMAGE[2], 16, 3, padding=1),  # "same" at stride 1: one pixel each side
        nn.BatchNorm2d(16, **bn),
        nn.ReLU(),
        nn.ZeroPad2d((0, 1, 0, 1)),  # TF's "same" at stride 2 on 32: 0 before, 1 after
        nn.Conv2d(16, 32, 3, stride=2),
        nn.BatchNorm2d(32, **bn),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, CLASSES),
    )


def make_batch(which: str) -> tuple[np.ndarray, np.ndarray]:
    """x float32 (N, 784) or (N, H, W, C), standard normal; y int64 labels (N,)."""
    rng = np.random.default_rng(SEED)
    shape = (MLP_BATCH, MLP_FEATURES) if which == "mlp" else (CNN_BATCH, *CNN_IMAGE)
    x = rng.standard_normal(shape).astype(DTYPE)
    return x, rng.integers(0, CLASSES, shape[0]).astype(np.int64)


# ---- weights: tinydeep's names and layouts beside torch's ------------------------------------

TORCH_NAMES = {
    "kernel": "weight",
    "bias": "bias",
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
# tinydeep's axes, in torch's order: Dense (IN, UNITS) -> (UNITS, IN); Conv2D (KH, KW, C, F)
# -> (F, C, KH, KW). Everything else is (C,) in both.
TO_TORCH_AXES = {2: (1, 0), 4: (3, 2, 0, 1)}


@dataclass
class WeightPair:
    """One weight in both engines; `axes` turns tinydeep's array into torch's layout."""

    name: str  # tinydeep's path, e.g. "0/kernel"
    ours: tinydeep.Tensor
    theirs: torch.Tensor
    axes: tuple[int, ...] | None

    def ours_in_torch_layout(self, array: np.ndarray) -> np.ndarray:
        return array if self.axes is None else array.transpose(self.axes)


def pair_weights(model: tinydeep.Sequential, module: nn.Sequential) -> list[WeightPair]:
    """Every weight of `model` with its counterpart in `module`: the layers with weights are
    paired in order (Dense with Linear, Conv2D with Conv2d, BatchNormalization with
    BatchNorm2d), the weights by name."""
    ours_by_layer: dict[str, dict[str, tinydeep.Tensor]] = {}
    for path, tensor in model.named_weights().items():
        layer, name = path.rsplit("/", 1)
        ours_by_layer.setdefault(layer, {})[name] = tensor
    theirs = [m for m in module if isinstance(m, (nn.Linear, nn.Conv2d, nn.BatchNorm2d))]
    if len(theirs) != len(ours_by_layer):
        raise RuntimeError(
            f"pair_weights: tinydeep has {len(ours_by_layer)} layers with weights, torch "
            f"{len(theirs)}"
        )
    pairs = []
    for (layer, named), m in zip(ours_by_layer.items(), theirs):
        for name, tensor in named.items():
            other = getattr(m, TORCH_NAMES[name])
            axes = TO_TORCH_AXES.get(tensor.ndim) if name == "kernel" else None
            pair = WeightPair(f"{layer}/{name}", tensor, other, axes)
            if pair.ours_in_torch_layout(tensor.data).shape != tuple(other.shape):
                raise RuntimeError(
                    f"pair_weights: {pair.name} {tensor.shape} has no counterpart in "
                    f"{type(m).__name__}.{TORCH_NAMES[name]} {tuple(other.shape)}"
                )
            pairs.append(pair)
    return pairs


def copy_weights(pairs: list[WeightPair]) -> None:
    """Overwrite each torch weight (and moving statistic) with tinydeep's."""
    with torch.no_grad():
        for p in pairs:
            p.theirs.copy_(torch.from_numpy(p.ours_in_torch_layout(p.ours.data).copy()))


# ---- the engines, and one step written once for all of them ----------------------------------


@dataclass
class Engine:
    """What `timed_step` needs: a model called as `forward(x)`, a loss on its output, an
    optimizer, one fixed batch, and the weights paired with tinydeep's (None for tinydeep)."""

    name: str
    forward: Callable
    loss: Callable
    optimizer: object
    x: object
    y: object
    pairs: list[WeightPair] | None = None


def timed_step(k: Engine) -> tuple[float, dict[str, float]]:
    """One training step on engine `k`: the loss, and the seconds of each phase in PHASES."""
    clock = [perf_counter()]
    k.optimizer.zero_grad()
    clock.append(perf_counter())
    logits = k.forward(k.x)
    clock.append(perf_counter())
    loss = k.loss(logits, k.y)
    clock.append(perf_counter())
    loss.backward()
    clock.append(perf_counter())
    k.optimizer.step()
    clock.append(perf_counter())
    seconds = {phase: clock[i + 1] - clock[i] for i, phase in enumerate(PHASES)}
    return loss.item(), seconds  # .item() off the clock, for every engine alike


def make_engines(which: str, with_torch: bool) -> list[Engine]:
    """tinydeep, then torch (NCHW) and, for the CNN, torch in channels_last, all starting
    from tinydeep's freshly initialized weights."""
    tinydeep.manual_seed(SEED)
    x, y = make_batch(which)
    model = tinydeep_model(which)
    with tinydeep.no_grad():
        model(x[:2], training=False)  # builds the weights; the moving statistics stay as made
    engines = [
        Engine(
            name="tinydeep",
            forward=lambda batch: model(batch, training=True),
            loss=losses.cross_entropy,
            optimizer=optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM),
            x=tinydeep.Tensor(x),
            y=y,
        )
    ]
    if not with_torch:
        return engines

    nchw = torch.from_numpy(x).permute(0, 3, 1, 2) if x.ndim == 4 else torch.from_numpy(x)
    layouts = [("torch", torch.contiguous_format)]
    if which == "cnn":
        layouts.append(("torch channels_last", torch.channels_last))
    for name, memory_format in layouts:
        module = torch_model(which)
        pairs = pair_weights(model, module)
        copy_weights(pairs)
        if memory_format is torch.channels_last:
            module = module.to(memory_format=memory_format)
        module.train()
        engines.append(
            Engine(
                name=name,
                forward=module,
                loss=nn.functional.cross_entropy,
                optimizer=torch.optim.SGD(module.parameters(), lr=LR, momentum=MOMENTUM),
                x=nchw.contiguous(memory_format=memory_format),
                y=torch.from_numpy(y),
                pairs=pairs,
            )
        )
    return engines


# ---- checking, then timing -------------------------------------------------------------------


def _worst(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.max(np.abs(ours.astype(np.float64) - theirs)))


def check_agreement(engines: list[Engine]) -> dict[str, float]:
    """CHECK_STEPS steps on every engine; raise RuntimeError unless each torch engine's losses,
    gradients, updated weights and moving statistics match tinydeep's. Returns the largest
    differences seen, for the report."""
    ours, others = engines[0], engines[1:]
    worst = {
        "loss (relative)": 0.0,
        "weight (absolute)": 0.0,
        "gradient (relative to its layer's)": 0.0,
    }
    for step in range(1, CHECK_STEPS + 1):
        loss, _ = timed_step(ours)
        if not np.isfinite(loss):
            raise RuntimeError(f"check: tinydeep's loss at step {step} is {loss}")
        for k in others:
            other_loss, _ = timed_step(k)
            where = f"check: {k.name}, step {step}"
            if not np.isclose(loss, other_loss, rtol=RTOL, atol=0):
                raise RuntimeError(f"{where}: loss {other_loss!r}, tinydeep {loss!r}")
            worst["loss (relative)"] = max(worst["loss (relative)"], abs(loss / other_loss - 1))
            weight = _check_weights(k.pairs, where)
            worst["weight (absolute)"] = max(worst["weight (absolute)"], weight)
            relative = _check_grads(k.pairs, where)
            worst["gradient (relative to its layer's)"] = max(
                worst["gradient (relative to its layer's)"], relative
            )
    return worst


def _check_weights(pairs: list[WeightPair], where: str) -> float:
    """The largest difference of any weight or moving statistic; raises past RTOL, ATOL."""
    largest = 0.0
    for p in pairs:
        mine, theirs = p.ours_in_torch_layout(p.ours.data), p.theirs.detach().numpy()
        if mine.dtype != DTYPE or theirs.dtype != DTYPE:
            raise RuntimeError(f"{where}: {p.name} is {mine.dtype} here, {theirs.dtype} in torch")
        if not np.allclose(mine, theirs, rtol=RTOL, atol=ATOL):
            raise RuntimeError(
                f"{where}: updated {p.name} differs (max abs difference {_worst(mine, theirs):.3g})"
            )
        largest = max(largest, _worst(mine, theirs))
    return largest


def _check_grads(pairs: list[WeightPair], where: str) -> float:
    """The largest gradient difference, as a fraction of the largest |gradient| in the same
    layer; raises past GRAD_TOL. Per layer, because a bias ahead of a BatchNormalization has
    a true gradient of 0 and only float32 noise to compare."""
    trained = [p for p in pairs if p.ours.grad is not None]  # not the moving statistics
    scale: dict[str, float] = {}
    for p in trained:
        layer = p.name.rsplit("/", 1)[0]
        scale[layer] = max(scale.get(layer, 0.0), float(p.theirs.grad.abs().max()))
    largest = 0.0
    for p in trained:
        mine, theirs = p.ours_in_torch_layout(p.ours.grad), p.theirs.grad.numpy()
        layer_scale = scale[p.name.rsplit("/", 1)[0]]
        relative = _worst(mine, theirs) / layer_scale if layer_scale > 0 else np.inf
        if not relative <= GRAD_TOL:
            raise RuntimeError(
                f"{where}: gradient of {p.name} differs (max abs difference "
                f"{_worst(mine, theirs):.3g}, largest |gradient| in its layer {layer_scale:.3g})"
            )
        largest = max(largest, relative)
    return largest


def minor_faults() -> int:
    """Minor page faults of this process so far (0 where the resource module is missing)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def measure(engines: list[Engine], repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds per engine, of the whole step ("total") and of each phase, and the mean
    count of minor page faults per step ("page_faults": they come in bursts, which a median
    would hide), over `repeats` rounds of STEPS_PER_TURN steps, the engines taking turns."""
    keys = ("total", *PHASES, "page_faults")
    samples = {k.name: {key: [] for key in keys} for k in engines}
    # Objects alive now (mostly torch's) are set aside, so gc.collect() below is quick and the
    # collections that run during a step do not charge tinydeep for scanning torch's objects.
    gc.freeze()
    for _ in range(repeats):
        for k in engines:
            start = perf_counter()
            while perf_counter() - start < SETTLE_S:  # the last turn's idle threads go quiet
                timed_step(k)
            for _ in range(STEPS_PER_TURN):
                gc.collect()  # the last step's garbage is collected off the clock
                faults = minor_faults()
                _, seconds = timed_step(k)
                samples[k.name]["page_faults"].append(minor_faults() - faults)
                samples[k.name]["total"].append(sum(seconds.values()))
                for phase, s in seconds.items():
                    samples[k.name][phase].append(s)
    return {
        name: {
            k: (statistics.mean if k == "page_faults" else statistics.median)(s)
            for k, s in d.items()
        }
        for name, d in samples.items()
    }


# ---- threads ---------------------------------------------------------------------------------


def blas_info() -> str:
    """NumPy's BLAS and its thread count: from threadpoolctl when installed, else from
    OpenBLAS itself (through ctypes), else from numpy.show_config and the environment."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            return "; ".join(
                f"{p['internal_api']} {p.get('version')}, {p['num_threads']} threads "
                "(threadpoolctl)"
                for p in pools
            )
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    name = f"{blas.get('name')} {blas.get('version', '')}".strip()
    try:  # the library NumPy loaded, found in this process's memory map (Linux)
        with open("/proc/self/maps") as f:
            paths = {ln.split()[-1] for ln in f if "openblas" in ln.lower() and ".so" in ln}
    except OSError:
        paths = set()
    symbols = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads")
    symbols += ("openblas_get_num_threads64_", "openblas_get_num_threads")
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        for symbol in symbols:
            if hasattr(lib, symbol):
                return f"{name}, {getattr(lib, symbol)()} threads (asked OpenBLAS)"
    env = {v: os.environ[v] for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if v in os.environ}
    return f"{name}, threads: {env or 'its default (one per core)'}"


# ---- reporting -------------------------------------------------------------------------------


def table_rows(which: str, seconds: dict[str, dict[str, float]]) -> list[dict]:
    """One row per engine: ms per step, images per second, tinydeep's images/s over its."""
    batch = MLP_BATCH if which == "mlp" else CNN_BATCH
    ours = seconds["tinydeep"]["total"]
    return [
        {
            "model": which,
            "engine": name,
            "ms_per_step": s["total"] * 1e3,
            "images_per_s": batch / s["total"],
            "ratio_tinydeep_over_engine": s["total"] / ours,  # of images per second
            "page_faults_per_step": s["page_faults"] if resource else None,
        }
        for name, s in seconds.items()
    ]


def format_table(rows: list[dict]) -> str:
    header = ("engine", "ms/step", "images/s", "tinydeep / engine", "page faults/step")
    body = [
        (
            r["engine"],
            f"{r['ms_per_step']:.2f}",
            f"{r['images_per_s']:,.0f}",
            f"{r['ratio_tinydeep_over_engine']:.2f}x",
            "-" if r["page_faults_per_step"] is None else f"{r['page_faults_per_step']:,.0f}",
        )
        for r in rows
    ]
    return "\n".join(
        f"{name:<22}" + "".join(f"{c:>19}" for c in rest) for name, *rest in [header, *body]
    )


def format_phases(seconds: dict[str, dict[str, float]]) -> str:
    """Median ms of each phase per engine, and each phase's share of tinydeep's step."""
    names = list(seconds)
    ours = seconds["tinydeep"]
    lines = [f"{'phase (median ms)':<22}" + "".join(f"{n:>22}" for n in names) + f"{'share':>8}"]
    for phase in (*PHASES, "total"):
        cells = "".join(f"{seconds[n][phase] * 1e3:>22.2f}" for n in names)
        share = f"{ours[phase] / ours['total']:>8.0%}" if phase != "total" else ""
        lines.append(f"{phase:<22}{cells}{share}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--which", choices=(*MODELS, "all"), default="all", help="model(s)")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="rounds of turns")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    models = MODELS if args.which == "all" else (args.which,)

    if torch is None:
        print(NO_TORCH + "; timing tinydeep only\n")  # said first, and again below
        threads = {"torch": NO_TORCH}
    else:
        threads = {
            "torch": f"{torch.get_num_threads()} intra-op threads (its default here; "
            f"{torch.get_num_interop_threads()} inter-op), oneDNN "
            f"{'on' if torch.backends.mkldnn.is_available() else 'off'}"
        }
    threads["numpy_blas"] = blas_info()

    info = machine_info()
    print(
        f"{info['cpu']}, {info['cores']} cores | Python {info['python']} | NumPy "
        f"{info['numpy']} | torch {info['torch']} | tinydeep {info['tinydeep']} | "
        f"{info['date']}"
    )
    print(f"torch threads: {threads['torch']}")
    print(f"NumPy BLAS (tinydeep's matrix products): {threads['numpy_blas']}")
    print(
        f"one training step, {np.dtype(DTYPE)}, SGD lr {LR} momentum {MOMENTUM}; median of "
        f"{args.repeats} rounds x {STEPS_PER_TURN} steps; engines take turns, each turn "
        f"after {SETTLE_S} s of untimed steps"
    )

    results = {}
    for which in models:
        engines = make_engines(which, with_torch=torch is not None)
        checked = "no torch to check against"
        if len(engines) > 1:  # before timing: fails loudly on a mismatch
            worst = check_agreement(engines)
            diffs = ", ".join(f"{what} {v:.1e}" for what, v in worst.items())
            checked = f"{CHECK_STEPS} steps agree with tinydeep; largest differences: {diffs}"
        seconds = measure(engines, args.repeats)
        rows = table_rows(which, seconds)
        results[which] = {"rows": rows, "phases_s": seconds, "check": checked}

        print(f"\n{which}: {DESCRIPTIONS[which]}")
        print(f"checked before timing: {checked}")
        print()
        print(format_table(rows))
        print()
        print(format_phases(seconds))
    print(
        "\ntinydeep / engine: tinydeep's images/s over that engine's (below 1: tinydeep is "
        "slower).\nzero_grad drops the gradients; forward is the model in training mode; "
        "loss the cross-entropy;\nstep the SGD update. Each phase is its own median, so "
        "the phases need not add up to total;\nshare: the phase's part of tinydeep's total.\n"
        "page faults/step: minor faults, memory taken fresh from the OS (see the docstring)."
    )
    if torch is None:
        print(NO_TORCH)

    if args.json:
        settings = {
            "which": list(models),
            "dtype": np.dtype(DTYPE).name,
            "mlp": {"batch": MLP_BATCH, "features": MLP_FEATURES, "units": MLP_UNITS},
            "cnn": {"batch": CNN_BATCH, "image_hwc": list(CNN_IMAGE)},
            "lr": LR,
            "momentum": MOMENTUM,
            "repeats": args.repeats,
            "steps_per_turn": STEPS_PER_TURN,
            "settle_s": SETTLE_S,
        }
        with open(args.json, "w") as f:
            json.dump(
                {"machine": info, "threads": threads, "settings": settings, "models": results},
                f,
                indent=2,
            )
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
