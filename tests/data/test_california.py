"""tinydeep/data/california.py: the real converted CSV, scikit-learn's conversion on an archive
built here (values computed by hand), the download path against a local HTTP server (good
archive, bad checksum, connection dropped halfway), folders used as they are, and archives that
are not the expected one."""

from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pytest

from tinydeep.data import california, load_california_housing
from tinydeep.data.download import DownloadError

# Three rows of cal_housing.data as the archive writes them (longitude, latitude,
# housingMedianAge, totalRooms, totalBedrooms, population, households, medianIncome,
# medianHouseValue); the first is the archive's first row.
RAW_ROWS = (
    "-122.230000,37.880000,41.000000,880.000000,129.000000,322.000000,126.000000,8.325200,452600.000000\n"
    "-118.000000,34.000000,20.000000,1000.000000,250.000000,1500.000000,500.000000,3.500000,150000.000000\n"
    "-120.500000,36.250000,5.000000,21.000000,7.000000,9.000000,3.000000,1.250000,14999.000000\n"
)
# scikit-learn's features and target for those rows, worked out by hand: MedInc, HouseAge,
# AveRooms = rooms / households, AveBedrms = bedrooms / households, Population,
# AveOccup = population / households, Latitude, Longitude; MedHouseVal = value / 100,000.
EXPECTED_X = [
    [8.3252, 41.0, 880 / 126, 129 / 126, 322.0, 322 / 126, 37.88, -122.23],
    [3.5, 20.0, 2.0, 0.5, 1500.0, 3.0, 34.0, -118.0],
    [1.25, 5.0, 7.0, 7 / 3, 9.0, 3.0, 36.25, -120.5],
]
EXPECTED_Y = [4.526, 1.5, 0.14999]

HEADER = ",".join(f'"{name}"' for name in (*california.FEATURES, california.TARGET))
SMALL_CSV = f"{HEADER}\n3.5,20,2,0.5,1500,3,34,-118,1.5\n"


def make_archive(members: dict[str, str | None]) -> bytes:
    """A .tgz holding `members`: name -> text (a file), or None (a symbolic link to
    /etc/passwd)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in members.items():
            info = tarfile.TarInfo(name)
            if text is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                data = text.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# Laid out as the real archive is: the table and the column names, in CaliforniaHousing/.
ARCHIVE = make_archive(
    {
        california.MEMBER: RAW_ROWS,
        "CaliforniaHousing/cal_housing.domain": "longitude: continuous.\n",
    }
)


def serve(local_server, monkeypatch, archive: bytes = ARCHIVE, sha256: str | None = None) -> None:
    """The loader's URL and checksum pointed at `archive` on the local server."""
    local_server.files["/cal_housing.tgz"] = archive
    monkeypatch.setattr(california, "URL", local_server.url("/cal_housing.tgz"))
    monkeypatch.setattr(california, "SHA256", sha256 or hashlib.sha256(archive).hexdigest())


def test_the_real_csv(data_root):
    folder = data_root("california-housing")
    x, y = load_california_housing(folder.parent, download=False)
    assert x.shape == (20_640, 8) and y.shape == (20_640,)
    assert x.dtype == np.float64 and y.dtype == np.float64
    # The first district, as the CSV writes it (from the archive's row 880 rooms, 129
    # bedrooms, 322 people in 126 households, 452,600 USD).
    assert x[0].tolist() == [
        8.3252,
        41.0,
        6.984126984126984,
        1.0238095238095235,
        322.0,
        2.555555555555556,
        37.88,
        -122.23,
    ]
    assert y[0] == 4.526
    assert 0.14 < y.min() and y.max() == 5.00001  # the census capped values at 500,001 USD


