"""tinydeep/checkpoint.py under attack: saves killed mid-write, and hostile files.

The machinery under test is tinydeep/safe_npz.py (atomic writes, the cleanup of killed saves,
the bounded reader), exercised through checkpoint.py's save and load, as a user meets it.

Read in this order:
1. test_a_save_killed_at_random_moments_leaves_a_complete_checkpoint: a child process saves
   checkpoints in a loop and is killed with SIGKILL at random moments; the file always loads
   and is one complete version, never older than the last one the child finished.
2. test_the_metadata_carries_the_version_and_a_checksum_per_tensor: the format, read with
   zipfile and json only.
3. Hostile files: every truncation, a bit flip at every byte, an oversized .npy header, a header
   claiming 10**12 elements, zip bombs, and structural damage. Each raises CheckpointError (or,
   for a flip in a zip field the reader does not use, loads the identical data), and tracemalloc
   shows the attempt allocating less than BOUND(file size).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import tinydeep as td
from tinydeep import checkpoint, safe_npz
from tinydeep.checkpoint import CheckpointError
from tinydeep.layers import BatchNormalization, Conv2D, Dense, Flatten, Sequential


def BOUND(file_size: int) -> int:
    """The most a load attempt may allocate: twice the file plus 256 KiB for zipfile, the .npy
    header prefix and the parsed metadata."""
    return 2 * file_size + 256 * 1024


# ---- 1. SIGKILL during saves ----------------------------------------------------------------

FEATURES = UNITS = 1024  # a 4 MiB kernel: one save takes tens of milliseconds
TRIALS = 30

# A fork server: it imports tinydeep and builds the model once, then for each line on stdin
# (the first version to write) forks a saver that writes versions k, k+1, ... to one path,
# each with every weight equal to its version, and logs "saved k" only after save_checkpoint
# (and so os.replace) has returned. Forking keeps a trial at a few milliseconds instead of an
# interpreter start. The parent kills the saver; the server reaps it and says "reaped".
SAVER = f"""
import os, sys
import numpy as np
from tinydeep import checkpoint
from tinydeep.layers import Dense, Sequential

path = sys.argv[1]
model = Sequential([Dense({UNITS})])
model(np.zeros((1, {FEATURES}), np.float32))
while line := sys.stdin.readline():
    version = int(line)
    pid = os.fork()
    if pid == 0:
        while True:
            for weight in model.weights:
                weight.data[...] = version
            checkpoint.save_checkpoint(path, model, version=version)
            os.write(1, b"saved %d\\n" % version)
            version += 1
    print("pid", pid, flush=True)
    os.waitpid(pid, 0)
    print("reaped", flush=True)
