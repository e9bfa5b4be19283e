"""Smoke tests for the scripts in examples/: each runs as a user would run it, in a subprocess.

The runs use tiny settings (seconds, not minutes) and check the script's summary line, not its
exact numbers. Runs that train need the real data (TINYDEEP_DATA) and skip without it. Left
out: the default settings, whose accuracy the example's docstring reports.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MLP = EXAMPLES / "mlp_fashion_mnist.py"
RESNET = EXAMPLES / "resnet_cifar.py"
SUMMARY = re.compile(
    r"^done: test accuracy (\d+\.\d\d)% after (\d+) epochs? on (\d+) images, "
    r"[\d.]+s in all, training at \d+ images/s$"
)


def offline_env() -> dict[str, str]:
    """The environment with downloads routed to a proxy on a closed loopback port, so that
    nothing leaves this machine whatever the network around it, and no TINYDEEP_DATA."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.pop("TINYDEEP_DATA", None)
    env.update(http_proxy=proxy, https_proxy=proxy, HTTP_PROXY=proxy, HTTPS_PROXY=proxy)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, env=env, check=False
    )


def test_mlp_fashion_mnist_trains_and_reports(data_root):
    data_dir = data_root("fashion-mnist").parent
    args = [str(MLP), "--data-dir", str(data_dir), "--train-size", "2000", "--epochs", "1"]
    result = run(args, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert any(line.startswith("epoch 1/1  loss ") for line in lines), result.stdout
    summary = SUMMARY.match(lines[-1])
    assert summary, f"unexpected last line: {lines[-1]!r}"
    accuracy, epochs, images = float(summary[1]), int(summary[2]), int(summary[3])
    assert (epochs, images) == (1, 2000) and " after 1 epoch on " in lines[-1]
    assert accuracy > 50  # chance is 10%; one epoch on 2,000 images reaches about 67%


def test_mlp_fashion_mnist_without_data_says_what_to_download(tmp_path):
    """No data and no network: a short message naming the URL and the folder, exit code 1."""
    result = run([str(MLP), "--data-dir", str(tmp_path), "--epochs", "1"], env=offline_env())
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "train-images-idx3-ubyte.gz" in result.stderr
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" in result.stderr
    assert str(tmp_path / "fashion-mnist") in result.stderr
    assert list((tmp_path / "fashion-mnist").iterdir()) == []  # no partial file


TINY_RESNET = [
    "--depth",
    "8",
    "--epochs",
    "2",
    "--train-size",
    "256",
    "--test-size",
    "128",
    "--batch-size",
    "64",
]


def test_resnet_cifar_offline_trains_on_the_stand_in_data_and_resumes(tmp_path):
    """No CIFAR-10 and no network: it says so, trains on the stand-in set, writes its JSON
    summary, and a run resumed from its checkpoint continues."""
    checkpoint, summary = tmp_path / "ck.npz", tmp_path / "run.json"
    args = [
        str(RESNET),
        "--data-dir",
        str(tmp_path),
        *TINY_RESNET,
        "--checkpoint",
        str(checkpoint),
        "--json",
        str(summary),
    ]
    result = run(args, env=offline_env())
    assert result.returncode == 0, result.stderr
    assert "could not be downloaded" in result.stderr and "stand-in" in result.stderr
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in result.stderr
    assert re.search(
        r"^done: test accuracy \d\.\d{4} on 128 stand-in test images", result.stdout, re.MULTILINE
    ), result.stdout
    report = json.loads(summary.read_text())
    assert set(report) == {
        "dataset",
        "depth",
        "residual",
        "epochs",
        "test_accuracy",
        "train_seconds",
        "images_per_second",
        "device",
    }
    assert (report["dataset"], report["depth"], report["epochs"]) == ("stand-in", 8, 2)

    resumed = run(
        [
            str(RESNET),
            "--data-dir",
            str(tmp_path),
            *TINY_RESNET,
            "--epochs",
            "3",
            "--resume",
            str(checkpoint),
        ],
        env=offline_env(),
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "epoch 3/3" in resumed.stdout
    assert " s of training (1 epoch), " in resumed.stdout  # the one epoch run, singular


def test_california_housing_trains_the_tutorial_model_and_reports(data_root, tmp_path):
    """Two epochs of the tutorial's WideAndDeepModel: the epoch lines, the summary, the JSON."""
    data_dir = data_root("california-housing").parent
    summary = tmp_path / "run.json"
    script = EXAMPLES / "california_housing.py"
    args = [str(script), "--data-dir", str(data_dir), "--epochs", "2", "--json", str(summary)]
    result = run(args, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("California housing: 11610 train, 3870 valid, 5160 test")
    assert any(line.startswith("epoch 2/2  loss ") for line in lines), result.stdout
    assert re.match(r"^done: test RMSE \d\.\d{4} \(main output", lines[-1]), lines[-1]
    report = json.loads(summary.read_text())
    assert report["epochs"] == 2 and report["train_seconds"] > 0
    assert report["test_rmse"] < 0.9  # predicting the mean scores 1.14; two epochs reach ~0.7


def test_wide_and_deep_trains_the_three_models_and_reports(data_root, tmp_path):
    data_dir = data_root("adult").parent
    summary = tmp_path / "wd.json"
    result = run(
        [
            str(EXAMPLES / "wide_and_deep.py"),
            "--data-dir",
            str(data_dir),
            "--epochs",
            "1",
            "--json",
            str(summary),
        ],
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(summary.read_text())
    assert set(report) == {"wide", "deep", "wide_deep", "train_seconds"}
    for kind in ("wide", "deep", "wide_deep"):
        assert set(report[kind]) == {"accuracy", "precision", "recall", "auc"}
        assert report[kind]["auc"] > 0.8  # one epoch; chance is 0.5


def test_wide_and_deep_without_data_says_what_to_download(tmp_path):
    result = run(
        [str(EXAMPLES / "wide_and_deep.py"), "--data-dir", str(tmp_path)], env=offline_env()
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/adult.data"
        in result.stderr
    )
    assert str(tmp_path / "adult") in result.stderr


DEPTH_STUDY = EXAMPLES / "depth_study.py"


def load_example(path: Path):
    """The example script as a module, to test its pieces without running main."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_depth_study_tiny_run_writes_its_csv_json_and_plots(data_root, tmp_path):
    """All three experiments at a tiny size, two folds: every file is written, one record per
    network and fold, with the fields and value ranges the plots of docs/depth_study.md read."""
    data_dir = data_root("fashion-mnist").parent
    out, copy = tmp_path / "out", tmp_path / "copy.json"
    args = [
        str(DEPTH_STUDY),
        "--data-dir", str(data_dir),
        "--depths", "8", "14",
        "--matched-depth", "14",
        "--train-size", "160",
        "--folds", "2",
        "--epochs", "1",
        "--batch-size", "40",
        "--mlp-depths", "2", "5",
        "--mlp-width", "16",
        "--out-dir", str(out),
        "--json", str(copy),
    ]  # fmt: skip
    result = run(args, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("done: 28 runs in ")
    plots = ["accuracy_vs_depth", "gradient_profiles", "training_curves", "width_vs_depth"]
    for name in [*plots, "mlp_vanishing"]:
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    report = json.loads((out / "runs.json").read_text())
    assert report == json.loads(copy.read_text())
    runs = report["runs"]
    # per fold: 4 cnn, 2 width (8 at a matched width, 14 = the cnn run), 8 mlp
    assert len(runs) == 2 * (4 + 2 + 8)
    assert {(r["experiment"], r["fold"]) for r in runs} == {
        (e, f) for e in ("cnn", "width", "mlp") for f in (0, 1)
    }
    for r in runs:
        for key in ("train_accuracy", "val_accuracy", "precision", "recall", "roc_auc"):
            assert 0.0 <= r[key] <= 1.0, (r["name"], key)
        # depth counts the weighted layers: the convolutions and the Dense head, or the Denses
        assert len(r["grad_norm_init"]) == len(r["grad_norm_final"]) == r["depth"], r["name"]
        assert all(g > 0 and math.isfinite(g) for g in r["grad_norm_init"]), r["name"]
        assert len(r["step_losses"]) == 2  # 80 training images per fold, batch 40, 1 epoch
        assert set(r["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    width = [r for r in runs if r["experiment"] == "width" and r["fold"] == 0]
    reference = next(r for r in width if r["depth"] == 14)
    shallow = next(r for r in width if r["depth"] == 8)
    assert reference["width"] == 16 and shallow["width"] > 16
    assert abs(shallow["params"] - reference["params"]) < 0.05 * reference["params"]
    with open(out / "runs.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(runs) and rows[0]["name"] == runs[0]["name"]
    assert len(report["summary"]) == len(runs) // 2
    assert all(row["folds"] == 2 for row in report["summary"])


def test_depth_study_folds_hold_out_every_image_once():
    study = load_example(DEPTH_STUDY)
    args = study.parse_args(["--folds", "3"])
    folds = study.splits(10, args, np.random.default_rng(0))
    held = np.concatenate([val for _, val in folds])
    assert sorted(held.tolist()) == list(range(10))
    for train, val in folds:
        assert sorted(np.concatenate([train, val]).tolist()) == list(range(10))
    one = study.splits(10, study.parse_args(["--val-size", "3"]), np.random.default_rng(0))
    assert [a.tolist() for a in one[0]] == [list(range(7)), [7, 8, 9]]


def test_depth_study_rejects_a_depth_that_is_not_6n_plus_2(capsys):
    study = load_example(DEPTH_STUDY)
    with pytest.raises(SystemExit):
        study.parse_args(["--depths", "8", "10"])
    assert "--depths must be 6n + 2" in capsys.readouterr().err
