"""tinydeep/safetensors_weights.py through save_weights / load_weights: the file PyTorch reads,
the file PyTorch writes, refusals that change nothing, and damaged files.

Read in this order: the round trip and what the file holds (read back by PyTorch); a file
PyTorch writes; files that do not fit the model; damaged files; then the machinery shared with
the .npz format (atomic writes, permissions, the choice by suffix) and the GPU.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import tracemalloc

import numpy as np
import pytest
import safetensors
import safetensors.numpy
from devices import TORCH_SKIP_REASON, needs_gpu
from weights import randomize_constant_weights

import tinydeep as td
from tinydeep import checkpoint
from tinydeep.checkpoint import CheckpointError
from tinydeep.models import ResNet


def small_resnet(seed: int = 0) -> ResNet:
    """ResNet-8 at width 4, built on 8x8 images: nested layer paths ("blocks/0/conv1/kernel"),
    trainable and non-trainable weights (batch norm's moving statistics), all random."""
    td.manual_seed(seed)
    model = ResNet(depth=8, width=4, num_classes=3)
    model(np.zeros((1, 8, 8, 3), np.float32))
    randomize_constant_weights(model, seed)
    return model


def values(model) -> dict[str, np.ndarray]:
    return {name: w.numpy().copy() for name, w in model.named_weights().items()}


def assert_unchanged(model, before: dict[str, np.ndarray]) -> None:
    for name, w in model.named_weights().items():
        np.testing.assert_array_equal(w.numpy(), before[name], err_msg=name)


# ---- the round trip, and the file PyTorch reads ---------------------------------------------


def test_weights_round_trip_exactly_through_a_safetensors_file(tmp_path):
    source, target = small_resnet(0), small_resnet(1)
    path = tmp_path / "model.safetensors"
    source.save_weights(path)
    target.load_weights(path)
    assert_unchanged(target, values(source))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary left
    header_bytes = struct.unpack("<Q", path.read_bytes()[:8])[0]
    assert path.read_bytes()[8:9] == b"{" and header_bytes < path.stat().st_size  # not a zip


def test_pytorch_reads_every_weight_by_its_layer_path_and_the_metadata(tmp_path):
    torch = pytest.importorskip("torch", reason=TORCH_SKIP_REASON)
    from safetensors.torch import load_file

    model = small_resnet()
    model.save_weights(tmp_path / "model.safetensors")
    loaded = load_file(tmp_path / "model.safetensors")
    expected = values(model)
    assert set(loaded) == set(expected)
    assert "blocks/0/conv1/kernel" in loaded and "blocks/0/bn1/moving_variance" in loaded
    for name, tensor in loaded.items():
        assert isinstance(tensor, torch.Tensor)
        np.testing.assert_array_equal(tensor.numpy(), expected[name], err_msg=name)
        assert tensor.numpy().dtype == expected[name].dtype, name
    with safetensors.safe_open(tmp_path / "model.safetensors", framework="pt") as file:
        metadata = file.metadata()
    assert metadata == {"format": "tinydeep", "kind": "weights", "model": "ResNet"}


def test_a_non_contiguous_weight_is_saved_by_its_values(tmp_path):
    """safetensors.numpy copies an array's memory as it lies: a transposed weight must be made
    C-ordered first, or its values come back transposed."""
    model = small_resnet()
    kernel = model.head.kernel
    kernel.data = np.asfortranarray(kernel.data)  # same values, column-major memory
    assert not kernel.data.flags.c_contiguous
    model.save_weights(tmp_path / "model.safetensors")
    loaded = safetensors.numpy.load_file(tmp_path / "model.safetensors")
    np.testing.assert_array_equal(loaded["head/kernel"], kernel.data)


# ---- a file PyTorch writes --------------------------------------------------------------------


def torch_file(path, model, change=None) -> dict[str, np.ndarray]:
    """Write, with safetensors.torch.save_file, random tensors named and shaped as `model`'s
    weights, after `change(tensors)` when given; returns what was written, as NumPy arrays."""
    torch = pytest.importorskip("torch", reason=TORCH_SKIP_REASON)
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for name, w in model.named_weights().items():
        dtype = getattr(torch, str(w.dtype))
        tensors[name] = torch.randn(w.shape, generator=generator, dtype=torch.float64).to(dtype)
    if change is not None:
        change(tensors, torch)
    save_file(tensors, path, metadata={"format": "pt"})
    return {name: t.numpy() for name, t in tensors.items()}


def test_a_file_pytorch_writes_with_the_layer_paths_loads_into_a_tinydeep_model(tmp_path):
    model = small_resnet()
    written = torch_file(tmp_path / "from_torch.safetensors", model)
    model.load_weights(tmp_path / "from_torch.safetensors")
    assert_unchanged(model, written)


def last_name(model) -> str:
    """The last weight in the model's order: a load that copies weight by weight as it checks
    them has changed all the others when this one is refused."""
    return list(model.named_weights())[-1]


MISMATCHES = {
    "missing": r"missing \['{last}'\], unexpected nothing",
    "extra": r"missing nothing, unexpected \['head/extra'\]",
    "shape": r"weight '{last}' is \(4,\) float32 in the file but \(3,\) float32",
    "dtype": r"weight '{last}' is \(3,\) float64 in the file but \(3,\) float32",
}


@pytest.mark.parametrize("mismatch", MISMATCHES)
def test_a_file_that_does_not_fit_is_refused_naming_the_tensor_and_changes_nothing(
    tmp_path, mismatch
):
    model = small_resnet()
    last = last_name(model)
    assert last == "head/bias" and model.head.bias.shape == (3,)

    def change(tensors, torch):
        if mismatch == "missing":
            del tensors[last]
        elif mismatch == "extra":
            tensors["head/extra"] = torch.zeros(2)
        elif mismatch == "shape":
            tensors[last] = torch.zeros(4)
        else:
            tensors[last] = tensors[last].double()

    path = tmp_path / "w.safetensors"
    torch_file(path, model, change)
    before = values(model)
    with pytest.raises(CheckpointError, match=MISMATCHES[mismatch].format(last=last)) as error:
        model.load_weights(path)
    assert str(path) in str(error.value)
    assert_unchanged(model, before)


# ---- damaged files --------------------------------------------------------------------------


def header_file(path, header: dict, data: bytes) -> None:
    """A .safetensors file with this JSON header and these tensor bytes."""
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


DAMAGE = {
    "empty": lambda good: b"",
    "shorter than the length": lambda good: good[:5],
    "garbage header": lambda good: (
        struct.pack("<Q", 40) + b"not json at all, not json at all!!!!!!!"
    ),
    "header longer than the file": lambda good: struct.pack("<Q", len(good)) + good[8:],
    "header of 2**62 bytes": lambda good: struct.pack("<Q", 2**62) + good[8:],
    "a byte missing at the end": lambda good: good[:-1],
    "a byte more at the end": lambda good: good + b"\0",
}

HEADERS = {
    "2**40 elements in 8 bytes": {"a": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 8]}},
    "offsets past the end": {"a": {"dtype": "F32", "shape": [2**38], "data_offsets": [0, 2**40]}},
    "a size that overflows": {
        "a": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 8]}
    },
    "overlapping tensors": {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    },
    "metadata not strings": {
        "__metadata__": {"format": 1},
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
    },
    "bfloat16, which NumPy lacks": {"a": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}},
    "float8, which NumPy lacks": {"a": {"dtype": "F8_E4M3", "shape": [8], "data_offsets": [0, 8]}},
}


