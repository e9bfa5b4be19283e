"""Tests for tinydeep/data/download.py: where data lives, and fetch() against a local server.

Read in order: data_dir, a good download, the failures (bad checksum, unreachable server,
HTTP error, a connection dropped mid-way, an interruption, an unwritable folder), then the
error object itself. Every download goes to 127.0.0.1 (the `local_server` fixture).
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import os
import socket
import stat
from pathlib import Path

import pytest

from tinydeep.data import download
from tinydeep.data.download import DownloadError, data_dir, fetch, find_folder

CONTENT = bytes(range(256)) * 1000  # 256,000 bytes: several network chunks


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- data_dir --------------------------------------------------------------------------------


def test_data_dir_prefers_the_argument_then_the_environment_then_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYDEEP_DATA", str(tmp_path / "from-env"))
    assert data_dir(tmp_path / "given") == tmp_path / "given"
    assert data_dir() == tmp_path / "from-env"

    monkeypatch.delenv("TINYDEEP_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "tinydeep"

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".cache" / "tinydeep"
    assert data_dir("~/data") == tmp_path / "home" / "data"  # ~ is expanded
    assert not (tmp_path / "home").exists()  # nothing is created


def test_data_dir_ignores_an_empty_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYDEEP_DATA", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data_dir() == tmp_path / "tinydeep"


# ---- a good download -------------------------------------------------------------------------


def test_fetch_downloads_checks_and_creates_the_folder(local_server, tmp_path):
    local_server.files["/a.bin"] = CONTENT
    dest = tmp_path / "new" / "folder" / "a.bin"
    assert fetch(local_server.url("/a.bin"), dest, sha256(CONTENT)) == dest
    assert dest.read_bytes() == CONTENT
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.bin"]  # no temporary left


@pytest.mark.skipif(os.name != "posix", reason="file modes and the umask are POSIX")
def test_a_downloaded_file_gets_the_umask_s_permissions(local_server, tmp_path):
    """As open() would give it (rw-r--r-- under umask 022), not mkstemp's -rw-------."""
    local_server.files["/a.bin"] = CONTENT
    previous = os.umask(0o022)
    try:
        dest = fetch(local_server.url("/a.bin"), tmp_path / "a.bin", sha256(CONTENT))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644


