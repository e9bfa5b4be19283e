"""Verify tinydeep's CUDA path in one command, on a machine with an NVIDIA GPU and no network.

    bash benchmarks/gpu_check.sh                        # on a GPU machine: about 5 min on an H200
    bash benchmarks/gpu_check.sh --device cpu --quick   # every part on the CPU, tiny (CI runs it)

The GPU machine is expected to hold CuPy, PyTorch, NumPy, Numba, pytest and hypothesis already;
tinydeep is installed from this working tree without dependencies (nothing is downloaded).
Fashion-MNIST is read from --data (default $TINYDEEP_DATA): carry it along.

Each part runs as a child process stopped at its own time limit, so a hang costs that part
and not the rest:

    install      pip install --no-deps --no-build-isolation -e .  (skipped when this tree's
                 tinydeep already imports)
    environment  the GPU, the driver and the packages' versions
    tests        the CUDA tests (pytest -m cuda): on a GPU none may skip; on the CPU all skip
    gradcheck    a float64 gradcheck of a small ResNet on the device
    bench-128    ResNet-20 and Wide & Deep training steps against PyTorch, batch 128
    bench-512    the same at batch 512
    resnet       examples/resnet_cifar.py: ResNet-20, one epoch of all of Fashion-MNIST
    depth        examples/depth_study.py at a small size

It writes summary.md and summary.json to --out (default ./gpu_check): every part's status,
time and figures, and the tail of the output of any part that failed. Exit status 1 when
any part failed. `--part gradcheck` runs the gradcheck alone, in this process (what the
gradcheck part's child does).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
TAIL_CHARS = 3_000  # of a failed part's output, kept in the summary


@dataclass
class Part:
    """One step of the check: the command its child runs, its time limit, and what it found."""

    name: str
    command: list[str]
    limit_s: float
    status: str = "not run"  # passed, failed, timed out, skipped
    seconds: float = 0.0
    figures: dict = field(default_factory=dict)
    tail: str = ""


# ---- the parts -------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> list[Part]:
    """The parts, in order, with their commands and limits for this device and size."""
    py, out, quick, device = sys.executable, args.out, args.quick, args.device
    data = ["--data-dir", str(args.data)]
    bench = [py, "benchmarks/resnet_wide_deep.py", "--device", device]
    bench += ["--which", "resnet20", "wide_deep"]
    bench += ["--quick"] if quick else ["--rounds", "2", "--steps", "20"]
    if quick:  # the CPU check: tiny sizes, the same code paths
        resnet = ["--depth", "8", "--train-size", "256", "--test-size", "128"]
        depth = ["--depths", "8", "--mlp-depths", "2", "--train-size", "128", "--val-size", "64"]
        depth += ["--epochs", "1", "--width", "4", "--mlp-width", "8"]
        batches = (8,)  # one bench part: both run the same code
    else:
        resnet = ["--depth", "20", "--train-size", "0", "--test-size", "0"]
        depth = ["--depths", "8", "20", "--mlp-depths", "2", "8", "--train-size", "5000"]
        depth += ["--epochs", "2"]
        batches = (128, 512)
    return [
        Part(
            "install",
            [
                py,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "-e",
                ".",
            ],
            60,
        ),
        Part("environment", [py, __file__, "--part", "environment", "--device", device], 45),
        Part(
            "tests",
            [
                py,
                "-m",
                "pytest",
                "-q",
                "-m",
                "cuda",
                "-p",
                "no:cacheprovider",
                # one process on the one GPU, and no need for pytest-xdist on that machine
                "-o",
                "addopts=-rfE --import-mode=importlib",
                f"--junitxml={out / 'tests.xml'}",
            ],
            150,
        ),
        Part("gradcheck", [py, __file__, "--part", "gradcheck", "--device", device], 75),
        *(
            Part(
                f"bench-{b}",
                [*bench, "--batch", str(b), "--json", str(out / f"bench_{b}.json")],
                100,
            )
            for b in batches
        ),
        Part(
            "resnet",
            [
                py,
                "examples/resnet_cifar.py",
                "--dataset",
                "fashion-mnist",
                *data,
                "--device",
                device,
                "--epochs",
                "1",
                *resnet,
                "--json",
                str(out / "resnet.json"),
            ],
            100,
        ),
        Part(
            "depth",
            [
                py,
                "examples/depth_study.py",
                "--dataset",
                "fashion-mnist",
                *data,
                "--device",
                device,
                *depth,
                "--no-plots",
                "--out-dir",
                str(out / "depth_study"),
                "--json",
                str(out / "depth.json"),
            ],
            75,
        ),
    ]


def installed_here() -> bool:
    """Whether `import tinydeep` in a child finds this tree's tinydeep (and its kernels)."""
    code = "import tinydeep, tinydeep_kernels; print(tinydeep.__file__)"
    found = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd="/"
    )
    return found.returncode == 0 and found.stdout.strip().startswith(str(ROOT))


