"""tinydeep/data/movielens.py: the real MovieLens 100K files (values looked up in them by hand),
hand-made files for each rule of the format and each error, the archive read in memory (and
archives that are not the expected one), the download path against a local HTTP server, then
the splits and the sampled negatives against slow references written out here.
"""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tinydeep.data import (
    DownloadError,
    MovieLensError,
    leave_last_one_out,
    load_movielens_100k,
    movielens,
    random_split,
    sample_negatives,
    temporal_split,
)

# Three users, three movies, three genres, five ratings, written as GroupLens writes them:
# u.genre out of index order and ending in a blank line, a title with Latin-1 bytes (é, and
# 0x85, which str.splitlines would take for a line break), a one-digit day ('4-Feb-1971') and
# an empty release date (as movie 267's), a zip code that is not a number.
SMALL = {
    "u.occupation": "artist\nengineer\nother\n",
    "u.genre": "Comedy|2\nunknown|0\nAction|1\n\n",
    "u.user": "1|24|M|engineer|85711\n2|53|F|other|T8H1N\n3|7|M|artist|00000\n",
    "u.item": (
        "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy|0|0|1\n"
        "2|Misérables, Les (1995)|4-Feb-1971||http://us.imdb.com/M/x|0|1|1\n"
        "3|Caf\x85 (1998)||||1|0|0\n"
    ),
    "u.data": "3\t2\t5\t881250949\n1\t1\t3\t50\n1\t3\t4\t50\n2\t2\t1\t70\n3\t1\t2\t60\n",
}


