"""The engine's own cost per op: tinydeep beside PyTorch (CPU) and plain NumPy, each in its own
process.

What it measures: a chain of --ops (default 1,000) elementwise ops on a tiny float32 tensor
(--size, default 16 elements), so the arithmetic costs next to nothing and what is left is each
engine's work per op: Python calls, wrapping arrays in tensors, recording the graph, and the
backward sweep. The chain repeats eight ops (multiply by a constant tensor, add the leaf x,
tanh, exp, subtract a Python number, relu, sigmoid, divide by a constant tensor); it is written
once, in `chain`, and run on each engine's functions. Reported in microseconds per op, the
median over every timed repeat of every round:

  forward, no_grad    no graph recorded (tinydeep.no_grad() / torch.no_grad())
  forward             graph recording on; the leaf x requires a gradient
  backward            backward from .sum() of the final tensor, through the graph just recorded
  forward+backward    both, timed as one

Each phase includes the final .sum(). NumPy runs the same forward arithmetic on bare arrays,
the floor that any engine built on NumPy pays; the gap between it and tinydeep is Python and
graph overhead. NumPy's sigmoid is the plain 1 / (1 + exp(-y)), four array calls. All three
pay the same small cost of the Python loop in `chain`.

A process per engine. In one process tinydeep's allocator settings at import change PyTorch's
speed, and torch's threads spin against tinydeep's. So, as in benchmarks/resnet_wide_deep.py,
this script, the parent, imports neither tinydeep nor torch, and runs every engine in worker
processes of its own,

    python benchmarks/engine_overhead.py --worker ENGINE --ops N --size N --repeats N

each of which imports its own engine only: resnet_wide_deep's import hook refuses the others
(the NumPy worker's: tinydeep and torch both), and its sys.modules is checked again at its end.
Turns: in each of --rounds rounds every engine runs one worker, one at a time, the first engine
rotating from round to round (tinydeep, torch, numpy; then torch, numpy, tinydeep; ...) so that
a change in machine load, or an order effect, hits all alike. A worker takes WARMUP untimed
repeats, times --repeats, and prints their seconds per phase as one JSON line.

Checked before timing: one worker per engine runs the chain once and saves its final value and
the gradient of x to a .npz in a temporary folder; the parent loads them (allow_pickle=False)
and stops with an error unless tinydeep's are finite, its gradient not all zero, and torch's
and NumPy's agree with tinydeep's (torch's gradient too) within RTOL and ATOL.

Read in this order: the settings, `chain`, the engines, the worker (`worker`, `time_once`), the
parent (`run_worker`, `check_agreement`, `measure`), the report, then `main`.

Run it:  python benchmarks/engine_overhead.py [--ops 1000] [--size 16] [--rounds 7]
                                              [--repeats 3] [--json results.json]

Left out: large tensors (where the arithmetic, not the engine, sets the time), Numba and CUDA
kernels (these elementwise ops run their NumPy references), memory use, torch.compile and other
fused paths, and torch with more than one thread (it does not matter at this size).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from time import perf_counter
from types import SimpleNamespace

import numpy as np
from resnet_wide_deep import TINYDEEP_BLOCKS, TORCH_BLOCKS, BlockImports, loaded  # beside this

# ---- settings --------------------------------------------------------------------------------

OPS = 1000  # length of the chain
SIZE = 16  # elements in each tensor: small, so per-op overhead is all that is measured
DTYPE = np.float32
ROUNDS = 7  # every engine runs one worker process per round
REPEATS = 3  # timed repeats per worker; the median of all rounds' repeats is reported
WARMUP = 3  # untimed repeats first in every worker (lazy imports, allocator and cache warm-up)
SEED = 0
TORCH_THREADS = 1
TORCH_GRAIN = 32768  # torch splits an elementwise op across threads only above this many elements
RTOL, ATOL = 1e-4, 1e-6  # float32 tanh/exp/sigmoid differ in the last bits between engines
PHASES = ("forward, no_grad", "forward", "backward", "forward+backward")
NO_TORCH = "torch is not installed: `pip install torch` is needed for the side-by-side columns"
ENGINES = ("tinydeep", "torch", "numpy")  # the order of turns in the first round
BLOCKED = {  # the top-level modules a worker may not import
    "tinydeep": TINYDEEP_BLOCKS,
    "torch": TORCH_BLOCKS,
    "numpy": TINYDEEP_BLOCKS + TORCH_BLOCKS,
}
WORKER_TIMEOUT_S = 600
SCRIPT = Path(__file__).resolve()


# ---- the chain, once for every engine --------------------------------------------------------


def chain(x, a, d, k: SimpleNamespace, n_ops: int):
    """`n_ops` elementwise ops starting from x, using the functions in the namespace `k`.

    x, a, d: the engine's tensors of one shape; a and d are constants. Arithmetic uses Python
    operators, which all three engines share; the functions come from `k`.
    """
    steps = (
        lambda y: y * a,  # a in [0.5, 1.5]
        lambda y: y + x,  # x joins every block, so its gradient does not vanish over the chain
        k.tanh,
        k.exp,  # of a value in (-1, 1): bounded
        lambda y: y - 0.25,  # a Python number, which each engine casts to float32
        k.relu,  # its input stays above 0.1: no element sits on the kink, where rounding differs
        k.sigmoid,
        lambda y: y / d,  # d in [1, 2]; each block is a contraction, so values stay finite
    )
    y = x
    for i in range(n_ops):
        y = steps[i % len(steps)](y)
    return y


def make_inputs(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arrays behind x, a and d, of shape (size,)."""
    rng = np.random.default_rng(SEED)
    x = rng.uniform(-1.0, 1.0, size).astype(DTYPE)
    a = rng.uniform(0.5, 1.5, size).astype(DTYPE)
    d = rng.uniform(1.0, 2.0, size).astype(DTYPE)
    return x, a, d


