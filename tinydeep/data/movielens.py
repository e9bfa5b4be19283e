"""MovieLens 100K (GroupLens, 1998): 100,000 ratings of 1,682 movies by 943 users, read with
NumPy, and the usual ways to split them for recommendation.

The canonical file is GroupLens's archive `ml-100k.zip`; five of its members are read, from
the archive in memory or from a folder that holds them (FILES):
    u.data        one rating a line: user id, movie id, rating (1-5), Unix time, tab-separated
    u.item        one movie a line: id|title|release date|video release date|IMDb URL|19 flags
    u.user        one user a line: id|age|gender|occupation|zip code
    u.genre       the names of the 19 genre flags: name|index
    u.occupation  the names of the occupations, one a line
Ids in u.user and u.item run 1, 2, 3, ... in file order; the arrays here count from 0 (user
u is the file's user u + 1), so an id is a row of the user or movie table and an embedding
index at once. Every file is Latin-1 (titles such as 'Misérables, Les (1995)'). What is
checked, each fault named by file and line (MovieLensError): ids 1, 2, 3, ... in u.user and
u.item; every rating's user and movie among them; ratings 1-5; one 0/1 flag per genre of
u.genre; known genders, occupations and dates. Blank lines may end a file, not split it.
Reading the real files takes about 0.05 s (NumPy's loadtxt reads u.data at C speed).

Read MovieLens (what a load returns), then read_folder / read_archive and the parsers under
them (the format, and the checks that name a file and line), then load_movielens_100k (where
the files live, downloading), then the splits: random_split, temporal_split,
leave_last_one_out, and sample_negatives (the NCF paper's evaluation protocol).

Left out: u.item's video release date and IMDb URL columns (read past, never kept), u.info,
and the archive's ready-made splits (u1.base ... ua.test, which the splits here replace).
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinydeep.data.download import DownloadError, fetch, find_folder

URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ARCHIVE = "ml-100k.zip"
# 4,924,029 bytes; GroupLens's ml-100k.zip.md5 says 0e33842e24a9c977be4e0107933c0723.
SHA256 = "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"
FOLDER = "movielens-100k"
FILES = ("u.data", "u.item", "u.user", "u.genre", "u.occupation")
PREFIX = "ml-100k/"  # the folder every member of the archive sits in
# The largest member read from an archive: the real u.data is 1,979,173 bytes, so a bigger
# one is not MovieLens 100K, and a zip bomb stops here rather than filling memory.
MAX_MEMBER = 1 << 25

MONTHS = {"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6}
MONTHS |= {"Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}


class MovieLensError(ValueError):
    """A MovieLens file does not hold what is expected; the message names the file and line."""


# eq=False: dataclass equality would compare arrays, which have no single truth value.
@dataclass(frozen=True, eq=False)
class MovieLens:
    """MovieLens 100K as arrays. N ratings (100,000), U users (943), I movies (1,682).

    Ratings, one row per rating in the order of u.data:
        user, item (N,) int64, 0-based; rating (N,) int64 in 1..5; timestamp (N,) int64, Unix s
    Users, row u = user u:
        age (U,) int64; gender (U,) str 'M'/'F'; occupation (U,) int64 index into
        `occupations`; zip_code (U,) str (not all are numbers: 'T8H1N')
    Movies, row i = movie i:
        title (I,) str; release_date (I,) datetime64[D], NaT where u.item has none;
        genres (I, G) bool, columns in the order of `genre_names` (G = 19)
    genre_names: from u.genre, by its index column ('unknown' first); occupations: from
    u.occupation, in file order (21).
    """

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    age: np.ndarray
    gender: np.ndarray
    occupation: np.ndarray
    zip_code: np.ndarray
    title: np.ndarray
    release_date: np.ndarray
    genres: np.ndarray
    genre_names: tuple[str, ...]
    occupations: tuple[str, ...]

    @property
    def num_users(self) -> int:
        return len(self.age)

    @property
    def num_items(self) -> int:
        return len(self.title)

    def __repr__(self) -> str:
        return (
            f"MovieLens({len(self.rating):,} ratings, {self.num_users:,} users, "
            f"{self.num_items:,} movies, {len(self.genre_names)} genres)"
        )


# ---- the format --------------------------------------------------------------------------------


def read_folder(folder: str | os.PathLike) -> MovieLens:
    """MovieLens from a folder holding the five FILES (as the archive unpacks them)."""
    folder = Path(folder)
    return _parse({name: (folder / name).read_bytes() for name in FILES}, f"{folder}{os.sep}")


def read_archive(path: str | os.PathLike) -> MovieLens:
    """MovieLens from ml-100k.zip, its members ml-100k/u.data ... read straight from the archive.

    Only the five members are read, into memory; nothing is extracted, so no name in the
    archive ever reaches the file system. An archive that cannot be read, lacks a member (or
    holds it as a link or larger than MAX_MEMBER), or names a path outside itself (`/x`,
    `../x`) raises DownloadError (delete it to download it again).
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = {info.filename: info for info in archive.infolist()}  # the last of a name
            hostile = [
                n for n in infos if n.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", n)
            ]
            problems = [_member_problem(infos.get(PREFIX + name), PREFIX + name) for name in FILES]
            problems = [problem for problem in problems if problem]
            if not (hostile or problems):  # read() checks each member's CRC
                data = {name: archive.read(infos[PREFIX + name]) for name in FILES}
    # RuntimeError: an encrypted member; NotImplementedError: an unknown compression method.
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        zlib.error,
        RuntimeError,
        NotImplementedError,
    ) as error:
        raise DownloadError(
            URL, path, f"the archive cannot be read ({error}); delete it to download it again"
        ) from error
    if hostile:  # never written anywhere, but the sign of a made-up archive
        problems = [f"it names paths outside itself ({', '.join(map(repr, hostile[:3]))})"]
    if problems:
        raise DownloadError(
            URL,
            path,
            f"{ARCHIVE} is not the archive expected: {problems[0]}; delete it to download it again",
        )
    return _parse(data, f"{path}!{PREFIX}")


