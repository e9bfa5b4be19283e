"""Saving and loading: weights and whole training checkpoints, safely.

The file is an .npz archive (a zip of .npy arrays, stored uncompressed) holding every tensor by
its path in the model ("block1/conv1/kernel") and one JSON document, `__metadata__`, with the
format name and version, each tensor's shape, dtype and SHA-256, and anything else the
checkpoint carries (epoch, step, random-generator state, optimizer hyper-parameters).

Writes are atomic: a temporary file in the same folder is written, flushed to disk (fsync) and
renamed over the target, and the folder is fsynced, so a process killed mid-save (or a crash)
leaves the previous file intact. A save killed before its rename leaves its temporary file
(".NAME.HOST-PID.XXXXXXXX.tmp") behind; nothing reads it, and the next save to NAME deletes
it once no process of that PID runs on this host (another live saver's file is left alone).

Loads trust nothing in the file and never allocate more than it can truly hold. The reader does
not use np.load (which allocates whatever a .npy header claims); it opens the zip, reads the
size-limited metadata first, and for each tensor checks the zip entry (stored, holding exactly
its bytes, all entries together at most the file's size; or deflated, expanding at most 1032
times, deflate's limit), parses the .npy header from at most MAX_HEADER_BYTES,
requires header, metadata and zip entry to agree on shape, dtype and exact size, and only then
allocates and reads exactly that many bytes, checked by the zip's CRC-32 and the SHA-256. Any
failure raises CheckpointError (a ValueError) naming the file and the problem, before the first
weight changes; a missing file raises FileNotFoundError.

Read in this order: save_weights / load_weights, then save_checkpoint / load_checkpoint;
`write_archive` and `read_archive` (with `_read_npy`) hold the file format.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import math
import os
import socket
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from tinydeep import backend, random

FORMAT = "tinydeep"
VERSION = 1
METADATA = "__metadata__"
MAX_METADATA_BYTES = 4 * 2**20  # the JSON document; a ResNet-110 checkpoint needs ~0.3 MiB
MAX_HEADER_BYTES = 10_000  # an .npy header (numpy's own limit); ours are ~128 bytes
DEFLATE_MAX_RATIO = 1032  # deflate cannot expand its input more than this
CHUNK_BYTES = 2**18  # tensors are read in pieces of this size (two live at once)
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


# ---- weights --------------------------------------------------------------------------------


def save_weights(model, path) -> None:
    """Write every weight of `model` (trainable or not) to `path`, atomically."""
    _require_built(model, "save_weights")
    arrays = {name: w.numpy() for name, w in model.named_weights().items()}
    write_archive(path, arrays, {"kind": "weights", "model": type(model).__name__})


def load_weights(model, path) -> None:
    """Read weights from `path` into `model`, in place; nothing changes unless every name,
    shape and dtype matches."""
    _require_built(model, "load_weights")
    arrays, _ = read_archive(path)
    _assign(model.named_weights(), arrays, path)


# ---- training checkpoints -------------------------------------------------------------------


def save_checkpoint(path, model, optimizers=(), schedules=(), **progress) -> None:
    """Write the weights, each optimizer's and schedule's state, tinydeep's random-generator
    state and `progress` (e.g. epoch=3, step=1200; JSON values), so that a run resumed with
    load_checkpoint continues exactly."""
    _require_built(model, "save_checkpoint")
    arrays = {f"model/{name}": w.numpy() for name, w in model.named_weights().items()}
    states = []
    for i, owner in enumerate([*optimizers, *schedules]):
        states.append(_split_arrays(owner.state_dict(), f"state/{i}", arrays))
    extra = {
        "kind": "checkpoint",
        "model": type(model).__name__,
        "states": states,
        "random": random.get_state(),
        "progress": progress,
    }
    write_archive(path, arrays, extra)


def load_checkpoint(path, model, optimizers=(), schedules=()) -> dict:
    """Restore what save_checkpoint wrote; returns its `progress` dict."""
    _require_built(model, "load_checkpoint")
    arrays, extra = read_archive(path)
    if extra.get("kind") != "checkpoint":
        raise CheckpointError(
            f"load_checkpoint: {path} holds {extra.get('kind')!r}, not a "
            "training checkpoint (use load_weights)"
        )
    if not (isinstance(extra.get("states"), list) and isinstance(extra.get("progress"), dict)):
        raise CheckpointError(f"load_checkpoint: {path} has no valid 'states' and 'progress'")
    owners = [*optimizers, *schedules]
    if len(extra["states"]) != len(owners):
        raise CheckpointError(
            f"load_checkpoint: {path} holds the state of "
            f"{len(extra['states'])} optimizers and schedules, "
            f"{len(owners)} were given"
        )
    weights = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
    _assign(model.named_weights(), weights, path, check_only=True)
    states = [_join_arrays(state, arrays, path) for state in extra["states"]]
    _check_random_state(extra.get("random"), path)
    _load_states(owners, states, len(optimizers), path)
    _assign(model.named_weights(), weights, path)
    random.set_state(extra["random"])
    return extra["progress"]


def _load_states(owners: list, states: list, n_optimizers: int, path) -> None:
    """owner.load_state_dict(state) for each pair, all or nothing.

    Each owner checks its own state before it changes, but the third may refuse after the
    first two have loaded; then every owner gets its earlier state back: the schedules that
    loaded first (a schedule sets its optimizer's rate), then every optimizer, so each
    optimizer's hyper-parameters end exactly as they were.
    """
    previous = [owner.state_dict() for owner in owners]
    loaded = 0
    try:
        for owner, state in zip(owners, states):
            owner.load_state_dict(state)
            loaded += 1
    except (ValueError, TypeError, KeyError) as error:
        for i in [*range(n_optimizers, loaded), *range(n_optimizers)]:
            owners[i].load_state_dict(previous[i])
        name = type(owners[loaded]).__name__
        raise CheckpointError(
            f"load_checkpoint: {path}: state {loaded} ({name}) does not fit: {error}; "
            "nothing was changed"
        ) from None


# ---- the file format ------------------------------------------------------------------------


def write_archive(path, arrays: dict[str, np.ndarray], extra: dict) -> None:
    """An .npz of `arrays` plus the JSON metadata, written to a temporary file, fsynced, and
    renamed over `path`."""
    path = Path(path)
    if METADATA in arrays:
        raise ValueError(f"save: {METADATA!r} is a reserved name")
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "tensors": {
            name: {"shape": list(a.shape), "dtype": a.dtype.str, "sha256": _digest(a)}
            for name, a in arrays.items()
        },
        **extra,
    }
    entries = dict(arrays)
    entries[METADATA] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    prefix = f".{path.name}.{_HOST}-{os.getpid()}."
    handle, temporary = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **entries)
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


def read_archive(path) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the extra metadata of a file from write_archive, everything checked.

    Memory: at most the bytes of the tensors the file declares, which for stored entries (all
    that write_archive makes) is at most the file's size, plus CHUNK_BYTES and the metadata."""
    with open(path, "rb") as file:  # a missing file raises FileNotFoundError, unchanged
        size = os.fstat(file.fileno()).st_size
        try:
            with zipfile.ZipFile(file) as archive:
                return _read_zip(archive, size, path)
        except CheckpointError:
            raise
        except _PARSE_ERRORS as error:
            raise _corrupt(path, f"{type(error).__name__}: {error}") from None


def _read_zip(archive: zipfile.ZipFile, size: int, path) -> tuple[dict, dict]:
    """read_archive's work: the metadata first, then each tensor it lists."""
    infos = {info.filename: info for info in archive.infolist()}
    if len(infos) != len(archive.infolist()):
        raise _corrupt(path, "the zip holds the same name twice")
    if sum(info.compress_size for info in infos.values()) > size:
        raise _corrupt(path, f"the zip entries claim more than the file's {size} bytes")
    entry = infos.get(f"{METADATA}.npy")
    if entry is None:
        raise _corrupt(path, f"no {METADATA} entry: not a tinydeep file")
    if entry.file_size > MAX_METADATA_BYTES + MAX_HEADER_BYTES:
        raise _corrupt(
            path, f"the metadata claims {entry.file_size} bytes, the limit is {MAX_METADATA_BYTES}"
        )
    raw = _read_npy(archive, entry, size, path)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _corrupt(path, f"the metadata is {raw.dtype} {raw.shape}, expected 1-D uint8")
    try:
        metadata = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise _corrupt(path, f"the metadata is not JSON ({error})") from None
    tensors = _check_metadata(metadata, path)
    expected = {f"{name}.npy" for name in tensors} | {f"{METADATA}.npy"}
    if set(infos) != expected:
        raise _corrupt(
            path,
            f"the tensors listed in the metadata and those stored differ: missing "
            f"{sorted(expected - set(infos)) or 'nothing'}, unlisted "
            f"{sorted(set(infos) - expected) or 'nothing'}",
        )
    arrays = {}
    for name, (shape, dtype, sha256) in tensors.items():
        a = _read_npy(archive, infos[f"{name}.npy"], size, path, (shape, dtype))
        if _digest(a) != sha256:
            raise _corrupt(path, f"tensor {name!r} does not match its SHA-256")
        arrays[name] = a
    extra = {k: v for k, v in metadata.items() if k not in ("format", "version", "tensors")}
    return arrays, extra


def _check_metadata(metadata, path) -> dict[str, tuple[tuple[int, ...], str, str]]:
    """{name: (shape, dtype string, sha256)} from the metadata, every field's type checked."""
    if not isinstance(metadata, dict):
        raise _corrupt(path, f"the metadata is a JSON {type(metadata).__name__}, not an object")
    version = metadata.get("version")
    if metadata.get("format") != FORMAT or type(version) is not int or version != VERSION:
        raise _corrupt(
            path,
            f"format {metadata.get('format')!r} version {version!r}, expected {FORMAT!r} {VERSION}",
        )
    tensors = metadata.get("tensors")
    if not isinstance(tensors, dict):
        raise _corrupt(path, "the metadata has no 'tensors' object")
    checked = {}
    for name, info in tensors.items():
        shape = info.get("shape") if isinstance(info, dict) else None
        if not (
            isinstance(shape, list)
            and all(type(d) is int and d >= 0 for d in shape)
            and isinstance(info.get("dtype"), str)
            and isinstance(info.get("sha256"), str)
        ):
            raise _corrupt(path, f"the metadata of tensor {name!r} is malformed: {info!r:.200}")
        checked[name] = (tuple(shape), info["dtype"], info["sha256"])
    return checked


def _read_npy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int, path, expected=None):
    """One .npy entry as an array, allocating only what the zip entry, the .npy header and
    `expected` (shape, dtype string), when given, all agree on."""
    where = f"entry {info.filename!r}"
    # 1. The zip entry: a known compression, and sizes it can truly hold: a stored entry holds
    # exactly its bytes, a deflated one at most DEFLATE_MAX_RATIO times as many.
    if info.flag_bits & 0x1:
        raise _corrupt(path, f"{where} is encrypted")
    if info.compress_type == zipfile.ZIP_STORED:
        fits = info.file_size == info.compress_size
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        fits = info.file_size <= DEFLATE_MAX_RATIO * info.compress_size
    else:
        raise _corrupt(
            path,
            f"{where} uses compression method {info.compress_type}, "
            "expected stored (0) or deflate (8)",
        )
    if info.compress_size > size or not fits:
        raise _corrupt(
            path,
            f"{where} claims {info.file_size} bytes from {info.compress_size} bytes "
            f"(compression method {info.compress_type}) in a {size}-byte file",
        )
    with archive.open(info) as stream:
        # 2. The .npy header, parsed from a bounded prefix (numpy would read any length).
        prefix = stream.read(min(info.file_size, 12 + MAX_HEADER_BYTES))
        header = io.BytesIO(prefix)
        version = np.lib.format.read_magic(header)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(header, MAX_HEADER_BYTES)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(header, MAX_HEADER_BYTES)
        else:
            raise _corrupt(path, f"{where} is .npy version {version}, expected (1, 0) or (2, 0)")
        start = header.tell()
        # 3. The header against the metadata, and the exact size against the zip entry.
        if any(d < 0 for d in shape):
            raise _corrupt(path, f"{where} has the negative shape {shape}")
        if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
            raise _corrupt(path, f"{where} has dtype {dtype}; only numbers are loaded")
        if expected is not None and (shape, dtype.str) != expected:
            raise _corrupt(
                path,
                f"{where} holds {shape} {dtype.str}, the metadata says {expected[0]} {expected[1]}",
            )
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != start + nbytes:
            raise _corrupt(
                path, f"{where} is {info.file_size} bytes, its header needs {start} + {nbytes}"
            )
        # 4. Exactly nbytes more; the zip checks its CRC-32 as the last byte is read.
        flat = np.empty(nbytes, np.uint8)
        got = len(prefix) - start
        flat[:got] = np.frombuffer(prefix, np.uint8, offset=start)
        while got < nbytes:
            piece = stream.read(min(CHUNK_BYTES, nbytes - got))
            if not piece:
                raise _corrupt(path, f"{where} ends after {start + got} of {info.file_size} bytes")
            flat[got : got + len(piece)] = np.frombuffer(piece, np.uint8)
            got += len(piece)
    if fortran:  # the bytes are in column-major order (numpy writes that for F arrays)
        return np.ascontiguousarray(flat.view(dtype).reshape(shape[::-1]).T)
    return flat.view(dtype).reshape(shape)