def test_the_real_csv_holds_what_the_conversion_makes_of_whole_counts(data_root):
    """The shared CSV was converted from the same archive, which is not on disk here; what can
    be checked is that its averages are whole counts over one whole number of households,
    and that `convert` makes the CSV's numbers again from those counts.

    households = Population / AveOccup, then rooms = AveRooms * households and bedrooms =
    AveBedrms * households, are whole numbers in every row, as is MedHouseVal * 100,000.
    Where the CSV was written, about a fifth of the averages came out one unit in the last
    place away from the plain division: hence rtol=1e-15, not equality.
    """
    x, y = load_california_housing(data_root("california-housing"), download=False)
    income, age, ave_rooms, ave_bedrooms, population, ave_occupancy, latitude, longitude = x.T
    counts = {
        "households": population / ave_occupancy,
        "value": y * 100_000,
    }
    counts["rooms"] = ave_rooms * np.round(counts["households"])
    counts["bedrooms"] = ave_bedrooms * np.round(counts["households"])
    for name, values in counts.items():
        assert np.abs(values - np.round(values)).max() < 1e-8, name
    households, value, rooms, bedrooms = (np.round(v) for v in counts.values())
    assert households.min() >= 1 and (bedrooms <= rooms).all()
    raw = np.stack(
        [longitude, latitude, age, rooms, bedrooms, population, households, income, value], 1
    )
    again_x, again_y = california.convert(raw)
    np.testing.assert_allclose(again_x, x, rtol=1e-15, atol=0)
    np.testing.assert_array_equal(again_y, y)


def test_download_verify_and_convert_as_scikit_learn_does(tmp_path, local_server, monkeypatch):
    serve(local_server, monkeypatch)
    x, y = load_california_housing(tmp_path)
    np.testing.assert_array_equal(x, EXPECTED_X)  # the same divisions: bit for bit
    np.testing.assert_array_equal(y, EXPECTED_Y)
    folder = tmp_path / "california-housing"
    assert [p.name for p in folder.iterdir()] == ["cal_housing.tgz"]  # nothing extracted
    assert (folder / "cal_housing.tgz").read_bytes() == ARCHIVE
    np.testing.assert_array_equal(load_california_housing(tmp_path)[0], EXPECTED_X)
    assert local_server.requests == ["/cal_housing.tgz"]  # downloaded once, then read from disk


