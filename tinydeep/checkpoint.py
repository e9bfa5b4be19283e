"""Saving and loading: weights and whole training checkpoints, safely.

The file is an .npz archive (a zip of .npy arrays, read with allow_pickle=False, so loading
runs no code) holding every tensor by its path in the model ("block1/conv1/kernel") and one
JSON document, `__metadata__`, with the format version, each tensor's shape, dtype and
SHA-256, and anything else the checkpoint carries (epoch, step, random-generator state,
optimizer hyper-parameters).

Writes are atomic: a temporary file in the same folder is written, flushed to disk (fsync)
and renamed over the target, so a crash mid-save leaves the previous file intact. Loads check
everything (format, checksums, every name, shape and dtype against the model) before the
first weight changes; a problem raises CheckpointError (a ValueError) naming it.

Read in this order: save_weights / load_weights, then save_checkpoint / load_checkpoint;
`write_archive` and `read_archive` hold the file format.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from tinydeep import backend, random

FORMAT = "tinydeep"
VERSION = 1
METADATA = "__metadata__"


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
    owners = [*optimizers, *schedules]
    if len(extra["states"]) != len(owners):
        raise CheckpointError(
            f"load_checkpoint: {path} holds the state of "
            f"{len(extra['states'])} optimizers and schedules, "
            f"{len(owners)} were given"
        )
    weights = {k[len("model/") :]: v for k, v in arrays.items() if k.startswith("model/")}
    _assign(model.named_weights(), weights, path, check_only=True)
    states = [_join_arrays(state, arrays) for state in extra["states"]]
    for owner, state in zip(owners, states):
        owner.load_state_dict(state)  # each checks its own state before changing anything
    _assign(model.named_weights(), weights, path)
    random.set_state(extra["random"])
    return extra["progress"]


# ---- the file format ------------------------------------------------------------------------


def write_archive(path, arrays: dict[str, np.ndarray], extra: dict) -> None:
    """An .npz of `arrays` plus the JSON metadata, written to a temporary file, fsynced, and
    renamed over `path`."""
    path = Path(path)
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "tensors": {
            name: {"shape": list(a.shape), "dtype": a.dtype.str, "sha256": _digest(a)}
            for name, a in arrays.items()
        },
        **extra,
    }
    if METADATA in arrays:
        raise ValueError(f"save: {METADATA!r} is a reserved name")
    entries = dict(arrays)
    entries[METADATA] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def read_archive(path) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and metadata of a file from write_archive, every checksum verified."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path} is not a readable tinydeep file: {error}") from None
    if METADATA not in arrays:
        raise CheckpointError(f"{path} has no {METADATA} entry: not a tinydeep file")
    try:
        metadata = json.loads(arrays.pop(METADATA).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: the metadata is corrupt ({error})") from None
    if metadata.get("format") != FORMAT or metadata.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: format {metadata.get('format')!r} version "
            f"{metadata.get('version')!r}, expected {FORMAT!r} {VERSION}"
        )
    described = metadata["tensors"]
    if set(described) != set(arrays):
        raise CheckpointError(f"{path}: the tensors listed in the metadata and those stored differ")
    for name, a in arrays.items():
        info = described[name]
        if (
            list(a.shape) != info["shape"]
            or a.dtype.str != info["dtype"]
            or _digest(a) != info["sha256"]
        ):
            raise CheckpointError(
                f"{path}: tensor {name!r} does not match its checksum, "
                "shape or dtype: the file is corrupt"
            )
    extra = {k: v for k, v in metadata.items() if k not in ("format", "version", "tensors")}
    return arrays, extra


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


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


def _join_arrays(value, arrays: dict):
    """The inverse of _split_arrays."""
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        # JSON keys are strings; state dicts key parameters by their index, so digits
        # become ints again.
        return {int(k) if k.isdigit() else k: _join_arrays(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_arrays(v, arrays) for v in value]
    return value
