"""Saving and loading without pickle: weights and whole training checkpoints.

Loading a pickle file can run any code it holds, so tinydeep never writes or reads one. A file
here is an .npz archive (a zip of .npy arrays, which numpy writes and reads without pickle;
stored uncompressed) holding every tensor by its path in the model ("block1/conv1/kernel"),
and one JSON document, stored as one more array of its UTF-8 bytes and named `__metadata__`:
the format name and version, each tensor's shape, dtype and SHA-256, and anything else the
checkpoint carries (epoch, step, random-generator state, optimizer hyper-parameters). An
optimizer's state mixes arrays and numbers: its arrays become tensors of the archive, and the
rest, with a reference {"__array__": path} in place of each array, is plain JSON.

Loading changes nothing until everything is checked: a damaged file, one that does not fit
the model (a name, shape or dtype), or a state that an optimizer or schedule refuses raises
CheckpointError (a ValueError) naming the file and the problem, and every weight, optimizer,
schedule and the random generator stay as they were. A missing file raises FileNotFoundError.

Weights (not training checkpoints) can also go to a .safetensors file, the format PyTorch and
Hugging Face share: save_weights and load_weights choose it for a path ending in ".safetensors"
(tinydeep/safetensors_weights.py reads and writes it) and .npz for any other path, with the
same guarantees except the checksums, which that format lacks.

Read in this order: save_weights / load_weights, then save_checkpoint / load_checkpoint, then
the file format, write_archive / read_archive; then their helpers (the metadata's checks, the
SHA-256, _split_arrays / _join_arrays), and last the checks that make a load all or nothing.
What makes the files safe is in tinydeep/safe_npz.py: writes are atomic (a save killed midway
leaves the previous file intact, and the next save deletes what it left), and its reader
trusts nothing in the file (no .npy header or zip entry can make it allocate more than the
file holds).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from tinydeep import backend, random, safetensors_weights
from tinydeep.safe_npz import CheckpointError, atomic_write, corrupt, open_npz
from tinydeep.safetensors_weights import is_safetensors

FORMAT = "tinydeep"
VERSION = 1
METADATA = "__metadata__"
MAX_METADATA_BYTES = 4 * 2**20  # the JSON document; a ResNet-110 checkpoint needs ~0.3 MiB
# Said when a file is not in the format its name chose, or a checkpoint is named .safetensors.
FORMATS = (
    "weights files are .safetensors (chosen by that suffix) or tinydeep's .npz (any other "
    "name); training checkpoints are .npz only"
)


# ---- weights --------------------------------------------------------------------------------


def save_weights(model, path) -> None:
    """Write every weight of `model` (trainable or not) to `path`, atomically: a .safetensors
    file when `path` ends in ".safetensors", else tinydeep's .npz (whatever the suffix)."""
    _require_built(model, "save_weights")
    arrays = {name: w.numpy() for name, w in model.named_weights().items()}  # on the host
    extra = {"kind": "weights", "model": type(model).__name__}
    if is_safetensors(path):
        safetensors_weights.write(path, arrays, {"format": FORMAT, **extra})
    else:
        write_archive(path, arrays, extra)


def load_weights(model, path) -> None:
    """Read weights from `path` (.safetensors by its suffix, else .npz) into `model`, in place
    and onto each weight's device; nothing changes unless every name, shape and dtype matches."""
    _require_built(model, "load_weights")
    if is_safetensors(path):
        arrays, _ = safetensors_weights.read(path)
    else:
        try:
            arrays, _ = read_archive(path)
        except CheckpointError as error:
            if Path(path).suffix.lower() == ".npz":
                raise
            raise CheckpointError(f"{error} ({FORMATS})") from None
    _assign(model.named_weights(), arrays, path)


# ---- training checkpoints -------------------------------------------------------------------


def save_checkpoint(path, model, optimizers=(), schedules=(), **progress) -> None:
    """Write the weights, each optimizer's and schedule's state, tinydeep's random-generator
    state and `progress` (e.g. epoch=3, step=1200; JSON values), so that a run resumed with
    load_checkpoint continues exactly."""
    _require_built(model, "save_checkpoint")
    _refuse_safetensors(path, "save_checkpoint")
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
    _refuse_safetensors(path, "load_checkpoint")
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


# ---- the file format ------------------------------------------------------------------------