def run(part: Part, env: dict) -> str:
    """Run one part's child, stopped at its limit; record status, time and the tail of a
    failure's output. Returns the whole output."""
    print(f"== {part.name}: {' '.join(part.command)}", flush=True)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            part.command,
            check=False,
            cwd=ROOT,
            env=env,
            timeout=part.limit_s,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output, part.status = done.stdout, "passed" if done.returncode == 0 else "failed"
        if done.returncode:
            part.figures["exit_status"] = done.returncode
    except subprocess.TimeoutExpired as stopped:
        output = stopped.stdout or ""
        output = output.decode(errors="replace") if isinstance(output, bytes) else output
        part.status = "timed out"
    part.seconds = time.perf_counter() - started
    print(output[-TAIL_CHARS:] if part.status != "passed" else output[-600:], flush=True)
    print(f"== {part.name}: {part.status} in {part.seconds:.1f} s", flush=True)
    if part.status != "passed":
        part.tail = output[-TAIL_CHARS:]
    return output


# ---- each part's figures, read from the files its child wrote --------------------------------


def test_figures(part: Part, xml: Path, device: str) -> None:
    """Counts from pytest's JUnit XML; on a GPU a skipped CUDA test is a failure."""
    if not xml.exists():
        return
    suites = ElementTree.parse(xml).getroot()
    suite = suites if suites.tag == "testsuite" else suites.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    failed = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in suite.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    part.figures.update(counts, failed=failed)
    if device == "cuda" and (counts["skipped"] or not counts["tests"]):
        part.status = "failed"
        part.tail += f"\n{counts['skipped']} CUDA tests skipped on a GPU machine"


def bench_figures(part: Part, path: Path) -> None:
    """Median step time per engine and workload, and each torch engine's time over tinydeep's
    (above 1: tinydeep is faster)."""
    if not path.exists():
        return
    workloads = json.loads(path.read_text())["workloads"]
    for name, result in workloads.items():
        medians = {}
        for engine in dict.fromkeys(r["engine"] for r in result["runs"]):
            steps = [
                s for r in result["runs"] if r["engine"] == engine for s in r.get("step_s", [])
            ]
            medians[engine] = 1e3 * statistics.median(steps) if steps else None
        base = medians.get("tinydeep")
        ratios = {
            f"{e} / tinydeep": round(ms / base, 3)
            for e, ms in medians.items()
            if e != "tinydeep" and ms and base
        }
        part.figures[name] = {
            "batch": result["spec"]["batch"],
            "median_ms": {e: round(ms, 2) for e, ms in medians.items() if ms},
            **ratios,
            "problems": result.get("problems", []),
        }


def json_figures(part: Part, path: Path, keys: tuple[str, ...]) -> None:
    if path.exists():
        found = json.loads(path.read_text())
        part.figures.update({k: found[k] for k in keys if k in found})


def depth_figures(part: Part, path: Path) -> None:
    """Each network's validation accuracy and seconds."""
    if path.exists():
        for row in json.loads(path.read_text())["summary"]:
            part.figures[row["name"]] = {
                "val_accuracy": round(row["val_accuracy"], 4),
                "seconds": round(row["seconds"], 1),
            }


# ---- the parts that run in this file ---------------------------------------------------------