# ---- the engines, as namespaces of the same names --------------------------------------------
# Each imports its engine when called, in its own worker, behind the import hook.


def tinydeep_engine() -> SimpleNamespace:
    """tinydeep's tensors and functions under the names `chain` and the timers use."""
    import tinydeep

    return SimpleNamespace(
        leaf=lambda array: tinydeep.Tensor(array.copy(), requires_grad=True),
        constant=tinydeep.Tensor,
        no_grad=tinydeep.no_grad,
        tanh=tinydeep.ops.tanh,
        exp=tinydeep.ops.exp,
        relu=tinydeep.ops.relu,
        sigmoid=tinydeep.ops.sigmoid,
        to_numpy=lambda t: t.numpy(),
        grad_of=lambda x: x.grad,
        info={"tinydeep": tinydeep.__version__},
    )


def torch_engine() -> SimpleNamespace:
    """PyTorch's, under the same names, with TORCH_THREADS threads."""
    import torch

    default_threads = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    return SimpleNamespace(
        leaf=lambda array: torch.from_numpy(array.copy()).requires_grad_(),
        constant=torch.from_numpy,
        no_grad=torch.no_grad,
        tanh=torch.tanh,
        exp=torch.exp,
        relu=torch.relu,
        sigmoid=torch.sigmoid,
        to_numpy=lambda t: t.detach().numpy(),
        grad_of=lambda x: x.grad.numpy(),
        info={"torch": torch.__version__, "torch_default_threads": default_threads},
    )


def numpy_engine() -> SimpleNamespace:
    """NumPy's, under the same names: bare arrays, no graph (grad_of=None: forward only)."""
    return SimpleNamespace(
        leaf=np.array,
        constant=np.asarray,
        no_grad=contextlib.nullcontext,
        tanh=np.tanh,
        exp=np.exp,
        relu=lambda y: np.maximum(y, 0),
        sigmoid=lambda y: 1 / (1 + np.exp(-y)),
        to_numpy=np.asarray,
        grad_of=None,
        info={"numpy": np.__version__},
    )


MAKE_ENGINE = {"tinydeep": tinydeep_engine, "torch": torch_engine, "numpy": numpy_engine}


# ---- the worker: one engine, alone -----------------------------------------------------------


def worker(engine: str, n_ops: int, size: int, repeats: int, check: str | None) -> None:
    """Run one engine in this process and print one JSON line: its versions ("info") and the
    seconds of every phase of every timed repeat ("seconds"). With `check`, a path, the chain
    runs once instead and its final value and gradient of x are saved there as a .npz."""
    blocked = BLOCKED[engine]
    if loaded(blocked):
        raise RuntimeError(f"loaded before the block: {loaded(blocked)}")
    sys.meta_path.insert(0, BlockImports(blocked))
    k = MAKE_ENGINE[engine]()
    arrays = make_inputs(size)
    seconds: dict[str, list[float]] = {}
    if check:
        np.savez(check, **run_once(k, arrays, n_ops))
    else:
        # The objects the imports made (torch's alone are about 150,000) are set aside, in every
        # worker alike: each gc.collect() in time_once then takes microseconds, not ~75 ms, and
        # the collections that run as usual while timing scan only what the chain makes.
        gc.collect()
        gc.freeze()
        for repeat in range(WARMUP + repeats):
            for phase, s in time_once(k, arrays, n_ops).items():
                if repeat >= WARMUP:
                    seconds.setdefault(phase, []).append(s)
    if loaded(blocked):  # the hook's promise, checked: no other engine came in
        raise RuntimeError(f"{engine}'s worker imported {loaded(blocked)}")
    print(json.dumps({"info": k.info, "seconds": seconds}))


