"""California housing (the 1990 census, one row per block group): StatLib's data, shaped as
scikit-learn's fetch_california_housing shapes it, read with NumPy.

The canonical file is the archive `cal_housing.tgz` that scikit-learn downloads (from
figshare; the data of Pace and Barry, 1997, on StatLib). It holds one table,
`CaliforniaHousing/cal_housing.data`: 20,640 rows of 9 comma-separated numbers, no header,
in the order of RAW_COLUMNS. `convert` turns a row into the 8 features and the target that
everyone uses (FEATURES, TARGET): three of the counts become averages per household, and the
house value is counted in units of 100,000 USD.

Read RAW_COLUMNS and convert (the maths), then read_archive and read_csv (the two files a
folder may hold), then load_california_housing (where they live, downloading).
Shapes: x (N, 8) float64 in the order of FEATURES; y (N,) float64, MedHouseVal.

Left out: the archive's second member (cal_housing.domain, the column names), and any split
into training and test rows (the examples draw their own).
"""

from __future__ import annotations

import os
import tarfile
import warnings
from pathlib import Path

import numpy as np

from tinydeep.data.download import DownloadError, fetch, find_folder

URL = "https://ndownloader.figshare.com/files/5976036"  # scikit-learn's address for it
ARCHIVE = "cal_housing.tgz"
# The archive's SHA-256, as scikit-learn pins it (sklearn/datasets/_california_housing.py).
SHA256 = "aaa5c9a6afe2225cc2aed2723682ae403280c4a3695a2ddda4ffb5d8215ea681"
MEMBER = "CaliforniaHousing/cal_housing.data"  # the one member read; nothing is extracted
CSV = "california_housing.csv"  # the converted table, with a header: FEATURES, then TARGET
FOLDER = "california-housing"

# The columns of cal_housing.data, in file order (the names of its cal_housing.domain).
RAW_COLUMNS = (
    "longitude",
    "latitude",
    "housingMedianAge",
    "totalRooms",
    "totalBedrooms",
    "population",
    "households",
    "medianIncome",
    "medianHouseValue",  # USD
)
FEATURES = (
    "MedInc",  # median income, in 10,000 USD
    "HouseAge",  # median age of the houses, in years
    "AveRooms",  # rooms per household
    "AveBedrms",  # bedrooms per household
    "Population",
    "AveOccup",  # people per household
    "Latitude",
    "Longitude",
)
TARGET = "MedHouseVal"  # median house value, in 100,000 USD


class CaliforniaError(ValueError):
    """A California housing file does not hold the expected table; the message names it."""


