"""CIFAR-10 in its binary format (the "version for C programs"), read with NumPy, no pickle.

Each file of the archive holds records of 3,073 bytes: one label byte (0..9), then the
32x32 image as 1,024 red, 1,024 green and 1,024 blue bytes, each plane row by row. Five
training files of 10,000 records and one test file of 10,000.

The archive is downloaded from the dataset authors' page when missing, checked against its
published checksum, and only the six expected members are extracted, each written under a
temporary name and renamed into place, so an interrupted run leaves nothing half-written.

Read read_cifar_binary (the format), then load_cifar10 (where files live, downloading).
Shapes: images (N, 32, 32, 3) uint8 NHWC; labels (N,) uint8.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from tinydeep.data.download import DownloadError, fetch, find_folder, new_folder
from tinydeep.data.download import data_dir as resolve_data_dir
from tinydeep.safe_npz import file_mode

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
ARCHIVE = "cifar-10-binary.tar.gz"
# The archive's SHA-256 (170,052,171 bytes; its MD5, as published on the CIFAR page, is
# c32a1d4ab5d03f1284b67883e8d87530).
SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
MEMBER_FOLDER = "cifar-10-batches-bin"
FILES = {
    "train": [f"data_batch_{i}.bin" for i in range(1, 6)],
    "test": ["test_batch.bin"],
}
RECORD = 1 + 32 * 32 * 3
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class CifarError(ValueError):
    """A CIFAR-10 binary file does not hold whole, valid records."""


def read_cifar_binary(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 NHWC and labels (N,) uint8 from one CIFAR-10 .bin file."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise CifarError(
            f"{path}: {raw.size} bytes is not a whole number of {RECORD}-byte "
            "CIFAR-10 records (1 label byte + 3,072 pixel bytes): truncated or "
            "not a CIFAR-10 binary file"
        )
    records = raw.reshape(-1, RECORD)
    labels = records[:, 0].copy()
    if labels.max() > 9:
        raise CifarError(f"{path}: label {labels.max()} in a CIFAR-10 file (expected 0..9)")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # planes -> NHWC
    return np.ascontiguousarray(images), labels


def load_cifar10(
    data_dir: str | os.PathLike | None = None, split: str = "train", download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10: images (N, 32, 32, 3) uint8 and labels (N,) uint8; N = 50,000 (train) or
    10,000 (test).

    Files are read from `<data_dir>/cifar-10/cifar-10-batches-bin/`, else from
    `<data_dir>/cifar-10-batches-bin/` (data_dir is the cifar-10 folder), else from data_dir
    itself, whichever first holds any of the six files (data_dir as in tinydeep.data.data_dir;
    see find_folder). When any is missing and download=True, the archive is downloaded beside
    that folder (into data_dir itself when data_dir is that folder), verified, and its six
    files extracted; else FileNotFoundError says what to download and where to put it.
    """
    if split not in FILES:
        raise ValueError(f"load_cifar10: split must be 'train' or 'test', got {split!r}")
    names = [name for names in FILES.values() for name in names]
    layouts = (f"cifar-10/{MEMBER_FOLDER}", MEMBER_FOLDER, ".")
    folder = find_folder(data_dir, layouts, names)
    root = folder if folder == resolve_data_dir(data_dir) else folder.parent  # for the archive
    wanted = [folder / name for name in FILES[split]]
    if not all(p.exists() for p in wanted):
        if not download:
            raise FileNotFoundError(
                f"load_cifar10: {folder} lacks {', '.join(p.name for p in wanted)} and "
                f"download=False.\n  Download {URL}\n  and extract it in {root}{os.sep} "
                f"(it unpacks into {MEMBER_FOLDER}{os.sep})"
            )
        archive = root / ARCHIVE
        if not archive.exists():
            fetch(URL, archive, SHA256, holds=[f"{MEMBER_FOLDER}{os.sep} or its six .bin files"])
        extract(archive, folder)
    parts = [read_cifar_binary(p) for p in wanted]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def extract(archive: Path, folder: Path) -> None:
    """Extract the six .bin members of the archive (cifar-10-batches-bin/*.bin) into `folder`,
    each through a temporary file and a rename; any other member is ignored (never extracted).
    A folder made here is removed again when nothing could be extracted into it."""
    expected = {f"{MEMBER_FOLDER}/{name}" for names in FILES.values() for name in names}
    with new_folder(folder, URL, archive):
        _extract(archive, folder, expected)


def _extract(archive: Path, folder: Path, expected: set[str]) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            found = set()
            for member in tar:
                if member.name not in expected or not member.isfile():
                    continue
                source = tar.extractfile(member)
                handle, temporary = tempfile.mkstemp(dir=folder, suffix=".part")
                try:
                    with os.fdopen(handle, "wb") as out:
                        while chunk := source.read(1 << 20):
                            out.write(chunk)
                        if os.name == "posix":  # open()'s permissions, not mkstemp's
                            os.fchmod(out.fileno(), file_mode(folder / Path(member.name).name))
                        out.flush()
                        os.fsync(out.fileno())
                    os.replace(temporary, folder / Path(member.name).name)
                except BaseException:
                    Path(temporary).unlink(missing_ok=True)
                    raise
                found.add(member.name)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DownloadError(
            URL, archive, f"the archive cannot be read ({error}); delete it to download it again"
        ) from error
    if found != expected:
        raise DownloadError(URL, archive, f"the archive lacks {sorted(expected - found)}")
