"""The IDX file format, and the MNIST and Fashion-MNIST data sets stored in it.

An IDX file is a tiny header and then one array, row-major, big-endian:

    bytes 0-1   0x00 0x00            (the magic number is these two zeros, the type, the ndim)
    byte  2     type code            0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                                     0x0D float32, 0x0E float64
    byte  3     ndim
    4 * ndim    the size of each dimension, big-endian uint32
    the rest    prod(sizes) elements of the type

MNIST and Fashion-MNIST ship four such files each, gzipped: images (N, 28, 28) uint8 and labels
(N,) uint8 for the train split (N = 60,000) and the test split ("t10k", N = 10,000).

Read in this order: read_idx, then load_fashion_mnist / load_mnist and the `_load` they share.
Left out: writing IDX files (the tests write their own) and memory-mapping uncompressed ones.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from tinydeep.data.download import fetch, find_folder

IDX_TYPES = {  # type code -> big-endian dtype
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class IdxError(ValueError):
    """A file is not a well-formed IDX file (wrong magic, truncated, trailing bytes, ...)."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in the IDX file `path`, gzipped or not (told apart by its first bytes).

    Returns a new, writable array in native byte order with the shape of the header.
    Raises IdxError naming the file and the fault when it is not a complete IDX file.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"  # the gzip magic number
    try:
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
            header = f.read(4)
            dtype, ndim = _parse_magic(path, header)
            dims_bytes = f.read(4 * ndim)
            if len(dims_bytes) < 4 * ndim:
                raise IdxError(
                    f"read_idx: {path} is truncated: its header names {ndim} "
                    f"dimensions but ends after {len(dims_bytes) // 4}"
                )
            shape = tuple(int(n) for n in np.frombuffer(dims_bytes, dtype=">u4"))
            # read() to the end, not read(expected): a corrupt header could name petabytes.
            payload = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        # A bad gzip header or CRC is a BadGzipFile, a cut stream an EOFError, garbled
        # compressed bytes a zlib.error; only a gzipped file raises these here.
        raise IdxError(
            f"read_idx: {path} is not a complete gzip file ({error}); the download "
            "may have been cut short: delete it and download it again"
        ) from None

    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if len(payload) < expected:
        raise IdxError(
            f"read_idx: {path} is truncated: its header declares shape {shape} of "
            f"{dtype.name}, {expected} bytes of data, but only {len(payload)} follow; "
            "delete it and download it again"
        )
    if len(payload) > expected:
        raise IdxError(
            f"read_idx: {path} has {len(payload) - expected} bytes after the "
            f"{expected} bytes of data that its header (shape {shape}, "
            f"{dtype.name}) declares; it is not a well-formed IDX file"
        )
    array = np.frombuffer(payload, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a copy: writable and native-endian


def _parse_magic(path: Path, header: bytes) -> tuple[np.dtype, int]:
    """The element dtype and ndim from the 4-byte magic number, or an IdxError."""
    if len(header) < 4:
        raise IdxError(
            f"read_idx: {path} is truncated: {len(header)} bytes, shorter than the "
            "4-byte IDX magic number"
        )
    if header[:2] != b"\x00\x00":
        raise IdxError(
            f"read_idx: {path} is not an IDX file: it starts with bytes "
            f"{header[:2].hex(' ')}, an IDX file starts with 00 00"
        )
    if header[2] not in IDX_TYPES:
        known = ", ".join(f"0x{code:02X} {t.name}" for code, t in IDX_TYPES.items())
        raise IdxError(
            f"read_idx: {path} has the unknown IDX type code 0x{header[2]:02X} (known: {known})"
        )
    return IDX_TYPES[header[2]], header[3]


# ---- the data sets ---------------------------------------------------------------------------

FILES = {  # split -> (images file, labels file), the same names for MNIST and Fashion-MNIST
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# SHA-256 of the decompressed IDX content, keyed by the name of the decompressed file, not of
# the .gz files: mirrors (Debian, for one) recompress them, which changes the gzip bytes but not
# the content.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

# The PyTorch mirror: the original host, yann.lecun.com, is often unreachable.
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# No MNIST checksums: none could be computed from real files where this was written, and a
# checksum copied from memory that turned out wrong would reject every good download. The
# downloads are still checked for shape, type and length by read_idx and _load.
MNIST_SHA256: dict[str, str] = {}


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None, split: str = "train", download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (Zalando): images (N, 28, 28) uint8 and labels (N,) uint8 in 0..9.

    N is 60,000 for split="train" and 10,000 for split="test". The files are read from
    `<data_dir>/fashion-mnist/`, or from data_dir itself when it holds them and that sub-folder
    does not (data_dir as in tinydeep.data.data_dir; see find_folder), and, when missing and
    download=True, downloaded there first, their content checked against known SHA-256s.
    """
    return _load(
        "load_fashion_mnist",
        "fashion-mnist",
        FASHION_MNIST_URL,
        FASHION_MNIST_SHA256,
        data_dir,
        split,
        download,
    )


def load_mnist(
    data_dir: str | os.PathLike | None = None, split: str = "train", download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST handwritten digits: images (N, 28, 28) uint8 and labels (N,) uint8 in 0..9.

    As load_fashion_mnist, with files in `<data_dir>/mnist/` (no checksums are known here).
    """
    return _load("load_mnist", "mnist", MNIST_URL, MNIST_SHA256, data_dir, split, download)


def _load(
    name: str,
    folder: str,
    base_url: str,
    checksums: dict[str, str],
    data_dir,
    split: str,
    download: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Find (or download) and read the two files of `split`; check what they hold."""
    if split not in FILES:
        raise ValueError(f"{name}: split must be 'train' or 'test', got {split!r}")
    every_file = [f for files in FILES.values() for f in files]
    root = find_folder(data_dir, (folder, "."), every_file)
    missing = [f for f in every_file if not (root / f).exists()]
    arrays = []
    for filename in FILES[split]:
        path = root / filename
        if filename in missing:
            if not download:
                raise FileNotFoundError(
                    f"{name}: {path} is missing and download=False.\n"
                    f"  Download it from {base_url}{filename}\n  and put it in {root}{os.sep}"
                )
            sha256 = checksums.get(filename.removesuffix(".gz"))
            also = [f for f in missing if f != filename]  # say at once what else to fetch
            fetch(
                base_url + filename,
                path,
                sha256,
                sha256_of="gunzipped",
                also=also,
                holds=every_file,
            )
        arrays.append(read_idx(path))

    images, labels = arrays
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise IdxError(
            f"{name}: {root / FILES[split][0]} holds {images.dtype} of shape "
            f"{images.shape}, expected uint8 images of shape (N, 28, 28)"
        )
    if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise IdxError(
            f"{name}: {root / FILES[split][1]} holds {labels.dtype} of shape "
            f"{labels.shape}, expected uint8 labels of shape ({len(images)},), "
            "one per image"
        )
    if labels.size and labels.max() > 9:
        raise IdxError(
            f"{name}: {root / FILES[split][1]} holds the label {labels.max()}, expected labels 0..9"
        )
    return images, labels
