"""The engine's own cost per op: tinydeep beside PyTorch (CPU) and plain NumPy, in one run.

What it measures: a chain of --ops (default 1,000) elementwise ops on a tiny float32 tensor
(--size, default 16 elements), so the arithmetic costs next to nothing and what is left is each
engine's work per op: Python calls, wrapping arrays in tensors, recording the graph, and the
backward sweep. The chain repeats eight ops (multiply by a constant tensor, add the leaf x,
tanh, exp, subtract a Python number, relu, sigmoid, divide by a constant tensor); it is written
once, in `chain`, and run on each engine's functions. Reported in microseconds per op, the
median of --repeats after a warm-up, with the engines taking turns within every repeat:

  forward, no_grad    no graph recorded (tinydeep.no_grad() / torch.no_grad())
  forward             graph recording on; the leaf x requires a gradient
  backward            backward from .sum() of the final tensor, through the graph just recorded
  forward+backward    both, timed as one

Each phase includes the final .sum(). NumPy runs the same forward arithmetic on bare arrays,
the floor that any engine built on NumPy pays; the gap between it and tinydeep is Python and
graph overhead. NumPy's sigmoid is the plain 1 / (1 + exp(-y)), four array calls. All three
pay the same small cost of the Python loop in `chain`.

Run it:  python benchmarks/engine_overhead.py [--ops 1000] [--size 16] [--repeats 21]
                                              [--json results.json]

Left out: large tensors (where the arithmetic, not the engine, sets the time), Numba and CUDA
kernels (these elementwise ops run their NumPy references), memory use, torch.compile and other
fused paths, and torch with more than one thread (it does not matter at this size).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import statistics
from time import perf_counter
from types import SimpleNamespace

import numpy as np

import tinydeep

try:
    import torch
except ImportError:  # the torch columns are left empty; tinydeep and NumPy still run
    torch = None

# ---- settings --------------------------------------------------------------------------------

OPS = 1000  # length of the chain
SIZE = 16  # elements in each tensor: small, so per-op overhead is all that is measured
DTYPE = np.float32
REPEATS = 21  # timed repeats per engine; the median is reported
WARMUP = 3  # untimed repeats first (lazy imports, allocator and cache warm-up)
SEED = 0
TORCH_THREADS = 1
TORCH_GRAIN = 32768  # torch splits an elementwise op across threads only above this many elements
RTOL, ATOL = 1e-4, 1e-6  # float32 tanh/exp/sigmoid differ in the last bits between engines
PHASES = ("forward, no_grad", "forward", "backward", "forward+backward")
NO_TORCH = "torch is not installed: `pip install torch` is needed for the side-by-side columns"


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


def tinydeep_engine() -> SimpleNamespace:
    """tinydeep's tensors and functions under the names `chain` and the timers use."""
    return SimpleNamespace(
        name="tinydeep",
        leaf=lambda array: tinydeep.Tensor(array.copy(), requires_grad=True),
        constant=tinydeep.Tensor,
        no_grad=tinydeep.no_grad,
        tanh=tinydeep.ops.tanh,
        exp=tinydeep.ops.exp,
        relu=tinydeep.ops.relu,
        sigmoid=tinydeep.ops.sigmoid,
        to_numpy=lambda t: t.numpy(),
        grad_of=lambda x: x.grad,
    )


def torch_engine() -> SimpleNamespace:
    """PyTorch's, under the same names."""
    return SimpleNamespace(
        name="torch",
        leaf=lambda array: torch.from_numpy(array.copy()).requires_grad_(),
        constant=torch.from_numpy,
        no_grad=torch.no_grad,
        tanh=torch.tanh,
        exp=torch.exp,
        relu=torch.relu,
        sigmoid=torch.sigmoid,
        to_numpy=lambda t: t.detach().numpy(),
        grad_of=lambda x: x.grad.numpy(),
    )