def _member_problem(info: zipfile.ZipInfo | None, name: str) -> str | None:
    """What keeps the member `name` (its ZipInfo, None if absent) from being read, if anything."""
    if info is None:
        return f"it lacks {name}"
    # The Unix file type, where the archive records one (0 where it does not: Windows zips).
    kind = stat.S_IFMT(info.external_attr >> 16)
    if info.is_dir() or kind not in (0, stat.S_IFREG):  # a symbolic link, say
        return f"its {name} is not a regular file"
    if info.file_size > MAX_MEMBER:  # zipfile never inflates past the size the header gives
        return f"its {name} holds {info.file_size:,} bytes, more than MovieLens 100K's files"
    return None


def _parse(data: dict[str, bytes], where: str) -> MovieLens:
    """MovieLens from the bytes of the five files; `where` + a file's name says where it is.

    The small tables come first, as each later one is checked against them: the occupations
    and genres name what u.user and u.item refer to, and u.user and u.item say which ids u.data
    may hold.
    """
    lines = {name: _lines(data[name].decode("latin-1"), where + name) for name in FILES}
    occupations = _occupations(lines["u.occupation"], where + "u.occupation")
    genre_names = _genre_names(lines["u.genre"], where + "u.genre")
    users = _users(lines["u.user"], where + "u.user", occupations)
    movies = _movies(lines["u.item"], where + "u.item", len(genre_names))
    ratings = _ratings(lines["u.data"], where + "u.data", len(users[0]), len(movies[0]))
    return MovieLens(*ratings, *users, *movies, genre_names=genre_names, occupations=occupations)


def _lines(text: str, name: str) -> list[str]:
    """The lines of a file, trailing blank lines dropped; a blank line among the rows is an
    error (a row lost in the middle would shift every id after it).

    Split at "\\n" alone: str.splitlines would also split at U+0085, the Latin-1 byte 0x85.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    blank = next((n for n, line in enumerate(lines, 1) if not line.strip()), None)
    if blank is not None:
        raise MovieLensError(f"{name} line {blank}: a blank line before the last row")
    if not lines:
        raise MovieLensError(f"{name}: the file holds no rows")
    return lines


def _fields(line: str, number: int, name: str, count: int, what: str) -> list[str]:
    """The `count` |-separated fields of one line, or an error naming the line."""
    fields = line.split("|")
    if len(fields) != count:
        raise MovieLensError(
            f"{name} line {number}: expected {count} fields separated by | ({what}), "
            f"got {len(fields)}: {line!r}"
        )
    return fields


def _int(text: str, number: int, name: str, what: str) -> int:
    if not text.isdigit() or not text.isascii():  # no sign, no space: the files have none
        raise MovieLensError(f"{name} line {number}: {what} {text!r} is not a whole number")
    return int(text)


def _id(text: str, number: int, name: str, what: str) -> int:
    """The id at the start of a line, which must be the line's number (ids run 1, 2, 3 ...)."""
    value = _int(text, number, name, what)
    if value != number:
        raise MovieLensError(
            f"{name} line {number}: {what} {value}, expected {number} (ids run 1, 2, 3, ... "
            "in file order)"
        )
    return value


