"""Packaging: `kernels/` installs as `tinydeep_kernels`, from an editable install and a wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tinydeep_kernels

import tinydeep

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")


def declared_packages() -> dict[str, Path]:
    """Import name -> folder, as pyproject.toml declares them."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = config["package-dir"]
    folders = {}
    for name in config["packages"]:
        top, *rest = name.split(".")
        folders[name] = ROOT / roots[top] / Path(*rest)
    return folders


def test_every_package_folder_is_declared():
    on_disk = {
        p.parent for top in ("tinydeep", "kernels") for p in (ROOT / top).rglob("__init__.py")
    }
    assert on_disk == set(declared_packages().values())


def test_the_installed_packages_import_under_their_names():
    assert Path(tinydeep.__file__).parent.name == "tinydeep"
    assert tinydeep_kernels.__doc__.startswith("tinydeep_kernels")


def test_a_built_wheel_holds_tinydeep_kernels_and_imports_from_a_clean_folder(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("tinydeep-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tinydeep_kernels/cpu/__init__.py" in names
    assert not any(n.startswith("kernels/") for n in names)

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    code = "import tinydeep, tinydeep_kernels.cpu; print(tinydeep_kernels.__file__)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(target)},
    )
    assert Path(result.stdout.strip()).is_relative_to(target)


def test_kernels_never_import_tinydeep():
    import ast

    for path in (ROOT / "kernels").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n == "tinydeep" or n.startswith("tinydeep.") for n in names), path