def test_a_bad_checksum_or_a_dropped_connection_leaves_nothing(tmp_path, local_server, monkeypatch):
    serve(local_server, monkeypatch, sha256="0" * 64)
    with pytest.raises(DownloadError, match="SHA-256"):
        load_california_housing(tmp_path)
    assert list(tmp_path.iterdir()) == []  # no file, and not the folder made for it

    serve(local_server, monkeypatch)
    local_server.cut["/cal_housing.tgz"] = len(ARCHIVE) // 2
    with pytest.raises(DownloadError, match="broke off"):
        load_california_housing(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_offline_a_failed_download_says_where_and_leaves_nothing(
    tmp_path, monkeypatch, offline_url
):
    monkeypatch.setattr(california, "URL", offline_url + "cal_housing.tgz")
    with pytest.raises(DownloadError, match="could not be reached") as caught:
        load_california_housing(tmp_path / "data")
    assert not (tmp_path / "data").exists()  # neither data/ nor data/california-housing/
    assert caught.value.dest == tmp_path / "data" / "california-housing" / "cal_housing.tgz"
    message = caught.value.explain("--data-dir")
    assert offline_url + "cal_housing.tgz" in message and "--data-dir" in message
    assert "already holds cal_housing.tgz or california_housing.csv" in message


def test_offline_without_download_says_what_to_fetch(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        load_california_housing(tmp_path, download=False)
    message = str(caught.value)
    assert f"Download cal_housing.tgz from {california.URL}" in message
    assert f"and put it in {tmp_path / 'california-housing'}" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("layout", ["california-housing", "."])
@pytest.mark.parametrize("name", ["california_housing.csv", "cal_housing.tgz"])
def test_a_data_dir_that_holds_the_files_is_used_as_it_is(
    tmp_path, monkeypatch, offline_url, layout, name
):
    """data_dir may hold california-housing/ or be it, with the CSV or the archive in it;
    offline, each is read as it is, and nothing is made beside it."""
    monkeypatch.setattr(california, "URL", offline_url + "cal_housing.tgz")
    (tmp_path / layout).mkdir(exist_ok=True)
    data = SMALL_CSV.encode() if name.endswith(".csv") else ARCHIVE
    (tmp_path / layout / name).write_bytes(data)
    before = sorted(tmp_path.rglob("*"))
    x, _ = load_california_housing(tmp_path)
    assert x[1 if name.endswith(".tgz") else 0].tolist() == EXPECTED_X[1]
    assert sorted(tmp_path.rglob("*")) == before


def test_the_csv_is_read_before_the_archive(tmp_path):
    (tmp_path / "california_housing.csv").write_text(SMALL_CSV)
    (tmp_path / "cal_housing.tgz").write_bytes(b"not read")
    assert load_california_housing(tmp_path, download=False)[1].tolist() == [1.5]


@pytest.mark.parametrize(
    "members, message",
    [
        ({"cal_housing.data": RAW_ROWS}, r"it lacks CaliforniaHousing/cal_housing\.data \(it "),
        (
            {"../CaliforniaHousing/cal_housing.data": RAW_ROWS},
            r"names paths outside itself \('\.\./CaliforniaHousing",
        ),
        (
            {california.MEMBER: RAW_ROWS, "/tmp/evil.data": "x"},
            r"names paths outside itself \('/tmp/evil\.data'\)",
        ),
        ({california.MEMBER: None}, r"its CaliforniaHousing/cal_housing\.data is not a regular"),
    ],
    ids=["no folder", "parent path", "absolute path", "symbolic link"],
)
def test_an_archive_that_is_not_the_expected_one_is_refused(tmp_path, members, message):
    (tmp_path / "cal_housing.tgz").write_bytes(make_archive(members))
    with pytest.raises(DownloadError, match="cal_housing.tgz is not the archive expected: ") as e:
        load_california_housing(tmp_path, download=False)
    assert e.match(message) and "delete it to download it again" in str(e.value)
    assert [p.name for p in tmp_path.iterdir()] == ["cal_housing.tgz"]  # nothing written
    assert not (tmp_path.parent / "CaliforniaHousing").exists()


def test_an_unreadable_archive_is_refused(tmp_path):
    (tmp_path / "cal_housing.tgz").write_bytes(ARCHIVE[: len(ARCHIVE) // 2])
    with pytest.raises(DownloadError, match="the archive cannot be read"):
        load_california_housing(tmp_path, download=False)


@pytest.mark.parametrize(
    "table, message",
    [
        ("1,2,3\n", "1 rows of 3 numbers, expected rows of 9"),
        ("", "0 rows of "),
        (RAW_ROWS.replace("41.000000", "forty"), "not a table of numbers"),
        (RAW_ROWS.replace("126.000000", "0.000000"), "a row has no households"),
        (RAW_ROWS.replace("8.325200", "nan"), "a value is not a finite number"),
    ],
    ids=["short rows", "empty", "a word", "no households", "nan"],
)
def test_a_malformed_table_in_the_archive_is_named(tmp_path, table, message):
    (tmp_path / "cal_housing.tgz").write_bytes(make_archive({california.MEMBER: table}))
    with pytest.raises(california.CaliforniaError, match=message) as caught:
        load_california_housing(tmp_path, download=False)
    assert "cal_housing.tgz!CaliforniaHousing/cal_housing.data: " in str(caught.value)


def test_a_csv_with_other_columns_is_refused(tmp_path):
    (tmp_path / "california_housing.csv").write_text(SMALL_CSV.replace("MedInc", "income"))
    with pytest.raises(california.CaliforniaError, match=r"expected the columns \['MedInc'"):
        load_california_housing(tmp_path, download=False)
