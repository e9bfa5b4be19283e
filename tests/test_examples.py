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
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tinydeep.data import idx

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MLP = EXAMPLES / "mlp_fashion_mnist.py"
RESNET = EXAMPLES / "resnet_cifar.py"
SUMMARY = re.compile(
    r"^done: test accuracy (\d+\.\d\d)% after (\d+) epochs? on (\d+) images, "
    r"[\d.]+s in all, training at \d+ images/s$"
)


def offline_env(home: Path | None = None) -> dict[str, str]:
    """The environment with downloads routed to a proxy on a closed loopback port, so that
    nothing leaves this machine whatever the network around it, and no TINYDEEP_DATA; with
    `home`, HOME is that folder (the per-user cache ~/.cache/tinydeep is then inside it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{s.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.pop("TINYDEEP_DATA", None)
    env.update(http_proxy=proxy, https_proxy=proxy, HTTP_PROXY=proxy, HTTPS_PROXY=proxy)
    if home is not None:
        env.pop("XDG_CACHE_HOME", None)
        env["HOME"] = str(home)
        # Importing CuPy (installed in CI, for the NVRTC compile test) makes ~/.cupy/ for its
        # kernel cache; send that elsewhere, so `home` shows only what tinydeep leaves there.
        env["CUPY_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / "tinydeep-tests-cupy-cache")
    return env


def assert_says_where_to_get_it(stderr: str, *facts: str) -> None:
    """An offline message for a command-line user: the facts, the flag, no Python, no trace."""
    assert "Traceback" not in stderr
    for fact in facts:
        assert fact in stderr, fact
    assert "--data-dir" in stderr and "data_dir=" not in stderr


def assert_trains_on_the_stand_in(stderr: str, *facts: str) -> None:
    assert_says_where_to_get_it(stderr, "could not be downloaded", "stand-in", *facts)


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, env=env, check=False
    )


@pytest.mark.parametrize("layout", ["parent", "itself"])
def test_mlp_fashion_mnist_trains_and_reports(data_root, layout):
    """--data-dir may name the folder holding fashion-mnist/ or fashion-mnist/ itself."""
    data_dir = data_root("fashion-mnist")
    data_dir = data_dir.parent if layout == "parent" else data_dir
    args = [str(MLP), "--data-dir", str(data_dir), "--train-size", "2000", "--epochs", "1"]
    result = run(args, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert "stand-in" not in result.stderr + result.stdout
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("Fashion-MNIST: 2000 training images (of 60000), 10000 test")
    assert any(line.startswith("epoch 1/1  loss ") for line in lines), result.stdout
    summary = SUMMARY.match(lines[-1])
    assert summary, f"unexpected last line: {lines[-1]!r}"
    accuracy, epochs, images = float(summary[1]), int(summary[2]), int(summary[3])
    assert (epochs, images) == (1, 2000) and " after 1 epoch on " in lines[-1]
    assert accuracy > 50  # chance is 10%; one epoch on 2,000 images reaches about 67%


def test_mlp_fashion_mnist_offline_trains_on_the_stand_in_and_leaves_nothing(tmp_path):
    """The README's command with no data and no network: it says what to download and where,
    trains on the stand-in set, and leaves no empty ~/.cache/tinydeep/fashion-mnist behind."""
    home = tmp_path / "home"
    home.mkdir()
    args = [str(MLP), "--epochs", "1", "--train-size", "2000"]
    result = run(args, env=offline_env(home))
    assert result.returncode == 0, result.stderr
    assert_trains_on_the_stand_in(
        result.stderr,
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
        str(home / ".cache" / "tinydeep" / "fashion-mnist"),
    )
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("stand-in: 2000 training images"), lines[0]
    summary = SUMMARY.match(lines[-1])
    assert summary and float(summary[1]) > 50, lines[-1]  # ten learnable classes
    assert list(home.iterdir()) == []  # no ~/.cache/tinydeep/fashion-mnist, no ~/.cache


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
    result = run(args, env=offline_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert_trains_on_the_stand_in(
        result.stderr, "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz", "run.json"]  # no cifar-10/
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
        env=offline_env(tmp_path),
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
    data_dir = tmp_path / "adult"  # a user's folder meant for the files, still empty
    data_dir.mkdir()
    result = run(
        [str(EXAMPLES / "wide_and_deep.py"), "--data-dir", str(data_dir)],
        env=offline_env(tmp_path),
    )
    assert result.returncode == 1
    assert_says_where_to_get_it(
        result.stderr,
        "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/adult.data",
        str(data_dir / "adult"),
        "adult.data and adult.test",
    )
    assert list(tmp_path.iterdir()) == [data_dir] and list(data_dir.iterdir()) == []


def test_california_housing_reads_a_data_dir_that_holds_the_csv(data_root):
    folder = data_root("california-housing")
    args = [str(EXAMPLES / "california_housing.py"), "--data-dir", str(folder), "--epochs", "1"]
    result = run(args, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("done: test RMSE ")


def test_california_housing_offline_says_where_to_download_and_leaves_nothing(tmp_path):
    """No data and no network: the loader's message for the command line, exit status 1,
    and no folder made for the download (neither data/ nor ~/.cache/tinydeep/)."""
    result = run(
        [str(EXAMPLES / "california_housing.py"), "--data-dir", str(tmp_path / "data")],
        env=offline_env(tmp_path),
    )
    assert result.returncode == 1
    assert_says_where_to_get_it(
        result.stderr,
        "could not download cal_housing.tgz",
        "https://ndownloader.figshare.com/files/5976036",
        str(tmp_path / "data" / "california-housing"),
        "cal_housing.tgz or california_housing.csv",
    )
    assert list(tmp_path.iterdir()) == []


def test_california_housing_offline_without_data_dir_leaves_no_cache_folder(tmp_path):
    result = run([str(EXAMPLES / "california_housing.py")], env=offline_env(tmp_path))
    assert result.returncode == 1
    assert_says_where_to_get_it(
        result.stderr, str(tmp_path / ".cache" / "tinydeep" / "california-housing")
    )
    assert list(tmp_path.iterdir()) == []


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


def test_depth_study_offline_says_what_to_download_and_writes_nothing(tmp_path):
    """No stand-in for a study: exit 1 with the message, no out-dir, no data folder."""
    data_dir, out = tmp_path / "data", tmp_path / "out"
    args = ["--data-dir", str(data_dir), "--out-dir", str(out), "--no-plots"]
    result = run([str(DEPTH_STUDY), *args], env=offline_env(tmp_path))
    assert result.returncode == 1
    assert_says_where_to_get_it(
        result.stderr,
        "depth_study: cannot load fashion-mnist",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
        str(data_dir / "fashion-mnist"),
    )
    assert list(tmp_path.iterdir()) == []


def test_resnet_cifar_fashion_mnist_offline_stands_in_with_its_shape(tmp_path, monkeypatch, capsys):
    """--dataset fashion-mnist offline: a 28x28x1 stand-in, announced, nothing left behind."""
    closed = offline_env()["http_proxy"]  # a closed port on 127.0.0.1, reached directly
    monkeypatch.setattr(idx, "FASHION_MNIST_URL", closed + "/")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    resnet = load_example(RESNET)
    (x_train, y_train), (x_test, _), name = resnet.load(
        "fashion-mnist", tmp_path, np.random.default_rng(0)
    )
    assert name == "stand-in"
    assert x_train.shape[1:] == x_test.shape[1:] == (28, 28, 1) and x_train.dtype == np.uint8
    assert sorted(set(y_train.tolist())) == list(range(10))
    assert_trains_on_the_stand_in(capsys.readouterr().err, "Fashion-MNIST-shaped")
    assert list(tmp_path.iterdir()) == []


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


def test_movielens_trains_both_tasks_and_reports_every_figure(data_root, tmp_path):
    data_dir = data_root("movielens-100k").parent
    summary, curves = tmp_path / "ml.json", tmp_path / "curves.png"
    args = ["--data-dir", str(data_dir), "--epochs", "1", "--json", str(summary)]
    args += ["--models", "wide_deep", "--wide", "user,item,gender_x_genre"]  # both parts
    result = run(
        [
            str(EXAMPLES / "movielens.py"),
            *args,
            "--plot",
            str(curves),
        ],
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(summary.read_text())
    assert report["split"] == "temporal" and report["wide"] == ["user", "item", "gender_x_genre"]
    implicit, rating = report["implicit"], report["rating"]
    assert set(implicit) == set(rating) == {"wide_deep"}
    for kind in ("wide_deep",):
        r = implicit[kind]
        assert r["epochs"] == 1 and len(r["validation"]) == 1
        assert 0.7 < r["auc"] < 1 and 0.6 < r["accuracy"] < 1  # one epoch; chance is 0.5
        assert 0 < r["ndcg@10"] < r["hr@10"] < 1
        assert 0.85 < rating[kind]["rmse"] < 1.1  # the training mean scores about 1.15
    assert 0.5 < implicit["wide_deep"]["auc_wide_part"] < 1
    assert 0.5 < implicit["wide_deep"]["auc_deep_part"] < 1
    assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    weights = result.stdout.split("wide part:")[-1]
    assert "gender_x_genre: " in weights and "M x " in weights and "F x " in weights


def test_movielens_without_data_says_what_to_download(tmp_path):
    data_dir = tmp_path / "data"
    result = run(
        [str(EXAMPLES / "movielens.py"), "--data-dir", str(data_dir)],
        env=offline_env(tmp_path),
    )
    assert result.returncode == 1
    assert_says_where_to_get_it(
        result.stderr,
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        str(data_dir / "movielens-100k"),
    )
    assert list(tmp_path.iterdir()) == [data_dir] or not data_dir.exists()