def test_fetch_without_a_checksum_accepts_any_content(local_server, tmp_path):
    local_server.files["/a.bin"] = b"anything"
    fetch(local_server.url("/a.bin"), tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == b"anything"


def test_gunzipped_checksum_holds_for_any_compression_of_the_content(local_server, tmp_path):
    # Two compressions of one content: different bytes, one content checksum.
    fast, best = gzip.compress(CONTENT, compresslevel=1), gzip.compress(CONTENT, mtime=1)
    assert fast != best
    local_server.files.update({"/fast.gz": fast, "/best.gz": best})
    for name, data in [("fast.gz", fast), ("best.gz", best)]:
        url = local_server.url(f"/{name}")
        dest = fetch(url, tmp_path / name, sha256(CONTENT), sha256_of="gunzipped")
        assert dest.read_bytes() == data  # saved as downloaded, still compressed


# ---- failures leave nothing behind -----------------------------------------------------------


def test_a_bad_checksum_raises_and_leaves_no_file(local_server, tmp_path):
    local_server.files["/a.bin"] = CONTENT
    url = local_server.url("/a.bin")
    with pytest.raises(DownloadError, match="SHA-256") as caught:
        fetch(url, tmp_path / "a.bin", sha256(b"something else"))
    assert url in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_download_keeps_an_existing_file_intact(local_server, tmp_path):
    (tmp_path / "a.bin").write_bytes(b"old")
    local_server.files["/a.bin"] = CONTENT
    with pytest.raises(DownloadError):
        fetch(local_server.url("/a.bin"), tmp_path / "a.bin", sha256(b"wrong"))
    assert (tmp_path / "a.bin").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_gunzipped_checksum_of_a_file_that_is_not_gzip(local_server, tmp_path):
    local_server.files["/a.gz"] = CONTENT
    with pytest.raises(DownloadError, match="not a valid gzip file"):
        fetch(local_server.url("/a.gz"), tmp_path / "a.gz", sha256(CONTENT), sha256_of="gunzipped")
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_server_names_the_file_the_url_and_the_folder(local_server, tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/data/a.bin"
    dest = tmp_path / "sets" / "a.bin"
    with pytest.raises(DownloadError) as caught:
        fetch(url, dest, timeout=5)
    error = caught.value
    assert isinstance(error, OSError)
    message = str(error)
    assert "a.bin" in message
    assert url in message
    assert str(dest.parent) in message
    assert "could not be reached" in message
    assert (error.url, error.dest) == (url, dest)
    assert list(tmp_path.iterdir()) == []  # not even the folders made for dest


def test_an_http_error_is_a_download_error(local_server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(local_server.url("/missing.bin"), tmp_path / "missing.bin")
    assert list(tmp_path.iterdir()) == []


def test_a_connection_dropped_mid_way_leaves_no_partial_file(local_server, tmp_path):
    local_server.files["/a.bin"] = CONTENT
    local_server.cut["/a.bin"] = len(CONTENT) // 2
    with pytest.raises(DownloadError, match=f"broke off after {len(CONTENT) // 2} of"):
        fetch(local_server.url("/a.bin"), tmp_path / "a.bin")
    assert list(tmp_path.iterdir()) == []


def test_an_interruption_mid_way_leaves_no_partial_file(local_server, tmp_path, monkeypatch):
    """Ctrl-C after the first chunk: the KeyboardInterrupt passes through, the file does not."""

    class InterruptedBar:
        def __init__(self, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            raise KeyboardInterrupt

    monkeypatch.setattr(download, "tqdm", InterruptedBar)
    local_server.files["/a.bin"] = CONTENT
    with pytest.raises(KeyboardInterrupt):
        fetch(local_server.url("/a.bin"), tmp_path / "a.bin")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_made_is_a_download_error(local_server, tmp_path):
    (tmp_path / "a-file").write_bytes(b"")
    local_server.files["/a.bin"] = CONTENT
    with pytest.raises(DownloadError, match="cannot write to the folder"):
        fetch(local_server.url("/a.bin"), tmp_path / "a-file" / "a.bin")
    assert local_server.requests == []  # nothing downloaded that could not be kept


def test_sha256_of_must_be_known(tmp_path):
    with pytest.raises(ValueError, match="sha256_of"):
        fetch("http://127.0.0.1:1/a", tmp_path / "a", "00", sha256_of="zip")


def test_download_error_survives_a_copy():
    error = DownloadError("http://127.0.0.1/a.bin", Path("/data/a.bin"), "a reason", ("b.bin",))
    copied = copy.copy(error)
    for name in ("url", "dest", "reason", "also"):
        assert getattr(copied, name) == getattr(error, name)
    assert str(copied) == str(error)
    assert "also lacks b.bin" in str(error)


# ---- find_folder: the data set's sub-folder, or data_dir itself ------------------------------


def test_find_folder_takes_the_sub_folder_then_data_dir_itself_then_the_sub_folder_to_make(
    tmp_path,
):
    files = ("a.bin", "b.bin")
    assert find_folder(tmp_path, ("set", "."), files) == tmp_path / "set"  # nothing: download
    (tmp_path / "b.bin").write_bytes(b"")  # data_dir is the folder that holds the files
    assert find_folder(tmp_path, ("set", "."), files) == tmp_path
    (tmp_path / "set").mkdir()
    assert find_folder(tmp_path, ("set", "."), files) == tmp_path  # an empty sub-folder: no
    (tmp_path / "set" / "a.bin").write_bytes(b"")
    assert find_folder(tmp_path, ("set", "."), files) == tmp_path / "set"  # both: the first
    assert not (tmp_path / "other").exists()


def test_a_failed_download_removes_only_the_folders_it_made(tmp_path, offline_url):
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "old.bin").write_bytes(b"old")
    dest = tmp_path / "kept" / "made" / "deeper" / "a.bin"
    with pytest.raises(DownloadError):
        fetch(offline_url + "a.bin", dest, timeout=5)
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["old.bin"]


def test_the_message_names_the_python_argument_and_words_it_for_a_command_line():
    error = DownloadError(
        "http://127.0.0.1/a.bin",
        Path("/data/set/a.bin"),
        "a reason",
        ("b.bin",),
        ("a.bin", "b.bin"),
    )
    assert "point data_dir= or TINYDEEP_DATA at a folder that already holds a.bin and b.bin" in (
        str(error)
    )
    cli = error.explain("--data-dir")
    assert "point --data-dir or TINYDEEP_DATA" in cli and "data_dir=" not in cli
    assert cli.replace("--data-dir", "data_dir=") == str(error)  # the same facts
    assert copy.copy(error).holds == ("a.bin", "b.bin")