def write(folder, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_bytes(text.encode("latin-1"))


def make_zip(members: dict[str, str | None], prefix: str = "ml-100k/") -> bytes:
    """A zip holding `members` (name -> text, or None for a symbolic link to /etc/passwd),
    each name under `prefix`, plus a README as the real archive has."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(prefix + "README", "SUMMARY & USAGE LICENSE\n")
        for name, text in members.items():
            if text is None:
                info = zipfile.ZipInfo(prefix + name)
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                archive.writestr(info, "/etc/passwd")
            else:
                archive.writestr(prefix + name, text.encode("latin-1"))
    return buffer.getvalue()


ARCHIVE = make_zip(SMALL)


def check_small(data: movielens.MovieLens) -> None:
    """`data` is SMALL, read right."""
    assert data.user.tolist() == [2, 0, 0, 1, 2]  # 0-based
    assert data.item.tolist() == [1, 0, 2, 1, 0]
    assert data.rating.tolist() == [5, 3, 4, 1, 2]
    assert data.timestamp.tolist() == [881250949, 50, 50, 70, 60]
    assert data.age.tolist() == [24, 53, 7]
    assert data.gender.tolist() == ["M", "F", "M"]
    assert data.occupations == ("artist", "engineer", "other")
    assert data.occupation.tolist() == [1, 2, 0]
    assert data.zip_code.tolist() == ["85711", "T8H1N", "00000"]
    assert data.title.tolist() == ["Toy Story (1995)", "Misérables, Les (1995)", "Caf\x85 (1998)"]
    assert data.release_date.dtype == np.dtype("datetime64[D]")
    assert data.release_date[:2].tolist() == [
        np.datetime64("1995-01-01").item(),
        np.datetime64("1971-02-04").item(),
    ]
    assert np.isnat(data.release_date[2])
    assert data.genre_names == ("unknown", "Action", "Comedy")  # by the index column
    assert data.genres.tolist() == [[0, 0, 1], [0, 1, 1], [1, 0, 0]]
    assert data.genres.dtype == bool
    for name in ("user", "item", "rating", "timestamp", "age", "occupation"):
        assert getattr(data, name).dtype == np.int64, name
    assert (data.num_users, data.num_items) == (3, 3)
    assert repr(data) == "MovieLens(5 ratings, 3 users, 3 movies, 3 genres)"


# ---- the real files --------------------------------------------------------------------------


def test_the_real_files(data_root):
    folder = data_root("movielens-100k")
    data = load_movielens_100k(folder.parent, download=False)
    assert repr(data) == "MovieLens(100,000 ratings, 943 users, 1,682 movies, 19 genres)"
    assert data.user.shape == data.item.shape == data.rating.shape == (100_000,)
    assert data.genres.shape == (1682, 19) and data.age.shape == (943,)
    # u.data's first line is "196  242  3  881250949".
    assert (data.user[0], data.item[0], data.rating[0], data.timestamp[0]) == (
        195,
        241,
        3,
        881250949,
    )
    assert data.title[542] == "Misérables, Les (1995)"  # movie 543, byte 0xE9 in the file
    assert data.title[0] == "Toy Story (1995)"
    assert [data.genre_names[g] for g in np.flatnonzero(data.genres[0])] == [
        "Animation",
        "Children's",
        "Comedy",
    ]
    assert data.genre_names[0] == "unknown" and data.genre_names[-1] == "Western"
    assert (data.age[0], data.gender[0], data.occupations[data.occupation[0]]) == (
        24,
        "M",
        "technician",
    )
    assert len(data.occupations) == 21 and data.occupations[0] == "administrator"
    assert "T8H1N" in data.zip_code.tolist()
    assert data.title[266] == "unknown" and np.isnat(data.release_date[266])  # movie 267
    assert data.release_date[1372] == np.datetime64("1971-02-04")  # '4-Feb-1971'
    assert np.isnat(data.release_date).sum() == 1
    assert sorted(set(data.rating.tolist())) == [1, 2, 3, 4, 5]
    assert np.bincount(data.user).min() >= 20  # GroupLens kept users with 20 or more
    # The folder itself works as data_dir too.
    assert load_movielens_100k(folder, download=False).title[542] == data.title[542]


def test_the_real_files_split_as_the_ncf_paper_splits_them(data_root):
    data = load_movielens_100k(data_root("movielens-100k"), download=False)
    train, test = leave_last_one_out(data.user, data.timestamp)
    assert len(test) == 943 and sorted(data.user[test]) == list(range(943))
    assert len(train) + len(test) == 100_000
    negatives = sample_negatives(data.user, data.item, data.num_items, data.user[test])
    assert negatives.shape == (943, 99)
    rated = set(zip(data.user.tolist(), data.item.tolist()))
    assert not any((u, i) in rated for u, row in zip(data.user[test], negatives) for i in row)
    train, test = temporal_split(data.user, data.timestamp)
    assert len(test) == (np.bincount(data.user) // 5).sum()  # floor(0.2 * count) per user


# ---- hand-made files -------------------------------------------------------------------------


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_small_files_are_read_as_written(tmp_path, line_end):
    write(tmp_path, {name: text.replace("\n", line_end) for name, text in SMALL.items()})
    check_small(load_movielens_100k(tmp_path, download=False))


def test_trailing_blank_lines_are_allowed_and_a_blank_line_between_rows_is_not(tmp_path):
    write(
        tmp_path, {**SMALL, "u.data": SMALL["u.data"] + "\n \n", "u.user": SMALL["u.user"] + "\n"}
    )
    check_small(load_movielens_100k(tmp_path, download=False))
    write(tmp_path, {"u.data": SMALL["u.data"].replace("\n", "\n\n", 1)})
    with pytest.raises(MovieLensError, match=r"u\.data line 2: a blank line before the last"):
        load_movielens_100k(tmp_path, download=False)


def damaged(name: str, old: str, new: str) -> dict[str, str]:
    assert old in SMALL[name]
    return {**SMALL, name: SMALL[name].replace(old, new, 1)}


@pytest.mark.parametrize(
    "files, message",
    [
        (damaged("u.data", "\t1\t3\t", "\t1\t6\t"), r"u\.data line 2: rating 6, expected 1 to 5"),
        (damaged("u.data", "\t1\t2\t6", "\t1\t0\t6"), r"u\.data line 5: rating 0, expected 1 "),
        (damaged("u.data", "2\t2\t1", "4\t2\t1"), r"u\.data line 4: user id 4, expected 1 to 3"),
        (damaged("u.data", "1\t3\t4", "1\t0\t4"), r"u\.data line 3: movie id 0, expected 1 "),
        (damaged("u.data", "1\t3\t4\t50", "1\t3\t4"), r"u\.data line 3: expected 4 whole num"),
        (damaged("u.data", "\t3\t4\t", "\t3\t4.5\t"), r"u\.data line 3: expected 4 whole numb"),
        (damaged("u.data", "2\t2\t1", "2 2\t1"), r"u\.data line 4: expected 4 whole numbers"),
        ({**SMALL, "u.data": "\n"}, r"u\.data: the file holds no rows"),
        (damaged("u.item", "|0|1|1", "|0|2|1"), r"u\.item line 2: genre flags \['0', '2', "),
        (damaged("u.item", "|1|0|0", "|1|0"), r"u\.item line 3: expected 8 fields separated"),
        (damaged("u.item", "2|Mis", "3|Mis"), r"u\.item line 2: movie id 3, expected 2 \(ids"),
        (damaged("u.item", "4-Feb-1971", "31-Feb-1971"), r"u\.item line 2: release date '31-F"),
        (damaged("u.item", "01-Jan-1995", "1995-01-01"), r"u\.item line 1: release date '1995"),
        (damaged("u.item", "01-Jan-1995", "01-Jum-1995"), r"u\.item line 1: release date '01"),
        (damaged("u.item", "01-Jan-1995", "01-Jan-19955"), r"u\.item line 1: release date '0"),
        (damaged("u.user", "|F|", "|X|"), r"u\.user line 2: gender 'X', expected M or F"),
        (damaged("u.user", "|artist|", "|poet|"), r"u\.user line 3: occupation 'poet' is not"),
        (damaged("u.user", "|53|", "|old|"), r"u\.user line 2: age 'old' is not a whole number"),
        (damaged("u.user", "3|7|", "4|7|"), r"u\.user line 3: user id 4, expected 3 \(ids run"),
        (damaged("u.user", "|85711", ""), r"u\.user line 1: expected 5 fields separated by \|"),
        (damaged("u.genre", "Action|1", "Action|2"), r"u\.genre line 3: genre index 2 repeated"),
        (damaged("u.genre", "Action|1", "Action|3"), r"u\.genre line 3: genre index 3 repeat"),
        (damaged("u.genre", "Action|1", "Action"), r"u\.genre line 3: expected 2 fields sepa"),
        (damaged("u.occupation", "other", "artist"), r"u\.occupation line 3: 'artist' is bl"),
    ],
)
def test_each_fault_is_named_with_its_file_and_line(tmp_path, files, message):
    write(tmp_path, files)
    with pytest.raises(MovieLensError, match=message) as caught:
        load_movielens_100k(tmp_path, download=False)
    assert str(caught.value).startswith(str(tmp_path / "u."))


# ---- the archive -------------------------------------------------------------------------------


def test_the_archive_is_read_in_memory_and_nothing_is_extracted(tmp_path):
    (tmp_path / "ml-100k.zip").write_bytes(ARCHIVE)
    check_small(load_movielens_100k(tmp_path, download=False))
    assert [p.name for p in tmp_path.iterdir()] == ["ml-100k.zip"]


def test_a_fault_in_the_archive_names_the_member_and_line(tmp_path):
    (tmp_path / "ml-100k.zip").write_bytes(make_zip(damaged("u.data", "\t1\t3\t", "\t1\t9\t")))
    with pytest.raises(MovieLensError) as caught:
        load_movielens_100k(tmp_path, download=False)
    assert str(caught.value) == (
        f"{tmp_path / 'ml-100k.zip'}!ml-100k/u.data line 2: rating 9, expected 1 to 5"
    )


@pytest.mark.parametrize("layout", ["movielens-100k", "ml-100k", "."])
@pytest.mark.parametrize("kind", ["files", "archive"])
def test_a_data_dir_that_holds_the_files_is_used_as_it_is(
    tmp_path, monkeypatch, offline_url, layout, kind
):
    """data_dir may hold movielens-100k/ or ml-100k/ (the archive unpacked) or be the folder;
    offline, each is read as it is, and nothing is made beside it."""
    monkeypatch.setattr(movielens, "URL", offline_url + "ml-100k.zip")
    if kind == "files":
        write(tmp_path / layout, SMALL)
    else:
        (tmp_path / layout).mkdir(exist_ok=True)
        (tmp_path / layout / "ml-100k.zip").write_bytes(ARCHIVE)
    before = sorted(tmp_path.rglob("*"))
    check_small(load_movielens_100k(tmp_path))
    assert sorted(tmp_path.rglob("*")) == before


def test_the_files_are_read_before_the_archive(tmp_path):
    write(tmp_path, SMALL)
    (tmp_path / "ml-100k.zip").write_bytes(b"not read")
    check_small(load_movielens_100k(tmp_path, download=False))


@pytest.mark.parametrize(
    "archive, message",
    [
        (make_zip(SMALL, prefix=""), r"it lacks ml-100k/u\.data"),
        (make_zip({k: v for k, v in SMALL.items() if k != "u.genre"}), r"lacks ml-100k/u\.genre"),
        (make_zip(SMALL, prefix="ml-100k/../"), r"names paths outside itself \('ml-100k/\.\./"),
        (
            make_zip({**SMALL, "/etc/evil": "x"}, prefix=""),
            r"names paths outside itself \('/etc/evil'\)",
        ),
        (make_zip({**SMALL, "u.user": None}), r"its ml-100k/u\.user is not a regular file"),
    ],
    ids=["no folder", "a member missing", "parent path", "absolute path", "symbolic link"],
)
def test_an_archive_that_is_not_the_expected_one_is_refused(tmp_path, archive, message):
    (tmp_path / "ml-100k.zip").write_bytes(archive)
    with pytest.raises(DownloadError, match="ml-100k.zip is not the archive expected: ") as e:
        load_movielens_100k(tmp_path, download=False)
    assert e.match(message) and "delete it to download it again" in str(e.value)
    assert [p.name for p in tmp_path.iterdir()] == ["ml-100k.zip"]  # nothing written
    assert not (tmp_path.parent / "etc" / "evil").exists()


def test_a_member_larger_than_any_real_one_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(movielens, "MAX_MEMBER", len(SMALL["u.item"]) - 1)
    (tmp_path / "ml-100k.zip").write_bytes(ARCHIVE)
    with pytest.raises(DownloadError, match=r"its ml-100k/u\.item holds \d+ bytes"):
        load_movielens_100k(tmp_path, download=False)


def test_an_unreadable_or_corrupted_archive_is_refused(tmp_path):
    (tmp_path / "ml-100k.zip").write_bytes(ARCHIVE[: len(ARCHIVE) // 2])
    with pytest.raises(DownloadError, match="the archive cannot be read .*delete it to download"):
        load_movielens_100k(tmp_path, download=False)
    # Stored (not compressed), so one changed byte of u.data fails only its CRC.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in SMALL.items():
            archive.writestr("ml-100k/" + name, text.encode("latin-1"))
    corrupted = buffer.getvalue().replace(b"881250949", b"881250948")
    (tmp_path / "ml-100k.zip").write_bytes(corrupted)
    with pytest.raises(DownloadError, match="the archive cannot be read .*CRC"):
        load_movielens_100k(tmp_path, download=False)


# ---- downloading -------------------------------------------------------------------------------


def serve(local_server, monkeypatch, sha256: str | None = None) -> None:
    """The loader's URL and checksum pointed at ARCHIVE on the local server."""
    local_server.files["/ml-100k.zip"] = ARCHIVE
    monkeypatch.setattr(movielens, "URL", local_server.url("/ml-100k.zip"))
    monkeypatch.setattr(movielens, "SHA256", sha256 or hashlib.sha256(ARCHIVE).hexdigest())


def test_download_verify_and_read(tmp_path, local_server, monkeypatch):
    serve(local_server, monkeypatch)
    check_small(load_movielens_100k(tmp_path))
    folder = tmp_path / "movielens-100k"
    assert [p.name for p in folder.iterdir()] == ["ml-100k.zip"]  # nothing extracted
    assert (folder / "ml-100k.zip").read_bytes() == ARCHIVE
    check_small(load_movielens_100k(tmp_path))
    assert local_server.requests == ["/ml-100k.zip"]  # downloaded once, then read from disk


def test_a_bad_checksum_leaves_nothing(tmp_path, local_server, monkeypatch):
    serve(local_server, monkeypatch, sha256="0" * 64)
    with pytest.raises(DownloadError, match="SHA-256") as caught:
        load_movielens_100k(tmp_path)
    assert list(tmp_path.iterdir()) == []  # no file, and not the folder made for it
    assert "already holds ml-100k.zip or u.data, u.item, u.user" in str(caught.value)


def test_offline_a_failed_download_says_where(tmp_path, monkeypatch, offline_url):
    monkeypatch.setattr(movielens, "URL", offline_url + "ml-100k.zip")
    with pytest.raises(DownloadError, match="could not be reached") as caught:
        load_movielens_100k(tmp_path / "data")
    assert not (tmp_path / "data").exists()
    assert caught.value.dest == tmp_path / "data" / "movielens-100k" / "ml-100k.zip"


def test_offline_without_download_says_what_to_fetch_and_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        load_movielens_100k(tmp_path, download=False)
    message = str(caught.value)
    assert message.startswith("load_movielens_100k: ")
    assert f"Download ml-100k.zip from {movielens.URL}" in message
    assert f"and put it in {tmp_path / 'movielens-100k'}" in message
    assert list(tmp_path.iterdir()) == []
    write(tmp_path, {"u.data": SMALL["u.data"], "u.item": SMALL["u.item"]})  # some, not all
    with pytest.raises(FileNotFoundError, match="it lacks u.user, u.genre, u.occupation"):
        load_movielens_100k(tmp_path, download=False)


# ---- splits ------------------------------------------------------------------------------------

# Users 0-4 and times 0-5 on purpose: many ties in time, and users with one rating or none.
ratings = st.integers(0, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 4), min_size=n, max_size=n),
        st.lists(st.integers(0, 5), min_size=n, max_size=n),
    )
)
fractions = st.integers(1, 99).map(lambda k: Fraction(k, 100))


