"""Speed of tinydeep beside PyTorch, each engine alone in its own process.

Measured: ResNet-20 and ResNet-56 training steps, ResNet-20 inference, a Wide & Deep step,
ResNet-20's convolutions against the GEMM ceiling, and the first step of a fresh process.

Why a process per engine. In one process PyTorch's OpenMP threads spin against OpenBLAS's and
tinydeep's kernel threads on the same cores, and tinydeep's allocator settings at import
(tinydeep.backend.keep_freed_memory) change PyTorch's speed too. So this script, the parent,
imports neither engine (nor NumPy: the standard library only) and runs every measurement in a
child process of its own,

    python benchmarks/resnet_wide_deep.py --child WORKLOAD ENGINE --spec JSON

which imports one engine, with the other blocked by an import hook (checked again at its end),
and prints one JSON line. What the children build is in side_tinydeep.py and side_torch.py.

Workloads (--which, default all: every one but movielens):

  resnet20        A training step of ResNet-20 (tinydeep.models.ResNet: He et al.'s CIFAR net,
                  zero-pad shortcuts) on a fixed batch of 128 random 32x32x3 float32 images;
                  SGD lr 0.01 momentum 0.9, cross-entropy.
  resnet56        The same for ResNet-56.
  resnet20-infer  ResNet-20 inference on a batch of 512: tinydeep's model with training=False
                  inside tinydeep.no_grad(), torch's in eval() inside torch.no_grad().
  wide_deep       A Wide & Deep step (Cheng et al. 2016) on 512 rows: eight categorical columns
                  (vocabularies of 10 to 50,000), each an Embedding(V, 8), and four numeric ones
                  into Dense(256, relu) -> Dense(128, relu) -> Dense(1); plus the wide part,
                  embedding_sum over a (100,000, 1) table of the 8 hashed columns and 3 hashed
                  crosses; binary cross-entropy on the summed logits. AdaGrad (lr 0.05) on the
                  wide table, Adam (lr 1e-3) on the rest.
  movielens       examples/movielens.py's Wide & Deep (its `build`: FTRL on the wide part, Adam on
                  the deep part, dropout 0.5; the implicit task's logistic loss) on real
                  MovieLens 100K training batches of 256 (or --batch): one shuffled epoch of
                  the temporal split's training rows, batch after batch. torch runs
                  benchmarks/movielens_torch.py's twin (its FTRL, dense gradients). Needs the
                  data (TINYDEEP_DATA), so it runs only when named: --which movielens.
  conv            Every distinct conv of ResNet-20 at batch 128: GFLOP/s of the forward and the
                  backward of tinydeep.ops.conv2d's array functions, against NumPy's float32
                  GEMM on (4096, 1024) @ (1024, 1024) with its default threads: the ceiling.
  first_step      A fresh child, run twice with NUMBA_CACHE_DIR set to one new folder, empty and
                  then warm: seconds from its start to the end of its first ResNet-20 step.

Engines: tinydeep (its kernels on, the default); tinydeep-reference (TINYDEEP_KERNELS=0, every
op on its NumPy reference: slow, so only with --with-reference); torch (NCHW, its default);
torch-cl (channels_last); for Wide & Deep, torch with dense Adam (tinydeep's maths) and
torch-sparse (sparse embedding gradients, SparseAdam). torch's ResNet has tinydeep's
batch-norm settings and TensorFlow's "same" padding (at stride 2 it pads only after).

Protocol. In each of R rounds every engine runs one child, the first engine rotating from
round to round so that order effects cancel. A child builds its model from fixed seeds, takes
untimed warm-up steps (at least 2, for at least 1.5 s), then times S steps one by one with
perf_counter (loss.item() included, which waits for a GPU; no garbage collection forced), and
reports the step times, its peak RSS (VmHWM: Linux keeps ru_maxrss across fork and exec, so a
child would report its parent's), its threads and the losses of its first 2 steps. Per engine
the table gives the median ms/step over all timed steps of all rounds, the range of the
rounds' medians, images (rows) per second, the speed against tinydeep (the engine's ms over
tinydeep's: above 1, tinydeep is faster) and the largest peak RSS of its rounds. Every engine
runs with its default threads; the table's notes say which.

Checked. A workload's first child (tinydeep, round 1) saves its initial weights and batch to a
.npz (no pickle), and every torch child starts from them. The losses of every child's first 2
steps must match that first child's to a relative 1e-3 (torch-sparse: the first step only;
SparseAdam is another optimizer after it; movielens: both steps without dropout, whose masks
are each engine's own). A mismatch or a failed child is marked in the table, and the script
exits with status 1 at the end.

Read in this order: the settings (ENGINES, WORKLOADS), the child (`child`, `time_steps`), the
parent (`run_rounds`, `check_losses`, `engine_row`), the report (`model_table`), then `main`.

Run it:  python benchmarks/resnet_wide_deep.py [--which WORKLOAD ...] [--quick] [--rounds R]
             [--steps S] [--batch B] [--with-reference] [--json PATH] [--device cuda]
The defaults take 10 to 15 minutes on a 2-core machine, --quick (1 round, 2 steps) a minute or
two. --device cuda runs resnet20 at batch 512 and wide_deep against torch on the GPU (tinydeep
through CuPy), a process per engine as on the CPU; the other workloads are skipped. --batch
sets the batch of resnet20, wide_deep and movielens (benchmarks/gpu_check.py times 128 and 512).

Left out: data loading (one batch is reused; movielens's batches are made before the timing),
accuracy, torch.compile and other fused paths, thread counts other than the defaults, skewed
(Zipf) ids in the synthetic Wide & Deep, and peak GPU memory.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.abc
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

STARTED = perf_counter()  # a first_step child's clock starts here, after the imports above

# ---- settings --------------------------------------------------------------------------------

SEED = 0
WARMUP_STEPS, WARMUP_S = 2, 1.5  # every child first takes at least this many steps, this long
CHECK_STEPS = 2  # first losses compared with tinydeep's: the second depends on the update
CHECKED_STEPS = {"torch-sparse": 1}  # SparseAdam is another optimizer after the first step
RTOL = 1e-3
CHILD_TIMEOUT_S = 900
SCRIPT = Path(__file__).resolve()

RESNET = {
    "model": "resnet",
    "image": [32, 32, 3],  # H, W, C
    "classes": 10,
    "lr": 0.01,
    "momentum": 0.9,
    "bn_momentum": 0.9,  # tinydeep's ResNet default; torch's momentum is 1 - this
    "bn_epsilon": 1e-3,  # Keras's, tinydeep's BatchNormalization default
}
WIDE_DEEP = {
    "model": "wide_deep",
    "batch": 512,
    "vocabs": [10, 50, 200, 1_000, 5_000, 10_000, 20_000, 50_000],  # one per categorical column
    "embed_dim": 8,
    "numeric": 4,
    "wide_rows": 100_000,  # hashed feature space of the wide part
    "crosses": [[0, 1], [1, 2], [2, 3]],  # pairs of columns crossed in the wide part
    "units": [256, 128],
    "lr_wide": 0.05,  # AdaGrad
    "lr_deep": 1e-3,  # Adam
}
MOVIELENS = {
    "model": "movielens",
    "batch": 256,
    "kind": "wide_deep",
    "task": "implicit",
    "split": "temporal",
    "plain_steps": CHECK_STEPS,  # without dropout, so the checked losses do not depend on it
}
CONV = {"depth": 20, "width": 16, "batch": 128, "image": [32, 32, 3]}
CONV |= {"gemm_shape": [4096, 1024, 1024], "gemm_repeats": 9}  # (M, K, N) of the ceiling


@dataclass(frozen=True)
class Engine:
    """How a child of this engine runs: the module that builds its models, what its
    environment sets, and the top-level modules it may not import."""

    side: str
    env: dict[str, str]
    blocked: tuple[str, ...]


TINYDEEP_BLOCKS = ("torch",)
TORCH_BLOCKS = ("tinydeep", "tinydeep_kernels", "numba")
ENGINES = {
    "tinydeep": Engine("side_tinydeep", {"TINYDEEP_KERNELS": "1"}, TINYDEEP_BLOCKS),
    "tinydeep-reference": Engine("side_tinydeep", {"TINYDEEP_KERNELS": "0"}, TINYDEEP_BLOCKS),
    "torch": Engine("side_torch", {}, TORCH_BLOCKS),
    "torch-cl": Engine("side_torch", {}, TORCH_BLOCKS),
    "torch-sparse": Engine("side_torch", {}, TORCH_BLOCKS),
}


@dataclass(frozen=True)
class Workload:
    """One table of the report: what the children build and how many of them run."""

    title: str
    spec: dict  # what each child builds; sent to it as JSON with the run's settings
    engines: tuple[str, ...]  # tinydeep first: the baseline of the speeds and of the check
    rounds: tuple[int, int]  # default, --quick
    steps: tuple[int, int]  # timed steps per child (conv: timed repeats of each shape)
    legend: str = ""


RESNET_ENGINES = ("tinydeep", "torch", "torch-cl")
RESNET_LEGEND = "torch: NCHW, its default layout; torch-cl: channels_last memory format."
RESNET_STEP = "32x32x3 float32, SGD lr 0.01 momentum 0.9, cross-entropy"
WORKLOADS = {
    "resnet20": Workload(
        title=f"ResNet-20 training step, {RESNET_STEP}",
        spec={**RESNET, "depth": 20, "batch": 128, "training": True},
        engines=RESNET_ENGINES,
        rounds=(7, 1),
        steps=(10, 2),
        legend=RESNET_LEGEND,
    ),
    "resnet56": Workload(
        title=f"ResNet-56 training step, {RESNET_STEP}",
        spec={**RESNET, "depth": 56, "batch": 128, "training": True},
        engines=RESNET_ENGINES,
        rounds=(7, 1),
        steps=(5, 2),
        legend=RESNET_LEGEND,
    ),
    "resnet20-infer": Workload(
        title="ResNet-20 inference (training=False, no graph), 32x32x3 float32",
        spec={**RESNET, "depth": 20, "batch": 512, "training": False},
        engines=RESNET_ENGINES,
        rounds=(7, 1),
        steps=(8, 2),
        legend=RESNET_LEGEND,
    ),
    "wide_deep": Workload(
        title="Wide & Deep training step: 8 embedded columns + 4 numeric -> Dense(256, 128, "
        "1), hashed wide part; AdaGrad (wide) + Adam",
        spec={**WIDE_DEEP, "training": True},
        engines=("tinydeep", "torch", "torch-sparse"),
        rounds=(7, 1),
        steps=(200, 20),
        legend="torch: nn.Embedding with dense Adam (tinydeep's maths); torch-sparse: "
        "nn.Embedding(sparse=True) + SparseAdam. Both: EmbeddingBag(sparse=True) + Adagrad.",
    ),
    "movielens": Workload(
        title="MovieLens 100K Wide & Deep training step, examples/movielens.py's model: FTRL "
        "(wide) + Adam (deep), dropout 0.5, logistic loss, real training batches",
        spec=MOVIELENS,
        engines=("tinydeep", "torch"),
        rounds=(7, 1),
        steps=(200, 20),
        legend="torch: benchmarks/movielens_torch.py's twin (nn.EmbeddingBag, its FTRL "
        "optimizer, dense gradients). The first 2 steps of every child run without dropout.",
    ),
    "conv": Workload(
        title="ResNet-20's convs at batch 128, 3x3 'same', float32: forward and backward of "
        "tinydeep.ops.conv2d",
        spec=CONV,
        engines=("tinydeep",),
        rounds=(5, 1),
        steps=(5, 2),
    ),
    "first_step": Workload(
        title="the first ResNet-20 training step (batch 128) of a fresh process",
        spec={**RESNET, "depth": 20, "batch": 128, "training": True},
        engines=("tinydeep",),
        rounds=(1, 1),  # two children, empty and warm cache, whatever the flags say
        steps=(0, 0),
    ),
}
CUDA_BATCH = {"resnet20": 512, "wide_deep": 512}  # what --device cuda runs, at these batches
BATCHED = (*CUDA_BATCH, "movielens")  # the workloads --batch sets
NAMED_ONLY = ("movielens",)  # not in "all": it needs the MovieLens data

# ---- the child: one engine, alone ------------------------------------------------------------


class BlockImports(importlib.abc.MetaPathFinder):
    """An import hook that refuses the named top-level modules and their submodules."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path=None, target=None) -> None:
        """Refuse a blocked name; for any other, None: the next finder on sys.meta_path looks."""
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"{fullname} is blocked in this child", name=fullname)


