"""The examples' command lines: every flag's help and default, `--device cuda` refused in one
line before any slow work, and counts that read "1 epoch", not "1 epochs".

The help tests read each example's argparse actions (not the printed text); the device tests
run each example as a user would, in a subprocess, with CuPy hidden, so that they check the
same thing on a machine with a GPU as on one without. tests/test_examples.py runs the examples.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from test_backend import fake_cupy
from test_examples import offline_env

from tinydeep import backend

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
WITH_DEVICE = [p for p in SCRIPTS if "--device" in p.read_text()]


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"cli_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Parsed(Exception):
    """Raised by the patched parse_args, carrying the parser an example built."""


def parser_of(path: Path, monkeypatch) -> argparse.ArgumentParser:
    """The ArgumentParser that `path`'s parse_args builds, caught as it starts parsing."""

    def catch(self, args=None, namespace=None):
        raise Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", catch)
    with pytest.raises(Parsed) as caught:
        load(path).parse_args([])
    return caught.value.args[0]


def test_every_example_that_trains_on_a_device_is_checked():
    assert {p.stem for p in WITH_DEVICE} >= {
        "resnet_cifar",
        "mlp_fashion_mnist",
        "california_housing",
        "depth_study",
    }


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_every_option_says_what_it_does_and_its_default(path, monkeypatch):
    parser = parser_of(path, monkeypatch)
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        flag = action.option_strings[0]
        assert action.help, f"{path.name} {flag} has no help"
        shown = formatter._expand_help(action)
        assert "(default: " in shown or "; default: " in shown, f"{path.name} {flag}: {shown!r}"
        if action.default not in (None, True, False):  # a value: shown by argparse, never stale
            assert "%(default)s" in action.help, f"{path.name} {flag} writes its default by hand"
        if flag == "--data-dir":  # tinydeep.data.data_dir's order
            assert "(default: $TINYDEEP_DATA, else ~/.cache/tinydeep" in shown, shown


COUNTED = r"\{[^{}]*\} (epochs|steps|runs|folds|networks|fold\(s\))\b"


@pytest.mark.parametrize(
    "path", [*SCRIPTS, Path(backend.__file__).with_name("train.py")], ids=lambda p: p.name
)
def test_no_message_says_1_epochs(path):
    """A count the user can set to 1 takes the singular then: no f"{n} epochs" as written."""
    assert re.findall(COUNTED, path.read_text()) == []


@pytest.mark.parametrize(
    ("cupy", "problem"),
    [
        (None, "device 'cuda' needs CuPy, which is not installed: "),
        (fake_cupy(RuntimeError("no driver")), "device 'cuda': CuPy is installed but no CUDA"),
        (fake_cupy(0), "device 'cuda': CuPy found no CUDA GPU; "),
    ],
    ids=["no CuPy", "no driver", "no GPU"],
)
@pytest.mark.parametrize("path", WITH_DEVICE, ids=lambda p: p.stem)
def test_device_cuda_without_a_usable_gpu_is_a_usage_error(
    path, cupy, problem, capsys, monkeypatch
):
    module = load(path)
    monkeypatch.setattr(backend, "_cupy", cupy)
    with pytest.raises(SystemExit) as exited:
        module.parse_args(["--device", "cuda"])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and re.fullmatch(rf"\S+: error: {re.escape(problem)}.*\n", err), err
    assert 'pip install -e ".[cuda]"' in err  # what to do about it
    monkeypatch.setattr(backend, "_cupy", fake_cupy(1))  # a usable GPU: no complaint
    assert module.parse_args(["--device", "cuda"]).device == "cuda"


HIDE_CUPY = (
    "import runpy, sys; sys.modules['cupy'] = None; script = sys.argv[1]; del sys.argv[0]; "
    "runpy.run_path(script, run_name='__main__')"
)


@pytest.mark.parametrize("path", WITH_DEVICE, ids=lambda p: p.stem)
def test_device_cuda_without_cupy_fails_in_one_line_before_the_data(path, tmp_path):
    """Run as a user would, offline, with a data folder that does not exist: one line on
    stderr, exit status 2, no traceback, and nothing of the data (no message, no folder)."""
    data = tmp_path / "no-data-here"
    result = subprocess.run(
        [sys.executable, "-c", HIDE_CUPY, str(path), "--device", "cuda", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        env=offline_env(),
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"{path.name}: error: device 'cuda' needs CuPy")
    assert list(tmp_path.iterdir()) == []  # no data folder, no output folder