def _occupations(lines: list[str], name: str) -> tuple[str, ...]:
    """u.occupation: one name a line; names are distinct."""
    for number, line in enumerate(lines, 1):
        if line in lines[: number - 1] or line != line.strip():
            raise MovieLensError(f"{name} line {number}: {line!r} is blank-edged or repeated")
    return tuple(lines)


def _genre_names(lines: list[str], name: str) -> tuple[str, ...]:
    """u.genre: name|index a line; the indices are 0 .. G-1, each once, in any order."""
    by_index = {}
    for number, line in enumerate(lines, 1):
        genre, index = _fields(line, number, name, 2, "name|index")
        index = _int(index, number, name, "genre index")
        if index >= len(lines) or index in by_index:
            raise MovieLensError(
                f"{name} line {number}: genre index {index} repeated or not in 0..{len(lines) - 1}"
            )
        by_index[index] = genre
    return tuple(by_index[i] for i in range(len(lines)))


def _users(lines: list[str], name: str, occupations: tuple[str, ...]):
    """u.user: id|age|gender|occupation|zip code -> age, gender, occupation, zip_code (U,)."""
    occupation_index = {o: i for i, o in enumerate(occupations)}
    rows = []
    for number, line in enumerate(lines, 1):
        fields = _fields(line, number, name, 5, "id|age|gender|occupation|zip code")
        _id(fields[0], number, name, "user id")
        age = _int(fields[1], number, name, "age")
        if fields[2] not in ("M", "F"):
            raise MovieLensError(f"{name} line {number}: gender {fields[2]!r}, expected M or F")
        if fields[3] not in occupation_index:
            raise MovieLensError(
                f"{name} line {number}: occupation {fields[3]!r} is not in u.occupation"
            )
        rows.append((age, fields[2], occupation_index[fields[3]], fields[4]))
    age, gender, occupation, zip_code = zip(*rows)
    return (
        np.array(age, np.int64),
        np.array(gender, str),
        np.array(occupation, np.int64),
        np.array(zip_code, str),
    )


def _movies(lines: list[str], name: str, num_genres: int):
    """u.item: id|title|release date|video release date|IMDb URL|G flags -> title (I,),
    release_date (I,) datetime64[D], genres (I, G) bool. The video release date (empty in
    every row) and the URL are read past."""
    titles, dates = [], []
    genres = np.zeros((len(lines), num_genres), dtype=bool)
    what = f"id|title|release date|video release date|IMDb URL|{num_genres} genre flags"
    for number, line in enumerate(lines, 1):
        fields = _fields(line, number, name, 5 + num_genres, what)
        _id(fields[0], number, name, "movie id")
        titles.append(fields[1])
        dates.append(_date(fields[2], number, name))
        flags = fields[5:]
        if not set(flags) <= {"0", "1"}:
            raise MovieLensError(f"{name} line {number}: genre flags {flags}, expected 0 or 1")
        genres[number - 1] = [flag == "1" for flag in flags]
    return np.array(titles, str), np.array(dates, "datetime64[D]"), genres


def _date(text: str, number: int, name: str) -> np.datetime64:
    """'01-Jan-1995' as a datetime64[D]; '' (movie 267, 'unknown') as NaT. The month names are
    spelt out here: strptime's %b would follow the locale."""
    if not text:
        return np.datetime64("NaT", "D")
    match = re.fullmatch(r"(\d\d?)-([A-Z][a-z][a-z])-(\d{4})", text)  # one row has '4-Feb-1971'
    try:
        if not match or match[2] not in MONTHS:
            raise ValueError
        return np.datetime64(f"{match[3]}-{MONTHS[match[2]]:02d}-{int(match[1]):02d}", "D")
    except ValueError:  # also a day that the month lacks: '31-Feb-1995'
        raise MovieLensError(
            f"{name} line {number}: release date {text!r}, expected a date such as 01-Jan-1995"
        ) from None