def loaded(names: tuple[str, ...]) -> list[str]:
    """The modules in sys.modules under any of these top-level names."""
    return sorted(m for m in sys.modules if m.partition(".")[0] in names)


def peak_rss_mib() -> float | None:
    """This process's peak resident memory so far, in MiB: VmHWM from /proc/self/status (not
    ru_maxrss, which Linux carries over from the parent); None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            line = next(ln for ln in f if ln.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None
    return int(line.split()[1]) / 1024  # kB


def thread_pools() -> list[dict]:
    """The native thread pools in this process (BLAS, OpenMP), from threadpoolctl if installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [
        {
            "user_api": p["user_api"],
            "api": p["internal_api"],
            "version": p.get("version"),
            "threads": p["num_threads"],
            "library": Path(p["filepath"]).name,
        }
        for p in threadpool_info()
    ]


def time_steps(step: Callable[[], float], spec: dict) -> dict:
    """Untimed warm-up steps (WARMUP_STEPS at least, and spec["warmup_s"] seconds), then
    spec["steps"] steps timed one by one; the first CHECK_STEPS losses."""
    built_mib = peak_rss_mib()
    losses, start = [], perf_counter()
    while len(losses) < WARMUP_STEPS or perf_counter() - start < spec["warmup_s"]:
        losses.append(step())
    seconds = []
    for _ in range(spec["steps"]):
        start = perf_counter()
        step()
        seconds.append(perf_counter() - start)
    return {
        "losses": losses[:CHECK_STEPS],
        "warmup_steps": len(losses),
        "step_s": seconds,
        "peak_rss_built_mib": built_mib,
    }