def latest(user, timestamp, how_many) -> set[int]:
    """The slow reference: per user, rows sorted by (time, row); the last how_many(count)."""
    test = set()
    for u in set(user):
        rows = sorted((t, r) for r, (v, t) in enumerate(zip(user, timestamp)) if v == u)
        test |= {r for _, r in rows[len(rows) - how_many(len(rows)) :]}
    return test


def check_split(train, test, n: int) -> None:
    """Sorted int64 indices, disjoint, together all of 0..n-1."""
    for part in (train, test):
        assert part.dtype == np.int64 and (np.diff(part) > 0).all()
    assert sorted([*train.tolist(), *test.tolist()]) == list(range(n))


@given(n=st.integers(0, 300), fraction=fractions, seed=st.integers(0, 2**32))
@example(n=100, fraction=Fraction(29, 100), seed=0)  # 0.29 * 100 is 28.999999999999996
def test_random_split_sizes_and_determinism(n, fraction, seed):
    train, test = random_split(n, float(fraction), seed)
    check_split(train, test, n)
    assert len(test) == int(fraction * n)  # floor, exactly, of the fraction as written
    again = random_split(n, float(fraction), seed)
    assert train.tolist() == again[0].tolist() and test.tolist() == again[1].tolist()


def test_random_split_draws_with_the_seed():
    assert random_split(1000, 0.2, 0)[1].tolist() != random_split(1000, 0.2, 1)[1].tolist()
    test = random_split(10_000, 0.5, 0)[1]
    assert 2300 < (test < 5000).sum() < 2700  # spread over all rows, not a block of them