def _ratings(lines: list[str], name: str, num_users: int, num_items: int):
    """u.data: user id, movie id, rating, timestamp (tab-separated) -> user, item (0-based),
    rating, timestamp, each (N,) int64.

    NumPy's loadtxt reads all 100,000 rows at C speed; only when it fails are the lines walked
    one by one in Python, to name the first bad one.
    """
    try:
        table = np.loadtxt(lines, dtype=np.int64, delimiter="\t", comments=None, ndmin=2)
    except ValueError:
        table = None
    if table is None or table.shape != (len(lines), 4):
        for number, line in enumerate(lines, 1):
            fields = line.split("\t")
            if len(fields) != 4 or not all(f.isdigit() and f.isascii() for f in fields):
                raise MovieLensError(
                    f"{name} line {number}: expected 4 whole numbers separated by tabs (user "
                    f"id, movie id, rating, timestamp), got {line!r}"
                )
        raise MovieLensError(f"{name}: not a table of 4 whole numbers a line")
    user, item, rating, timestamp = table.T  # row r is line r + 1: no line was skipped
    for values, low, high, what in (
        (user, 1, num_users, "user id"),
        (item, 1, num_items, "movie id"),
        (rating, 1, 5, "rating"),
    ):
        bad = np.flatnonzero((values < low) | (values > high))
        if bad.size:
            raise MovieLensError(
                f"{name} line {bad[0] + 1}: {what} {values[bad[0]]}, expected {low} to {high}"
                + (" (the ids of u.user)" if what == "user id" else "")
                + (" (the ids of u.item)" if what == "movie id" else "")
            )
    # Copies, so that each array owns its memory (a column of `table` is a strided view).
    return user - 1, item - 1, rating.copy(), timestamp.copy()


# ---- where the files live ----------------------------------------------------------------------