def attempt_load(model, path):
    """model.load_weights(path)'s CheckpointError, and the peak bytes Python and NumPy
    allocated meanwhile (tracemalloc sees those; the parser's own few allocations, bounded by
    the header, are Rust's)."""
    tracemalloc.start()
    try:
        model.load_weights(path)
    except CheckpointError as error:
        return error, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    raise AssertionError(f"{path} loaded")


@pytest.mark.parametrize("damage", [*DAMAGE, *HEADERS])
def test_a_damaged_file_is_refused_naming_it_and_changes_nothing(tmp_path, damage):
    model = small_resnet()
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    if damage in DAMAGE:
        path.write_bytes(DAMAGE[damage](path.read_bytes()))
    else:
        header_file(path, HEADERS[damage], b"\0" * 8)
    before = values(model)
    error, peak = attempt_load(model, path)
    assert str(path) in str(error)
    assert peak < 2 * 2**20 + path.stat().st_size, peak
    assert_unchanged(model, before)


def test_every_truncation_is_refused(tmp_path):
    model = small_resnet()
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    before, data = values(model), path.read_bytes()
    for end in range(len(data) - 1, -1, -97):  # every 97th length, down to the empty file
        path.write_bytes(data[:end])
        with pytest.raises(CheckpointError, match=f"cannot load {path}"):
            model.load_weights(path)
    assert_unchanged(model, before)


def test_a_missing_file_is_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        small_resnet().load_weights(tmp_path / "absent.safetensors")


# ---- what it shares with the .npz format ------------------------------------------------------


def test_a_save_that_fails_midway_keeps_the_previous_file_and_leaves_no_temporary(
    tmp_path, monkeypatch
):
    path = tmp_path / "w.safetensors"
    small_resnet(0).save_weights(path)
    before = path.read_bytes()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)  # the bytes are written, not yet on disk
    with pytest.raises(OSError, match="No space left"):
        small_resnet(1).save_weights(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


@pytest.mark.skipif(os.name != "posix", reason="file modes and the umask are POSIX")
def test_saved_files_get_the_permissions_open_would_give(tmp_path):
    model, path = small_resnet(), tmp_path / "w.safetensors"
    previous = os.umask(0o027)
    try:
        model.save_weights(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    path.chmod(0o604)
    model.save_weights(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o604


def test_any_other_suffix_is_npz_as_before_and_a_misnamed_file_says_which_formats_exist(
    tmp_path,
):
    model = small_resnet()
    model.save_weights(tmp_path / "w.weights")
    assert (tmp_path / "w.weights").read_bytes()[:4] == b"PK\x03\x04"  # a zip: .npz
    model.load_weights(tmp_path / "w.weights")
    model.save_weights(tmp_path / "w.safetensors")
    (tmp_path / "w.safetensors").rename(tmp_path / "w.bin")
    with pytest.raises(CheckpointError, match=r"weights files are \.safetensors .* or tinydeep"):
        model.load_weights(tmp_path / "w.bin")
    with pytest.raises(ValueError, match="save_checkpoint: path .* ends in .safetensors"):
        checkpoint.save_checkpoint(tmp_path / "run.safetensors", model, epoch=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.bin", "w.weights"]


@needs_gpu
def test_weights_on_the_gpu_are_saved_from_the_host_and_loaded_back_onto_it(tmp_path):
    source, target = small_resnet(0).to("cuda"), small_resnet(1).to("cuda")
    source.save_weights(tmp_path / "w.safetensors")
    target.load_weights(tmp_path / "w.safetensors")
    assert {w.device for w in target.weights} == {"cuda"}
    assert_unchanged(target, values(source))
