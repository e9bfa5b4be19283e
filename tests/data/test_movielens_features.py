"""tinydeep/data/movielens_features.py: the wide ids (each column in its own range, crosses by
their formula, genre slots padded), the deep columns and numeric features against values worked
out by hand on a small data set, the names of wide ids, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

from tinydeep.data.movielens import MovieLens, load_movielens_100k, temporal_split
from tinydeep.data.movielens_features import AGE_BOUNDARIES, WIDE_COLUMNS, MovieLensFeatures


def small() -> MovieLens:
    """Three users, four movies, three genres, six ratings."""
    return MovieLens(
        user=np.array([0, 0, 1, 2, 2, 1]),
        item=np.array([0, 1, 1, 2, 3, 0]),
        rating=np.array([5, 3, 4, 1, 2, 4]),
        timestamp=np.arange(6) * 10,
        age=np.array([17, 30, 60]),  # age groups 0, 2, 6
        gender=np.array(["F", "M", "M"]),
        occupation=np.array([1, 0, 1]),
        zip_code=np.array(["1", "2", "3"]),
        title=np.array(["A (1990)", "B (1995)", "C (2000)", "D"]),
        release_date=np.array(["1990-01-01", "1995-06-01", "2000-01-01", "NaT"], "datetime64[D]"),
        genres=np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=bool),
        genre_names=("unknown", "Action", "Drama"),
        occupations=("artist", "writer"),
    )


def test_every_wide_column_by_its_formula_in_its_own_range():
    data = small()
    features = MovieLensFeatures(data, wide=WIDE_COLUMNS).fit(np.arange(6))
    g = 4  # three genres and "no genre" (id 3)
    widths = {
        "user": 3,
        "item": 4,
        "user_x_genre": 3 * g,
        "occupation_x_genre": 2 * g,
        "age_x_genre": (len(AGE_BOUNDARIES) + 1) * g,
        "gender_x_genre": 2 * g,
    }
    ranges = features.wide_ranges
    assert list(ranges) == list(WIDE_COLUMNS)
    assert features.wide_size == sum(widths.values())
    assert [stop - start for start, stop in ranges.values()] == list(widths.values())
    x = features.transform(np.array([2]), np.array([0]))  # user 2 (age 60, M, writer), movie 0
    slots = np.array([0, 2, 3, 3, 3, 3])  # movie 0's genres, padded with "no genre"
    expected = np.concatenate(
        [
            [2 + ranges["user"][0], 0 + ranges["item"][0]],
            2 * g + slots + ranges["user_x_genre"][0],
            1 * g + slots + ranges["occupation_x_genre"][0],
            6 * g + slots + ranges["age_x_genre"][0],
            1 * g + slots + ranges["gender_x_genre"][0],
        ]
    )
    np.testing.assert_array_equal(x["wide"], expected[None])
    names = features.wide_id_names(expected)
    assert names[:4] == ["user 3", "movie A (1990)", "user 3 x unknown", "user 3 x Drama"]
    assert names[5] == "user 3 x no genre"
    assert names[8] == "writer x unknown" and names[14] == "age 56+ x unknown"
    assert names[-6:-4] == ["M x unknown", "M x Drama"]


def test_the_deep_columns_and_the_numeric_features_by_hand():
    data = small()
    train = np.array([0, 1, 2, 3])  # movies 0, 1, 1, 2 rated: counts 1, 2, 1, 0
    features = MovieLensFeatures(data).fit(train)
    assert features.wide == ("user", "item")
    assert features.vocab_sizes == {
        "user": 3,
        "item": 4,
        "occupation": 2,
        "gender": 2,
        "age_group": 7,
    }
    x = features.transform(np.array([0, 1, 2]), np.array([3, 1, 0]))
    np.testing.assert_array_equal(x["occupation"], [1, 0, 1])
    np.testing.assert_array_equal(x["gender"], [0, 1, 1])
    np.testing.assert_array_equal(x["age_group"], [0, 2, 6])
    np.testing.assert_array_equal(x["wide"], [[0, 3 + 3], [1, 3 + 1], [2, 3 + 0]])
    # year over the training ratings' movies 0, 1, 1, 2: 1990, 1995, 1995, 2000
    years = np.array([1990.0, 1995, 1995, 2000])
    counts = np.log1p([1.0, 2, 2, 1])
    numeric = x["numeric"]
    assert numeric.dtype == np.float32 and numeric.shape == (3, 3 + 2)
    np.testing.assert_array_equal(numeric[:, :3], data.genres[[3, 1, 0]])
    np.testing.assert_allclose(
        numeric[:, 3],
        [0.0, (1995 - years.mean()) / years.std(), (1990 - years.mean()) / years.std()],
        rtol=1e-6,
    )  # movie 3 has no date: the mean, 0
    expected = (np.log1p([0.0, 2, 1]) - counts.mean()) / counts.std()
    np.testing.assert_allclose(numeric[:, 4], expected, rtol=1e-6)


def test_on_the_real_data_every_id_fits_its_table(data_root):
    data = load_movielens_100k(data_root("movielens-100k"), download=False)
    train, test = temporal_split(data.user, data.timestamp)
    features = MovieLensFeatures(data, wide=WIDE_COLUMNS).fit(train)
    x = features.transform(data.user[test], data.item[test])
    assert x["wide"].shape == (len(test), 2 + 4 * 6)
    assert 0 <= x["wide"].min() and x["wide"].max() < features.wide_size
    for name, size in features.vocab_sizes.items():
        assert 0 <= x[name].min() and x[name].max() < size, name
    assert features.num_numeric == 21 and np.isfinite(x["numeric"]).all()
    counts = features.transform(data.user[train], data.item[train])["numeric"][:, -1]
    assert abs(counts.mean()) < 1e-5 and abs(counts.std() - 1) < 1e-5  # standardized on train


def test_errors_name_the_argument():
    data = small()
    with pytest.raises(
        ValueError, match=r"wide must be distinct names among .* got \('user', 'age'\)"
    ):
        MovieLensFeatures(data, wide=("user", "age"))
    with pytest.raises(ValueError, match="got \\('user', 'user'\\)"):
        MovieLensFeatures(data, wide=("user", "user"))
    features = MovieLensFeatures(data)
    with pytest.raises(RuntimeError, match="call fit"):
        features.transform(np.array([0]), np.array([0]))
    with pytest.raises(ValueError, match="train_rows is empty"):
        features.fit(np.array([], dtype=np.int64))
    features.fit(np.arange(6))
    with pytest.raises(ValueError, match=r"two \(N,\) arrays, got shapes \(2,\) and \(1,\)"):
        features.transform(np.array([0, 1]), np.array([0]))
