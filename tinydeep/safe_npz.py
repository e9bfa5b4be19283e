"""Safe .npz files: writes that a killed process cannot tear, reads that a hostile file cannot
turn into a crash or a huge allocation. tinydeep/checkpoint.py holds the format and uses this.

Writes (`atomic_write`): a temporary file in the same folder is written, flushed to disk
(fsync) and renamed over the target, and the folder is fsynced, so a process killed mid-save
(or a crash) leaves the previous file intact. A save killed before its rename leaves its
temporary file (".NAME.HOST-PID.XXXXXXXX.tmp") behind; nothing reads it, and the next save to
NAME deletes it once no process of that PID runs on this host (another live saver's file is
left alone).

Reads (`open_npz`, `NpzReader`) trust nothing in the file and never allocate more than it can
truly hold. np.load would allocate whatever a .npy header claims, so the reader opens the zip
itself and, for each entry, checks the zip entry (stored, holding exactly its bytes, all
entries together at most the file's size; or deflated, expanding at most 1032 times,
deflate's limit), parses the .npy header from at most MAX_HEADER_BYTES, requires header,
zip entry and what the caller expects to agree on shape, dtype and exact size, and only then
allocates and reads exactly that many bytes, checked by the zip's CRC-32. Any failure raises
CheckpointError (a ValueError) naming the file and the problem; a missing file raises
FileNotFoundError.

Read in this order: atomic_write and the cleanup of killed saves (_remove_stale_temporaries),
then open_npz and NpzReader, whose read_array holds the bounded .npy reader.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import math
import os
import socket
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

MAX_HEADER_BYTES = 10_000  # an .npy header (numpy's own limit); ours are ~128 bytes
DEFLATE_MAX_RATIO = 1032  # deflate cannot expand its input more than this
CHUNK_BYTES = 2**18  # arrays are read in pieces of this size (two live at once)
# Failures the zip, zlib and .npy parsers raise on a damaged file; all become CheckpointError.
_PARSE_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
    NotImplementedError,
    RecursionError,
    OverflowError,
)


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, corrupt, or does not fit the model."""


# ---- writing: atomic, and cleaning up after killed saves ------------------------------------


@contextlib.contextmanager
def atomic_write(path) -> Iterator[BinaryIO]:
    """A binary file to write; on a clean exit it replaces `path` in one step (rename), and on
    any exception (or a kill) `path` keeps its previous content. The file gets the mode a
    plain `open(path, "wb")` would give it (see `file_mode`), not the temporary file's
    owner-only one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    prefix = f".{path.name}.{_HOST}-{os.getpid()}."
    handle, temporary = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
            if os.name == "posix":
                os.fchmod(file.fileno(), file_mode(path))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def file_mode(path: Path) -> int:
    """The permissions `open(path, "wb")` would leave: an existing file's own, else those the
    umask allows of rw-rw-rw- (-rw-r--r-- for the usual 022). mkstemp makes its files
    owner-only (-rw-------), which a replaced file must not keep."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)  # reading the umask means setting it: put it straight back
        os.umask(umask)
        return 0o666 & ~umask