def load_movielens_100k(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> MovieLens:
    """MovieLens 100K: 100,000 ratings, 943 users, 1,682 movies (see MovieLens).

    The files are looked for in `<data_dir>/movielens-100k/`, else `<data_dir>/ml-100k/` (the
    archive unpacked), else data_dir itself (data_dir as in tinydeep.data.data_dir; see
    find_folder). A folder holding the five FILES is read as it is; else one holding
    ml-100k.zip is read from the archive (nothing is extracted). When it holds neither and
    download=True, the archive is downloaded there and checked against its SHA-256; else
    FileNotFoundError says what to download and where to put it.
    """
    folder = find_folder(data_dir, (FOLDER, "ml-100k", "."), [*FILES, ARCHIVE])
    if all((folder / name).is_file() for name in FILES):
        return read_folder(folder)
    archive = folder / ARCHIVE
    if not archive.is_file():
        if not download:
            missing = [name for name in FILES if not (folder / name).is_file()]
            raise FileNotFoundError(
                f"load_movielens_100k: {folder} holds neither {ARCHIVE} nor all of "
                f"{', '.join(FILES)} (it lacks {', '.join(missing)}) and download=False.\n"
                f"  Download {ARCHIVE} from {URL}\n  and put it in {folder}{os.sep}"
            )
        fetch(URL, archive, SHA256, holds=[f"{ARCHIVE} or {', '.join(FILES)}"])
    return read_archive(archive)


# ---- splits: index arrays into the ratings -----------------------------------------------------


def random_split(
    num_ratings: int, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """train, test: sorted int64 indices into the ratings, disjoint, together all of them.

    test holds floor(test_fraction * num_ratings) ratings (see _test_count), drawn uniformly
    with np.random.default_rng(seed): the same seed gives the same split.
    """
    _check_fraction("random_split", test_fraction)
    _check_count("random_split", "num_ratings", num_ratings, 0)
    order = np.random.default_rng(seed).permutation(num_ratings)
    test_count = int(_test_count(test_fraction, np.array([num_ratings]))[0])
    return np.sort(order[test_count:]), np.sort(order[:test_count])


def temporal_split(
    user: np.ndarray, timestamp: np.ndarray, test_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """train, test: sorted int64 indices into the ratings; each user's latest ratings are test.

    Per user, that user's ratings are ordered by time (ties keep file order) and the last
    floor(test_fraction * count) go to test (see _test_count): a user with fewer than
    1 / test_fraction ratings keeps them all in train. user, timestamp: (N,).
    """
    user, timestamp = _check_ratings("temporal_split", user, timestamp)
    _check_fraction("temporal_split", test_fraction)
    return _latest_per_user(user, timestamp, lambda count: _test_count(test_fraction, count))


def leave_last_one_out(user: np.ndarray, timestamp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """train, test: sorted int64 indices into the ratings; test holds each user's latest
    rating (of ties in time, the last in file order), the protocol of the NCF paper (He et al.,
    Neural Collaborative Filtering, 2017). A user with one rating has none left in train."""
    user, timestamp = _check_ratings("leave_last_one_out", user, timestamp)
    return _latest_per_user(user, timestamp, np.ones_like)


def _latest_per_user(user, timestamp, how_many) -> tuple[np.ndarray, np.ndarray]:
    """train, test where test holds, of each user's ratings ordered by time, the last
    how_many(count) (count: (users,) ratings per user, in the order of np.unique(user))."""
    # lexsort sorts by the last key first and is stable: by user, then by time, then by row.
    order = np.lexsort((timestamp, user))
    sorted_user = user[order]
    starts = np.flatnonzero(np.r_[True, sorted_user[1:] != sorted_user[:-1]])  # (users,)
    counts = np.diff(np.r_[starts, len(user)])
    group = np.repeat(np.arange(len(starts)), counts)  # (N,) each sorted row's user
    position = np.arange(len(user)) - starts[group]  # 0 for a user's earliest rating
    is_test = position >= (counts - how_many(counts))[group]
    return np.sort(order[~is_test]), np.sort(order[is_test])


def _test_count(test_fraction: float, count: np.ndarray) -> np.ndarray:
    """floor(test_fraction * count) as int64: rounded down, so a test set is never larger than
    asked. 1e-9 is added first so that 0.29 * 100 (28.999999999999996 in floating point)
    counts as 29, as written."""
    return np.floor(test_fraction * count + 1e-9).astype(np.int64)


def sample_negatives(
    user: np.ndarray,
    item: np.ndarray,
    num_items: int,
    users: np.ndarray,
    count: int = 99,
    seed: int = 0,
) -> np.ndarray:
    """(len(users), count) int64: for each of `users`, `count` distinct items that user never
    rated in (user, item), drawn uniformly without replacement with np.random.default_rng(seed).

    The NCF evaluation protocol: each user's held-out item is ranked among 99 such negatives
    (HR@10, NDCG@10). Pass all the ratings (train and test) as (user, item), so that no
    negative is an item the user rated anywhere. user, item: (N,) ids; items are 0..num_items-1.
    Raises ValueError when a user has fewer than `count` items unrated.
    """
    name = "sample_negatives"
    user, item = _check_ratings(name, user, item, ("user", "item"))
    users = _check_ids(name, "users", users)
    _check_count(name, "num_items", num_items, 1)
    _check_count(name, "count", count, 0)
    if item.size and (item.min() < 0 or item.max() >= num_items):
        raise ValueError(
            f"{name}: item must hold ids in 0..{num_items - 1} (num_items={num_items}), got "
            f"ids from {item.min()} to {item.max()}"
        )
    # rated[r, i]: the r-th distinct user of `users` rated item i.
    distinct, row_of = np.unique(users, return_inverse=True)
    where = np.minimum(np.searchsorted(distinct, user), max(len(distinct) - 1, 0))
    mine = distinct[where] == user if len(distinct) else np.zeros(len(user), bool)
    rated = np.zeros((len(distinct), num_items), dtype=bool)
    rated[where[mine], item[mine]] = True
    short = np.flatnonzero(num_items - rated.sum(axis=1) < count)
    if short.size:
        raise ValueError(
            f"{name}: user {distinct[short[0]]} has {num_items - rated[short[0]].sum()} unrated "
            f"items, fewer than count={count}"
        )
    rng = np.random.default_rng(seed)
    negatives = np.empty((len(users), count), dtype=np.int64)
    block = 1024  # users at a time: the random keys of a block take block * num_items floats
    for start in range(0, len(users), block):
        rows = row_of[start : start + block]
        # A random key per item, rated ones keyed out of reach: the `count` smallest keys are a
        # uniform sample without replacement of the unrated items, in random order.
        keys = rng.random((len(rows), num_items))
        keys[rated[rows]] = 2.0
        smallest = np.argpartition(keys, max(count - 1, 0), axis=1)[:, :count]
        order = np.argsort(np.take_along_axis(keys, smallest, axis=1), axis=1)
        negatives[start : start + block] = np.take_along_axis(smallest, order, axis=1)
    return negatives


# ---- argument checks ---------------------------------------------------------------------------


def _check_fraction(name: str, test_fraction: float) -> None:
    if not isinstance(test_fraction, (float, int, np.floating)) or not 0 < test_fraction < 1:
        raise ValueError(f"{name}: test_fraction must be in (0, 1), got {test_fraction!r}")


def _check_count(name: str, arg: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}: {arg} must be an int >= {low}, got {value!r}")


def _check_ids(name: str, arg: str, values) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"{name}: {arg} must be a 1-D array of integers, got {values.dtype} {values.shape}"
        )
    return values.astype(np.int64, copy=False)


def _check_ratings(name: str, user, other, args: tuple[str, str] = ("user", "timestamp")):
    """user and the other column (timestamp or item) as 1-D int64 arrays of one length."""
    user, other = _check_ids(name, args[0], user), _check_ids(name, args[1], other)
    if len(user) != len(other):
        raise ValueError(
            f"{name}: {args[0]} and {args[1]} must have the same length, got {len(user)} and "
            f"{len(other)}"
        )
    return user, other