"""


def test_a_save_killed_at_random_moments_leaves_a_complete_checkpoint(tmp_path):
    path = tmp_path / "c.npz"
    model = Sequential([Dense(UNITS)])
    model(np.zeros((1, FEATURES), np.float32))
    for weight in model.weights:
        weight.data[...] = 0
    durations = []
    for _ in range(3):  # version 0: every weight 0
        start = time.perf_counter()
        checkpoint.save_checkpoint(path, model, version=0)
        durations.append(time.perf_counter() - start)
    # Kills spread over about four saves, timed on this machine as it is loaded now.
    max_delay = 4 * max(durations)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    rng = np.random.default_rng(8)
    last, saver, torn, no_save = 0, None, 0, 0
    try:

        def read_until(word):  # the "saved k" lines before the line starting with `word`
            saved = []
            while not (line := server.stdout.readline()).startswith(word):
                assert line.startswith("saved "), f"unexpected output from the saver: {line!r}"
                saved.append(int(line.split()[1]))
            return saved, line

        for trial in range(TRIALS):
            server.stdin.write(f"{last + 1}\n")
            server.stdin.flush()
            saved, line = read_until("pid")
            saver = int(line.split()[1])
            time.sleep(rng.uniform(0, max_delay))
            os.kill(saver, signal.SIGKILL)
            more, _ = read_until("reaped")
            saver, saved = None, saved + more
            assert saved == list(range(last + 1, last + 1 + len(saved)))
            finished = saved[-1] if saved else last  # the newest save known to be complete

            loaded = checkpoint.load_checkpoint(path, model)["version"]
            # The save in flight may have renamed its file before it could log it.
            assert finished <= loaded <= finished + 1, (trial, saved, loaded)
            for weight in model.weights:
                assert np.all(weight.data == loaded), f"trial {trial}: a torn version"
            temporaries = list(tmp_path.glob(".c.npz.*.tmp"))
            torn += len(temporaries)  # a kill between mkstemp and os.replace leaves one
            no_save += not saved
            for temporary in temporaries:
                temporary.unlink()
            last = loaded
    finally:
        if saver is not None:
            os.kill(saver, signal.SIGKILL)
        server.stdin.close()
        server.wait(timeout=30)
    # Some kills landed mid-write (leaving a temporary file), some before a trial's first save
    # completed (the previous version must load), and some trials completed saves.
    assert torn >= 1 and 1 <= no_save < TRIALS, (torn, no_save, last)


# ---- 2. the format --------------------------------------------------------------------------


def small_model():
    td.manual_seed(0)
    model = Sequential([Conv2D(2, 3, padding="same"), BatchNormalization(), Flatten(), Dense(3)])
    model(np.random.default_rng(0).standard_normal((4, 4, 4, 1)).astype(np.float32))
    return model


def npy_payload(member: bytes) -> bytes:
    """The data bytes of an .npy file, after its header."""
    stream = io.BytesIO(member)
    version = np.lib.format.read_magic(stream)
    assert version == (1, 0)
    np.lib.format.read_array_header_1_0(stream)
    return member[stream.tell() :]


def test_the_metadata_carries_the_version_and_a_checksum_per_tensor(tmp_path):
    small_model().save_weights(tmp_path / "w.npz")
    with zipfile.ZipFile(tmp_path / "w.npz") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    metadata = json.loads(npy_payload(members.pop("__metadata__.npy")))
    assert metadata["format"] == "tinydeep" and metadata["version"] == checkpoint.VERSION == 1
    assert {f"{name}.npy" for name in metadata["tensors"]} == set(members)
    for name, info in metadata["tensors"].items():
        data = npy_payload(members[f"{name}.npy"])
        assert info["sha256"] == hashlib.sha256(data).hexdigest(), name
        assert len(data) == np.prod(info["shape"]) * np.dtype(info["dtype"]).itemsize


# ---- 3. hostile files -----------------------------------------------------------------------


def attempt(path):
    """read_archive(path)'s result or CheckpointError, and the peak bytes it allocated."""
    tracemalloc.start()
    try:
        result = checkpoint.read_archive(path)
    except CheckpointError as error:
        result = error
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, peak


def assert_refused(path, match: str) -> None:
    """read_archive(path) raises CheckpointError naming the file and `match`, within BOUND."""
    result, peak = attempt(path)
    assert isinstance(result, CheckpointError), f"loaded: {result!r:.200}"
    assert str(path) in str(result)
    assert match in str(result), str(result)
    assert peak < BOUND(path.stat().st_size), (peak, path.stat().st_size)


def same(loaded, original) -> bool:
    (arrays, extra), (arrays0, extra0) = loaded, original
    return (
        extra == extra0
        and arrays.keys() == arrays0.keys()
        and all(
            arrays[k].dtype == arrays0[k].dtype and np.array_equal(arrays[k], arrays0[k])
            for k in arrays
        )
    )


@pytest.fixture
def saved(tmp_path):
    """A small model's weights file: (path, its bytes, what read_archive returns)."""
    path = tmp_path / "w.npz"
    small_model().save_weights(path)
    return path, path.read_bytes(), checkpoint.read_archive(path)


def test_every_truncation_is_refused_within_the_memory_bound(saved):
    path, data, _ = saved
    for end in reversed(range(len(data))):
        os.truncate(path, end)
        result, peak = attempt(path)
        assert isinstance(result, CheckpointError), f"cut at {end}: loaded"
        assert peak < BOUND(end), (end, peak)


