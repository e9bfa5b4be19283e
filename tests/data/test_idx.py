"""Tests for tinydeep/data/idx.py: read_idx, and the Fashion-MNIST and MNIST loaders.

Read in order: the real Fashion-MNIST files (skipped, naming the folder, without
TINYDEEP_DATA); hand-made files written by `idx_bytes` below, well-formed (round trips) and
damaged (every fault gets an IdxError naming the file); then the loaders' download path, served
from 127.0.0.1 by the `local_server` fixture.
"""

from __future__ import annotations

import gzip
import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinydeep.data import DownloadError, IdxError, idx, load_fashion_mnist, load_mnist, read_idx

# Written out here, not taken from idx.py, so that the tests check the module against the format.
TYPE_CODES = {
    "uint8": 0x08,
    "int8": 0x09,
    "int16": 0x0B,
    "int32": 0x0C,
    "float32": 0x0D,
    "float64": 0x0E,
}

TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of `array`: magic, big-endian uint32 dims, big-endian data."""
    header = bytes([0, 0, TYPE_CODES[array.dtype.name], array.ndim])
    dims = np.array(array.shape, dtype=">u4").tobytes()
    return header + dims + array.astype(array.dtype.newbyteorder(">")).tobytes()


# ---- the real Fashion-MNIST files -------------------------------------------------------------


def test_real_fashion_mnist_files(fashion_mnist_dir):
    images = read_idx(fashion_mnist_dir / "train-images-idx3-ubyte.gz")
    labels = read_idx(fashion_mnist_dir / "train-labels-idx1-ubyte.gz")
    assert (images.shape, images.dtype) == ((60000, 28, 28), np.uint8)
    assert (labels.shape, labels.dtype) == ((60000,), np.uint8)
    assert labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert np.bincount(labels).tolist() == [6000] * 10  # balanced, labels 0..9 only
    assert images.max() == 255 and images.min() == 0

    images = read_idx(fashion_mnist_dir / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert (images.shape, images.dtype) == ((10000, 28, 28), np.uint8)
    assert labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(labels).tolist() == [1000] * 10


def test_load_fashion_mnist_reads_both_splits(fashion_mnist_dir):
    images, labels = load_fashion_mnist(fashion_mnist_dir.parent, "test", download=False)
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert images.dtype == labels.dtype == np.uint8
    assert images.flags.writeable  # a copy the caller owns, not a view of the file's bytes
    images, labels = load_fashion_mnist(fashion_mnist_dir.parent, download=False)
    assert len(images) == len(labels) == 60000


def test_fashion_mnist_checksums_are_those_of_the_decompressed_files(fashion_mnist_dir):
    for name in TRAIN_FILES + TEST_FILES:
        content = gzip.decompress((fashion_mnist_dir / name).read_bytes())
        expected = idx.FASHION_MNIST_SHA256[name.removesuffix(".gz")]
        assert hashlib.sha256(content).hexdigest() == expected, name


# ---- well-formed hand-made files -------------------------------------------------------------


@given(
    array=st.sampled_from(sorted(TYPE_CODES)).flatmap(
        lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0))
    ),
    gzipped=st.booleans(),
)
def test_read_idx_round_trips_every_type_and_shape(array, gzipped):
    data = idx_bytes(array)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.idx"
        path.write_bytes(gzip.compress(data) if gzipped else data)
        out = read_idx(path)
    assert out.shape == array.shape
    assert out.dtype == array.dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_read_idx_decodes_big_endian(tmp_path):
    (tmp_path / "a.idx").write_bytes(
        bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 1, 2, 3, 4, 255, 255, 255, 254])
    )
    assert read_idx(tmp_path / "a.idx").tolist() == [0x01020304, -2]


def test_read_idx_tells_gzip_by_content_not_by_name(tmp_path):
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    (tmp_path / "plain.gz").write_bytes(idx_bytes(array))
    (tmp_path / "packed.idx").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "packed.idx"), array)


# ---- damaged files ---------------------------------------------------------------------------

GOOD = idx_bytes(np.arange(24, dtype=np.int16).reshape(2, 3, 4))  # 4 + 12 + 48 bytes

DAMAGED = {
    "empty": (b"", "truncated"),
    "half a magic number": (b"\x00\x00", "truncated"),
    "a zip file": (b"PK\x03\x04" + GOOD[4:], "not an IDX file"),
    "an unknown type code": (b"\x00\x00\x07\x03" + GOOD[4:], "unknown IDX type code 0x07"),
    "cut in the dims": (GOOD[:10], "header names 3 dimensions but ends after 1"),
    "cut in the data": (GOOD[:-3], "truncated: its header declares shape (2, 3, 4) of int16"),
    "trailing bytes": (GOOD + b"\x00", "1 bytes after the 48 bytes of data"),
    "absurd dims": (bytes([0, 0, 8, 3]) + b"\xff" * 12 + b"\x00" * 10, "truncated"),
    "gzip cut short": (gzip.compress(GOOD)[:30], "not a complete gzip file"),
    "gzip of a cut file": (gzip.compress(GOOD[:-3]), "truncated"),
    "gzip with a bad crc": (gzip.compress(GOOD)[:-8] + b"\x00" * 8, "not a complete gzip file"),
    "gzip with garbage": (b"\x1f\x8b\x08\x00" + b"\xff" * 60, "not a complete gzip file"),
}


@pytest.mark.parametrize("fault", sorted(DAMAGED))
def test_read_idx_names_the_file_and_the_fault(tmp_path, fault):
    content, message = DAMAGED[fault]
    path = tmp_path / "damaged-idx1-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(IdxError, match="read_idx: .*damaged-idx1-ubyte.gz") as caught:
        read_idx(path)
    assert message in str(caught.value)


def test_read_idx_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent.gz")


# ---- the loaders: checks, and downloads from a local server ----------------------------------


def serve_mnist_like(server, images: np.ndarray, labels: np.ndarray, files=TEST_FILES) -> None:
    """Serve gzipped IDX files of `images` and `labels` under the names of the real ones."""
    server.files[f"/{files[0]}"] = gzip.compress(idx_bytes(images))
    server.files[f"/{files[1]}"] = gzip.compress(idx_bytes(labels))


def test_load_fashion_mnist_downloads_and_checks_the_real_files(
    fashion_mnist_dir, local_server, monkeypatch, tmp_path
):
    for name in TEST_FILES:
        local_server.files[f"/{name}"] = (fashion_mnist_dir / name).read_bytes()
    monkeypatch.setattr(idx, "FASHION_MNIST_URL", local_server.url("/"))
    images, labels = load_fashion_mnist(tmp_path, split="test")
    assert sorted(p.name for p in (tmp_path / "fashion-mnist").iterdir()) == sorted(TEST_FILES)
    assert labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert images.shape == (10000, 28, 28)

    load_fashion_mnist(tmp_path, split="test")  # present now: read, not downloaded again
    assert local_server.requests == [f"/{name}" for name in TEST_FILES]


def test_load_fashion_mnist_rejects_a_download_with_the_wrong_content(
    local_server, monkeypatch, tmp_path
):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    serve_mnist_like(local_server, images, np.zeros(5, np.uint8))
    monkeypatch.setattr(idx, "FASHION_MNIST_URL", local_server.url("/"))
    with pytest.raises(DownloadError, match="SHA-256"):
        load_fashion_mnist(tmp_path, split="test")
    assert list(tmp_path.iterdir()) == []  # no file, and not the folder made for it


def test_load_mnist_downloads_into_its_folder(local_server, monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([7, 2, 1, 0, 4], dtype=np.uint8)
    serve_mnist_like(local_server, images, labels, TRAIN_FILES)
    monkeypatch.setattr(idx, "MNIST_URL", local_server.url("/"))
    out_images, out_labels = load_mnist(tmp_path, split="train")
    np.testing.assert_array_equal(out_images, images)
    np.testing.assert_array_equal(out_labels, labels)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(TRAIN_FILES)


def test_load_uses_the_data_dir_from_the_environment(local_server, monkeypatch, tmp_path):
    serve_mnist_like(local_server, np.zeros((2, 28, 28), np.uint8), np.ones(2, np.uint8))
    monkeypatch.setattr(idx, "MNIST_URL", local_server.url("/"))
    monkeypatch.setenv("TINYDEEP_DATA", str(tmp_path))
    _, labels = load_mnist(split="test")
    assert labels.tolist() == [1, 1]
    assert (tmp_path / "mnist" / TEST_FILES[1]).is_file()


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (np.zeros((3, 28, 28), np.uint8), np.zeros(2, np.uint8), "one per image"),
        (np.zeros((3, 28, 28), np.uint8), np.array([0, 1, 10], np.uint8), "the label 10"),
        (np.zeros((3, 28, 27), np.uint8), np.zeros(3, np.uint8), "shape (N, 28, 28)"),
        (np.zeros((3, 28, 28), np.int32), np.zeros(3, np.uint8), "expected uint8 images"),
    ],
)
def test_load_checks_what_the_files_hold(
    local_server, monkeypatch, tmp_path, images, labels, message
):
    serve_mnist_like(local_server, images, labels)
    monkeypatch.setattr(idx, "MNIST_URL", local_server.url("/"))
    with pytest.raises(IdxError, match="load_mnist") as caught:
        load_mnist(tmp_path, split="test")
    assert message in str(caught.value)


def test_a_failed_download_names_the_other_missing_files(local_server, monkeypatch, tmp_path):
    monkeypatch.setattr(idx, "FASHION_MNIST_URL", local_server.url("/"))  # serves nothing: 404
    with pytest.raises(DownloadError, match="HTTP 404") as caught:
        load_fashion_mnist(tmp_path, split="test")
    error = caught.value
    assert error.url == local_server.url("/t10k-images-idx3-ubyte.gz")
    assert error.dest == tmp_path / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    assert error.also == (*TRAIN_FILES, TEST_FILES[1])
    assert "also lacks train-images-idx3-ubyte.gz, " in str(error)


def test_load_without_download_says_what_to_get_and_where(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        load_fashion_mnist(tmp_path, split="test", download=False)
    message = str(caught.value)
    assert idx.FASHION_MNIST_URL + "t10k-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "fashion-mnist") in message
    assert not (tmp_path / "fashion-mnist").exists()


def test_load_rejects_an_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'valid'"):
        load_mnist(tmp_path, split="valid", download=False)


@pytest.mark.parametrize("layout", ["mnist", "."])
def test_a_data_dir_that_holds_the_files_is_used_as_it_is(
    tmp_path, monkeypatch, offline_url, layout
):
    """data_dir may be the folder holding mnist/ or the one holding the .gz files; offline,
    either is read as it is, and nothing is made beside it."""
    monkeypatch.setattr(idx, "MNIST_URL", offline_url)
    folder = tmp_path / layout
    folder.mkdir(exist_ok=True)
    images, labels = np.zeros((2, 28, 28), np.uint8), np.array([3, 4], np.uint8)
    (folder / TEST_FILES[0]).write_bytes(gzip.compress(idx_bytes(images)))
    (folder / TEST_FILES[1]).write_bytes(idx_bytes(labels))  # not gzipped: also read
    before = sorted(tmp_path.rglob("*"))
    assert load_mnist(tmp_path, split="test")[1].tolist() == [3, 4]
    with pytest.raises(DownloadError, match="could not be reached") as caught:
        load_mnist(tmp_path, split="train")  # the missing split goes beside the others
    assert caught.value.dest == folder / TRAIN_FILES[0]
    assert sorted(tmp_path.rglob("*")) == before  # nothing made, nothing left


def test_offline_a_failed_load_leaves_no_folder(tmp_path, monkeypatch, offline_url):
    """The per-user cache ~/.cache/tinydeep/fashion-mnist is not left behind empty."""
    monkeypatch.setattr(idx, "FASHION_MNIST_URL", offline_url)
    monkeypatch.delenv("TINYDEEP_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DownloadError) as caught:
        load_fashion_mnist(split="train")
    assert list(tmp_path.iterdir()) == []
    assert caught.value.dest == tmp_path / "cache" / "tinydeep" / "fashion-mnist" / TRAIN_FILES[0]
    assert caught.value.holds == (*TRAIN_FILES, *TEST_FILES)
