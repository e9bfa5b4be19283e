"""Every CUDA kernel tinydeep launches, compiled by NVRTC for sm_90 and sm_80, with no GPU.

The kernels of kernels/cuda/ run only where there is a GPU (tests/kernels/test_cuda_kernels.py);
this test makes sure, on any machine, in CI too, that each of them compiles as CuPy would
compile it for an H100/H200 (sm_90) and an A100 (sm_80), to a cubin, with CuPy's options:

- every .cu file, as the code's `source.module(filename, kernels)` calls build it: one test
  per name expression (`im2col<float>`, ...), all of them compiled in one NVRTC program;
- every cupy.ElementwiseKernel and cupy.ReductionKernel in the modules of kernels/cuda/, in
  each dtype combination and layout the code launches it with (`LAUNCHES` below), from the
  source CuPy's own code generator writes for that launch.
How that works without a GPU, and which CuPy internals it relies on: tests/nvrtc_compile.py.

Nothing here is a list that can silently miss a kernel: the kernels are found in the modules
themselves (and every `cupy.ElementwiseKernel(...)`-like call in their source must be one of
them), the .cu kernels in the .cu files, and `test_every_kernel_is_compiled` fails on a kernel
that `LAUNCHES` does not describe or a .cu kernel that no `source.module` call instantiates.
Parameter types come from each kernel's own parameter list; `LAUNCHES` only says which dtype
each placeholder (T, ...) takes and which inputs the code passes as Python numbers.

Each test compiles in this process, one program after another (a pool of threads measured
no faster), and nothing is cached between runs: 132 programs, about 16 s on a 2-core machine.
It needs the [cuda-compile] extra (CuPy, NVRTC and the CUDA headers, pinned): without it
every test here skips and says how to install it; CI installs it, and there
(TINYDEEP_NO_SKIPS=1) a skip is a failure.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.metadata
import inspect
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

EXTRA = "cuda-compile"
INSTALL = f'pip install -e ".[{EXTRA}]"'
ARCHES = ("90", "80")  # sm_90: H100, H200; sm_80: A100


def missing_extra() -> str | None:
    """Why these tests cannot run here (the extra's packages absent, or not at its pins), or
    None. The pins are read from tinydeep's installed metadata, i.e. pyproject.toml."""
    try:
        requirements = importlib.metadata.requires("tinydeep") or []
    except importlib.metadata.PackageNotFoundError:
        return f"tinydeep is not installed; {INSTALL}"
    pins = [r for r in requirements if f'extra == "{EXTRA}"' in r]
    problems = []
    for pin in pins:
        name, version = re.match(r"([\w.-]+)==([\w.]+)", pin).groups()
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed")
            continue
        if installed != version:
            problems.append(f"{name} is {installed}, the extra pins {version}")
    if not pins or problems:
        found = "; ".join(problems) or f"tinydeep declares no [{EXTRA}] extra"
        return f"needs the [{EXTRA}] extra ({found}): {INSTALL}"
    return None


REASON = missing_extra()
if REASON is None:
    cupy = importlib.import_module("cupy")
    nvrtc = importlib.import_module("nvrtc_compile")  # tests/nvrtc_compile.py
    source = importlib.import_module("tinydeep_kernels.cuda.source")
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


# ---- how the code launches each ElementwiseKernel and ReductionKernel ----------------------

FLOATS = ("float32", "float64")
INTEGERS = ("int32", "int64")


@dataclass(frozen=True)
class Launches:
    """How the code calls one kernel: `types`, the dtype combinations, each binding every type
    placeholder of the kernel (None: all placeholders one dtype, float32 or float64);
    `scalars`, the inputs it passes as Python numbers; `raw_ndim`, each raw array's ndim."""

    types: tuple[dict[str, str], ...] | None = None
    scalars: frozenset[str] = frozenset()
    raw_ndim: dict[str, int] = field(default_factory=dict)


def pairs(first: str, second: str, dtypes: tuple[str, ...], others: tuple[str, ...]):
    """Every combination of `first` in dtypes and `second` in others."""
    return tuple({first: a, second: b} for a in dtypes for b in others)


def numbers(names: str) -> frozenset[str]:
    """The inputs, named with spaces between, that the code passes as Python numbers."""
    return frozenset(names.split())


LAUNCHES = {
    # elementwise.py: dy and y of relu_backward may differ in dtype
    "relu_forward": Launches(),
    "relu_backward": Launches(types=pairs("T", "Y", FLOATS, FLOATS)),
    # embedding.py: a float table, integer ids; the sizes are Python ints
    "embedding_forward": Launches(
        types=pairs("T", "I", FLOATS, INTEGERS),
        scalars=numbers("rows d"),
        raw_ndim={"table": 2, "ids": 2},
    ),
    "embedding_sum_forward": Launches(
        types=pairs("T", "I", FLOATS, INTEGERS),
        scalars=numbers("rows d k"),
        raw_ndim={"table": 2, "ids": 2},
    ),
    # normalization.py: the (C,) operands are arrays, M a Python int (the channel sums are
    # normalization.cu's, compiled above)
    "batch_norm_normalize": Launches(),
    "batch_norm_backward": Launches(scalars=numbers("m")),
    # optim.py: param, grad and the state are arrays, every hyper-parameter a number
    "sgd_update": Launches(scalars=numbers("lr weight_decay")),
    "sgd_update_momentum": Launches(
        scalars=numbers("lr weight_decay momentum one_minus_dampening nesterov first")
    ),
    "adagrad_update": Launches(scalars=numbers("clr eps weight_decay")),
    "adam_update": Launches(
        scalars=numbers(
            "decay l2 beta1 one_minus_beta1 beta2 one_minus_beta2 step_size "
            "bias_correction2_sqrt eps"
        )
    ),
}

if REASON is None:
    LAYOUTS = (
        # arrays of one shape, C-contiguous: CuPy merges them into one axis (the usual launch)
        nvrtc.Layout("contiguous", ndim=1, contiguous=True, offsets_32bit=True),
        # a (C,) operand broadcast against (M, C), or a strided view, past 2**31 elements:
        # CuPy's general CArray code, strides and 64-bit offsets
        nvrtc.Layout("strided", ndim=2, contiguous=False, offsets_32bit=False),
    )


# ---- finding the kernels ---------------------------------------------------------------------

KERNEL_CLASSES = ("ElementwiseKernel", "ReductionKernel", "RawKernel", "RawModule")


def kernel_modules() -> list:
    """The modules of tinydeep_kernels.cuda, as kernels/cuda/__init__.py imports them."""
    package = importlib.import_module("tinydeep_kernels.cuda")
    names = [m.name for m in pkgutil.iter_modules(package.__path__)]
    return [importlib.import_module(f"{package.__name__}.{name}") for name in names]


def calls(module, names) -> list[ast.Call]:
    """The calls in `module`'s source to a function or class called one of `names`."""
    found = []
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in names:
                found.append(node)
    return found


def find_kernels() -> tuple[dict, dict, list[str]]:
    """(ElementwiseKernel/ReductionKernel name -> object, (.cu file, kernels) -> RawModule as
    the code builds it, and every kernel the test cannot compile, said in words)."""
    kernels, raw_modules, problems = {}, {}, []
    for module in kernel_modules():
        where = module.__name__.rsplit(".", 1)[-1] + ".py"
        objects = [
            k
            for k in vars(module).values()
            if isinstance(k, (cupy.ElementwiseKernel, cupy.ReductionKernel))
        ]
        made = calls(module, KERNEL_CLASSES)
        if module is not source and len(made) != len(objects):  # one built in a function?
            problems.append(
                f"{where}: {len(made)} kernel constructor calls but {len(objects)} kernels at "
                "module level; this test compiles only module-level ElementwiseKernel and "
                "ReductionKernel objects, and .cu files through source.module"
            )
        for kernel in objects:
            if kernel.name in kernels:
                problems.append(f"{where}: a second kernel called {kernel.name}")
            kernels[kernel.name] = kernel
        for call in calls(module, ("module",)) if module is not source else []:
            try:
                filename, names = (ast.literal_eval(a) for a in call.args)
            except ValueError:
                problems.append(
                    f"{where}:{call.lineno}: source.module(...) with non-literal arguments"
                )
                continue
            raw_modules[filename, names] = source.module(filename, names)
    for path in sorted(Path(source.__file__).parent.glob("*.cu")):
        defined = set(re.findall(r"__global__\s+void\s+(\w+)", path.read_text()))
        built = {n for (filename, names) in raw_modules for n in names if filename == path.name}
        for name in sorted(defined - built):
            problems.append(f"{path.name}: kernel {name} is not in any source.module call")
    return kernels, raw_modules, problems


# ---- the test cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One test: `what` compiled for sm_`arch` by `job` (a key and the compile; the name
    expressions of one .cu share one compile), and `check`, what it asserts of the cubin."""

    what: str
    arch: str
    job: tuple
    compile: Callable = field(compare=False)
    check: Callable = field(compare=False, default=lambda cubin: None)

    def __str__(self) -> str:
        return f"{self.what}-sm_{self.arch}"


def bindings(kernel, launches: Launches) -> list[dict[str, str]]:
    """The dtype combinations of `launches`, or every placeholder in one float dtype."""
    if launches.types is not None:
        return list(launches.types)
    names = nvrtc.placeholders(kernel)
    return [{name: dtype for name in names} for dtype in FLOATS]


def kernel_cases(kernels: dict) -> list[Case]:
    """Every ElementwiseKernel and ReductionKernel in every launch, for every arch."""
    cases = []
    for name, kernel in sorted(kernels.items()):
        launches = LAUNCHES.get(name, Launches())  # one not in LAUNCHES fails below, too
        for types in bindings(kernel, launches):
            dtypes = "-".join(f"{k}={v}" for k, v in sorted(types.items()))
            for layout in LAYOUTS:
                launch = nvrtc.Launch(types, layout, launches.scalars, launches.raw_ndim)
                for arch in ARCHES:
                    what = f"{name}-{dtypes}-{layout.name}"
                    compile_ = functools.partial(nvrtc.compile_kernel, kernel, launch, arch)
                    cases.append(Case(what, arch, (what, arch), compile_))
    return cases


def raw_module_cases(raw_modules: dict) -> list[Case]:
    """Every name expression of every RawModule, for every arch."""
    cases = []
    for (filename, names), module in sorted(raw_modules.items()):
        for arch in ARCHES:
            compile_ = functools.partial(nvrtc.compile_raw_module, module, arch)
            for expression in module.name_expressions:
                what = f"{filename}:{expression.replace(' ', '_')}"
                check = functools.partial(instantiated, expression)
                cases.append(Case(what, arch, (filename, names, arch), compile_, check))
    return cases


def instantiated(expression: str, cubin) -> None:
    assert cubin.mapping.get(expression), f"NVRTC did not instantiate {expression}"


if REASON is None:
    KERNELS, RAW_MODULES, PROBLEMS = find_kernels()
    CASES = raw_module_cases(RAW_MODULES) + kernel_cases(KERNELS)
else:  # every test skips, with REASON
    KERNELS, RAW_MODULES, PROBLEMS, CASES = {}, {}, [], ["no case: the extra is missing"]

_compiled: dict[tuple, object] = {}  # job -> cubin or NVRTC's complaint (.cu cases share one)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_kernel_compiles(case):
    if case.job not in _compiled:
        with nvrtc.no_device():
            try:
                _compiled[case.job] = case.compile()
            except cupy.cuda.compiler.CompileException as error:
                _compiled[case.job] = error
    result = _compiled[case.job]
    if isinstance(result, cupy.cuda.compiler.CompileException):
        pytest.fail(f"NVRTC cannot compile {case}:\n{result}", pytrace=False)
    case.check(result)


def test_every_kernel_is_compiled():
    """Each kernel of the modules is described in LAUNCHES, each description fits its kernel,
    and find_kernels met nothing it could not compile."""
    problems = list(PROBLEMS)
    for name in sorted(set(KERNELS) - set(LAUNCHES)):
        problems.append(f"kernel {name} is not in LAUNCHES: say how the code launches it")
    for name in sorted(set(LAUNCHES) - set(KERNELS)):
        problems.append(f"LAUNCHES describes {name}, which no module defines")
    for name in sorted(set(KERNELS) & set(LAUNCHES)):
        kernel, launches = KERNELS[name], LAUNCHES[name]
        inputs = {p.name for p in kernel.in_params}
        if not launches.scalars <= inputs:
            problems.append(f"{name}: scalars {sorted(launches.scalars - inputs)} are not inputs")
        expected = nvrtc.placeholders(kernel)
        for types in bindings(kernel, launches):
            if set(types) != expected:
                problems.append(f"{name}: {types} should bind exactly {sorted(expected)}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_arguments_are_declared_as_cupy_declares_them():
    """The argument kinds tests/nvrtc_compile.py hands to CuPy's generator are the kinds it
    means: an array becomes a CArray, a scalar a value, the loop index a CIndexer."""
    kernel = cupy.ElementwiseKernel("T x, T s, raw int64 r", "T y", "y = x * s", "declared")
    layout = nvrtc.Layout("test", ndim=2, contiguous=False, offsets_32bit=False)
    launch = nvrtc.Launch({"T": "float64"}, layout, frozenset({"s"}), {"r": 3})
    assert (
        "void declared(const CArray<double, 2, 0, 0> _raw_x, const double s, "
        "const CArray<long long, 3, 0, 0> r, CArray<double, 2, 0, 0> _raw_y, "
        "CIndexer<2, 0> _ind)"
    ) in nvrtc.elementwise_source(kernel, launch)