def member_spans(data: bytes) -> list[range]:
    """The byte ranges of each member's stored data (after its local header)."""
    spans = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            names, extra = struct.unpack_from("<HH", data, info.header_offset + 26)
            start = info.header_offset + 30 + names + extra
            spans.append(range(start, start + info.compress_size))
    return spans


def test_a_bit_flip_anywhere_is_refused_or_changes_nothing(saved):
    """One bit flipped at every byte. A flip inside a member's data always raises (CRC-32, then
    SHA-256). Elsewhere it lands in a zip header: the reader refuses the file, or the field
    was one it never uses (a timestamp, the local copy of a size, the creating system) and the
    data is identical. Memory is traced at every fourth byte (tracing is 5x slower)."""
    path, data, original = saved
    inside = set().union(*member_spans(data))
    refused = ignored = 0
    file = os.open(path, os.O_RDWR)
    try:
        for position in range(len(data)):
            os.pwrite(file, bytes([data[position] ^ 1 << position % 8]), position)
            if position % 4 == 0:
                result, peak = attempt(path)
                assert peak < BOUND(len(data)), (position, peak)
            else:
                try:
                    result = checkpoint.read_archive(path)
                except CheckpointError as error:
                    result = error
            os.pwrite(file, data[position : position + 1], position)
            if isinstance(result, CheckpointError):
                refused += 1
            else:
                assert position not in inside, f"a flip at {position}, in a tensor, loaded"
                assert same(result, original), f"a flip at {position} loaded different data"
                ignored += 1
    finally:
        os.close(file)
    assert refused >= len(inside) and refused + ignored == len(data)


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, member in members.items():
            archive.writestr(name, member)
    return buffer.getvalue()


def npy_header(shape, dtype="<f4", version=(1, 0), pad: int = 0) -> bytes:
    """An .npy header declaring `shape`; `pad` extra spaces make it that much longer."""
    header = {"descr": dtype, "fortran_order": False, "shape": tuple(shape)}
    text = repr(header).encode() + b" " * pad + b"\n"
    length = struct.pack("<H" if version == (1, 0) else "<I", len(text))
    return b"\x93NUMPY" + bytes(version) + length + text


def npy_of(raw: bytes) -> bytes:
    """An .npy file holding `raw` as a 1-D uint8 array (how the metadata is stored)."""
    stream = io.BytesIO()
    np.lib.format.write_array(stream, np.frombuffer(raw, np.uint8))
    return stream.getvalue()


def metadata_npy(tensors: dict) -> bytes:
    metadata = {"format": "tinydeep", "version": 1, "tensors": tensors, "kind": "weights"}
    return npy_of(json.dumps(metadata).encode())


def described(shape, dtype="<f4", sha256="0" * 64) -> dict:
    return {"w": {"shape": list(shape), "dtype": dtype, "sha256": sha256}}


def test_an_oversized_npy_header_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "w.npz"
    # A valid 1 MiB header (numpy would read all of it) and a length field claiming 4 GiB.
    for member in (
        npy_header((4,), version=(2, 0), pad=2**20) + bytes(16),
        npy_header((4,), version=(2, 0))[:8] + struct.pack("<I", 2**32 - 1) + bytes(64),
    ):
        path.write_bytes(
            zip_of({"__metadata__.npy": metadata_npy(described((4,))), "w.npy": member})
        )
        assert_refused(path, "array header")


@pytest.mark.parametrize("metadata", ["honest", "lying"])
def test_a_header_claiming_10_to_the_12_elements_is_refused(tmp_path, metadata):
    """The member holds 16 bytes; its .npy header claims 4 TB. Whether the metadata agrees
    with the header (lying) or not, nothing that size is allocated."""
    path = tmp_path / "w.npz"
    shape = (10**12,) if metadata == "lying" else (4,)
    member = npy_header((10**12,)) + bytes(16)
    path.write_bytes(zip_of({"__metadata__.npy": metadata_npy(described(shape)), "w.npy": member}))
    assert_refused(path, "its header needs" if metadata == "lying" else "the metadata says")