def child(workload: str, engine: str, spec: dict) -> None:
    """Run one engine's part of a workload in this process and print its JSON line."""
    blocked = ENGINES[engine].blocked
    if loaded(blocked):
        raise RuntimeError(f"loaded before the block: {loaded(blocked)}")
    sys.meta_path.insert(0, BlockImports(blocked))
    side = importlib.import_module(ENGINES[engine].side)
    if workload == "conv":
        result = side.conv_table(engine, spec)
    elif workload == "first_step":
        result = side.first_step(spec, STARTED)
    else:
        result = time_steps(side.make_step(engine, spec), spec)
    if loaded(blocked):  # the hook's promise, checked: the other engine never came in
        raise RuntimeError(f"{engine}'s child imported {loaded(blocked)}")
    info = {**side.engine_info(), "thread_pools": thread_pools(), "blocked": list(blocked)}
    print(json.dumps({**result, "peak_rss_mib": peak_rss_mib(), "engine_info": info}))


# ---- the parent: children, rounds, checks ----------------------------------------------------


def run_child(workload: str, engine: str, spec: dict, env: dict | None = None) -> dict:
    """One child process; its JSON result and the parent's clock around it ("process_s"), or
    {"error": ...} with the last line it wrote to stderr."""
    command = [sys.executable, str(SCRIPT), "--child", workload, engine, "--spec", json.dumps(spec)]
    start = perf_counter()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, **ENGINES[engine].env, **(env or {})},
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
    seconds = perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"exit {done.returncode}: {tail}", "process_s": seconds}
    try:
        return {**json.loads(done.stdout.strip().splitlines()[-1]), "process_s": seconds}
    except (IndexError, json.JSONDecodeError):
        return {"error": f"no JSON line in its output: {done.stdout[-200:]!r}"}


