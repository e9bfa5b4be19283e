"""No code from data: nothing in the source tree can run code that arrives in a file.

A model file, a data set or a checkpoint is data; pickle (torch.load, np.load with
allow_pickle=True, joblib, dill, shelve), marshal, eval, exec, compile and __import__ turn
data into code, and are the root of the remote-code-execution reports against other
frameworks' model files. This test parses every Python file under tinydeep/, kernels/,
examples/ and benchmarks/ and fails on any of them, with the file, line and construct.

The scanner is checked first on planted snippets, so that it cannot silently pass.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("tinydeep", "kernels", "examples", "benchmarks")
CODE_MODULES = {
    "pickle",
    "_pickle",
    "cPickle",
    "dill",
    "cloudpickle",
    "joblib",
    "shelve",
    "marshal",
}
CODE_BUILTINS = {"eval", "exec", "compile", "__import__"}


def findings(source: str, filename: str = "<source>") -> list[str]:
    """Every construct in `source` that can turn data into code, as "file:line: what"."""
    found = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in CODE_MODULES:
                    flag(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in CODE_MODULES:
                flag(node, f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in CODE_BUILTINS:
                flag(node, f"{func.id}(...)")
            if isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else None
                if func.attr in CODE_BUILTINS and owner == "builtins":
                    flag(node, f"builtins.{func.attr}(...)")
                if owner == "torch" and func.attr == "load":
                    flag(node, "torch.load (pickle)")
                if owner in ("np", "numpy") and func.attr == "load":
                    safe = any(
                        k.arg == "allow_pickle"
                        and isinstance(k.value, ast.Constant)
                        and k.value.value is False
                        for k in node.keywords
                    )
                    if not safe:
                        flag(node, "np.load without allow_pickle=False")
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg == "allow_pickle" and not (
                    isinstance(value, ast.Constant) and value.value is False
                ):
                    flag(node, "allow_pickle not False")
    return found


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle",
        "import dill as d",
        "from joblib import load",
        "from _pickle import loads",
        "import marshal",
        "x = eval('1 + 1')",
        "exec(text)",
        "code = compile(text, 'f', 'exec')",
        "m = __import__(name)",
        "import builtins\nbuiltins.exec(text)",
        "import torch\nstate = torch.load(path)",
        "import numpy as np\na = np.load(path)",
        "import numpy as np\na = np.load(path, allow_pickle=True)",
        "import numpy\na = numpy.load(path, allow_pickle=flag)",
        "a = np.lib.format.read_array(f, allow_pickle=True)",
    ],
)
def test_the_scanner_flags_every_way_in(snippet):
    assert findings(snippet), snippet


def test_the_scanner_passes_safe_look_alikes():
    safe = (
        "import re\npattern = re.compile('x')\n"
        "model.compile(optimizer='sgd')\n"
        "import numpy as np\na = np.load(path, allow_pickle=False)\n"
        "evaluate(model, x, y)\n"
    )
    assert findings(safe) == []


def test_no_source_file_can_run_code_from_data():
    files = sorted(p for folder in SCANNED for p in (ROOT / folder).rglob("*.py"))
    assert len(files) > 40  # the tree was found
    problems = [
        problem
        for path in files
        for problem in findings(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert problems == []