def write_archive(path, arrays: dict[str, np.ndarray], extra: dict) -> None:
    """An .npz of `arrays` plus the JSON metadata (format, version, each tensor's shape, dtype
    and SHA-256, then `extra`), written atomically to `path`."""
    if METADATA in arrays:
        raise ValueError(f"save: {METADATA!r} is a reserved name")
    tensors = {
        name: {"shape": list(a.shape), "dtype": a.dtype.str, "sha256": _digest(a)}
        for name, a in arrays.items()
    }
    metadata = {"format": FORMAT, "version": VERSION, "tensors": tensors, **extra}
    # The JSON text travels as one more array: its UTF-8 bytes, as uint8.
    entries = {**arrays, METADATA: np.frombuffer(json.dumps(metadata).encode(), np.uint8)}
    with atomic_write(path) as file:
        np.savez(file, **entries)  # a zip with one NAME.npy entry per array


def read_archive(path) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the extra metadata of a file from write_archive, everything checked.

    Memory: at most the bytes of the tensors the file declares, which for stored entries (all
    that write_archive makes) is at most the file's size, plus the metadata and
    safe_npz.CHUNK_BYTES."""
    with open_npz(path) as npz:
        # The metadata first: it says what else the file must hold, and nothing more.
        metadata = npz.read_json(METADATA, MAX_METADATA_BYTES)
        tensors = _check_metadata(metadata, path)
        npz.require_exactly([*tensors, METADATA])
        arrays = {}
        for name, (shape, dtype, sha256) in tensors.items():
            arrays[name] = npz.read_array(name, expected=(shape, dtype))
            if _digest(arrays[name]) != sha256:
                raise corrupt(path, f"tensor {name!r} does not match its SHA-256")
    extra = {k: v for k, v in metadata.items() if k not in ("format", "version", "tensors")}
    return arrays, extra


# ---- the format's helpers -------------------------------------------------------------------


def _check_metadata(metadata, path) -> dict[str, tuple[tuple[int, ...], str, str]]:
    """{name: (shape, dtype string, sha256)} from the metadata (a dict), every field's type
    checked: a file from another program or version is refused here."""
    version = metadata.get("version")
    if metadata.get("format") != FORMAT or type(version) is not int or version != VERSION:
        raise corrupt(
            path,
            f"format {metadata.get('format')!r} version {version!r}, expected {FORMAT!r} {VERSION}",
        )
    tensors = metadata.get("tensors")
    if not isinstance(tensors, dict):
        raise corrupt(path, "the metadata has no 'tensors' object")
    checked = {}
    for name, info in tensors.items():
        shape = info.get("shape") if isinstance(info, dict) else None
        if not (
            isinstance(shape, list)
            and all(type(d) is int and d >= 0 for d in shape)
            and isinstance(info.get("dtype"), str)
            and isinstance(info.get("sha256"), str)
        ):
            raise corrupt(path, f"the metadata of tensor {name!r} is malformed: {info!r:.200}")
        checked[name] = (tuple(shape), info["dtype"], info["sha256"])
    return checked


def _digest(array: np.ndarray) -> str:
    """SHA-256 of the array's bytes in C order (hashed in place, without a copy)."""
    return hashlib.sha256(np.ascontiguousarray(array).reshape(-1).view(np.uint8)).hexdigest()


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


# ---- all or nothing: checks before any change ----------------------------------------------


def _require_built(model, what: str) -> None:
    if not model.built:
        raise ValueError(
            f"{what}: {type(model).__name__} {model.name!r} is not built yet; "
            "call it on a batch first so that its weights exist"
        )


def _refuse_safetensors(path, what: str) -> None:
    """A training checkpoint holds optimizer state that a .safetensors file cannot: refuse the
    name rather than write an .npz called .safetensors that load_weights would misread."""
    if is_safetensors(path):
        raise ValueError(f"{what}: path {str(path)!r} ends in .safetensors, but {FORMATS}")


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


def _check_random_state(state, path) -> None:
    """Refuse a random-generator state that set_state would reject, before anything changes."""
    trial = type(random.generator().bit_generator)()
    try:
        trial.state = state
    except (TypeError, ValueError, KeyError) as error:
        raise CheckpointError(
            f"load_checkpoint: {path} holds an invalid random-generator state ({error})"
        ) from None