def summary(result: dict) -> str:
    """A child's result in a few words, for the progress lines."""
    if "error" in result:
        return f"FAILED: {result['error']}"
    if "step_s" in result:
        ms = statistics.median(result["step_s"]) * 1e3
        losses = ", ".join(f"{v:.5f}" for v in result["losses"])
        return f"{ms:.1f} ms/step, peak {result['peak_rss_mib']:.0f} MiB, losses {losses}"
    if "shapes" in result:
        shapes = result["shapes"]
        ms = sum(
            s["count"] * (median_ms(s["forward_s"]) + median_ms(s["backward_s"])) for s in shapes
        )
        return f"one step's convs about {ms:.0f} ms, GEMM {result['gemm_gflops']:.0f} GFLOP/s"
    return f"first step ended {result['start_to_first_step_end_s']:.2f} s after start"


def median_ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1e3


def run_rounds(name: str, engines: tuple[str, ...], spec: dict, rounds: int) -> list[dict]:
    """Every engine once per round, the first engine rotating; the workload's very first
    child (engines[0], tinydeep) saves its start to spec["weights"] for the others."""
    runs: list[dict] = []
    for r in range(rounds):
        k = r % len(engines)
        for engine in engines[k:] + engines[:k]:
            result = run_child(name, engine, {**spec, "save": not runs})
            runs.append({"round": r + 1, "engine": engine, **result})
            print(f"  {name} round {r + 1}/{rounds} {engine:<18} {summary(result)}", flush=True)
    return runs


def check_losses(runs: list[dict]) -> None:
    """Set "loss_rel_diff" and "agrees" on every run that finished: its first losses against
    those of the workload's first child."""
    expected = runs[0].get("losses")
    for run in runs:
        if "error" in run or expected is None:
            continue
        n = CHECKED_STEPS.get(run["engine"], CHECK_STEPS)
        pairs = zip(run["losses"][:n], expected[:n])
        run["loss_rel_diff"] = worst([abs(got - want) / abs(want) for got, want in pairs])
        run["agrees"] = run["loss_rel_diff"] <= RTOL  # False for NaN too


def worst(values: list[float]) -> float:
    """The largest value, or NaN if any is NaN (max() may skip a NaN)."""
    return math.nan if any(math.isnan(v) for v in values) else max(values)


