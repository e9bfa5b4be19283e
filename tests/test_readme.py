"""The README's code runs as written: "A first look", "Build and train a model" and the Keras
snippet are pasted into a fresh Python process, as a new user would run them.

The training snippet runs on fewer images (its `[:12000]` becomes `[:512]`, the one change)
so that the test takes seconds; everything else, the data loading, the model, compile, fit,
evaluate and save_weights, is the README's text.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def snippet(heading: str) -> str:
    """The first ```python block under the README's `## heading`."""
    text = README.read_text()
    section = text[text.index(f"\n## {heading}\n") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, f"no python block under '## {heading}'"
    return match.group(1)


def run_python(code: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


def test_a_first_look_prints_the_loss_the_gradient_and_the_check(tmp_path):
    result = run_python(snippet("A first look"), tmp_path, dict(os.environ))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Tensor(") and "requires_grad=True" in lines[0], result.stdout
    assert lines[-1] == "True", result.stdout  # gradcheck's verdict
    assert len(lines) == 1 + 3 + 1, result.stdout  # the loss, w.grad's three rows, the check


def test_build_and_train_a_model_runs_as_written(data_root, tmp_path):
    data_dir = data_root("fashion-mnist").parent
    code = snippet("Build and train a model")
    assert code.count("[:12000]") == 2
    code = code.replace("[:12000]", "[:512]")
    env = dict(os.environ, TINYDEEP_DATA=str(data_dir))
    result = run_python(code, tmp_path, env)
    assert result.returncode == 0, result.stderr
    evaluation = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\{'loss': [0-9.]+, 'accuracy': [0-9.]+\}", evaluation), result.stdout
    assert (tmp_path / "model.npz").is_file()


def test_keras_code_snippet_builds_summarizes_and_draws_the_functional_model(tmp_path):
    result = run_python(
        snippet("Keras code, and models that leave tinydeep"), tmp_path, dict(os.environ)
    )
    assert result.returncode == 0, result.stderr
    assert "Connected to" in result.stdout and "concatenate[0][0]" in result.stdout, result.stdout
    assert (tmp_path / "model.png").read_bytes()[:4] == b"\x89PNG"
