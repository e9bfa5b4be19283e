"""The reading path stays short enough to read (issue 15's targets).

A learner follows the README's reading order from `tensor.py` through a convolution and batch
norm; those files are budgeted in code lines (comments, docstrings and blank lines are free,
as in tinygrad), so robustness machinery added to them shows up here and goes beside them
instead (ops/checks.py, layers/calls.py, rollback.py). The README keeps its reading order near
the top and stays a front door.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# tensor.py, then a convolution (its op and its layer), then batch norm (its op and its layer)
READING_PATH = (
    "tinydeep/tensor.py",
    "tinydeep/ops/conv.py",
    "tinydeep/layers/conv2d.py",
    "tinydeep/ops/normalization.py",
    "tinydeep/layers/normalization.py",
)
READING_PATH_BUDGET = 700  # code lines in all
README_BUDGET = 260  # lines ("under about 250")
READING_ORDER_WITHIN = 100  # the README's "Read the code in this order" starts in these lines


def code_lines(source: str) -> int:
    """The number of lines that hold code: not blank, not only a comment, not a docstring."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.update(range(first.lineno, first.end_lineno + 1))
    skipped = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in skipped or token.type == tokenize.ENDMARKER:
            continue
        lines.update(n for n in range(token.start[0], token.end[0] + 1) if n not in docstrings)
    return len(lines)


def test_code_lines_counts_code_only():
    source = '''"""A module docstring
over two lines."""

# a comment
x = 1  # a trailing comment


def f(a):
    """A function docstring."""
    return (a +
            1)
'''
    assert code_lines(source) == 4  # x = 1; def f; the two lines of the return


def test_the_reading_path_stays_under_its_budget():
    counts = {path: code_lines((ROOT / path).read_text()) for path in READING_PATH}
    total = sum(counts.values())
    assert total < READING_PATH_BUDGET, (
        f"the reading path is {total} code lines, over its {READING_PATH_BUDGET}: {counts}; "
        "move checks and machinery beside the maths (ops/checks.py, layers/calls.py)"
    )


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_BUDGET, f"README.md has {len(lines)} lines"
    start = next(i for i, line in enumerate(lines, 1) if line.startswith("## Read the code"))
    assert start <= READING_ORDER_WITHIN, f"the reading order starts at line {start}"