def _corrupt(path, problem: str) -> CheckpointError:
    return CheckpointError(f"cannot load {path}: {problem}")


def _digest(array: np.ndarray) -> str:
    """SHA-256 of the array's bytes in C order (hashed in place, without a copy)."""
    return hashlib.sha256(np.ascontiguousarray(array).reshape(-1).view(np.uint8)).hexdigest()


def _check_random_state(state, path) -> None:
    """Refuse a random-generator state that set_state would reject, before anything changes."""
    trial = type(random.generator().bit_generator)()
    try:
        trial.state = state
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(
            f"load_checkpoint: {path} holds an invalid random-generator state ({error})"
        ) from None


def _require_built(model, what: str) -> None:
    if not model.built:
        raise ValueError(
            f"{what}: {type(model).__name__} {model.name!r} is not built yet; "
            "call it on a batch first so that its weights exist"
        )


def _assign(named: dict, arrays: dict, path, check_only: bool = False) -> None:
    """Check that `arrays` has exactly the names, shapes and dtypes of `named`; then (unless
    check_only) copy them into the weights in place."""
    missing = sorted(set(named) - set(arrays))
    unexpected = sorted(set(arrays) - set(named))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not fit the model: missing {missing or 'nothing'}, "
            f"unexpected {unexpected or 'nothing'}"
        )
    for name, weight in named.items():
        a = arrays[name]
        if a.shape != weight.shape or a.dtype != weight.dtype:
            raise CheckpointError(
                f"{path}: weight {name!r} is {a.shape} {a.dtype} in the file "
                f"but {weight.shape} {weight.dtype} in the model"
            )
    if check_only:
        return
    for name, weight in named.items():
        weight.data[...] = backend.to_device(arrays[name], weight.device)


def _split_arrays(value, prefix: str, arrays: dict):
    """`value` with every array moved into `arrays` under a path and replaced by a reference
    {"__array__": path}, so the rest is plain JSON."""
    if isinstance(value, dict):
        return {str(k): _split_arrays(v, f"{prefix}/{k}", arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_arrays(v, f"{prefix}/{i}", arrays) for i, v in enumerate(value)]
    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.generic):
        arrays[prefix] = backend.to_device(value, "cpu")
        return {"__array__": prefix}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _join_arrays(value, arrays: dict, path):
    """The inverse of _split_arrays."""
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            if not isinstance(value["__array__"], str) or value["__array__"] not in arrays:
                raise CheckpointError(
                    f"load_checkpoint: {path} refers to a missing array {value['__array__']!r}"
                )
            return arrays[value["__array__"]]
        # JSON keys are strings; state dicts key parameters by their index, so digits
        # become ints again.
        return {
            int(k) if k.isdigit() else k: _join_arrays(v, arrays, path) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_join_arrays(v, arrays, path) for v in value]
    return value