def run_once(k: SimpleNamespace, arrays: tuple, n_ops: int) -> dict[str, np.ndarray]:
    """The chain once on engine `k`: its final value and, where there is a graph, the gradient
    of x, for the parent's check."""
    x, a, d = k.leaf(arrays[0]), k.constant(arrays[1]), k.constant(arrays[2])
    y = chain(x, a, d, k, n_ops)
    if k.grad_of is None:
        return {"value": k.to_numpy(y)}
    y.sum().backward()
    return {"value": k.to_numpy(y), "grad": k.grad_of(x)}


def time_once(k: SimpleNamespace, arrays: tuple, n_ops: int) -> dict[str, float]:
    """Seconds for each phase of one repeat on engine `k` (the no_grad forward only for NumPy)."""
    x, a, d = k.leaf(arrays[0]), k.constant(arrays[1]), k.constant(arrays[2])
    seconds = {}
    gc.collect()  # so the last repeat's garbage is not collected on this one's clock
    start = perf_counter()
    with k.no_grad():
        out = chain(x, a, d, k, n_ops).sum()
    seconds["forward, no_grad"] = perf_counter() - start
    del out
    if k.grad_of is None:
        return seconds

    # Forward and backward of one graph, each on its own clock.
    gc.collect()
    start = perf_counter()
    loss = chain(x, a, d, k, n_ops).sum()
    middle = perf_counter()
    loss.backward()
    seconds["forward"], seconds["backward"] = middle - start, perf_counter() - middle
    del loss  # what backward left of the graph is freed here, off the clock
    x.grad = None

    gc.collect()
    start = perf_counter()
    loss = chain(x, a, d, k, n_ops).sum()
    loss.backward()
    seconds["forward+backward"] = perf_counter() - start
    return seconds


# ---- the parent: workers, the check, rounds --------------------------------------------------


def run_worker(engine: str, args: argparse.Namespace, check: str | None = None) -> dict:
    """One worker process of `engine` with the run's settings; its JSON line. Raises
    RuntimeError, with what the worker wrote to stderr, if it fails."""
    command = [sys.executable, str(SCRIPT), "--worker", engine]
    command += ["--ops", str(args.ops), "--size", str(args.size), "--repeats", str(args.repeats)]
    if check:
        command += ["--check", check]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{engine}'s worker exited {done.returncode}:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_runs(engines: list[str], args: argparse.Namespace) -> tuple[dict, dict]:
    """One checking worker per engine: {engine: (final value, gradient of x or None)}, loaded
    from the .npz each one saved, and what the workers reported of themselves, merged."""
    results, info = {}, {}
    with tempfile.TemporaryDirectory(prefix="tinydeep-overhead-") as folder:
        for engine in engines:
            path = str(Path(folder, f"{engine}.npz"))
            info |= run_worker(engine, args, check=path)["info"]
            with np.load(path, allow_pickle=False) as f:
                results[engine] = (f["value"], f["grad"] if "grad" in f.files else None)
    return results, info


