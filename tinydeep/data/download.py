"""Where data sets live on disk, and how a missing file gets there safely.

Read in this order:
  1. data_dir         which folder holds the data sets (argument, TINYDEEP_DATA, or a cache)
  2. find_folder      where in it one data set's files are: its sub-folder, or data_dir itself
  3. DownloadError    the one error a failed download raises: what, from where, to where
  4. fetch            download one file: progress bar, SHA-256 check, atomic write
  5. new_folder       make a folder for a download, and take it away again if the download fails

A download never leaves a half-written file behind: bytes go to a temporary file in the same
folder, which is flushed to disk (fsync) and checked before `os.replace` gives it its real
name in one step. A failure, an interruption or a bad checksum deletes the temporary file,
and the folders that the download created, if they are still empty.

Left out: retries, resuming a partial download, and mirrors; a failed download says where to
get the file by hand instead.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from tinydeep.safe_npz import file_mode

CHUNK = 1 << 16  # bytes read from the network per step, and hashed per step


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The folder that holds the data sets: `path` when given, else the environment variable
    TINYDEEP_DATA, else a per-user cache ($XDG_CACHE_HOME/tinydeep or ~/.cache/tinydeep).

    The folder is not created here; `fetch` creates it when it first writes into it.
    """
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get("TINYDEEP_DATA"):
        return Path(os.environ["TINYDEEP_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "tinydeep"


def find_folder(
    path: str | os.PathLike | None, layouts: Sequence[str], files: Sequence[str]
) -> Path:
    """The folder that holds a data set's `files`: the first of `data_dir(path) / layout`, for
    each layout in order, that holds any of them; when none does, the first layout's folder
    (where a download puts them).

    layouts: sub-paths, the usual one first and "." (data_dir itself) among the others, so
    that `path` may be the folder that holds the data sets or the one that holds the files.
    When both hold some, the first layout wins: a folder that works today keeps working.
    """
    root = data_dir(path)
    for layout in layouts:
        if any((root / layout / name).is_file() for name in files):
            return root / layout
    return root / layouts[0]


class DownloadError(OSError):
    """A file could not be downloaded (or written, or it failed its checksum).

    The message names the file, the URL to download it from by hand, and the folder to put
    it in; `also` names other files missing from that folder, found at the same address;
    `holds` names what a folder must hold to be used as it is (a loader fills it in).
    The same facts are attributes: `url`, `dest` (a Path), `reason`, `also` and `holds`.
    str(error) names the Python argument `data_dir=`; `explain("--data-dir")` words the same
    message for a command-line flag.
    """

    def __init__(
        self,
        url: str,
        dest: Path,
        reason: str,
        also: tuple[str, ...] = (),
        holds: tuple[str, ...] = (),
    ):
        self.url, self.dest, self.reason = url, Path(dest), reason
        self.also, self.holds = tuple(also), tuple(holds)
        super().__init__(self.explain("data_dir="))

    def explain(self, setting: str) -> str:
        """The message, naming `setting` ("data_dir=", "--data-dir") as the way to point at a
        folder that already holds the files."""
        lines = [
            f"could not download {self.dest.name}: {self.reason}.",
            f"  Download it by hand from {self.url}",
            f"  and put it in {self.dest.parent}{os.sep}",
        ]
        if self.also:
            lines.append(f"  (that folder also lacks {', '.join(self.also)}: same address)")
        names = self.holds or ("it",)
        what = names[-1] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        lines.append(
            f"  (or point {setting} or TINYDEEP_DATA at a folder that already holds {what})"
        )
        return "\n".join(lines)

    def __reduce__(self):  # OSError's default would rebuild it from the message alone
        return type(self), (self.url, self.dest, self.reason, self.also, self.holds)


def fetch(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None = None,
    *,
    sha256_of: str = "file",
    timeout: float = 60.0,
    progress: bool = True,
    also: Sequence[str] = (),
    holds: Sequence[str] = (),
) -> Path:
    """Download `url` to the file `dest` (its folder is created) and return `dest` as a Path.

    sha256: the expected SHA-256 (hex) or None to check nothing. sha256_of: "file" hashes the
        bytes as downloaded; "gunzipped" hashes the content of a .gz file, which stays the same
        when a mirror recompresses the file.
    timeout: seconds to wait for the server on each read. progress: show a tqdm bar (it hides
        itself when stderr is not a terminal).
    also, holds: for the error's message (see DownloadError): the other files missing beside
        `dest`, and what a folder must hold to be used as it is.

    Raises DownloadError when the server cannot be reached, the transfer breaks off, the folder
    cannot be written or the checksum does not match; `dest` is then untouched, and the folders
    made for it are gone again.
    """
    if sha256_of not in ("file", "gunzipped"):
        raise ValueError(f"fetch: sha256_of must be 'file' or 'gunzipped', got {sha256_of!r}")
    dest = Path(dest)
    try:
        with new_folder(dest.parent, url, dest):
            return _fetch(url, dest, sha256, sha256_of, timeout, progress)
    except DownloadError as error:
        if not (also or holds):
            raise
        raise DownloadError(error.url, error.dest, error.reason, also, holds) from error


def _fetch(url, dest: Path, sha256, sha256_of, timeout, progress) -> Path:
    """fetch, in a folder that exists: a temporary file, checked, then renamed."""
    try:
        # Same folder as dest, so that os.replace is a rename within one file system.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as error:
        raise DownloadError(
            url, dest, f"cannot write to the folder {dest.parent} ({error})"
        ) from error
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _download(url, dest, out, timeout, progress)
            if os.name == "posix":  # open()'s permissions, not mkstemp's owner-only ones
                os.fchmod(out.fileno(), file_mode(dest))
            out.flush()
            os.fsync(out.fileno())  # the bytes are on disk before the file gets its name
        if sha256 is not None:
            if sha256_of == "gunzipped":
                digest = _gunzipped_sha256(tmp, url, dest)
            if digest != sha256.lower():
                raise DownloadError(
                    url,
                    dest,
                    f"its SHA-256 ({sha256_of}) is {digest}, expected {sha256} "
                    "(a corrupted transfer or a changed file); nothing was saved",
                )
        os.replace(tmp, dest)
    except BaseException:  # also KeyboardInterrupt: no half-written file survives
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(dest.parent)
    return dest


@contextmanager
def new_folder(folder: Path, url: str, dest: Path) -> Iterator[None]:
    """Create `folder` and its missing parents for a download of `url` to `dest`; if the block
    fails, remove again the folders made here that are still empty (nothing else is touched).

    A folder that cannot be made is a DownloadError naming it.
    """
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(url, dest, f"cannot write to the folder {folder} ({error})") from error
    try:
        yield
    except BaseException:
        for path in made:
            try:
                path.rmdir()  # only an empty folder: what another process put there stays
            except OSError:
                break
        raise


def _download(url: str, dest: Path, out, timeout: float, progress: bool) -> str:
    """Stream `url` into the open file `out`; return the SHA-256 of the bytes received."""
    digest = hashlib.sha256()
    received = 0
    try:
        # A fresh opener reads the proxy settings from the environment at each call.
        with urllib.request.build_opener().open(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                disable=None if progress else True,
            ) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        raise DownloadError(
            url, dest, f"the server answered HTTP {error.code} {error.reason}"
        ) from error
    except urllib.error.URLError as error:  # no network, unknown host, refused, ...
        raise DownloadError(
            url, dest, f"the server could not be reached ({error.reason})"
        ) from error
    except (OSError, http.client.HTTPException) as error:  # reset, timeout, broken chunking
        raise DownloadError(
            url,
            dest,
            f"the transfer broke off after {received} bytes ({type(error).__name__}: {error})",
        ) from error
    # http.client returns b"" rather than raising when a connection closes early.
    if total is not None and received != total:
        raise DownloadError(url, dest, f"the transfer broke off after {received} of {total} bytes")
    return digest.hexdigest()


def _gunzipped_sha256(path: Path, url: str, dest: Path) -> str:
    """The SHA-256 of the decompressed content of the gzip file `path`."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    except (OSError, EOFError) as error:  # BadGzipFile is an OSError; a cut stream, EOFError
        raise DownloadError(
            url, dest, f"the download is not a valid gzip file ({error})"
        ) from error
    return digest.hexdigest()


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