def central_entry(data: bytes, name: str) -> int:
    """The offset of `name`'s central-directory record (it follows all local headers)."""
    start = data.rfind(name.encode()) - 46
    assert data[start : start + 4] == b"PK\x01\x02"
    return start


def test_a_deflated_member_claiming_a_huge_size_is_refused(tmp_path):
    """The zip directory says 4 GiB come out of ~100 deflated bytes: more than deflate can
    expand (1032x), refused before reading; also when metadata and header agree on 2 GiB."""
    path = tmp_path / "w.npz"
    for shape, claim in (((4,), 2**32 - 1), ((2**29,), 128 + 2**31)):
        members = {
            "__metadata__.npy": metadata_npy(described(shape)),
            "w.npy": npy_header(shape) + bytes(16),
        }
        data = bytearray(zip_of(members, zipfile.ZIP_DEFLATED))
        struct.pack_into("<I", data, central_entry(data, "w.npy") + 24, claim)
        path.write_bytes(data)
        assert_refused(path, f"claims {claim} bytes")


def test_a_deflate_stream_longer_than_declared_is_cut_off(tmp_path):
    """A classic bomb: 64 MiB of zeros deflated into ~64 KiB, declared as a 16-byte tensor.
    The reader inflates only the declared bytes; the CRC-32 then fails."""
    path = tmp_path / "w.npz"
    header = npy_header((4,))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__metadata__.npy", metadata_npy(described((4,))))
        with archive.open("w.npy", "w") as member:
            member.write(header)
            for _ in range(64):
                member.write(bytes(2**20))
    data = bytearray(buffer.getvalue())
    struct.pack_into("<I", data, central_entry(data, "w.npy") + 24, len(header) + 16)
    path.write_bytes(data)
    assert len(data) < 2**20
    assert_refused(path, "CRC")


def members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def edit_metadata(members, edit) -> None:
    metadata = json.loads(npy_payload(members["__metadata__.npy"]))
    edit(metadata)
    members["__metadata__.npy"] = npy_of(json.dumps(metadata).encode())


def flip_last_byte(members, name) -> None:
    member = bytearray(members[name])
    member[-1] ^= 0x01
    members[name] = bytes(member)