@given(data=ratings, fraction=fractions)
@example(data=([0] * 100, [0] * 100), fraction=Fraction(29, 100))
def test_temporal_split_holds_out_each_users_latest_ratings(data, fraction):
    user, timestamp = data
    train, test = temporal_split(np.array(user, int), np.array(timestamp, int), float(fraction))
    check_split(train, test, len(user))
    assert set(test.tolist()) == latest(user, timestamp, lambda count: int(fraction * count))


@given(data=ratings)
def test_leave_last_one_out_holds_out_one_latest_rating_per_user(data):
    user, timestamp = data
    train, test = leave_last_one_out(np.array(user, int), np.array(timestamp, int))
    check_split(train, test, len(user))
    assert set(test.tolist()) == latest(user, timestamp, lambda count: 1)
    assert sorted(np.array(user, int)[test].tolist()) == sorted(set(user))  # one per user


def test_ties_in_time_go_by_file_order():
    user, timestamp = np.array([0, 0, 0, 0, 0]), np.array([7, 9, 9, 3, 9])
    assert leave_last_one_out(user, timestamp)[1].tolist() == [4]
    assert temporal_split(user, timestamp, 0.4)[1].tolist() == [2, 4]


# ---- negatives ---------------------------------------------------------------------------------


@given(
    data=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 11)), max_size=30),
    users=st.lists(st.integers(0, 5), max_size=8),
    count=st.integers(0, 5),
    seed=st.integers(0, 2**32),
)
def test_negatives_are_distinct_unrated_items(data, users, count, seed):
    user = np.array([u for u, _ in data], dtype=np.int64)
    item = np.array([i for _, i in data], dtype=np.int64)
    users = np.array(users, dtype=np.int64)
    negatives = sample_negatives(user, item, 12, users, count, seed)
    assert negatives.shape == (len(users), count) and negatives.dtype == np.int64
    for u, row in zip(users.tolist(), negatives.tolist()):
        assert len(set(row)) == count and all(0 <= i < 12 for i in row)
        assert not set(row) & {i for v, i in data if v == u}
    again = sample_negatives(user, item, 12, users, count, seed)
    assert negatives.tolist() == again.tolist()