def engine_row(engine: str, runs: list[dict], items: int) -> dict:
    """Per engine: median ms/step over all timed steps, the rounds' medians, items/s, peak
    RSS, the check, and the errors of any failed rounds."""
    done = [r for r in runs if "error" not in r]
    row = {"engine": engine, "errors": [r["error"] for r in runs if "error" in r]}
    if not done:
        return row
    ms = median_ms([s for r in done for s in r["step_s"]])
    checked = [r for r in done if "agrees" in r]
    return row | {
        "ms_per_step": ms,
        "round_medians_ms": [median_ms(r["step_s"]) for r in done],
        "items_per_s": items / ms * 1e3,
        "peak_rss_mib": max((r["peak_rss_mib"] or 0) for r in done),
        "steps_timed": sum(len(r["step_s"]) for r in done),
        "checked_steps": CHECKED_STEPS.get(engine, CHECK_STEPS),
        "loss_rel_diff": worst([r["loss_rel_diff"] for r in checked]) if checked else None,
        "agrees": all(r["agrees"] for r in checked) if checked else None,
        "losses": [r["losses"] for r in done],
        "engine_info": done[0]["engine_info"],
    }


def problems_of(name: str, rows: list[dict]) -> list[str]:
    """The failed children and the disagreeing losses of a workload, one line each."""
    found = [f"{name}, {r['engine']}: FAILED: {e}" for r in rows for e in r["errors"]]
    for r in rows:
        if r.get("agrees") is False:
            found.append(
                f"{name}, {r['engine']}: losses DISAGREE with tinydeep's "
                f"(largest relative difference {r['loss_rel_diff']:.1e} > {RTOL})"
            )
        elif "ms_per_step" in r and r["agrees"] is None:
            found.append(f"{name}, {r['engine']}: NOT CHECKED (tinydeep's first child failed)")
    return found


def run_model_workload(name: str, engines: tuple[str, ...], spec: dict) -> dict:
    """Rounds of children, the check, and one row per engine with its speed vs tinydeep."""
    runs = run_rounds(name, engines, spec, spec["rounds"])
    check_losses(runs)
    rows = [engine_row(e, [r for r in runs if r["engine"] == e], spec["batch"]) for e in engines]
    base = rows[0].get("ms_per_step")
    for row in rows:
        if base and "ms_per_step" in row:
            row["speed_vs_tinydeep"] = row["ms_per_step"] / base
            row["paired_speed_vs_tinydeep"] = paired_speed(runs, row["engine"], engines[0])
    return {"spec": spec, "runs": runs, "rows": rows, "problems": problems_of(name, rows)}


def paired_speed(runs: list[dict], engine: str, base: str) -> float | None:
    """The median over rounds of `engine`'s round median over `base`'s in the same round.
    The two ran back to back, so a change in the machine's load between rounds (10-30% on a
    shared machine) cancels in each ratio; None when no round has both."""
    by_round: dict[int, dict[str, float]] = {}
    for r in runs:
        if "error" not in r:
            by_round.setdefault(r["round"], {})[r["engine"]] = statistics.median(r["step_s"])
    ratios = [t[engine] / t[base] for t in by_round.values() if engine in t and base in t]
    return statistics.median(ratios) if ratios else None


# ---- the conv rates and the first step -------------------------------------------------------


def run_conv_workload(name: str, engines: tuple[str, ...], spec: dict) -> dict:
    """Rounds of conv children; per engine and shape the median forward and backward time
    over all rounds, as GFLOP/s and as a fraction of the GEMM ceiling (the median of all
    children's)."""
    runs = run_rounds(name, engines, spec, spec["rounds"])
    done = [r for r in runs if "error" not in r]
    failed = [f"{name}, {r['engine']}: FAILED: {r['error']}" for r in runs if "error" in r]
    result = {"spec": spec, "runs": runs, "rows": [], "problems": failed}
    if not done:
        return result
    result["gemm_gflops"] = statistics.median(r["gemm_gflops"] for r in done)
    by_engine = {e: [r for r in done if r["engine"] == e] for e in engines}
    by_engine = {e: runs for e, runs in by_engine.items() if runs}
    shapes = range(len(done[0]["shapes"]))  # each shape's rows together, an engine's each
    gemm = result["gemm_gflops"]
    result["rows"] = [conv_row(e, runs, i, gemm) for i in shapes for e, runs in by_engine.items()]
    return result


