"""Smoke tests for the scripts in examples/: each runs as a user would run it, in a subprocess.

The runs use tiny settings (seconds, not minutes) and check the script's summary line, not its
exact numbers. Runs that train need the real data (TINYDEEP_DATA) and skip without it. Left
out: the default settings, whose accuracy the example's docstring reports.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MLP = EXAMPLES / "mlp_fashion_mnist.py"
RESNET = EXAMPLES / "resnet_cifar.py"
SUMMARY = re.compile(
    r"^done: test accuracy (\d+\.\d\d)% after (\d+) epochs on (\d+) images, "
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
    assert (epochs, images) == (1, 2000)
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