_HOST = "".join(c if c.isalnum() else "_" for c in socket.gethostname())  # no "." or "-"


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files that killed saves to `path` left behind: those named for a
    process of this host that no longer runs. Files of live processes (a save in progress
    elsewhere) and of other hosts (a shared folder) are kept."""
    if os.name != "posix":
        return  # os.kill(pid, 0) would terminate the process on Windows, not probe it
    mine = f".{path.name}.{_HOST}-"
    for temporary in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = temporary.name[len(mine) :].split(".")[0]
        if temporary.name.startswith(mine) and pid.isdigit() and not _running(int(pid)):
            temporary.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """Whether a process with this id exists on this host (signal 0 checks, sends nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists but is not ours, or the check is not possible: keep the file
    return True


# ---- reading: nothing allocated that the file cannot hold -----------------------------------


@contextlib.contextmanager
def open_npz(path) -> Iterator[NpzReader]:
    """An NpzReader on the .npz at `path`. Whatever the zip, zlib and .npy parsers raise on a
    damaged file, inside the with block too, comes out as CheckpointError naming the file."""
    with open(path, "rb") as file:  # a missing file raises FileNotFoundError, unchanged
        size = os.fstat(file.fileno()).st_size
        try:
            with zipfile.ZipFile(file) as archive:
                yield NpzReader(archive, size, path)
        except CheckpointError:
            raise
        except _PARSE_ERRORS as error:
            raise corrupt(path, f"{type(error).__name__}: {error}") from None


class NpzReader:
    """The entries of an open .npz, read one at a time, each bounded by what it can hold.

    Memory: at most the bytes of the arrays read, which for stored entries (all that np.savez
    makes) is at most the file's size, plus CHUNK_BYTES."""

    def __init__(self, archive: zipfile.ZipFile, size: int, path):
        self.archive, self.size, self.path = archive, size, path
        self.infos = {info.filename: info for info in archive.infolist()}
        if len(self.infos) != len(archive.infolist()):
            raise corrupt(path, "the zip holds the same name twice")
        if sum(info.compress_size for info in self.infos.values()) > size:
            raise corrupt(path, f"the zip entries claim more than the file's {size} bytes")

    def require_exactly(self, names) -> None:
        """Refuse the file unless its entries are exactly `names` (array names, as np.savez
        takes them; each is stored as NAME.npy)."""
        expected = {f"{name}.npy" for name in names}
        if set(self.infos) != expected:
            raise corrupt(
                self.path,
                f"the tensors listed in the metadata and those stored differ: missing "
                f"{sorted(expected - set(self.infos)) or 'nothing'}, unlisted "
                f"{sorted(set(self.infos) - expected) or 'nothing'}",
            )

    def read_json(self, name: str, max_bytes: int):
        """The JSON document stored as the UTF-8 bytes of the 1-D uint8 array `name`, which
        may hold at most `max_bytes`."""
        entry = self.infos.get(f"{name}.npy")
        if entry is None:
            raise corrupt(self.path, f"no {name} entry: not a tinydeep file")
        if entry.file_size > max_bytes + MAX_HEADER_BYTES:
            raise corrupt(
                self.path, f"the metadata claims {entry.file_size} bytes, the limit is {max_bytes}"
            )
        raw = self.read_array(name)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise corrupt(self.path, f"the metadata is {raw.dtype} {raw.shape}, expected 1-D uint8")
        try:
            document = json.loads(raw.tobytes().decode())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise corrupt(self.path, f"the metadata is not JSON ({error})") from None
        if not isinstance(document, dict):
            raise corrupt(
                self.path, f"the metadata is a JSON {type(document).__name__}, not an object"
            )
        return document

    def read_array(self, name: str, expected: tuple[tuple[int, ...], str] | None = None):
        """The array `name` (entry NAME.npy), allocating only what the zip entry, the .npy
        header and `expected` (shape, dtype string), when given, all agree on."""
        info = self.infos.get(f"{name}.npy")
        if info is None:
            raise corrupt(self.path, f"no entry {name}.npy")
        where = f"entry {info.filename!r}"
        # 1. The zip entry: a known compression, and sizes it can truly hold: a stored entry
        # holds exactly its bytes, a deflated one at most DEFLATE_MAX_RATIO times as many.
        if info.flag_bits & 0x1:
            raise corrupt(self.path, f"{where} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED:
            fits = info.file_size == info.compress_size
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            fits = info.file_size <= DEFLATE_MAX_RATIO * info.compress_size
        else:
            raise corrupt(
                self.path,
                f"{where} uses compression method {info.compress_type}, "
                "expected stored (0) or deflate (8)",
            )
        if info.compress_size > self.size or not fits:
            raise corrupt(
                self.path,
                f"{where} claims {info.file_size} bytes from {info.compress_size} bytes "
                f"(compression method {info.compress_type}) in a {self.size}-byte file",
            )
        with self.archive.open(info) as stream:
            # 2. The .npy header, parsed from a bounded prefix (numpy would read any length).
            prefix = stream.read(min(info.file_size, 12 + MAX_HEADER_BYTES))
            header = io.BytesIO(prefix)
            version = np.lib.format.read_magic(header)
            if version not in _HEADER_READERS:
                raise corrupt(
                    self.path, f"{where} is .npy version {version}, expected (1, 0) or (2, 0)"
                )
            shape, fortran, dtype = _HEADER_READERS[version](header, MAX_HEADER_BYTES)
            start = header.tell()
            # 3. The header against `expected`, and the exact size against the zip entry.
            if any(d < 0 for d in shape):
                raise corrupt(self.path, f"{where} has the negative shape {shape}")
            if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
                raise corrupt(self.path, f"{where} has dtype {dtype}; only numbers are loaded")
            if expected is not None and (shape, dtype.str) != expected:
                raise corrupt(
                    self.path,
                    f"{where} holds {shape} {dtype.str}, the metadata says {expected[0]} "
                    f"{expected[1]}",
                )
            nbytes = math.prod(shape) * dtype.itemsize
            if info.file_size != start + nbytes:
                raise corrupt(
                    self.path,
                    f"{where} is {info.file_size} bytes, its header needs {start} + {nbytes}",
                )
            # 4. Exactly nbytes more; the zip checks its CRC-32 as the last byte is read.
            flat = np.empty(nbytes, np.uint8)
            got = len(prefix) - start
            flat[:got] = np.frombuffer(prefix, np.uint8, offset=start)
            while got < nbytes:
                piece = stream.read(min(CHUNK_BYTES, nbytes - got))
                if not piece:
                    raise corrupt(
                        self.path, f"{where} ends after {start + got} of {info.file_size} bytes"
                    )
                flat[got : got + len(piece)] = np.frombuffer(piece, np.uint8)
                got += len(piece)
        if fortran:  # the bytes are in column-major order (numpy writes that for F arrays)
            return np.ascontiguousarray(flat.view(dtype).reshape(shape[::-1]).T)
        return flat.view(dtype).reshape(shape)


# The .npy header parsers by format version; both stop after max_header_size bytes.
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def corrupt(path, problem: str) -> CheckpointError:
    """The error for a file that cannot be loaded, naming it and the problem."""
    return CheckpointError(f"cannot load {path}: {problem}")