def conv_row(engine: str, runs: list[dict], i: int, gemm_gflops: float) -> dict:
    """Shape i over all of one engine's conv children `runs`: the median forward and backward
    ms of all their repeats, as GFLOP/s, and (both together) as a fraction of the ceiling."""
    shape = runs[0]["shapes"][i]
    forward = median_ms([s for r in runs for s in r["shapes"][i]["forward_s"]])
    backward = median_ms([s for r in runs for s in r["shapes"][i]["backward_s"]])
    flops = shape["forward_flops"] + shape["backward_flops"]
    return {
        **{k: v for k, v in shape.items() if not k.endswith("_s")},  # all but the samples
        "engine": engine,
        "its_gemm_gflops": statistics.median(r["shapes"][i]["its_gemm_gflops"] for r in runs),
        "forward_ms": forward,
        "backward_ms": backward,
        "forward_gflops": shape["forward_flops"] / forward / 1e6,
        "backward_gflops": shape["backward_flops"] / backward / 1e6,
        "fraction_of_gemm": flops / (forward + backward) / 1e6 / gemm_gflops,
    }


def numba_cache_files(folder: Path) -> int:
    """How many of Numba's cache files (index .nbi, data .nbc) lie under `folder`."""
    return sum(1 for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc"))


def run_first_step(name: str, engines: tuple[str, ...], spec: dict) -> dict:
    """Two fresh children with one new NUMBA_CACHE_DIR, empty then warm; then whether every
    kernel's cache went there."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="tinydeep-numba-cache-") as cache:
        for label in ("empty", "warm"):
            run = run_child(name, engines[0], spec, env={"NUMBA_CACHE_DIR": cache})
            run |= {"cache": label, "cache_files_after": numba_cache_files(Path(cache))}
            runs.append(run)
            print(f"  {name} {label} cache: {summary(run)}", flush=True)
        dirs = {d for run in runs for d in run.get("cache_dirs", [])}
        outside = sorted(d for d in dirs if not Path(d).is_relative_to(cache))
    problems = [f"{name}, {r['cache']} cache: FAILED: {r['error']}" for r in runs if "error" in r]
    if outside:
        problems.append(f"{name}: Numba caches outside NUMBA_CACHE_DIR: {outside}")
    return {"spec": spec, "runs": runs, "cache_dirs_outside": outside, "problems": problems}


RUNNERS = {"conv": run_conv_workload, "first_step": run_first_step}


# ---- the report ------------------------------------------------------------------------------


def markdown(header: list[str], rows: list[list[str]], align: str) -> str:
    """A Markdown table; `align` has an "l" or an "r" per column."""
    lines = [header, ["---:" if a == "r" else "---" for a in align], *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def check_cell(row: dict) -> str:
    """The check of an engine's first losses against tinydeep's, loud when it fails."""
    if row.get("agrees") is None:
        return "**NOT CHECKED**"
    steps = "step 1" if row["checked_steps"] == 1 else f"steps 1-{row['checked_steps']}"
    if not row["agrees"]:
        return f"**DISAGREES**: {steps}, max rel. diff. {row['loss_rel_diff']:.1e}"
    return f"{steps} agree, max rel. diff. {row['loss_rel_diff']:.0e}"


def threads_note(info: dict) -> str:
    """An engine's threads in a few words: torch's or Numba's (and how many of tinydeep's
    kernels ran), then the native pools."""
    parts = []
    if "torch_threads" in info:
        parts.append(
            f"torch {info['torch_threads']} intra-op / {info['torch_interop_threads']} inter-op"
        )
    if info.get("numba_threads"):
        parts.append(f"Numba {info['numba_threads']}")
    if "kernels_dispatched" in info:  # none: tinydeep ran its references
        parts.append(f"{len(info['kernels_dispatched'])} kernels dispatched")
    parts += [f"{p['api']} {p['threads']}" for p in info["thread_pools"]]
    return ", ".join(parts) or "unknown"


def model_cells(row: dict) -> list[str]:
    """One engine's row of a model workload's table."""
    if "ms_per_step" not in row:
        return [row["engine"], "**FAILED**", "", "", "", "", "", row["errors"][0]]
    medians = row["round_medians_ms"]
    failed = f"; **{len(row['errors'])} round(s) FAILED**" if row["errors"] else ""
    return [
        row["engine"],
        f"{row['ms_per_step']:.1f}",
        f"{min(medians):.1f}-{max(medians):.1f}",
        f"{row['items_per_s']:,.0f}",
        f"{row['speed_vs_tinydeep']:.2f}x" if "speed_vs_tinydeep" in row else "-",
        f"{row['paired_speed_vs_tinydeep']:.2f}x" if row.get("paired_speed_vs_tinydeep") else "-",
        f"{row['peak_rss_mib']:,.0f}",
        check_cell(row) + failed,
    ]


def model_table(name: str, workload: Workload, result: dict) -> str:
    spec, items = result["spec"], "images" if result["spec"]["model"] == "resnet" else "rows"
    header = ["engine", "ms/step (median)", "round medians (min-max)", f"{items}/s"]
    header += ["speed vs tinydeep", "paired, per round", "peak RSS MiB"]
    header += [f"first losses vs tinydeep (rtol {RTOL})"]
    lines = [model_cells(r) for r in result["rows"]]
    notes = [
        f"### {name}: {workload.title}, batch {spec['batch']}, on {spec['device']}",
        "",
        (
            f"{spec['rounds']} round(s) x {spec['steps']} timed steps per engine, each engine "
            "alone in its own process; speed vs tinydeep: the engine's ms/step over tinydeep's "
            "(above 1: tinydeep is faster); paired: the median over rounds of the same ratio "
            "within each round, whose engines ran back to back."
        ),
        "",
        markdown(header, lines, "lrrrrrrl"),
        "",
    ]
    if workload.legend:
        notes.append(workload.legend)
    threads = [
        f"{r['engine']}: {threads_note(r['engine_info'])}"
        for r in result["rows"]
        if "engine_info" in r
    ]
    if threads:
        notes.append("threads: " + "; ".join(threads))
    return "\n".join(notes)


def conv_cells(row: dict) -> list[str]:
    """One (shape, engine) row of the conv table."""
    gflop = (row["forward_flops"] + row["backward_flops"]) / 1e9
    keys = ("its_gemm_gflops", "forward_ms", "backward_ms", "forward_gflops", "backward_gflops")
    numbers = (f"{row[k]:.1f}" for k in keys)
    first = [row["shape"], row["engine"], str(row["count"]), f"{gflop:.2f}"]
    return [*first, *numbers, f"{row['fraction_of_gemm']:.0%}"]


def conv_table(name: str, workload: Workload, result: dict) -> str:
    spec = result["spec"]
    lines = [f"### {name}: {workload.title}", ""]
    if "gemm_gflops" not in result:
        return "\n".join([*lines, "**FAILED**: " + "; ".join(result["problems"])])
    m, k, n = spec["gemm_shape"]
    lines += [
        (
            f"NumPy float32 GEMM ({m}, {k}) @ ({k}, {n}): {result['gemm_gflops']:.1f} GFLOP/s, "
            f"the ceiling; {spec['rounds']} round(s) x {spec['steps']} repeats of each shape."
        ),
        "",
    ]
    header = ["x (H x W x C) -> F, stride", "engine", "convs", "GFLOP fwd+bwd", "its GEMM GFLOP/s"]
    header += ["fwd ms", "bwd ms", "fwd GFLOP/s", "bwd GFLOP/s", "of GEMM ceiling"]
    rows = [conv_cells(r) for r in result["rows"]]
    lines += [markdown(header, rows, "llrrrrrrrr"), ""]
    for engine in dict.fromkeys(r["engine"] for r in result["rows"]):
        mine = [r for r in result["rows"] if r["engine"] == engine]
        ms = sum(r["count"] * (r["forward_ms"] + r["backward_ms"]) for r in mine)
        flop = sum(r["count"] * (r["forward_flops"] + r["backward_flops"]) for r in mine)
        lines.append(
            f"{engine}: all {sum(r['count'] for r in mine)} convs of one step, {flop / 1e9:.1f} "
            f"GFLOP in {ms:.0f} ms: {flop / ms / 1e6:.1f} GFLOP/s, "
            f"{flop / ms / 1e6 / result['gemm_gflops']:.0%} of the ceiling"
        )
    lines += [
        "",
        (
            "GFLOP: forward, plus backward's dx and dw (the stem: no dx); its GEMM: the "
            "forward's one matrix product alone, (N*OH*OW, 9*C) @ (9*C, F), the ceiling of an "
            "im2col conv."
        ),
    ]
    return "\n".join(lines)


def first_step_table(name: str, workload: Workload, result: dict) -> str:
    header = ["NUMBA_CACHE_DIR", "import s", "build s", "step 1 s", "start to end of step 1 s"]
    header += ["step 2 s", "process s", "compiled", "from cache"]
    keys = ("import_s", "build_s", "step1_s", "start_to_first_step_end_s", "step2_s", "process_s")
    rows = []
    for run in result["runs"]:
        if "error" in run:
            rows.append([run["cache"], f"**FAILED**: {run['error']}"] + [""] * 7)
            continue
        rows.append(
            [run["cache"], *(f"{run[k]:.2f}" for k in keys)]
            + [str(run["cache_misses"]), str(run["cache_hits"])]
        )
    lines = [f"### {name}: {workload.title}", "", markdown(header, rows, "lrrrrrrrr"), ""]
    first = result["runs"][0]
    if "error" not in first:
        lines.append(
            f"tinydeep_kernels.cpu: {first['kernels']}; kernels dispatched: "
            f"{', '.join(first['engine_info']['kernels_dispatched']) or 'none'}; "
            f"{first['numba_functions']} Numba functions ran."
        )
    redirect = "all under NUMBA_CACHE_DIR" if not result["cache_dirs_outside"] else "NOT redirected"
    lines.append(
        f"Numba's cache: {redirect}. import: from the child's start (after the script's "
        "standard-library imports); build: the first (inference) call, which makes the weights; "
        "process s: the parent's clock around the child, interpreter start and exit included; "
        "compiled / from cache: Numba's cache misses and hits."
    )
    return "\n".join(lines)


TABLES = {"conv": conv_table, "first_step": first_step_table}


def version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine(results: dict) -> dict:
    """CPU model, cores, versions, NumPy's BLAS (as a tinydeep child found it) and the date."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    runs = [r for result in results.values() for r in result["runs"]]
    infos = [r["engine_info"] for r in runs if "tinydeep" in r.get("engine_info", {})]
    pools = [p for info in infos for p in info["thread_pools"]]
    blas = next((p for p in pools if p["user_api"] == "blas"), None)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": version("numpy"),
        "blas": f"{blas['api']} {blas['version']}, {blas['threads']} threads" if blas else "?",
        "torch": version("torch"),
        "tinydeep": version("tinydeep"),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }


