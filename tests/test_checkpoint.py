"""tinydeep/checkpoint.py: exact round trips, atomic writes, and refusals that change nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
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


def test_a_version_1_file_from_np_savez_loads_exactly(tmp_path):
    """Files written before the bounded reader (np.savez, digests of tobytes()) still load,
    whatever their dtypes and memory order: Fortran order, 0-d, big-endian, bool, float16."""
    arrays = {
        "fortran": np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
        "scalar": np.array(7, dtype=np.int64),
        "big_endian": np.arange(5, dtype=">f8"),
        "mask": np.array([True, False, True]),
        "half": np.linspace(0, 1, 6, dtype=np.float16).reshape(2, 3),
        "empty": np.zeros((0, 3), np.float32),
    }
    tensors = {
        name: {
            "shape": list(a.shape),
            "dtype": a.dtype.str,
            "sha256": hashlib.sha256(a.tobytes()).hexdigest(),
        }
        for name, a in arrays.items()
    }
    metadata = {"format": "tinydeep", "version": 1, "tensors": tensors, "kind": "weights"}
    raw = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    np.savez(tmp_path / "old.npz", __metadata__=raw, **arrays)
    loaded, extra = checkpoint.read_archive(tmp_path / "old.npz")
    assert extra == {"kind": "weights"} and loaded.keys() == arrays.keys()
    for name, a in arrays.items():
        assert loaded[name].dtype == a.dtype and loaded[name].shape == a.shape, name
        np.testing.assert_array_equal(loaded[name], a, err_msg=name)


def edit_metadata(path, edit) -> None:
    """Rewrite the file with edit(metadata) applied to its JSON (a well-formed zip again)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    stream = io.BytesIO(members["__metadata__.npy"])
    np.lib.format.read_magic(stream)
    np.lib.format.read_array_header_1_0(stream)
    metadata = json.loads(stream.read())
    edit(metadata)
    stream = io.BytesIO()
    np.lib.format.write_array(stream, np.frombuffer(json.dumps(metadata).encode(), np.uint8))
    members["__metadata__.npy"] = stream.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, member in members.items():
            archive.writestr(name, member)


def first_array_reference(value) -> dict:
    if isinstance(value, dict):
        if "__array__" in value:
            return value
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            if found := first_array_reference(item):
                return found
    return {}


@pytest.mark.parametrize("damage", ["missing array", "random state"])
def test_a_checkpoint_with_inconsistent_metadata_is_refused_and_changes_nothing(tmp_path, damage):
    model, path = small_model(), tmp_path / "c.npz"
    optimizer = optim.SGD(lr=0.1, momentum=0.9)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(np.ones((2, 4, 4, 1), np.float32), np.ones((2, 3), np.float32), verbose=0)
    checkpoint.save_checkpoint(path, model, [optimizer], epoch=1)
    if damage == "missing array":
        edit_metadata(path, lambda d: first_array_reference(d["states"]).update(__array__="x"))
        match = "refers to a missing array 'x'"
    else:
        edit_metadata(path, lambda d: d.update(random={"bit_generator": "nonsense"}))
        match = "invalid random-generator state"
    optimizer.param_groups[0]["lr"] = 0.5
    before = [w.data.copy() for w in model.weights]
    generator_state = td.random.get_state()
    with pytest.raises(CheckpointError, match=match):
        checkpoint.load_checkpoint(path, model, [optimizer])
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.data, b)
    assert optimizer.param_groups[0]["lr"] == 0.5 and td.random.get_state() == generator_state


def test_an_optimizer_state_that_does_not_fit_changes_no_optimizer_or_schedule(tmp_path):
    """The second optimizer refuses its saved state after the first and a schedule could have
    loaded theirs: all or nothing, every optimizer and schedule is left as it was."""
    from tinydeep.schedules import CosineDecay, StepDecay

    model = small_model(0)
    x = np.random.default_rng(0).standard_normal((8, 4, 4, 1)).astype(np.float32)
    head, body = model.parameters()[-2:], model.parameters()[:-2]
    sgd, adam = optim.SGD(body, lr=0.1, momentum=0.9), optim.Adam(head, lr=1e-3)
    schedule = StepDecay(sgd, [1], gamma=0.5)
    model.compile(optimizer=[sgd, adam], loss="cross_entropy")
    model.fit(x, np.zeros(8, np.int64), epochs=1, batch_size=4, verbose=0)  # fills the state
    for _ in range(2):
        schedule.step()
    checkpoint.save_checkpoint(tmp_path / "c.npz", model, [sgd, adam], [schedule], epoch=1)

    fresh = small_model(1)
    sgd2 = optim.SGD(fresh.parameters()[:-2], lr=0.3, momentum=0.5)
    wrong = optim.Adam(fresh.parameters()[-1:], lr=7e-3)  # one parameter where two were saved
    schedule2 = StepDecay(sgd2, [5], gamma=0.1)
    before = [sgd2.state_dict(), wrong.state_dict(), schedule2.state_dict()]
    weights = {k: w.data.copy() for k, w in fresh.named_weights().items()}
    with pytest.raises(CheckpointError, match=r"state 1 \(Adam\) does not fit"):
        checkpoint.load_checkpoint(tmp_path / "c.npz", fresh, [sgd2, wrong], [schedule2])
    assert [sgd2.state_dict(), wrong.state_dict(), schedule2.state_dict()] == before
    assert sgd2.param_groups[0]["lr"] == 0.3

    # Both optimizers fit, the schedule is of another kind: it refuses last, after the
    # optimizers (and so their learning rates) were loaded.
    adam2 = optim.Adam(fresh.parameters()[-2:], lr=7e-3)
    other = CosineDecay(sgd2, 10)
    before = [sgd2.state_dict(), adam2.state_dict(), other.state_dict()]
    with pytest.raises(CheckpointError, match=r"state 2 \(CosineDecay\) does not fit"):
        checkpoint.load_checkpoint(tmp_path / "c.npz", fresh, [sgd2, adam2], [other])
    assert [sgd2.state_dict(), adam2.state_dict(), other.state_dict()] == before
    for name, w in fresh.named_weights().items():
        np.testing.assert_array_equal(w.data, weights[name], err_msg=name)


@pytest.mark.skipif(os.name != "posix", reason="file modes and the umask are POSIX")
@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_get_the_umask_s_permissions(tmp_path, umask, expected):
    """As `open(path, "wb")` would: rw-rw-rw- less the umask for a new file, not the
    temporary file's owner-only -rw-------."""
    model = small_model()
    previous = os.umask(umask)
    try:
        model.save_weights(tmp_path / "model.npz")
        checkpoint.save_checkpoint(tmp_path / "run.npz", model, [], epoch=1)
    finally:
        os.umask(previous)
    for name in ("model.npz", "run.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_saved_file_that_replaces_another_keeps_its_permissions(tmp_path):
    model = small_model()
    path = tmp_path / "model.npz"
    model.save_weights(path)
    path.chmod(0o640)
    model.save_weights(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