def environment(device: str) -> dict:
    """The machine, the GPU and the versions that matter, printed as JSON."""
    import importlib.metadata

    found = {"python": platform.python_version(), "machine": platform.machine()}
    for package in ("numpy", "numba", "cupy-cuda13x", "cupy-cuda12x", "cupy", "torch"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    if device == "cuda":
        from tinydeep import backend

        cp = backend.require_cuda()
        props = cp.cuda.runtime.getDeviceProperties(0)
        found["gpu"] = props["name"].decode()
        found["compute_capability"] = f"{props['major']}.{props['minor']}"
        found["gpu_memory_gib"] = round(props["totalGlobalMem"] / 2**30, 1)
        found["cuda_driver"] = cp.cuda.runtime.driverGetVersion()
        found["cuda_runtime"] = cp.cuda.runtime.runtimeGetVersion()
    print(json.dumps(found))
    return found


def gradcheck(device: str) -> None:
    """float64 gradcheck of a small ResNet's parameters and input, on `device`, kernels on:
    the model test of tests/models/test_resnet.py, moved to the device."""
    import numpy as np

    import tinydeep as td
    from tinydeep import backend
    from tinydeep.models import ResNet

    td.manual_seed(0)
    model = ResNet(8, width=2, num_classes=3)
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3))
    model(x, training=True)  # built in float64 on the CPU, then moved
    rng = np.random.default_rng(1)
    for w in model.weights:  # gamma, beta and biases start constant: make every one count
        w.data[...] = w.data + 0.1 * rng.standard_normal(w.shape)
    model.to(device)
    x = backend.to_device(x, device)
    started = time.perf_counter()
    assert td.gradcheck(
        lambda t: model(t, training=True),
        x,
        params=model.named_weights(trainable_only=True),
        mode="random",
        directions=3,
    )
    checked = sum(w.size for w in model.weights)
    print(
        f"gradcheck passed on {device}: {checked} parameters, {time.perf_counter() - started:.1f} s"
    )


# ---- the summary -----------------------------------------------------------------------------


def summary_markdown(parts: list[Part], info: dict) -> str:
    lines = [
        f"# GPU check: {info['device']}{' (quick)' if info['quick'] else ''}, {info['date']}",
        "",
        f"Machine: {info.get('environment', {})}",
        "",
        "| part | status | seconds | figures |",
        "|---|---|---:|---|",
    ]
    for p in parts:
        figures = json.dumps(p.figures) if p.figures else ""
        lines.append(f"| {p.name} | {p.status} | {p.seconds:.1f} | {figures} |")
    for p in parts:
        if p.tail:
            lines += ["", f"## {p.name}: {p.status}", "", "```", p.tail.strip(), "```"]
    return "\n".join(lines) + "\n"


def write_summary(parts: list[Part], info: dict, out: Path) -> list[str]:
    """summary.json and summary.md in `out`; returns the names of the parts that failed."""
    failed = [p.name for p in parts if p.status not in ("passed", "skipped", "not run")]
    info["failed"] = failed
    report = {"info": info, "parts": [vars(p) for p in parts]}
    (out / "summary.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "summary.md").write_text(summary_markdown(parts, info))
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the CPU check)")
    parser.add_argument("--data", type=Path, default=os.environ.get("TINYDEEP_DATA"))
    parser.add_argument("--out", type=Path, default=Path("gpu_check"))
    parser.add_argument("--only", nargs="+", help="run these parts alone (and install)")
    parser.add_argument("--part", choices=("environment", "gradcheck"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part == "environment":
        environment(args.device)
        return 0
    if args.part == "gradcheck":
        gradcheck(args.device)
        return 0
    if args.data is None:
        parser.error("say where Fashion-MNIST is: --data DIR or TINYDEEP_DATA")
    args.out = args.out.resolve()
    args.data = args.data.resolve()
    args.out.mkdir(parents=True, exist_ok=True)

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TINYDEEP_DATA": str(args.data)}
    env.setdefault("HYPOTHESIS_PROFILE", "ci")
    info = {
        "device": args.device,
        "quick": args.quick,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    parts = plan(args)
    if args.only:
        parts = [p for p in parts if p.name in ("install", *args.only)]
    for part in parts:
        if part.name == "install" and installed_here():
            part.status = "skipped"
            part.figures["why"] = "this tree's tinydeep already imports"
            continue
        output = run(part, env)
        if part.name == "environment" and part.status == "passed":
            info["environment"] = part.figures = json.loads(output.strip().splitlines()[-1])
        if part.name == "tests":
            test_figures(part, args.out / "tests.xml", args.device)
        elif part.name.startswith("bench-"):
            bench_figures(part, args.out / f"bench_{part.name.split('-')[1]}.json")
        elif part.name == "resnet":
            keys = (
                "dataset",
                "depth",
                "epochs",
                "test_accuracy",
                "train_seconds",
                "images_per_second",
                "device",
            )
            json_figures(part, args.out / "resnet.json", keys)
        elif part.name == "depth":
            depth_figures(part, args.out / "depth.json")
        elif part.name == "gradcheck" and part.status == "passed":
            part.figures["result"] = output.strip().splitlines()[-1]
        write_summary(parts, info, args.out)  # after every part: a run killed midway keeps it

    failed = write_summary(parts, info, args.out)
    print(summary_markdown(parts, info))
    print(f"wrote {args.out / 'summary.md'} and summary.json; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