# ---- main ------------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> dict[str, tuple[tuple[str, ...], dict]]:
    """The workloads to run, each with its engines and the spec its children get."""
    names = [name for name in args.which if name != "all"]
    if "all" in args.which:  # every workload but those that need real data, then those named
        names = [*(name for name in WORKLOADS if name not in NAMED_ONLY), *names]
    names = list(dict.fromkeys(names))
    has_torch = importlib.util.find_spec("torch") is not None  # found, not imported
    if not has_torch:
        print("torch is not installed: timing tinydeep alone")
    planned = {}
    for name in names:
        if args.device == "cuda" and name not in CUDA_BATCH:
            print(f"{name}: skipped, a CPU workload (run it without --device cuda)")
            continue
        workload = WORKLOADS[name]
        engines = [e for e in workload.engines if has_torch or not e.startswith("torch")]
        if args.with_reference and name != "first_step":
            engines.insert(1, "tinydeep-reference")
        spec = {**workload.spec, "seed": SEED, "device": args.device, "warmup_s": WARMUP_S}
        spec["rounds"] = args.rounds or workload.rounds[args.quick]
        spec["steps"] = args.steps or workload.steps[args.quick]
        if args.device == "cuda":
            spec["batch"] = CUDA_BATCH[name]
        if args.batch and name in BATCHED:
            spec["batch"] = args.batch
        planned[name] = (tuple(engines), spec)
    return planned


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--which", nargs="+", choices=(*WORKLOADS, "all"), default=["all"])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="1 round, 2 steps: a smoke run")
    parser.add_argument("--batch", type=int, help="the batch of resnet20, wide_deep, movielens")
    parser.add_argument("--rounds", type=int, help="rounds of children, for every workload")
    parser.add_argument("--steps", type=int, help="timed steps per child, for every workload")
    parser.add_argument("--with-reference", action="store_true", help="add tinydeep-reference")
    parser.add_argument("--json", metavar="PATH", help="also write every raw number here")
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "ENGINE"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for flag in ("rounds", "steps", "batch"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        child(*args.child, json.loads(args.spec))
        return

    results = {}
    with tempfile.TemporaryDirectory(prefix="tinydeep-bench-") as folder:
        for name, (engines, spec) in plan(args).items():
            print(f"{name}: {', '.join(engines)}", flush=True)
            spec["weights"] = str(Path(folder, f"{name}.npz"))  # the first child's start
            runner = RUNNERS.get(name, run_model_workload)
            results[name] = runner(name, engines, spec)

    info = machine(results)
    print(
        f"\n## Results\n\n{info['cpu']}, {info['cores']} cores | Python {info['python']} | "
        f"NumPy {info['numpy']} ({info['blas']}) | torch {info['torch']} | tinydeep "
        f"{info['tinydeep']} | {info['date']}"
    )
    for name, result in results.items():
        print("\n" + TABLES.get(name, model_table)(name, WORKLOADS[name], result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "workloads": results}, f, indent=2)
        print(f"\nwrote {args.json}")

    if loaded(("numpy", "torch", "tinydeep")):  # the parent stays clear of both engines
        raise RuntimeError(f"the parent imported {loaded(('numpy', 'torch', 'tinydeep'))}")
    problems = [p for result in results.values() for p in result["problems"]]
    if problems:
        print("\nPROBLEMS:\n" + "\n".join(f"  {p}" for p in problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