def test_negatives_are_drawn_uniformly_in_blocks_of_users():
    """User 0 rated items 0-3 of 10; 3,000 draws of 3 negatives (more than one block of
    users) take each of the 6 others about 1,500 times, and come in random order."""
    user, item = np.zeros(4, np.int64), np.arange(4)
    negatives = sample_negatives(user, item, 10, np.zeros(3000, np.int64), count=3, seed=0)
    counts = np.bincount(negatives.ravel(), minlength=10)
    assert counts[:4].tolist() == [0, 0, 0, 0]
    assert (np.abs(counts[4:] - 1500) < 120).all(), counts  # 4 standard deviations: 40 each
    assert 800 < (negatives[:, 0] < negatives[:, 1]).sum() < 2200  # not sorted
    assert (negatives[:1024] != negatives[1024:2048]).any()  # each block draws anew
    other = sample_negatives(user, item, 10, np.zeros(3000, np.int64), count=3, seed=1)
    assert negatives.tolist() != other.tolist()


def test_a_user_with_too_few_unrated_items_is_named():
    user, item = np.array([0, 0, 1]), np.array([0, 1, 0])
    assert sample_negatives(user, item, 3, np.array([1]), count=2).tolist() in ([[1, 2]], [[2, 1]])
    with pytest.raises(ValueError, match="sample_negatives: user 0 has 1 unrated items, fewer"):
        sample_negatives(user, item, 3, np.array([1, 0]), count=2)