def convert(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x (N, 8) and y (N,) from the (N, 9) rows of cal_housing.data, as scikit-learn does.

    scikit-learn reorders the columns with [8, 7, 2, 3, 4, 5, 6, 1, 0] and then divides in
    place; written out by name, the same divisions give the same numbers, bit for bit.
    """
    longitude, latitude, age, rooms, bedrooms, population, households, income, value = raw.T
    x = np.stack(
        [
            income,
            age,
            rooms / households,  # AveRooms
            bedrooms / households,  # AveBedrms
            population,
            population / households,  # AveOccup
            latitude,
            longitude,
        ],
        axis=1,
    )
    return x, value / 100_000.0  # MedHouseVal in 100,000 USD


def read_archive(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """x (N, 8) and y (N,) from cal_housing.tgz, its table read straight from the archive.

    Only the member MEMBER is read, into memory; nothing is extracted, so no name in the
    archive ever reaches the file system. An archive that cannot be read, lacks MEMBER as a
    regular file, or names a path outside itself (`/x`, `../x`) raises DownloadError (delete
    it to download it again); a table that is not 9 numbers per row raises CaliforniaError.
    """
    path = Path(path)
    try:
        with tarfile.open(path, "r:gz") as tar:
            names = tar.getnames()  # reads every header: a cut archive fails here
            member = tar.getmember(MEMBER) if MEMBER in names else None  # the last of the name
            # A link (not isfile) could point anywhere in the archive: only a file is read.
            data = tar.extractfile(member).read() if member and member.isfile() else None
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DownloadError(
            URL, path, f"the archive cannot be read ({error}); delete it to download it again"
        ) from error
    hostile = [name for name in names if name.startswith("/") or ".." in name.split("/")]
    if hostile or data is None:
        if hostile:  # never written anywhere, but the sign of a made-up archive
            problem = f"it names paths outside itself ({', '.join(map(repr, hostile[:3]))})"
        elif member:
            problem = f"its {MEMBER} is not a regular file"
        else:
            shown = ", ".join(map(repr, names[:5])) + (" ..." if len(names) > 5 else "")
            problem = f"it lacks {MEMBER} (it holds {shown or 'nothing'})"
        raise DownloadError(
            URL,
            path,
            f"{ARCHIVE} is not the archive expected: {problem}; delete it to download it again",
        )
    raw = _table(data.decode("latin-1").splitlines(), f"{path}!{MEMBER}", len(RAW_COLUMNS))
    if not (raw[:, RAW_COLUMNS.index("households")] > 0).all():
        raise CaliforniaError(f"{path}!{MEMBER}: a row has no households (averages divide by it)")
    return convert(raw)


def read_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """x (N, 8) and y (N,) from the converted table: a header naming FEATURES and TARGET (in
    that order, quoted or not), then one row of 9 numbers per block group."""
    path = Path(path)
    with open(path, encoding="utf-8") as file:
        header = [name.strip().strip('"') for name in file.readline().split(",")]
        expected = [*FEATURES, TARGET]
        if header != expected:
            raise CaliforniaError(f"{path}: expected the columns {expected}, got {header}")
        table = _table(file, str(path), len(expected))
    return table[:, :-1], table[:, -1]


def _table(lines, name: str, columns: int) -> np.ndarray:
    """The comma-separated numbers of `lines` (an open file, or a list of strings) as a
    (N, columns) float64 array; `name` says where they are from."""
    try:
        with warnings.catch_warnings():  # an empty table is an error below, not a warning
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(lines, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise CaliforniaError(f"{name}: not a table of numbers ({error})") from None
    if table.shape[0] == 0 or table.shape[1] != columns:
        raise CaliforniaError(
            f"{name}: {table.shape[0]} rows of {table.shape[1]} numbers, expected rows of {columns}"
        )
    if not np.isfinite(table).all():
        raise CaliforniaError(f"{name}: a value is not a finite number")
    return table


def load_california_housing(
    data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """California housing: x (20640, 8) float64 (FEATURES) and y (20640,) float64 (TARGET, the
    median house value in 100,000 USD), the numbers scikit-learn's fetch_california_housing
    returns.

    The files are looked for in `<data_dir>/california-housing/`, else in data_dir itself
    (data_dir as in tinydeep.data.data_dir; see find_folder). That folder may hold the
    converted table california_housing.csv (read first) or the archive cal_housing.tgz
    (converted as it is read). When it holds neither and download=True, the archive is
    downloaded there and checked against its SHA-256; else FileNotFoundError says what to
    download and where to put it.

    The converted table is not written out beside the archive: the archive is the file whose
    checksum is known, reading it costs about what reading a CSV costs (a fraction of a
    second), and a second copy could only drift from the first.
    """
    folder = find_folder(data_dir, (FOLDER, "."), [CSV, ARCHIVE])
    if (folder / CSV).is_file():
        return read_csv(folder / CSV)
    archive = folder / ARCHIVE
    if not archive.is_file():
        if not download:
            raise FileNotFoundError(
                f"load_california_housing: {folder} holds neither {CSV} nor {ARCHIVE} and "
                f"download=False.\n  Download {ARCHIVE} from {URL}\n  and put it in "
                f"{folder}{os.sep}"
            )
        fetch(URL, archive, SHA256, holds=[f"{ARCHIVE} or {CSV}"])
    return read_archive(archive)
