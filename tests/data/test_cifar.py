"""tinydeep/data/cifar.py: the binary format on real CIFAR-10 images, and the download path
against a local HTTP server (good archive, bad checksum, connection dropped halfway)."""

from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pytest

from tinydeep.data import cifar
from tinydeep.data.download import DownloadError

SAMPLE_LABELS = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]


def test_the_first_twenty_real_test_images(data_root):
    path = data_root("cifar-10-sample") / "test_batch.bin"
    images, labels = cifar.read_cifar_binary(path)
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == SAMPLE_LABELS
    raw = np.fromfile(path, np.uint8).reshape(20, 3073)
    # pixel (row 5, column 7) of image 2: red at 5*32+7, green 1024 later, blue 2048 later
    assert images[2, 5, 7].tolist() == [
        raw[2, 1 + 167],
        raw[2, 1 + 1024 + 167],
        raw[2, 1 + 2048 + 167],
    ]
    assert 60 < images.mean() < 200  # real photographs, not zeros


def test_truncated_and_mislabelled_files_are_refused(tmp_path):
    (tmp_path / "short.bin").write_bytes(bytes(3073 + 10))
    with pytest.raises(cifar.CifarError, match="not a whole number of 3073-byte"):
        cifar.read_cifar_binary(tmp_path / "short.bin")
    record = bytearray(3073)
    record[0] = 12
    (tmp_path / "label.bin").write_bytes(bytes(record))
    with pytest.raises(cifar.CifarError, match="label 12"):
        cifar.read_cifar_binary(tmp_path / "label.bin")


def fake_archive() -> bytes:
    """A tar.gz laid out like the real one: six .bin files of 2 records each, plus a file
    that must not be extracted."""
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        names = [*cifar.FILES["train"], *cifar.FILES["test"], "../evil.bin"]
        for i, name in enumerate(names):
            records = rng.integers(0, 256, (2, 3073), dtype=np.uint8)
            records[:, 0] = i % 10
            data = records.tobytes()
            info = tarfile.TarInfo(f"{cifar.MEMBER_FOLDER}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_download_verify_and_extract(tmp_path, local_server, monkeypatch):
    archive = fake_archive()
    local_server.files["/c.tar.gz"] = archive
    monkeypatch.setattr(cifar, "URL", local_server.url("/c.tar.gz"))
    monkeypatch.setattr(cifar, "SHA256", hashlib.sha256(archive).hexdigest())
    images, labels = cifar.load_cifar10(tmp_path, "train")
    assert images.shape == (10, 32, 32, 3) and labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert cifar.load_cifar10(tmp_path, "test")[1].tolist() == [5, 5]
    assert local_server.requests == ["/c.tar.gz"]  # downloaded once
    folder = tmp_path / "cifar-10" / cifar.MEMBER_FOLDER
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*cifar.FILES["train"], *cifar.FILES["test"]]
    )
    assert (
        not (tmp_path / "evil.bin").exists() and not (tmp_path / "cifar-10" / "evil.bin").exists()
    )


def test_a_bad_checksum_or_a_dropped_connection_leaves_nothing(tmp_path, local_server, monkeypatch):
    archive = fake_archive()
    local_server.files["/c.tar.gz"] = archive
    monkeypatch.setattr(cifar, "URL", local_server.url("/c.tar.gz"))
    monkeypatch.setattr(cifar, "SHA256", "0" * 64)
    with pytest.raises(DownloadError, match="SHA-256"):
        cifar.load_cifar10(tmp_path)
    assert list(tmp_path.iterdir()) == []  # no file, and not the folder made for it

    monkeypatch.setattr(cifar, "SHA256", hashlib.sha256(archive).hexdigest())
    local_server.cut["/c.tar.gz"] = len(archive) // 2
    with pytest.raises(DownloadError, match="broke off"):
        cifar.load_cifar10(tmp_path)
    assert list(tmp_path.iterdir()) == []  # no file, and not the folder made for it


def test_offline_without_download_says_what_to_fetch(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-10-binary.tar.gz\n  and extract it in"):
        cifar.load_cifar10(tmp_path, download=False)
