"""tinydeep/checkpoint.py: exact round trips, atomic writes, and refusals that change nothing."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import tinydeep as td
from tinydeep import checkpoint, optim
from tinydeep.checkpoint import CheckpointError
from tinydeep.layers import BatchNormalization, Conv2D, Dense, Flatten, Sequential


def small_model(seed: int = 0):
    td.manual_seed(seed)
    model = Sequential([Conv2D(2, 3, padding="same"), BatchNormalization(), Flatten(), Dense(3)])
    model(
        np.random.default_rng(seed).standard_normal((4, 4, 4, 1)).astype(np.float32), training=True
    )
    return model


def test_weights_round_trip_exactly(tmp_path):
    source, target = small_model(0), small_model(1)
    source.save_weights(tmp_path / "w.npz")
    target.load_weights(tmp_path / "w.npz")
    for (name, a), b in zip(source.named_weights().items(), target.weights):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary left behind


def test_the_file_is_an_npz_with_json_metadata_and_no_pickle(tmp_path):
    small_model().save_weights(tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz", allow_pickle=False) as archive:
        metadata = json.loads(archive["__metadata__"].tobytes())
        assert "0/kernel" in archive.files
    assert metadata["format"] == "tinydeep" and metadata["version"] == 1
    assert len(metadata["tensors"]["0/kernel"]["sha256"]) == 64


def test_a_mismatched_model_is_refused_and_left_unchanged(tmp_path):
    small_model().save_weights(tmp_path / "w.npz")
    other = Sequential([Conv2D(3, 3, padding="same"), BatchNormalization(), Flatten(), Dense(3)])
    other(np.ones((1, 4, 4, 1), np.float32))
    before = [w.data.copy() for w in other.weights]
    with pytest.raises(
        CheckpointError,
        match=r"weight '0/kernel' is \(3, 3, 1, 2\) float32 in "
        r"the file but \(3, 3, 1, 3\) float32",
    ):
        other.load_weights(tmp_path / "w.npz")
    for w, b in zip(other.weights, before):
        np.testing.assert_array_equal(w.data, b)
    small = Sequential([Dense(1)])
    small(np.ones((1, 2), np.float32))
    with pytest.raises(CheckpointError, match="missing"):
        small.load_weights(tmp_path / "w.npz")


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_a_damaged_file_raises_one_clear_error_and_changes_nothing(tmp_path, damage):
    model = small_model()
    model.save_weights(tmp_path / "w.npz")
    data = bytearray((tmp_path / "w.npz").read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        with zipfile.ZipFile(tmp_path / "w.npz") as z:
            info = z.getinfo("0/kernel.npy")
        data[info.header_offset + 30 + len(info.filename) + info.file_size - 3] ^= 0xFF
    else:
        data = b"not a checkpoint at all" * 10
    (tmp_path / "w.npz").write_bytes(bytes(data))
    before = [w.data.copy() for w in model.weights]
    with pytest.raises(CheckpointError):
        model.load_weights(tmp_path / "w.npz")
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.data, b)


def test_a_training_checkpoint_resumes_exactly(tmp_path):
    x = np.random.default_rng(0).standard_normal((48, 4, 4, 1)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, 48)

    def make():
        model = small_model(0)
        optimizer = optim.SGD(lr=0.05, momentum=0.9, weight_decay=1e-4)
        model.compile(optimizer=optimizer, loss="cross_entropy")
        return model, optimizer

    td.manual_seed(9)
    straight, _ = make()
    straight.fit(x, y, epochs=4, batch_size=16, verbose=0)

    td.manual_seed(9)
    first, opt = make()
    first.fit(x, y, epochs=2, batch_size=16, verbose=0)
    checkpoint.save_checkpoint(tmp_path / "c.npz", first, [opt], epoch=2)
    td.manual_seed(123)  # a new process would start from anywhere
    resumed, opt2 = make()
    progress = checkpoint.load_checkpoint(tmp_path / "c.npz", resumed, [opt2])
    assert progress == {"epoch": 2}
    resumed.fit(x, y, epochs=4, batch_size=16, verbose=0, initial_epoch=2)
    for (name, a), b in zip(straight.named_weights().items(), resumed.weights):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_an_unbuilt_model_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="not built yet"):
        Sequential([Dense(1)]).save_weights(tmp_path / "w.npz")