# Each: a change to the members of a valid file, the compression, and the reason expected.
DAMAGE = {
    "no metadata": (lambda m: m.pop("__metadata__.npy"), 0, "no __metadata__"),
    "metadata not JSON": (
        lambda m: m.update({"__metadata__.npy": npy_of(b'{"format": "tinyd')}),
        0,
        "not JSON",
    ),
    "metadata a list": (lambda m: m.update({"__metadata__.npy": npy_of(b"[1]")}), 0, "a JSON list"),
    "metadata not uint8": (
        lambda m: m.update({"__metadata__.npy": npy_header((2,), "<f8") + bytes(16)}),
        0,
        "expected 1-D uint8",
    ),
    "newer version": (
        lambda m: edit_metadata(m, lambda d: d.update(version=2)),
        0,
        "version 2, expected 'tinydeep' 1",
    ),
    "version true": (
        lambda m: edit_metadata(m, lambda d: d.update(version=True)),
        0,
        "version True",
    ),
    "negative shape": (
        lambda m: edit_metadata(m, lambda d: d["tensors"]["0/bias"].update(shape=[-2])),
        0,
        "tensor '0/bias' is malformed",
    ),
    "member missing": (lambda m: m.pop("0/kernel.npy"), 0, "missing ['0/kernel.npy']"),
    "member unlisted": (
        lambda m: m.update({"extra.npy": m["0/bias.npy"]}),
        0,
        "unlisted ['extra.npy']",
    ),
    "object dtype": (
        lambda m: m.update({"0/bias.npy": npy_header((2,), "|O") + bytes(16)}),
        0,
        "only numbers",
    ),
    "dtype differs": (
        lambda m: m.update({"0/bias.npy": npy_header((2,), "<i4") + bytes(8)}),
        0,
        "the metadata says (2,) <f4",
    ),
    "data short": (
        lambda m: m.update({"0/bias.npy": m["0/bias.npy"][:-1]}),
        0,
        "its header needs",
    ),
    # Changed data under a valid CRC-32: only the per-tensor SHA-256 can see it.
    "data changed": (
        lambda m: flip_last_byte(m, "0/kernel.npy"),
        0,
        "'0/kernel' does not match its SHA-256",
    ),
    "bzip2 member": (lambda m: None, zipfile.ZIP_BZIP2, "compression method 12"),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_structural_damage_is_refused_with_its_reason(saved, kind):
    path, data, _ = saved
    change, method, reason = DAMAGE[kind]
    members = members_of(data)
    change(members)
    path.write_bytes(zip_of(members, method))
    assert_refused(path, reason)


def test_not_a_zip_and_a_name_twice_are_refused_and_a_missing_file_is_not_found(saved):
    path, data, _ = saved
    with pytest.raises(FileNotFoundError):
        checkpoint.read_archive(path.with_name("absent.npz"))
    path.write_bytes(b"PK\x03\x04 not really a zip" * 40)
    assert_refused(path, "BadZipFile")
    members = members_of(data)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, member in members.items():
            archive.writestr(name, member)
        with pytest.warns(UserWarning, match="Duplicate"):
            archive.writestr("0/bias.npy", members["0/bias.npy"])
    path.write_bytes(buffer.getvalue())
    assert_refused(path, "the same name twice")


def test_a_deflated_file_loads_and_a_large_load_stays_within_the_bound(saved, tmp_path):
    """Deflate is accepted (np.savez_compressed writes it); and loading a 4 MiB checkpoint
    allocates about its size once, not a copy per step."""
    path, data, original = saved
    path.write_bytes(zip_of(members_of(data), zipfile.ZIP_DEFLATED))
    assert same(checkpoint.read_archive(path), original)
    big = tmp_path / "big.npz"
    model = Sequential([Dense(UNITS)])
    model(np.zeros((1, FEATURES), np.float32))
    model.save_weights(big)
    result, peak = attempt(big)
    assert not isinstance(result, CheckpointError)
    assert big.stat().st_size <= peak < BOUND(big.stat().st_size), peak


def test_the_next_save_deletes_only_the_temporaries_of_dead_savers_of_this_host(tmp_path):
    """What a killed save left (".NAME.HOST-PID.XXXX.tmp" of a PID no longer running) goes at
    the next save to NAME; a live process's file, another host's, and another name's stay."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = safe_npz._HOST
    left = {
        "dead": tmp_path / f".w.npz.{host}-{dead.pid}.a1b2c3.tmp",
        "live": tmp_path / f".w.npz.{host}-{os.getpid()}.d4e5f6.tmp",
        "other host": tmp_path / f".w.npz.elsewhere-{dead.pid}.a1b2c3.tmp",
        "other name": tmp_path / f".v.npz.{host}-{dead.pid}.a1b2c3.tmp",
    }
    for file in left.values():
        file.write_bytes(b"half a checkpoint")
    small_model().save_weights(tmp_path / "w.npz")
    kept = {kind for kind, file in left.items() if file.exists()}
    assert kept == {"live", "other host", "other name"}
    assert len(list(tmp_path.glob(".*.tmp"))) == 3  # and the save left none of its own


def test_a_save_that_fails_midway_keeps_the_previous_file_and_leaves_no_temporary(
    tmp_path, monkeypatch
):
    """An exception while the archive is written (a full disk, say, after half of it) leaves
    the file of the previous save, byte for byte, and no temporary file."""
    path = tmp_path / "w.npz"
    small_model().save_weights(path)
    before = path.read_bytes()

    def half_then_full(file, **arrays):
        file.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        small_model().save_weights(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]