# ---- bad arguments -----------------------------------------------------------------------------

U, T = np.array([0, 1]), np.array([5, 6])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: random_split(10, 0.0), r"random_split: test_fraction must be in \(0, 1\), got 0"),
        (lambda: random_split(10, 1.0), r"random_split: test_fraction must be in \(0, 1\)"),
        (lambda: random_split(10, float("nan")), r"random_split: test_fraction must be in"),
        (lambda: random_split(-1), "random_split: num_ratings must be an int >= 0, got -1"),
        (lambda: random_split(2.5), "random_split: num_ratings must be an int >= 0, got 2.5"),
        (lambda: temporal_split(U, T, 1.5), "temporal_split: test_fraction must be in"),
        (lambda: temporal_split(U, T[:1]), "temporal_split: user and timestamp must have the s"),
        (lambda: temporal_split(U, T * 1.0), "temporal_split: timestamp must be a 1-D array of"),
        (lambda: leave_last_one_out(U[:, None], T), "leave_last_one_out: user must be a 1-D a"),
        (lambda: sample_negatives(U, T[:1], 9, U), "sample_negatives: user and item must have"),
        (lambda: sample_negatives(U, T, 6, U), r"sample_negatives: item must hold ids in 0\.\.5"),
        (lambda: sample_negatives(U, U, 0, U), "sample_negatives: num_items must be an int >= 1"),
        (lambda: sample_negatives(U, U, 9, U, -1), "sample_negatives: count must be an int >= 0"),
        (lambda: sample_negatives(U, U, 9, [0.5]), "sample_negatives: users must be a 1-D array"),
    ],
)
def test_bad_arguments_name_the_function_and_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
