"""tinydeep/data/cifar.py: the binary format on real CIFAR-10 images, and the download path
against a local HTTP server (good archive, bad checksum, connection dropped halfway)."""

from __future__ import annotations

import hashlib
import io
import os
import stat
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
    umask = os.umask(0)
    os.umask(umask)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes == {0o666 & ~umask}  # open()'s permissions, not mkstemp's -rw-------
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


def write_test_batch(folder) -> None:
    records = np.zeros((3, 3073), np.uint8)
    records[:, 0] = [7, 8, 9]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_batch.bin").write_bytes(records.tobytes())


@pytest.mark.parametrize("layout", ["cifar-10/cifar-10-batches-bin", "cifar-10-batches-bin", "."])
def test_a_data_dir_that_holds_the_files_is_used_as_it_is(
    tmp_path, monkeypatch, offline_url, layout
):
    """data_dir may hold cifar-10/, be cifar-10/ (holding cifar-10-batches-bin/) or be
    cifar-10-batches-bin/ itself; offline, each is read as it is, nothing made beside it."""
    monkeypatch.setattr(cifar, "URL", offline_url + "c.tar.gz")
    write_test_batch(tmp_path / layout)
    before = sorted(tmp_path.rglob("*"))
    assert cifar.load_cifar10(tmp_path, "test")[1].tolist() == [7, 8, 9]
    with pytest.raises(DownloadError, match="could not be reached") as caught:
        cifar.load_cifar10(tmp_path, "train")
    # the archive goes beside cifar-10-batches-bin/, or into it when it is data_dir itself
    folder = tmp_path / layout
    assert caught.value.dest == (folder if layout == "." else folder.parent) / cifar.ARCHIVE
    assert sorted(tmp_path.rglob("*")) == before  # nothing made, nothing left


def test_an_archive_downloaded_into_the_cifar_10_folder_is_extracted_beside(
    tmp_path, local_server, monkeypatch
):
    archive = fake_archive()
    local_server.files["/c.tar.gz"] = archive
    monkeypatch.setattr(cifar, "URL", local_server.url("/c.tar.gz"))
    monkeypatch.setattr(cifar, "SHA256", hashlib.sha256(archive).hexdigest())
    write_test_batch(tmp_path / cifar.MEMBER_FOLDER)  # tmp_path is the cifar-10 folder
    assert len(cifar.load_cifar10(tmp_path, "train")[0]) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [cifar.ARCHIVE, cifar.MEMBER_FOLDER]
    )


def test_an_unreadable_archive_leaves_no_folder_made_for_it(tmp_path):
    (tmp_path / cifar.ARCHIVE).write_bytes(b"not a tar.gz")
    with pytest.raises(DownloadError, match="cannot be read"):
        cifar.extract(tmp_path / cifar.ARCHIVE, tmp_path / cifar.MEMBER_FOLDER)
    assert [p.name for p in tmp_path.iterdir()] == [cifar.ARCHIVE]