def check_agreement(results: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> None:
    """Raise RuntimeError unless every engine's final value (and, where there is one, its
    gradient of x) matches tinydeep's, and tinydeep's are finite with a gradient not all 0."""
    value, grad = results["tinydeep"]
    # An all-zero or non-finite gradient would make the comparison below meaningless.
    if not (np.all(np.isfinite(value)) and np.all(np.isfinite(grad)) and np.any(grad)):
        raise RuntimeError(f"check: tinydeep's chain is degenerate: value {value}, grad {grad}")
    for name, (other_value, other_grad) in results.items():
        pairs = [("final value", value, other_value), ("gradient of x", grad, other_grad)]
        for what, ours, theirs in pairs:
            if theirs is None:
                continue
            if ours.dtype != DTYPE or theirs.dtype != DTYPE:
                raise RuntimeError(
                    f"check: {what} has dtype {ours.dtype} in tinydeep and "
                    f"{theirs.dtype} in {name}, expected {np.dtype(DTYPE)}"
                )
            if not np.allclose(ours, theirs, rtol=RTOL, atol=ATOL):
                worst = np.max(np.abs(ours.astype(np.float64) - theirs))
                raise RuntimeError(
                    f"check: {what} differs between tinydeep and {name} "
                    f"(max abs difference {worst:.3g}):\n{ours}\n{theirs}"
                )


def measure(engines: list[str], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Median microseconds per op, as {engine: {phase: us}}, over every timed repeat of
    --rounds rounds, in each of which every engine runs one worker, the first rotating."""
    samples: dict[str, dict[str, list[float]]] = {e: {} for e in engines}
    for r in range(args.rounds):
        turns = engines[r % len(engines) :] + engines[: r % len(engines)]
        for engine in turns:
            for phase, s in run_worker(engine, args)["seconds"].items():
                samples[engine].setdefault(phase, []).extend(s)
        # Progress on stderr, so that stdout holds the report alone.
        print(f"round {r + 1}/{args.rounds}: {', '.join(turns)}", file=sys.stderr, flush=True)
    return {
        engine: {phase: statistics.median(s) * 1e6 / args.ops for phase, s in phases.items()}
        for engine, phases in samples.items()
    }


# ---- reporting -------------------------------------------------------------------------------


def machine_info(reported: dict) -> dict[str, str]:
    """CPU model and core count, the versions the workers reported and the date, for the
    header line."""
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "numpy": reported["numpy"],
        "torch": reported.get("torch", "not installed"),
        "tinydeep": reported["tinydeep"],
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def table_rows(us: dict[str, dict[str, float]]) -> list[dict]:
    """One row per phase; the NumPy forward is shown beside both forward phases."""
    rows = []
    for phase in PHASES:
        ours = us["tinydeep"][phase]
        theirs = us.get("torch", {}).get(phase)
        forward_only = phase in ("forward, no_grad", "forward")
        floor = us["numpy"]["forward, no_grad"] if forward_only else None
        rows.append(
            {
                "phase": phase,
                "tinydeep_us_per_op": ours,
                "torch_us_per_op": theirs,
                "ratio_tinydeep_over_torch": None if theirs is None else ours / theirs,
                "numpy_us_per_op": floor,
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows as aligned text: the phase left, the figures right."""

    def cell(value: float | None, suffix: str = "") -> str:
        return "-" if value is None else f"{value:.2f}{suffix}"

    header = ("phase", "tinydeep us/op", "torch us/op", "ratio (td/torch)", "numpy us/op")
    body = [
        (
            r["phase"],
            cell(r["tinydeep_us_per_op"]),
            cell(r["torch_us_per_op"]),
            cell(r["ratio_tinydeep_over_torch"], "x"),
            cell(r["numpy_us_per_op"]),
        )
        for r in rows
    ]
    return "\n".join(
        f"{phase:<18}" + "".join(f"{c:>18}" for c in rest) for phase, *rest in [header, *body]
    )


# ---- main ------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=OPS, help="length of the op chain")
    parser.add_argument("--size", type=int, default=SIZE, help="elements per tensor")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="worker processes per engine")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed repeats per worker")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--check", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("ops", "size", "rounds", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args.worker, args.ops, args.size, args.repeats, args.check)
        return

    has_torch = importlib.util.find_spec("torch") is not None  # found, not imported
    engines = [e for e in ENGINES if has_torch or e != "torch"]
    torch_note, checked = NO_TORCH, "final values agree with NumPy; gradient of x finite, not 0"
    if not has_torch:
        print(NO_TORCH + "; timing tinydeep and NumPy only\n")  # said first, and again below

    results, reported = check_runs(engines, args)
    check_agreement(results)  # before timing: fails loudly on a mismatch
    us = measure(engines, args)
    rows = table_rows(us)

    if has_torch:
        threading = "does not matter" if args.size <= TORCH_GRAIN else "would speed torch up"
        torch_note = (
            f"torch threads: {TORCH_THREADS} (torch.set_num_threads; default here "
            f"{reported['torch_default_threads']}); at {args.size} elements threading {threading}"
        )
        checked = "final values agree with torch and NumPy, gradients of x with torch"
    info = machine_info(reported)
    print(
        f"{info['cpu']}, {info['cores']} cores | Python {info['python']} | NumPy "
        f"{info['numpy']} | torch {info['torch']} | tinydeep {info['tinydeep']} | "
        f"{info['date']}"
    )
    print(
        f"chain of {args.ops} elementwise ops on shape ({args.size},) {np.dtype(DTYPE)}; "
        f"median of {args.rounds} round(s) x {args.repeats} repeats, each worker after {WARMUP} "
        "warm-up; each engine in its own process, taking turns"
    )
    print(torch_note)
    print(f"checked before timing: {checked}")
    print()
    print(format_table(rows))
    print("numpy: the same forward on bare arrays, no engine at all (the floor for the forward)")

    if args.json:
        settings = {
            "ops": args.ops,
            "size": args.size,
            "dtype": np.dtype(DTYPE).name,
            "rounds": args.rounds,
            "repeats": args.repeats,
            "warmup": WARMUP,
            "torch_threads": TORCH_THREADS,
        }
        with open(args.json, "w") as f:
            json.dump({"machine": info, "settings": settings, "rows": rows}, f, indent=2)
        print(f"\nwrote {args.json}")

    engine_modules = TINYDEEP_BLOCKS + TORCH_BLOCKS
    if loaded(engine_modules):  # the parent stays clear of both engines
        raise RuntimeError(f"the parent imported {loaded(engine_modules)}")


if __name__ == "__main__":
    main()