def numpy_engine() -> SimpleNamespace:
    """NumPy's, under the same names: bare arrays, no graph (grad_of=None: forward only)."""
    return SimpleNamespace(
        name="numpy",
        leaf=np.array,
        constant=np.asarray,
        no_grad=contextlib.nullcontext,
        tanh=np.tanh,
        exp=np.exp,
        relu=lambda y: np.maximum(y, 0),
        sigmoid=lambda y: 1 / (1 + np.exp(-y)),
        to_numpy=np.asarray,
        grad_of=None,
    )


# ---- checking, then timing -------------------------------------------------------------------


def check_agreement(engines: list[SimpleNamespace], arrays: tuple, n_ops: int) -> None:
    """Run the chain once on every engine; raise RuntimeError unless the final values (and,
    where there is one, the gradient of x) match tinydeep's."""
    results = {}
    for k in engines:
        x, a, d = k.leaf(arrays[0]), k.constant(arrays[1]), k.constant(arrays[2])
        y = chain(x, a, d, k, n_ops)
        if k.grad_of is not None:
            y.sum().backward()
        results[k.name] = (k.to_numpy(y), None if k.grad_of is None else k.grad_of(x))

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


def measure(
    engines: list[SimpleNamespace], arrays: tuple, n_ops: int, repeats: int
) -> dict[str, dict[str, float]]:
    """Median microseconds per op, as {engine: {phase: us}}, over `repeats` after WARMUP."""
    samples = {k.name: {} for k in engines}
    # Objects alive now (mostly torch's ~150,000) are set aside: each gc.collect() in time_once
    # then takes microseconds, not ~75 ms, and the collections that run as usual while timing
    # do not charge tinydeep for scanning torch. A tinydeep-only program has no such objects.
    gc.freeze()
    for repeat in range(WARMUP + repeats):
        # The engines take turns, so a change in machine load during the run hits all alike.
        for k in engines:
            seconds = time_once(k, arrays, n_ops)
            if repeat >= WARMUP:
                for phase, s in seconds.items():
                    samples[k.name].setdefault(phase, []).append(s)
    return {
        name: {phase: statistics.median(s) * 1e6 / n_ops for phase, s in phases.items()}
        for name, phases in samples.items()
    }


# ---- reporting -------------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    """CPU model and core count, library versions and the date, for the header line."""
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else "not installed",
        "tinydeep": tinydeep.__version__,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=OPS, help="length of the op chain")
    parser.add_argument("--size", type=int, default=SIZE, help="elements per tensor")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed repeats per engine")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args()
    for name in ("ops", "size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")

    engines = [tinydeep_engine(), numpy_engine()]
    torch_note, checked = NO_TORCH, "final values agree with NumPy; gradient of x finite, not 0"
    if torch is None:
        print(NO_TORCH + "; timing tinydeep and NumPy only\n")  # said first, and again below
    else:
        default_threads = torch.get_num_threads()
        torch.set_num_threads(TORCH_THREADS)
        threading = "does not matter" if args.size <= TORCH_GRAIN else "would speed torch up"
        torch_note = (
            f"torch threads: {TORCH_THREADS} (torch.set_num_threads; default here "
            f"{default_threads}); at {args.size} elements threading {threading}"
        )
        checked = "final values agree with torch and NumPy, gradients of x with torch"
        engines.insert(1, torch_engine())  # the order of turns: tinydeep, torch, numpy

    arrays = make_inputs(args.size)
    check_agreement(engines, arrays, args.ops)  # before timing: fails loudly on a mismatch
    us = measure(engines, arrays, args.ops, args.repeats)
    rows = table_rows(us)

    info = machine_info()
    print(
        f"{info['cpu']}, {info['cores']} cores | Python {info['python']} | NumPy "
        f"{info['numpy']} | torch {info['torch']} | tinydeep {info['tinydeep']} | "
        f"{info['date']}"
    )
    print(
        f"chain of {args.ops} elementwise ops on shape ({args.size},) {np.dtype(DTYPE)}; "
        f"median of {args.repeats} repeats after {WARMUP} warm-up; engines alternate"
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
            "repeats": args.repeats,
            "warmup": WARMUP,
            "torch_threads": TORCH_THREADS,
        }
        with open(args.json, "w") as f:
            json.dump({"machine": info, "settings": settings, "rows": rows}, f, indent=2)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
