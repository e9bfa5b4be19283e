"""Weights as a .safetensors file, the format PyTorch and Hugging Face share.

A .safetensors file is an 8-byte little-endian length, a JSON header naming each tensor's dtype,
shape and byte range, then the raw bytes of every tensor, back to back; no code, no pickle. The
header may carry `__metadata__`, a string-to-string map. tinydeep writes one tensor per weight,
named by its path in the model ("block1/conv1/kernel"), and the metadata {"format": "tinydeep",
"kind": "weights", "model": <class name>}. So `safetensors.torch.load_file` reads the file, and
a file written by `safetensors.torch.save_file` with those names loads into a tinydeep model.

Read in this order: write, then read. checkpoint.save_weights / load_weights choose this format
for a path ending in ".safetensors" and do the rest: copying weights off and onto the device,
and checking every name, shape and dtype before anything changes (checkpoint._assign).

The parsing is the `safetensors` package's (Rust): it refuses a header longer than the file
or than 100 MB, tensors whose byte ranges overlap, leave gaps or pass the end of the file, and
shapes whose size overflows, before it reads any tensor, and it maps the file rather than
reading it whole. Whatever it raises on a damaged file comes out as CheckpointError naming the
file; a missing file raises FileNotFoundError. The write is atomic, as for .npz files
(safe_npz.atomic_write).

Left out: checksums (the format has none, so unlike tinydeep's .npz a flipped bit inside a
tensor's bytes loads unnoticed), training checkpoints (optimizer state: those stay .npz), and
dtypes NumPy lacks (bfloat16, float8), which are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from tinydeep.safe_npz import CheckpointError, atomic_write

SUFFIX = ".safetensors"

# Failures of the parser (SafetensorError) and of mapping its dtypes to NumPy's ("data type
# 'bfloat16' not understood" is a TypeError; "module 'numpy' has no attribute 'float8_e4m3fn'"
# an AttributeError); all become CheckpointError.
_PARSE_ERRORS = (safetensors.SafetensorError, TypeError, AttributeError)


def is_safetensors(path) -> bool:
    """Whether `path` names a .safetensors file (by its suffix, in any case)."""
    return Path(path).suffix.lower() == SUFFIX


def write(path, arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """A .safetensors file of `arrays` (name -> NumPy array) and `metadata`, written
    atomically to `path`."""
    # The library copies each array's memory as it lies (safetensors.numpy takes the data
    # pointer and nbytes), so a transposed view would be written transposed: make each C-ordered.
    contiguous = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    data = safetensors.numpy.save(contiguous, metadata=metadata)
    with atomic_write(path) as file:
        file.write(data)


def read(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every tensor of the .safetensors file at `path` as a NumPy array, and its metadata ({}
    when it has none).

    Memory: the tensors' bytes, which the parser has checked lie inside the file."""
    try:
        with safetensors.safe_open(path, framework="numpy") as file:
            metadata = file.metadata() or {}
            names = file.keys()  # a list: safe_open is not iterable
            arrays = {name: file.get_tensor(name) for name in names}
    except _PARSE_ERRORS as error:
        raise CheckpointError(f"cannot load {path}: {type(error).__name__}: {error}") from None
    return arrays, metadata
